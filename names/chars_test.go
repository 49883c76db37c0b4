package names

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestChars(t *testing.T) {
	for _, ok := range []string{"", "plain", "Müller & Söhne", "é€😀", "\U0001F9D1\u200d\U0001F4BB", "\ufffd", "a b", "\u00a0", "\U000E0001"} {
		if err := Chars(ok); err != nil {
			t.Errorf("Chars(%q) = %v", ok, err)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"a\x00b", "U+0000"}, {"tab\tx", "U+0009"}, {"line\nbreak", "U+000A"}, {"cr\r", "U+000D"},
		{"del\x7f", "U+007F"}, {"nel\u0085", "U+0085"},
		{"\uffff", "U+FFFF"}, {"\ufffe", "U+FFFE"}, {"\ufdd0", "U+FDD0"}, {"\ufdef", "U+FDEF"},
		{"\U0001FFFF", "U+1FFFF"}, {"\U0010FFFE", "U+10FFFE"},
		{"bad\xffbyte", "byte 3"}, {"\xed\xa0\x80", "not valid UTF-8"}, // an encoded surrogate
	} {
		err := Chars(c.in)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Chars(%q) = %v, want %q", c.in, err, c.want)
		}
	}
	// The error names the character, never the value (it may be a password).
	if err := Chars("hunter2\uffff"); strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error repeats the value: %v", err)
	}
}

func TestNoncharacterIsExactlyTheSixtySix(t *testing.T) {
	n := 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if Noncharacter(r) {
			n++
		}
	}
	if n != 66 {
		t.Fatalf("%d noncharacters, Unicode has 66", n)
	}
}

func TestSetting(t *testing.T) {
	for _, ok := range [][2]string{{"dtmf-type", "rfc2833"}, {"user-agent-string", "fsplane/1.0;é"}, {"dialplan", "XML,enum"}} {
		if err := Setting(ok[0], ok[1]); err != nil {
			t.Errorf("Setting(%q, %q) = %v", ok[0], ok[1], err)
		}
	}
	for _, c := range []struct{ name, value, want string }{
		{"accept-blind-reg", "true", "accept-blind-reg"},
		{"accept-blind-auth", "true", "accept-blind-auth"},
		{"sip-ip", "1.2.3.4", "sip_ip"},
		{"Bad_Name", "x", "must match"},
		{"user-agent-string", "fs <x>", "whitespace"},
		{"user-agent-string", "fs$${x}", "'$'"},
		{"user-agent-string", "fs\uffff", "U+FFFF"},
		{"user-agent-string", strings.Repeat("x", MaxSettingValue+1), "at most"},
	} {
		err := Setting(c.name, c.value)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Setting(%q, %q) = %v, want %q", c.name, c.value, err, c.want)
		}
	}
}

func TestUserProviderDomain(t *testing.T) {
	for _, ok := range []string{"1001", "+493012345", "alice.smith", "a_b-c"} {
		if err := User(ok); err != nil {
			t.Errorf("User(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "+", "++49", "a b", "a@b", "-x", "x\ny"} {
		if err := User(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("User(%q) accepted", bad)
		}
	}
	if err := Provider("plusnet"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"general", "Plusnet", "1&1", "plus net"} {
		if err := Provider(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Provider(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"pbx.example.com", "192.0.2.1", "[2001:db8::1]"} {
		if err := Domain(ok); err != nil {
			t.Errorf("Domain(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"PBX.example.com", "2001:db8::1", "pbx.example.com:5060", "a b"} {
		if err := Domain(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Domain(%q) accepted", bad)
		}
	}
}

// FuzzChars: whatever passes is valid UTF-8 without a control character or
// noncharacter, which XML 1.0 can carry.
func FuzzChars(f *testing.F) {
	for _, s := range []string{"plain", "\uffff", "a\x00", "\xff", "é€😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Chars(s) != nil {
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("accepted invalid UTF-8 %q", s)
		}
		for _, r := range s {
			if r < 0x20 || r >= 0x7f && r < 0xa0 || Noncharacter(r) || r >= 0xD800 && r <= 0xDFFF {
				t.Fatalf("accepted %q with %U", s, r)
			}
		}
	})
}

func TestSofiaArg(t *testing.T) {
	for _, ok := range []string{"abc@192.0.2.1", "3c26700c5b9f-k0lw5y1qm4gh", "a/b:c;d=e"} {
		if err := SofiaArg(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a\nb", "a'b", `a\b`, "a<b", "ré", "reboot", "REBOOT", "a\x00", "a\x7f"} {
		if err := SofiaArg(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

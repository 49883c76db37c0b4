package names

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Chars checks the characters of a value that is stored and may reach
// FreeSWITCH: valid UTF-8 (so no surrogate either: Go's decoder treats an
// encoded surrogate as invalid), no control character (C0, DEL, C1, which
// includes tab, CR and LF: a line break would end a FreeSWITCH value), and
// no Unicode noncharacter (U+FDD0–U+FDEF and U+xxFFFE/U+xxFFFF; U+FFFE and
// U+FFFF are not XML characters at all). The error names the character and
// its position, never the value.
func Chars(s string) error {
	pos := 0
	for i, r := range s {
		pos++
		switch {
		case r == utf8.RuneError && !validAt(s, i):
			return invalidf("is not valid UTF-8 (byte %d)", i)
		case unicode.IsControl(r):
			return invalidf("must not contain line breaks or control characters (found %U at character %d)", r, pos)
		case Noncharacter(r):
			return invalidf("must not contain the Unicode noncharacter %U (character %d)", r, pos)
		}
	}
	return nil
}

// validAt reports whether the U+FFFD at byte i was really written (EF BF BD)
// rather than produced by the decoder for an invalid byte.
func validAt(s string, i int) bool {
	_, n := utf8.DecodeRuneInString(s[i:])
	return n == 3
}

// Noncharacter reports whether r is one of the 66 Unicode noncharacters.
func Noncharacter(r rune) bool {
	return r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE && r <= unicode.MaxRune
}

// Text checks free text that is stored (descriptions, labels): Chars, and
// at most max characters.
func Text(s string, max int) error {
	if err := Chars(s); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalidf("must be at most %d characters (has %d)", max, n)
	}
	return nil
}

// Password checks a SIP password: Chars, between min and 128 characters.
// Any other character is allowed: passwords reach FreeSWITCH only as XML
// attribute values, written by an encoder and neutralised for the
// pre-processor.
func Password(s string, min int) error {
	if err := Chars(s); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(s); n < min {
		return invalidf("must be at least %d characters", min)
	} else if n > 128 {
		return invalidf("must be at most 128 characters")
	}
	return nil
}

// DisplayName allows what people call themselves ("Reception Desk",
// "Müller & Söhne"): it reaches FreeSWITCH only as an XML value. '$'
// (variable expansion in the dialplan that reads it) and '\' (escapes)
// stay out. At most 128 characters.
func DisplayName(s string) error {
	if err := Text(s, 128); err != nil {
		return err
	}
	if strings.ContainsAny(s, "$\\") {
		return invalidf("must not contain '$' or '\\'")
	}
	return nil
}

// forbidden are the characters that could break out of an ESL command
// line, an XML attribute or FreeSWITCH's variable expansion.
const forbidden = "<>&\"'$`\\"

// Token checks a value that must stand alone as one word on a FreeSWITCH
// command or config line: Chars, no whitespace of any kind, none of
// < > & " ' $ ` \. The error names the character, never the value.
func Token(s string) error {
	for _, r := range s {
		if unicode.IsSpace(r) {
			return invalidf("must not contain whitespace or control characters (found %q)", r)
		}
		if strings.ContainsRune(forbidden, r) {
			return invalidf("must not contain %q", r)
		}
	}
	return Chars(s)
}

// SofiaArg checks a value that must reach a sofia command as one argument,
// byte for byte as FreeSWITCH listed it (a Call-ID to flush_inbound_reg).
// RFC 3261 allows more in a Call-ID than a command line carries: sofia
// splits its arguments with switch_separate_string (switch_utils.c
// separate_string_blank_delim), where ' quotes, \ escapes and a space ends
// the argument, so Token; printable ASCII only, so the bytes FreeSWITCH
// compares are the bytes it listed (its listing is ISO-8859-1); and not
// "reboot", which cmd_profile reads as the flag that flushes every
// registration of the profile.
func SofiaArg(s string) error {
	if s == "" {
		return invalidf("must not be empty")
	}
	if err := Token(s); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return invalidf("must be printable ASCII (byte %d is 0x%02x)", i, s[i])
		}
	}
	if strings.EqualFold(s, "reboot") {
		return invalidf(`"reboot" would be read as the flag and flush every registration of the profile`)
	}
	return nil
}

package xmlcurl

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// capturedBodies returns every POST body FreeSWITCH 1.10.12 really sent
// (testdata/freeswitch-requests, one body per line), by file.
func capturedBodies(t testing.TB) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("testdata/freeswitch-requests/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured requests: %v", err)
	}
	out := map[string][]string{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				out[filepath.Base(f)] = append(out[filepath.Base(f)], line)
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestParseCapturedRegister(t *testing.T) {
	body := capturedBodies(t)["register.txt"][0]
	r := ParseRequest(body)
	want := Request{
		Hostname: "vm", Section: "directory", TagName: "domain", KeyName: "name", KeyValue: "127.0.0.1",
		Action: "sip_auth", Profile: "", User: "1000", Domain: "127.0.0.1", Realm: "127.0.0.1",
	}
	r.tail = ""
	if r != want {
		t.Fatalf("parsed\n%+v\nwant\n%+v", r, want)
	}
	got := map[string]string{}
	for _, p := range ParseRequest(body).Params() {
		got[p.Name] = p.Value
	}
	for k, v := range map[string]string{
		"Event-Name":        "REQUEST_PARAMS",
		"FreeSWITCH-IPv6":   "fd00::2",
		"Event-Date-GMT":    "Sun, 22 Nov 2026 18:18:06 GMT",
		"sip_user_agent":    "sipsak 0.9.8.1",
		"sip_auth_uri":      "sip:127.0.0.1:5090",
		"sip_call_id":       "1609648476@127.0.0.1",
		"sip_auth_username": "1000",
		"sip_profile":       "internal",
		"key":               "id",
		"ip":                "127.0.0.1",
	} {
		if got[k] != v {
			t.Errorf("param %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestParseCapturedShapes(t *testing.T) {
	bodies := capturedBodies(t)
	startup := bodies["startup.txt"]
	cases := []struct {
		body string
		want Request
	}{
		{startup[0], Request{Hostname: "vm", Section: "configuration", TagName: "configuration", KeyName: "name", KeyValue: "sofia.conf"}},
		{startup[1], Request{Hostname: "vm", Section: "configuration", TagName: "configuration", KeyName: "name", KeyValue: "sofia.conf", Profile: "external"}},
		{startup[3], Request{Hostname: "vm", Section: "directory", Purpose: "gateways", Profile: "external"}},
		{startup[4], Request{Hostname: "vm", Section: "directory", Purpose: "gateways", Profile: "internal"}},
		{startup[7], Request{Hostname: "vm", Section: "configuration", TagName: "configuration", KeyName: "name", KeyValue: "acl.conf"}},
		{startup[9], Request{Hostname: "vm", Section: "directory", TagName: "domain", KeyName: "name", KeyValue: "127.0.0.1", Purpose: "network-list", Domain: "127.0.0.1"}},
		{bodies["sofia_profile_internal_rescan.txt"][0], Request{Hostname: "vm", Section: "configuration", TagName: "configuration", KeyName: "name", KeyValue: "sofia.conf", Profile: "internal"}},
		{bodies["reloadxml.txt"][0], Request{Hostname: "vm", Section: "configuration", TagName: "configuration", KeyName: "name", KeyValue: "timezones.conf"}},
	}
	for i, c := range cases {
		got := ParseRequest(c.body)
		got.tail = ""
		if got != c.want {
			t.Errorf("case %d: parsed\n%+v\nwant\n%+v", i, got, c.want)
		}
	}
}

func TestParseLenient(t *testing.T) {
	cases := []struct {
		name, body string
		want       Request
	}{
		{"raw key_value with space, percent and ampersand",
			"hostname=fs 1&section=directory&tag_name=domain&key_name=name&key_value=a b%zz&c=d&Event-Name=REQUEST_PARAMS&user=u%20x&domain=a%20b%25zz%26c%3Dd",
			Request{Hostname: "fs 1", Section: "directory", TagName: "domain", KeyName: "name", KeyValue: "a b%zz&c=d", User: "u x", Domain: "a b%zz&c=d"}},
		{"realm smuggling fields into key_value: FreeSWITCH's own fields win",
			"hostname=vm&section=directory&tag_name=domain&key_name=name&key_value=x&Event-Name=y&user=admin&purpose=gateways&action=z&Event-Name=REQUEST_PARAMS&action=sip_auth&key=id&user=1000&domain=x%26Event-Name%3Dy%26user%3Dadmin%26purpose%3Dgateways%26action%3Dz",
			Request{Hostname: "vm", Section: "directory", TagName: "domain", KeyName: "name", KeyValue: "x&Event-Name=y&user=admin&purpose=gateways&action=z",
				Action: "sip_auth", User: "1000", Domain: "x&Event-Name=y&user=admin&purpose=gateways&action=z"}},
		{"short fetch: key_value runs to the end",
			"hostname=vm&section=configuration&tag_name=configuration&key_name=name&key_value=odd&name=x",
			Request{Hostname: "vm", Section: "configuration", TagName: "configuration", KeyName: "name", KeyValue: "odd&name=x"}},
		{"bad escapes stay literal",
			"section=directory&user=%&domain=%4&action=%GG+x",
			Request{Section: "directory", User: "%", Domain: "%4", Action: "%GG x"}},
		{"hand-made form, any order, encoded",
			"user=1000&domain=example.com&section=directory&action=user_call&key_value=example.com",
			Request{Section: "directory", KeyValue: "example.com", Action: "user_call", User: "1000", Domain: "example.com"}},
		{"empty", "", Request{}},
		{"garbage", "&&&==&%%%&hostname", Request{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ParseRequest(c.body)
			got.tail = ""
			if got != c.want {
				t.Fatalf("parsed\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

// rawValue draws what FreeSWITCH may put raw into the first five fields:
// anything, including '&', '=', '%', '+' and spaces.
func rawValue() *rapid.Generator[string] {
	piece := rapid.SampledFrom([]string{
		"a", "Z", "1", ".", "-", "_", " ", "&", "=", "%", "%4", "%41", "+", ":", "/", "@", "[", "]",
		"$${x}", "\"", "<", ">", "é", "😀", "\t", "&Event-Name=", "&user=admin", "&purpose=gateways",
	})
	return rapid.Custom(func(t *rapid.T) string {
		return strings.Join(rapid.SliceOfN(piece, 0, 8).Draw(t, "pieces"), "")
	})
}

// TestParseProperty builds bodies exactly as mod_xml_curl does (raw first
// five fields, URL-encoded event headers, switch_xml_locate_user's
// key/user/domain/ip last) and checks every field comes back.
func TestParseProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		want := Request{
			Hostname: rapid.StringMatching(`[a-z0-9.-]{0,12}`).Draw(t, "hostname"),
			Section:  rapid.SampledFrom([]string{"configuration", "directory", "dialplan", "phrases"}).Draw(t, "section"),
			TagName:  rapid.SampledFrom([]string{"", "domain", "configuration"}).Draw(t, "tag_name"),
			KeyName:  rapid.SampledFrom([]string{"", "name"}).Draw(t, "key_name"),
			KeyValue: rawValue().Draw(t, "key_value"),
		}
		withEvent := rapid.Bool().Draw(t, "event")
		var params []Param
		if withEvent {
			params = append(params, Param{"Event-Name", rapid.SampledFrom([]string{"REQUEST_PARAMS", "GENERAL"}).Draw(t, "event-name")})
			n := rapid.IntRange(0, 6).Draw(t, "n")
			for i := 0; i < n; i++ {
				name := rapid.SampledFrom([]string{"Core-UUID", "FreeSWITCH-IPv6", "sip_auth_realm", "X-Custom", "purpose", "profile", "action"}).Draw(t, "param")
				params = append(params, Param{name, rawValue().Draw(t, "value")})
			}
			if rapid.Bool().Draw(t, "user") {
				params = append(params,
					Param{"key", "id"},
					Param{"user", rawValue().Draw(t, "user")},
					Param{"domain", want.KeyValue},
					Param{"ip", "2001:db8::1"})
			}
		} else if strings.Contains(want.KeyValue, delEvent) {
			t.Skip("without event headers FreeSWITCH never sends this key_value")
		}
		for _, p := range params {
			switch p.Name {
			case "action":
				want.Action = p.Value
			case "purpose":
				want.Purpose = p.Value
			case "profile":
				want.Profile = p.Value
			case "user":
				want.User = p.Value
			case "domain":
				want.Domain = p.Value
			case "sip_auth_realm":
				want.Realm = p.Value
			}
		}
		body := formatRequest(want, params)
		got := ParseRequest(body)
		if !reflect.DeepEqual(got.Params(), params) {
			t.Fatalf("body %q\nparams %q\nwant   %q", body, got.Params(), params)
		}
		got.tail = ""
		if got != want {
			t.Fatalf("body %q\nparsed %+v\nwant   %+v", body, got, want)
		}
	})
}

// FuzzParseRequest checks that parsing never panics, that the typed fields
// are the last occurrence of their parameter, and that a body of
// FreeSWITCH's shape survives a round trip through formatRequest. The seed
// corpus is testdata/fuzz/FuzzParseRequest (the captured bodies and the
// edge cases found so far).
func FuzzParseRequest(f *testing.F) {
	for _, lines := range capturedBodies(f) {
		for _, l := range lines {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := ParseRequest(body)
		params := r.Params()
		last := map[string]string{}
		for _, p := range params {
			if strings.Contains(p.Name, "&") || strings.Contains(p.Name, "=") {
				t.Fatalf("param name %q holds a separator", p.Name)
			}
			last[p.Name] = p.Value
		}
		typed := map[string]string{"action": r.Action, "purpose": r.Purpose, "profile": r.Profile, "user": r.User, "domain": r.Domain}
		for name, v := range typed {
			if v != last[name] {
				t.Fatalf("%s = %q, but its last param is %q", name, v, last[name])
			}
		}
		if !fsShaped(body) {
			return
		}
		again := ParseRequest(formatRequest(r, params))
		if !reflect.DeepEqual(again.Params(), params) {
			t.Fatalf("params changed on round trip:\n%q\n%q", params, again.Params())
		}
		r.tail, again.tail = "", ""
		if again != r {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, again)
		}
	})
}

func fsShaped(body string) bool {
	rest, ok := strings.CutPrefix(body, preHostname)
	for _, d := range []string{delSection, delTagName, delKeyName, delKeyValue} {
		if !ok {
			return false
		}
		_, rest, ok = cutAt(rest, d)
	}
	return ok
}

func TestUnescapeInvertsEscape(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "s")
		if got := unescape(escape(s)); got != s {
			t.Fatalf("unescape(escape(%q)) = %q", s, got)
		}
	})
}

func TestLastIndex(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.StringOf(rapid.SampledFrom([]rune("ab&"))).Draw(t, "s")
		sep := rapid.SampledFrom([]string{"&", "&a", "&a&a", "&&", "&ab"}).Draw(t, "sep")
		if got, want := lastIndex(s, sep), strings.LastIndex(s, sep); got != want {
			t.Fatalf("lastIndex(%q, %q) = %d, want %d", s, sep, got, want)
		}
	})
}

// TestScanTailMatchesPairs holds the fast field search to the plain
// split-on-'&' semantics: the last "name=value" piece wins.
func TestScanTailMatchesPairs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		piece := rapid.SampledFrom([]string{"user", "domain", "x_user", "user_x", "=", "&", "a", "%41", "userdomain", "action", "purpose", "profile", "&&", "=="})
		s := strings.Join(rapid.SliceOfN(piece, 0, 16).Draw(t, "pieces"), "")
		want := map[string]string{}
		eachPair(s, func(name, raw string) { want[name] = unescape(raw) })
		r := Request{tail: s}
		r.scanTail()
		got := map[string]string{paramAction: r.Action, paramPurpose: r.Purpose, paramProfile: r.Profile, paramUser: r.User, paramDomain: r.Domain}
		for name, v := range got {
			if v != want[name] {
				t.Fatalf("scanTail(%q): %s = %q, want %q", s, name, v, want[name])
			}
		}
	})
}

package xmlcurl

import (
	"errors"
	"testing"
)

func TestBindingConfig(t *testing.T) {
	b, err := BindingConfig(Binding{URL: "http://[2001:db8::1]:8001" + Path, User: "fs", Password: hostile})
	if err != nil {
		t.Fatal(err)
	}
	assertSurvivesPreprocess(t, string(b))
	doc := parseDoc(t, string(b))
	if v, _ := paramValue(doc, "//binding/param", "gateway-credentials"); v != "fs:"+hostile {
		t.Fatalf("credentials read back as %q", v)
	}
	for _, bad := range []Binding{
		{URL: "http://x", User: "a:b", Password: "p"},
		{URL: "http://x", User: "a"},
		{User: "a", Password: "p"},
		{URL: "http://x", User: "a", Password: "p\x00"},
		{URL: "http://x", User: "a", Password: "p\nq"},
	} {
		if _, err := BindingConfig(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestEventSocketConfig(t *testing.T) {
	for _, c := range []struct {
		addr, listen string
		loopback     bool
	}{
		{"127.0.0.1:8021", "127.0.0.1", true},
		{"[::1]:8021", "::1", true},
		{"fs1.example:8021", "::", false},
		{"[2001:db8::7]:9000", "2001:db8::7", false},
	} {
		b, err := EventSocketConfig(EventSocket{Addr: c.addr, Password: "pw$${x}"})
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		assertSurvivesPreprocess(t, string(b))
		doc := parseDoc(t, string(b))
		if v, _ := paramValue(doc, "//settings/param", "listen-ip"); v != c.listen {
			t.Errorf("%s: listen-ip %q, want %q", c.addr, v, c.listen)
		}
		if v, _ := paramValue(doc, "//settings/param", "password"); v != "pw$${x}" {
			t.Errorf("%s: password %q", c.addr, v)
		}
		if _, ok := paramValue(doc, "//settings/param", "apply-inbound-acl"); ok != c.loopback {
			t.Errorf("%s: loopback ACL %v", c.addr, ok)
		}
	}
	for _, es := range []EventSocket{{Addr: "nohost", Password: "x"}, {Addr: "h:0", Password: "x"}, {Addr: "h:1", Password: "a\nb"}, {Addr: "h:1"}} {
		_, err := EventSocketConfig(es)
		if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrUnrenderable) {
			t.Errorf("%+v: %v", es, err)
		}
	}
}

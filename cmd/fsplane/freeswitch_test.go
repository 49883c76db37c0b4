package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

func bindingParams(t *testing.T, xml string) map[string]*etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatalf("not XML: %v\n%s", err, xml)
	}
	out := map[string]*etree.Element{}
	for _, p := range doc.FindElements("//param") {
		out[p.SelectAttrValue("name", "")] = p
	}
	return out
}

func TestFreeSWITCHConfig(t *testing.T) {
	env := map[string]string{
		"FSPLANE_XMLCURL_USER":     "freeswitch",
		"FSPLANE_XMLCURL_PASSWORD": `s3cr:t"<&>`,
		"FSPLANE_PUBLIC_URL":       "http://10.0.0.5:8001/",
		"FSPLANE_ESL_NODES":        "127.0.0.1:8021,10.0.0.7:8022",
		"FSPLANE_ESL_PASSWORD":     "esl-pw",
	}
	var out, errb bytes.Buffer
	if rc := run([]string{"freeswitch-config", "--only", "xml_curl"}, &out, &errb, envOf(env)); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	p := bindingParams(t, out.String())
	want := map[string]string{
		"gateway-url":         "http://10.0.0.5:8001/api/v1/sip/xml-curl",
		"gateway-credentials": `freeswitch:s3cr:t"<&>`,
		"auth-scheme":         "basic",
		"timeout":             "3",
	}
	for name, v := range want {
		if p[name] == nil || p[name].SelectAttrValue("value", "") != v {
			t.Errorf("%s = %v, want %q", name, p[name], v)
		}
	}
	if b := p["gateway-url"].SelectAttrValue("bindings", ""); b != "directory|configuration" {
		t.Errorf("bindings %q", b)
	}

	out.Reset()
	if rc := run([]string{"freeswitch-config", "--only", "event_socket", "--node", "10.0.0.7:8022"}, &out, &errb, envOf(env)); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	p = bindingParams(t, out.String())
	for name, v := range map[string]string{"listen-ip": "10.0.0.7", "listen-port": "8022", "password": "esl-pw"} {
		if p[name] == nil || p[name].SelectAttrValue("value", "") != v {
			t.Errorf("event socket %s = %v, want %q", name, p[name], v)
		}
	}
	if p["apply-inbound-acl"] != nil || !strings.Contains(out.String(), "apply-inbound-acl with a list") {
		t.Errorf("a network event socket should ask for an ACL:\n%s", out.String())
	}

	out.Reset()
	if rc := run([]string{"freeswitch-config"}, &out, &errb, envOf(env)); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	for _, s := range []string{"mod_xml_curl BEFORE mod_sofia", "xml_curl.conf.xml <==", "event_socket.conf.xml <==",
		`value="loopback.auto"`, "--node for each of 10.0.0.7:8022"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestFreeSWITCHConfigWithoutCredentials(t *testing.T) {
	var out, errb bytes.Buffer
	rc := run([]string{"freeswitch-config"}, &out, &errb, envOf(map[string]string{}))
	if rc == 0 {
		t.Fatal("succeeded without Basic credentials")
	}
	for _, s := range []string{"FSPLANE_XMLCURL_USER", "FSPLANE_XMLCURL_PASSWORD", "Basic"} {
		if !strings.Contains(errb.String(), s) {
			t.Errorf("error lacks %q: %s", s, errb.String())
		}
	}
	if out.Len() != 0 {
		t.Errorf("printed a binding without credentials:\n%s", out.String())
	}
	// The event socket file needs no credentials.
	if rc := run([]string{"freeswitch-config", "--only", "event_socket"}, &out, &errb, envOf(map[string]string{})); rc != 0 {
		t.Fatalf("event_socket only: rc %d: %s", rc, errb.String())
	}
	if rc := run([]string{"freeswitch-config", "--only", "nope"}, &out, &errb, envOf(map[string]string{})); rc == 0 {
		t.Fatal("--only nope accepted")
	}
}

package xmlcurl

import (
	"testing"

	"github.com/fsplane/fsplane/xmlcurl/xmlcurltest"
)

// fsPreprocess is FreeSWITCH's pre-processor (xmlcurltest.Preprocess).
func fsPreprocess(in string, vars map[string]string) (string, []string) {
	return xmlcurltest.Preprocess(in, vars)
}

func assertSurvivesPreprocess(t testing.TB, body string) {
	t.Helper()
	out, cmds := fsPreprocess(body, map[string]string{"x": "EXPANDED", "hostname": "EXPANDED", "domain": "EXPANDED"})
	if len(cmds) > 0 {
		t.Fatalf("the pre-processor would execute %q in\n%s", cmds, body)
	}
	if out != body {
		t.Fatalf("the pre-processor changes the answer:\nbefore:\n%s\nafter:\n%s", body, out)
	}
}

func TestPreprocessEmulation(t *testing.T) {
	// The emulation must bite on the raw sequences, or the tests built on it
	// prove nothing.
	for _, in := range []string{
		`<param name="password" value="a$${x}b"/>` + "\n",
		`<param name="password" value="X-PRE-PROCESS"/>` + "\n",
		`<X-PRE-PROCESS cmd="set" data="a=b"/>` + "\n",
		`<?xml version="1.0"?>` + "\n",
		`<!--#set "a=b"-->` + "\n",
	} {
		out, cmds := fsPreprocess(in, map[string]string{"x": "EXPANDED"})
		if out == in && len(cmds) == 0 {
			t.Errorf("emulation leaves %q alone", in)
		}
	}
	if got, _ := fsPreprocess("a$${x{y}}b$${x}\n", map[string]string{"x{y}": "1", "x": "2"}); got != "a1b2\n" {
		t.Errorf("nested expansion: %q", got)
	}
}

func TestNeutralize(t *testing.T) {
	cases := map[string]string{
		`v="$${x}"`:             `v="&#36;${x}"`,
		`v="$$$${x}"`:           `v="&#36;&#36;&#36;${x}"`,
		`v="${x}$"`:             `v="${x}$"`,
		`v="X-Pre-Process"`:     `v="&#88;-Pre-Process"`,
		`v="xx-pre-process"`:    `v="x&#120;-pre-process"`,
		`v="plain"`:             `v="plain"`,
		`v="x-pre-proces"`:      `v="x-pre-proces"`,
		`v="$"`:                 `v="$"`,
		`v="a$$"`:               `v="a&#36;$"`,
		`v="x-pre-process$${}"`: `v="&#120;-pre-process&#36;${}"`,
	}
	for in, want := range cases {
		got := string(neutralize([]byte(in)))
		if got != want {
			t.Errorf("neutralize(%s) = %s, want %s", in, got, want)
		}
		assertSurvivesPreprocess(t, got+"\n")
		doc := parseDoc(t, "<a "+got+"/>")
		wantVal := parseDoc(t, "<a "+in+"/>").Root().SelectAttrValue("v", "")
		if v := doc.Root().SelectAttrValue("v", ""); v != wantVal {
			t.Errorf("neutralize(%s) reads back as %q, want %q", in, v, wantVal)
		}
	}
}

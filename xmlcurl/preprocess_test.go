package xmlcurl

import (
	"strings"
	"testing"
)

// fsPreprocess is a Go port of what FreeSWITCH's preprocess() (src/switch_xml.c,
// reached from mod_xml_curl through switch_xml_parse_file) does to a body
// line by line: expand "$${name}" (expand_vars, with switch_find_end_paren's
// nesting), drop lines containing "<include>", "</include>" or "<?", drop or
// execute lines containing "X-pre-process" (case-insensitive), and execute
// "<!--#" commands. Executed commands are reported, not run.
func fsPreprocess(in string, vars map[string]string) (out string, commands []string) {
	var b strings.Builder
	ml := false
	for _, line := range strings.SplitAfter(in, "\n") {
		if line == "" {
			continue
		}
		bp := expandVars(line, vars)
		if strings.Contains(line, "<include>") || strings.Contains(line, "</include>") || strings.Contains(line, "<?") {
			continue
		}
		if ml {
			i := strings.Index(line, "-->")
			if i < 0 {
				continue
			}
			ml = false
			bp = line[i+3:]
		}
		if i := indexFold(bp, "x-pre-process"); i >= 0 {
			if i > 0 && bp[i-1] == '<' {
				commands = append(commands, bp)
			}
			continue
		}
		if i := strings.Index(bp, "<!--#"); i >= 0 {
			b.WriteString(bp[:i])
			if j := strings.Index(bp[i:], "-->"); j >= 0 {
				b.WriteString(bp[i+j+3:])
			} else {
				ml = true
			}
			commands = append(commands, bp[i:])
			continue
		}
		b.WriteString(bp)
	}
	return b.String(), commands
}

func expandVars(s string, vars map[string]string) string {
	if !strings.Contains(s, "$${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			if end := findEndParen(s, i+2); end >= 0 {
				b.WriteString(vars[s[i+3:end]])
				i = end + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// findEndParen mirrors switch_find_end_paren: the '}' closing the '{' at
// open, counting nested pairs.
func findEndParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func indexFold(s, lower string) int {
	for i := 0; i+len(lower) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(lower)], lower) {
			return i
		}
	}
	return -1
}

// assertSurvivesPreprocess fails unless FreeSWITCH's pre-processor leaves
// body exactly as it is and runs nothing.
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
	if got := expandVars("a$${x{y}}b$${x}", map[string]string{"x{y}": "1", "x": "2"}); got != "a1b2" {
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

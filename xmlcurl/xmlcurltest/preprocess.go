// Package xmlcurltest holds what tests of fsplane's xml-curl answers need
// from FreeSWITCH's side: a Go port of its XML pre-processor, to prove that
// an answer reads back exactly as rendered.
package xmlcurltest

import "strings"

func Preprocess(in string, vars map[string]string) (out string, commands []string) {
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

package firewall

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"unicode"
)

// UFWEntry is one rule as `ufw status` (plain, numbered or verbose) or
// `ufw show added` lists it.
type UFWEntry struct {
	// Line is the rule's line as listed.
	Line string
	// Comment is the rule's comment, "" if it has none.
	Comment string
	// Shaped reports whether the rule has a shape fsplane generates:
	// allow, incoming, any destination, one port or port range with a
	// protocol, from anywhere or from one network. Source and Port are
	// set only then.
	Shaped bool
	// Source is the rule's source network; not IsValid for anywhere.
	Source netip.Prefix
	Port   PortSpec
	// V6 marks the "(v6)" twin that UFW lists for a rule from anywhere.
	V6 bool
}

// Fsplane reports whether the entry carries fsplane's comment marker.
func (e UFWEntry) Fsplane() bool { return strings.HasPrefix(e.Comment, MarkerPrefix) }

func (e UFWEntry) key() ruleKey { return ruleKey{e.Source, e.Port} }

// UFWStatus is parsed `ufw status` or `ufw show added` output.
type UFWStatus struct {
	// Inactive is set for "Status: inactive": UFW lists no rules then,
	// whatever it has configured (`ufw show added` lists those).
	Inactive bool
	Entries  []UFWEntry
}

var (
	numberedRe = regexp.MustCompile(`^\[\s*\d+\]\s*`)
	// The action column separates the others; ufw pads columns with
	// spaces but a long address leaves only one.
	statusRuleRe = regexp.MustCompile(`^(.+?)\s+(ALLOW|DENY|REJECT|LIMIT)(?:\s+(IN|OUT|FWD))?\s+(.+?)$`)
	portProtoRe  = regexp.MustCompile(`^[0-9]+(?::[0-9]+)?/(?:udp|tcp)$`)
)

// ParseUFWStatus reads `ufw status` (plain, numbered or verbose, as
// printed under LC_ALL=C) or `ufw show added` output. Rules of shapes
// fsplane does not generate are kept with Shaped false, so a diff can
// still point at fsplane-marked ones.
func ParseUFWStatus(r io.Reader) (*UFWStatus, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var (
		st     UFWStatus
		format string // "status" or "added"
		inRows bool
	)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case format == "" && strings.TrimSpace(line) == "":
		case format == "":
			switch {
			case line == "Status: active":
				format = "status"
			case line == "Status: inactive":
				st.Inactive = true
				format = "status"
			case strings.HasPrefix(line, "Added user rules"):
				format = "added"
			default:
				return nil, fmt.Errorf("%w: first line %q (want \"Status: active\", \"Status: inactive\" or \"Added user rules\"; run ufw with LC_ALL=C)", ErrUFWStatus, clip(line))
			}
		case format == "added":
			if strings.HasPrefix(line, "ufw ") {
				st.Entries = append(st.Entries, parseAddedLine(line))
			}
		case !inRows:
			// Rows start after the "--  ------  ----" underline.
			if f := strings.Fields(numberedRe.ReplaceAllString(line, "")); len(f) == 3 && strings.Trim(f[0]+f[1]+f[2], "-") == "" {
				inRows = true
			}
		case strings.TrimSpace(line) == "":
			inRows = false
		default:
			st.Entries = append(st.Entries, parseStatusLine(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("firewall: read ufw status: %w", err)
	}
	if format == "" {
		return nil, fmt.Errorf("%w: empty input", ErrUFWStatus)
	}
	return &st, nil
}

// parseStatusLine parses a row of the To / Action / From table.
func parseStatusLine(line string) UFWEntry {
	e := UFWEntry{Line: line}
	rest := numberedRe.ReplaceAllString(strings.TrimSpace(line), "")
	if i := strings.Index(rest, " # "); i >= 0 {
		e.Comment = strings.TrimSpace(rest[i+3:])
		rest = rest[:i]
	}
	m := statusRuleRe.FindStringSubmatch(strings.TrimSpace(rest))
	if m == nil || m[2] != "ALLOW" || (m[3] != "" && m[3] != "IN") {
		return e
	}
	to, from := m[1], m[4]
	v6To, v6From := strings.HasSuffix(to, " (v6)"), strings.HasSuffix(from, " (v6)")
	to, from = strings.TrimSuffix(to, " (v6)"), strings.TrimSuffix(from, " (v6)")
	if !portProtoRe.MatchString(to) {
		return e
	}
	ps, err := ParsePortSpec(to)
	if err != nil {
		return e
	}
	switch {
	case from == "Anywhere" && v6To == v6From:
		e.V6 = v6To
	case from != "Anywhere" && !v6To && !v6From:
		p, err := NormalizeCIDR(from)
		if err != nil || p.String() != from && p.Addr().String() != from {
			return e
		}
		e.Source = p
	default:
		return e
	}
	e.Port, e.Shaped = ps, true
	return e
}

// parseAddedLine parses a `ufw show added` line: the command that added
// the rule.
func parseAddedLine(line string) UFWEntry {
	e := UFWEntry{Line: line}
	args, ok := shellWords(line)
	if !ok || len(args) < 3 || args[0] != "ufw" {
		return e
	}
	// The comment first: a fsplane-marked deny is still for review.
	if n := len(args); args[n-2] == "comment" {
		e.Comment = args[n-1]
		args = args[:n-2]
	}
	if len(args) < 3 || args[1] != "allow" {
		return e
	}
	args = args[2:]
	if len(args) > 0 && args[0] == "in" {
		args = args[1:]
	}
	switch {
	case len(args) == 1 && portProtoRe.MatchString(args[0]):
		ps, err := ParsePortSpec(args[0])
		if err != nil {
			return e
		}
		e.Port, e.Shaped = ps, true
	case len(args) == 8 && args[0] == "from" && args[2] == "to" && args[3] == "any" && args[4] == "port" && args[6] == "proto":
		p, err := NormalizeCIDR(args[1])
		ps, perr := ParsePortSpec(args[5] + "/" + args[7])
		if err != nil || perr != nil || p.Bits() == 0 || (p.String() != args[1] && p.Addr().String() != args[1]) {
			return e
		}
		e.Source, e.Port, e.Shaped = p, ps, true
	}
	return e
}

// shellWords splits a line the way sh would for the quoting ufw prints:
// blanks separate words, single quotes keep blanks. Anything else shell
// syntax would act on is refused.
func shellWords(s string) ([]string, bool) {
	var (
		out    []string
		cur    strings.Builder
		inWord bool
		quoted bool
	)
	for _, r := range s {
		switch {
		case r == '\'':
			quoted = !quoted
			inWord = true
		case quoted:
			cur.WriteRune(r)
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("\"\\$`;&|<>(){}*?[]#~", r):
			return nil, false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, false
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, true
}

// UFWDiff is what it takes to bring UFW to the policy.
type UFWDiff struct {
	// Add are wanted rules UFW does not have.
	Add []Rule
	// Update are wanted rules UFW has with another comment (or none, as
	// when written by hand): adding them again rewrites the comment and
	// makes them fsplane's.
	Update []Rule
	// Delete are fsplane-marked rules the policy no longer has, one per
	// rule (the "(v6)" twin of a rule from anywhere folded in).
	Delete []UFWEntry
	// Review are fsplane-marked rules of a shape fsplane never generates:
	// edited by hand, for a person to look at.
	Review []UFWEntry
	// InSync counts wanted rules UFW has with their comment.
	InSync int
}

// Empty reports whether nothing needs doing.
func (d UFWDiff) Empty() bool {
	return len(d.Add)+len(d.Update)+len(d.Delete)+len(d.Review) == 0
}

// DiffUFW compares the policy with what UFW lists. UFW identifies a rule
// by everything but its comment, so a stale fsplane rule is one whose
// source and port no wanted rule has; a wanted rule with another comment
// is an update, never a delete plus an add (the delete would remove it).
func DiffUFW(pol *Policy, st *UFWStatus) UFWDiff {
	var d UFWDiff
	have := map[ruleKey][]UFWEntry{}
	for _, e := range st.Entries {
		if e.Shaped {
			have[e.key()] = append(have[e.key()], e)
		}
	}
	want := map[ruleKey]bool{}
	for _, r := range pol.Rules {
		want[r.key()] = true
		es := have[r.key()]
		if len(es) == 0 {
			d.Add = append(d.Add, r)
			continue
		}
		same := true
		for _, e := range es {
			same = same && e.Comment == r.Comment()
		}
		if same {
			d.InSync++
		} else {
			d.Update = append(d.Update, r)
		}
	}
	seen := map[ruleKey]bool{}
	for _, e := range st.Entries {
		switch {
		case !e.Fsplane():
		case !e.Shaped:
			d.Review = append(d.Review, e)
		case !want[e.key()] && !seen[e.key()]:
			seen[e.key()] = true
			d.Delete = append(d.Delete, e)
		}
	}
	return d
}

// Script renders the diff as a shell script of ufw commands with comments.
func (d UFWDiff) Script() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# fsplane firewall diff: %d to add, %d to update, %d to delete, %d to review; %d in sync.\n",
		len(d.Add), len(d.Update), len(d.Delete), len(d.Review), d.InSync)
	if len(d.Add) > 0 {
		b.WriteString("\n# Add:\n")
		for _, r := range d.Add {
			b.WriteString(r.UFW() + "\n")
		}
	}
	if len(d.Update) > 0 {
		b.WriteString("\n# Update (UFW rewrites the comment of the rule it has):\n")
		for _, r := range d.Update {
			b.WriteString(r.UFW() + "\n")
		}
	}
	if len(d.Delete) > 0 {
		b.WriteString("\n# Delete (fsplane rules no longer generated):\n")
		for _, e := range d.Delete {
			b.WriteString(ufwDelete(Rule{Source: e.Source, Port: e.Port}) + "\n")
		}
	}
	if len(d.Review) > 0 {
		b.WriteString("\n# Review by hand (fsplane comment, but not a rule fsplane generates):\n")
		for _, e := range d.Review {
			b.WriteString("#   " + printable(e.Line) + "\n")
		}
	}
	return b.Bytes()
}

// printable replaces control characters, so a listed line cannot end the
// shell comment it is printed in.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

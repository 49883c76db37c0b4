package xmlcurl

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/names"
)

// notFound is FreeSWITCH's "not found" document: switch_xml_locate skips a
// binding whose answer holds <result status="not found"/> and falls back to
// the static XML.
var notFound = []byte(`<document type="freeswitch/xml">
  <section name="result">
    <result status="not found"/>
  </section>
</document>
`)

// newDocument returns a document with its <document><section name=S> and
// the section element to fill.
func newDocument(section string) (*etree.Document, *etree.Element) {
	doc := etree.NewDocument()
	// Every value goes into an attribute; canonical attribute escaping
	// writes tab, CR and LF as character references, so ezxml's attribute
	// normalisation (switch_xml_decode with t=' ', which turns raw
	// whitespace into spaces) cannot change a stored value.
	doc.WriteSettings.CanonicalAttrVal = true
	root := doc.CreateElement("document")
	root.CreateAttr("type", "freeswitch/xml")
	sec := root.CreateElement("section")
	sec.CreateAttr("name", section)
	return doc, sec
}

// serialize writes doc and neutralises what FreeSWITCH's pre-processor
// would act on.
func serialize(doc *etree.Document) ([]byte, error) {
	doc.Indent(2)
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("xmlcurl: write XML: %w", err)
	}
	return neutralize(buf.Bytes()), nil
}

// neutralize makes the serialised document pass FreeSWITCH's pre-processor
// unchanged.
//
// mod_xml_curl writes the answer to a file and reads it with
// switch_xml_parse_file (src/mod/xml_int/mod_xml_curl/mod_xml_curl.c,
// xml_url_fetch: "if (!(xml = switch_xml_parse_file(filename)))"), which
// runs preprocess() (src/switch_xml.c) over it line by line before parsing:
//   - expand_vars replaces every "$${name}" with the global variable name
//     (or nothing), so a stored "$${x}" would not survive;
//   - a line containing "X-pre-process" (case-insensitive) is executed
//     when preceded by '<' and dropped otherwise;
//   - lines containing "<include>", "</include>" or "<?" are dropped, and
//     "<!--#" starts a command: all need a raw '<', which etree escapes.
//
// Every value fsplane writes sits in an attribute, where a character
// reference means the same to ezxml (switch_xml_decode decodes "&#36;")
// and to any XML parser. So "$$" becomes "&#36;$" (no "$$" is left, hence
// no "$${"), and the 'x' of "x-pre-process" becomes "&#120;" or "&#88;".
// fsplane's own markup contains neither sequence.
func neutralize(b []byte) []byte {
	if !bytes.Contains(b, []byte("$$")) && !containsFold(b, "x-pre-process") {
		return b
	}
	out := make([]byte, 0, len(b)+64)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '$' && i+1 < len(b) && b[i+1] == '$':
			out = append(out, "&#36;"...)
		case (c == 'x' || c == 'X') && hasPrefixFold(b[i:], "x-pre-process"):
			out = fmt.Appendf(out, "&#%d;", c)
		default:
			out = append(out, c)
		}
	}
	return out
}

func containsFold(b []byte, lower string) bool {
	for i := 0; i+len(lower) <= len(b); i++ {
		if hasPrefixFold(b[i:], lower) {
			return true
		}
	}
	return false
}

func hasPrefixFold(b []byte, lower string) bool {
	if len(b) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// checkValue reports whether s can be carried through XML so that
// FreeSWITCH reads it back exactly: the characters package names allows
// in every stored value, which the API checked already. A row written
// past the API is refused here rather than rendered altered (etree would
// replace what XML cannot carry with U+FFFD).
func checkValue(field, s string) error {
	if err := names.Chars(s); err != nil {
		return fmt.Errorf("%w: %s %v", ErrUnrenderable, field, err)
	}
	return nil
}

// params collects <param name value/> pairs and the first value that
// cannot be rendered.
type params struct {
	list []Param
	err  error
}

func (p *params) add(name, value string) {
	if p.err == nil {
		p.err = checkValue(name, value)
	}
	p.list = append(p.list, Param{Name: name, Value: value})
}

func (p *params) addIf(name, value string) {
	if value != "" {
		p.add(name, value)
	}
}

func (p *params) writeTo(parent *etree.Element, tag string) {
	for _, kv := range p.list {
		e := parent.CreateElement(tag)
		e.CreateAttr("name", kv.Name)
		e.CreateAttr("value", kv.Value)
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// bracketHost puts a bare IPv6 address in brackets, with or without a
// sip:/sips: scheme: sofia cuts an unbracketed address at its last colon.
// Anything else (a name, IPv4, an already bracketed address, host:port) is
// returned as is.
func bracketHost(s string) string {
	scheme := ""
	rest := s
	for _, p := range []string{"sip:", "sips:"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			scheme, rest = s[:len(p)], s[len(p):]
			break
		}
	}
	if strings.HasPrefix(rest, "[") {
		return s
	}
	if a, err := netip.ParseAddr(rest); err == nil && a.Is6() && !a.Is4In6() && a.Zone() == "" {
		return scheme + "[" + rest + "]"
	}
	return s
}

// bareHost strips the brackets from "[2001:db8::1]": sofia's sip-ip,
// ext-sip-ip and ext-rtp-ip take the address bare.
func bareHost(s string) string {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return s[1 : len(s)-1]
		}
	}
	return s
}

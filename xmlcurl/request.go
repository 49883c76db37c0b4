package xmlcurl

import (
	"strings"
)

// Request is one mod_xml_curl lookup, as far as fsplane reads it.
//
// The first five fields are the ones mod_xml_curl.c writes with
// switch_snprintf("hostname=%s&section=%s&tag_name=%s&key_name=%s&key_value=%s")
// and never URL-encodes; the event headers after them are URL-encoded by
// switch_event_build_param_string. The five raw fields are kept verbatim.
type Request struct {
	Hostname string // FreeSWITCH's switchname (raw)
	Section  string // configuration, directory, … (raw)
	TagName  string // raw
	KeyName  string // raw
	KeyValue string // raw: a config file name or a domain

	// From the URL-encoded event headers (the last occurrence wins: the
	// headers switch_xml_locate_user adds come last).
	Action  string // sip_auth, user_call, …
	Purpose string // gateways, network-list, …
	Profile string // the sofia profile asking
	User    string
	Domain  string
	Realm   string // sip_auth_realm: the digest realm of a REGISTER or INVITE

	// tail is the raw, still URL-encoded event-header part, for Params.
	tail string
}

// Param names the parser extracts from the encoded tail.
const (
	paramAction  = "action"
	paramPurpose = "purpose"
	paramProfile = "profile"
	paramUser    = "user"
	paramDomain  = "domain"
	paramRealm   = "sip_auth_realm"
)

// The delimiters of the five raw fields. Each starts with '&' and contains
// no other '&', so a value can never complete a delimiter early.
const (
	preHostname = "hostname="
	delSection  = "&section="
	delTagName  = "&tag_name="
	delKeyName  = "&key_name="
	delKeyValue = "&key_value="
	// delEvent starts the encoded tail whenever FreeSWITCH sends event
	// headers: Event-Name is every event's first header. Encoded values
	// hold no raw '&', so its last occurrence is the real one even when the
	// raw key_value (a domain from a SIP realm, say) contains the string.
	delEvent = "&Event-Name="
)

// ParseRequest reads a form body leniently: the five raw fields by position
// when the body has FreeSWITCH's shape, every other field split on '&' and
// decoded with unescape. It never fails; what it cannot read stays empty.
func ParseRequest(body string) Request {
	var r Request
	if rest, ok := strings.CutPrefix(body, preHostname); ok {
		if h, rest, ok := cutAt(rest, delSection); ok {
			if s, rest, ok := cutAt(rest, delTagName); ok {
				if tn, rest, ok := cutAt(rest, delKeyName); ok {
					if kn, rest, ok := cutAt(rest, delKeyValue); ok {
						r.Hostname, r.Section, r.TagName, r.KeyName = h, s, tn, kn
						if i := lastIndex(rest, delEvent); i >= 0 {
							r.KeyValue, r.tail = rest[:i], rest[i+1:]
						} else {
							r.KeyValue = rest
						}
						r.scanTail()
						return r
					}
				}
			}
		}
	}
	// Not FreeSWITCH's shape (a hand-made request): a plain form.
	r.tail = body
	r.scanTail()
	eachPair(body, func(name, raw string) {
		switch name {
		case "hostname":
			r.Hostname = unescape(raw)
		case "section":
			r.Section = unescape(raw)
		case "tag_name":
			r.TagName = unescape(raw)
		case "key_name":
			r.KeyName = unescape(raw)
		case "key_value":
			r.KeyValue = unescape(raw)
		}
	})
	return r
}

// lastIndex is strings.LastIndex by forward search: the pattern usually
// occurs once, near the start, and forward Index is vectorised where
// LastIndex is not. sep must start with '&'; the search is for the rest,
// whose first byte is rarer than '&' in a form body, and checks the '&'.
func lastIndex(s, sep string) int {
	last := -1
	body := sep[1:]
	for off := 1; off <= len(s); {
		i := strings.Index(s[off:], body)
		if i < 0 {
			return last
		}
		if p := off + i - 1; s[p] == '&' {
			last = p
		}
		off += i + 1
	}
	return last
}

func cutAt(s, sep string) (before, after string, ok bool) {
	i := strings.Index(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// scanTail fills the typed fields from the encoded tail: for each, the
// value of the last "name=" piece, decoded. One pass that looks at each
// piece's first byte; TestScanTailMatchesPairs holds it to eachPair's
// semantics.
func (r *Request) scanTail() {
	var action, purpose, profile, user, domain, realm string
	s := r.tail
	for p := 0; p < len(s); {
		end := strings.IndexByte(s[p:], '&')
		if end < 0 {
			end = len(s)
		} else {
			end += p
		}
		piece := s[p:end]
		p = end + 1
		if piece == "" {
			continue
		}
		switch piece[0] {
		case 'a':
			if v, ok := strings.CutPrefix(piece, paramAction+"="); ok {
				action = v
			}
		case 'p':
			if v, ok := strings.CutPrefix(piece, paramPurpose+"="); ok {
				purpose = v
			} else if v, ok := strings.CutPrefix(piece, paramProfile+"="); ok {
				profile = v
			}
		case 'u':
			if v, ok := strings.CutPrefix(piece, paramUser+"="); ok {
				user = v
			}
		case 'd':
			if v, ok := strings.CutPrefix(piece, paramDomain+"="); ok {
				domain = v
			}
		case 's':
			if v, ok := strings.CutPrefix(piece, paramRealm+"="); ok {
				realm = v
			}
		}
	}
	r.Action, r.Purpose, r.Profile = unescape(action), unescape(purpose), unescape(profile)
	r.User, r.Domain, r.Realm = unescape(user), unescape(domain), unescape(realm)
}

// Param is one decoded event header.
type Param struct{ Name, Value string }

// Params returns every event header after the five raw fields, decoded, in
// order (for logging and tests; the hot path uses the typed fields).
func (r Request) Params() []Param {
	var out []Param
	eachPair(r.tail, func(name, raw string) {
		out = append(out, Param{Name: name, Value: unescape(raw)})
	})
	return out
}

// eachPair calls fn for every '&'-separated "name=value" piece of s, split
// at its first '='; the value is still encoded. Pieces without '=' are not
// fields (FreeSWITCH never writes one) and are skipped.
func eachPair(s string, fn func(name, raw string)) {
	for s != "" {
		var piece string
		if i := strings.IndexByte(s, '&'); i >= 0 {
			piece, s = s[:i], s[i+1:]
		} else {
			piece, s = s, ""
		}
		if name, raw, ok := strings.Cut(piece, "="); ok {
			fn(name, raw)
		}
	}
}

// unescape decodes %XX and '+' like FreeSWITCH's switch_url_decode, but
// leniently: a '%' not followed by two hex digits stays as it is.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// escape encodes like switch_url_encode: everything but unreserved
// characters becomes %XX. Used by tests and the benchmark to build bodies
// exactly as FreeSWITCH does.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// formatRequest writes r back the way FreeSWITCH would: the five raw
// fields, then params URL-encoded.
func formatRequest(r Request, params []Param) string {
	var b strings.Builder
	b.WriteString(preHostname)
	b.WriteString(r.Hostname)
	b.WriteString(delSection)
	b.WriteString(r.Section)
	b.WriteString(delTagName)
	b.WriteString(r.TagName)
	b.WriteString(delKeyName)
	b.WriteString(r.KeyName)
	b.WriteString(delKeyValue)
	b.WriteString(r.KeyValue)
	for _, p := range params {
		b.WriteByte('&')
		b.WriteString(p.Name)
		b.WriteByte('=')
		b.WriteString(escape(p.Value))
	}
	return b.String()
}

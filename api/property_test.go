package api_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/prometheus/client_golang/prometheus"
	"pgregory.net/rapid"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/names"
	"github.com/fsplane/fsplane/providers"
	"github.com/fsplane/fsplane/xmlcurl"
	"github.com/fsplane/fsplane/xmlcurl/xmlcurltest"
)

// TestPropertyAcceptedReachesFreeSWITCH is issue 9's property: extensions,
// trunks (with and without a preset) and sofia profiles, generated from
// valid shapes and hostile strings, go through the real API.
//   - Accepted (201, 200): the row reads back through the API exactly as
//     sent (hosts in ParseHost's normal form), without render_error; its
//     xml-curl answer (sip_auth user, purpose=gateways, sofia.conf) is
//     present, well-formed, unchanged by FreeSWITCH's pre-processor (the
//     port below) and carries every value exactly (a user's a1-hash is
//     MD5(user:realm:password) of the password sent).
//   - Refused: a 422 that names at least one field the request sent (or
//     its preset filled in), unless it only says that missing fields are
//     required, and names nothing but fields of the resource; a 400 only
//     for, and always for, a body that is not UTF-8; a lone surrogate
//     escape is a 422 naming its field; a 409 only for a key taken before.
//     Anything else (a 500) fails.
//   - After the run, nothing is left out of any answer (Problems is
//     empty), and an ESL Manager replaying the whole change log against an
//     esltest node refuses no value (refused_values_total stays 0) and
//     sends the xml_flush_cache, killgw and start commands the changes
//     call for.
func TestPropertyAcceptedReachesFreeSWITCH(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		w := newPropWorld(t, backend)
		rapid.Check(t, w.check)
		w.checkNothingLeftOut(t)
		w.checkESL(t)
	})
}

// propWorld is one store with the API and two xml-curl handlers (a1-hash
// and plaintext passwords) on it, and what the property accepted so far.
type propWorld struct {
	ev    *env
	store *models.Store
	token string
	xmlA1 *xmlcurl.Handler
	xmlPW *xmlcurl.Handler

	mu     sync.Mutex
	events []models.ChangeEvent

	exts     map[string]*extModel   // by API id
	trunks   map[string]*trunkModel // by API id
	profiles map[string]bool        // names, with the seeded ones
	extKeys  map[string]bool        // user_id@domain
	trunkKey map[string]bool        // names

	undo      []func() // the current run's clean-up
	leftovers []string // clean-ups that failed

	// outcomes counts answers by method, path and status, and refusals by
	// field: the generators must reach both sides.
	outcomes map[string]int
}

type extModel struct {
	id, userID, domain, password string
	stored                       map[string]any
}

type trunkModel struct {
	id, name, password string
	stored             map[string]any
}

const (
	propBasicUser = "freeswitch"
	propBasicPass = "xml-curl-secret"
)

func newPropWorld(t *testing.T, backend string) *propWorld {
	t.Helper()
	w := &propWorld{exts: map[string]*extModel{}, trunks: map[string]*trunkModel{},
		profiles: map[string]bool{}, extKeys: map[string]bool{}, trunkKey: map[string]bool{},
		outcomes: map[string]int{}}
	ev := &env{t: t, tokens: map[string]string{}, logs: &bytes.Buffer{}}
	ev.resolver = &fakeResolver{answers: map[string][]string{
		"sip.plusnet.de": {"92.197.176.16", "92.197.176.17", "92.197.177.16"},
		"sip.1und1.de":   {"212.227.124.129", "2001:8d8:104:100:212:227:124:129"},
	}}
	ev.store = modelstest.Open(t, backend, modelstest.Options{OnCommit: func(c models.ChangeEvent) {
		// As serve wires it: xml-curl's caches learn of every commit.
		if w.xmlA1 != nil {
			w.xmlA1.OnChange(c)
			w.xmlPW.OnChange(c)
		}
		w.mu.Lock()
		w.events = append(w.events, c)
		w.mu.Unlock()
	}})
	ctx := context.Background()
	if err := providers.Seed(ctx, ev.store, providers.SeedOptions{ExternalIPv4: hostV4, ExternalIPv6: hostV6}); err != nil {
		t.Fatal(err)
	}
	w.ev, w.store = ev, ev.store
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: ev.logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w.xmlA1 = xmlcurl.New(xmlcurl.Options{Store: ev.store, Logger: logger, BasicUser: propBasicUser, BasicPassword: propBasicPass})
	w.xmlPW = xmlcurl.New(xmlcurl.Options{Store: ev.store, Logger: logger, BasicUser: propBasicUser, BasicPassword: propBasicPass,
		PlaintextPasswords: true})
	ev.e = api.New(api.Options{Store: ev.store, Logger: logger, Resolver: ev.resolver, XMLCurl: w.xmlA1, Render: w.xmlA1})
	ev.loadDoc()
	w.token = ev.mintToken("admin", []string{auth.ScopeAdmin}, nil)
	for _, p := range []string{providers.ProfileExternalIPv4, providers.ProfileInternal} {
		w.profiles[p] = true
	}
	return w
}

// ---- JSON bodies that can carry what encoding/json cannot write ----

// piece is part of a JSON string: characters (s), or JSON text written
// as is (raw): bytes that are not UTF-8, a lone surrogate escape, or an
// escape that decodes to s.
type piece struct {
	s, raw    string
	bad, lone bool
}

type jstr []piece

func plain(s string) jstr { return jstr{{s: s}} }

func (v jstr) json() string {
	var b strings.Builder
	b.WriteByte('"')
	for _, p := range v {
		if p.raw != "" {
			b.WriteString(p.raw)
			continue
		}
		enc, _ := json.Marshal(p.s)
		b.Write(enc[1 : len(enc)-1])
	}
	b.WriteByte('"')
	return b.String()
}

// String is what a decoder that refuses nothing would read.
func (v jstr) String() string {
	var b strings.Builder
	for _, p := range v {
		b.WriteString(p.s)
	}
	return b.String()
}

func (v jstr) flags() (bad, lone bool) {
	for _, p := range v {
		bad, lone = bad || p.bad, lone || p.lone
	}
	return bad, lone
}

type jval interface {
	json() string
	flags() (bad, lone bool)
}

// jraw is literal JSON: true, 5060, null, "x".
type jraw string

func (r jraw) json() string            { return string(r) }
func (r jraw) flags() (bad, lone bool) { return false, false }

type jarr []jstr

func (a jarr) json() string {
	parts := make([]string, len(a))
	for i, s := range a {
		parts[i] = s.json()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func (a jarr) flags() (bad, lone bool) {
	for _, s := range a {
		b, l := s.flags()
		bad, lone = bad || b, lone || l
	}
	return bad, lone
}

func (a jarr) strings() []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = s.String()
	}
	return out
}

type jkv struct{ k, v jstr }

type jobj []jkv

func (o jobj) json() string {
	parts := make([]string, len(o))
	for i, kv := range o {
		parts[i] = kv.k.json() + ":" + kv.v.json()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (o jobj) flags() (bad, lone bool) {
	for _, kv := range o {
		b1, l1 := kv.k.flags()
		b2, l2 := kv.v.flags()
		bad, lone = bad || b1 || b2, lone || l1 || l2
	}
	return bad, lone
}

type jfield struct {
	name string
	v    jval
}

type body []jfield

func (b body) json() []byte {
	parts := make([]string, len(b))
	for i, f := range b {
		parts[i] = fmt.Sprintf("%q:%s", f.name, f.v.json())
	}
	return []byte("{" + strings.Join(parts, ",") + "}")
}

func (b body) get(name string) (jval, bool) {
	for _, f := range b {
		if f.name == name {
			return f.v, true
		}
	}
	return nil, false
}

func (b body) has(name string) bool { _, ok := b.get(name); return ok }

// str is the string value of a field sent as a JSON string.
func (b body) str(name string) (string, bool) {
	v, ok := b.get(name)
	if s, isStr := v.(jstr); ok && isStr {
		return s.String(), true
	}
	// A spoiled field may still be a JSON string ("5060" where a port was
	// wanted): for a name it is a name like any other.
	var s string
	if r, isRaw := v.(jraw); ok && isRaw && json.Unmarshal([]byte(r), &s) == nil {
		return s, true
	}
	return "", false
}

func (b *body) set(name string, v jval) {
	for i := range *b {
		if (*b)[i].name == name {
			(*b)[i].v = v
			return
		}
	}
	*b = append(*b, jfield{name, v})
}

// badFields are the fields holding bytes that are not UTF-8, and
// loneFields those holding a lone surrogate escape.
func (b body) badFields() (bad, lone []string) {
	for _, f := range b {
		isBad, isLone := f.v.flags()
		if isBad {
			bad = append(bad, f.name)
		}
		if isLone {
			lone = append(lone, f.name)
		}
	}
	return bad, lone
}

// ---- generators ----

// hostileFrags are what an operator or an attacker might type: XML and
// pre-processor syntax, whitespace, control characters, noncharacters,
// U+FFFD written as such, non-ASCII, the separators of SIP and URLs.
var hostileFrags = []string{
	"$${x}", "$$${hostname}", "${domain}", "$$", "$", "X-PRE-PROCESS", "x-pre-process",
	`<X-PRE-PROCESS cmd="set" data="a=b"/>`, "<!--#", "-->", "<!--#set \"a=b\"-->", "<include>", "</include>",
	"<?php ?>", "<?", "&", "&amp;", "&#36;", `"`, "'", "<", ">", `\`, "/", "`", " ", "  ", "\t", "\n", "\r\n",
	"\x00", "\x01", "\x1b", "\x7f", "\u0085", "\u009f", "\ufffe", "\uffff", "\ufdd0", "\ufdef", "\U0001fffe",
	"\U0010ffff", "\ufffd", "\u2028", "\u00a0", "\u200b", "\u200d", "é", "€", "😀", "🧑\u200d💻", "👍🏽",
	"+", "@", ":", ";", ",", "[", "]", "%", "%24%24{x}", "=", "?", "#", "{", "}", "~",
}

// validFrags are the hostile fragments names.Chars allows in a value.
var validFrags = func() []string {
	var out []string
	for _, f := range hostileFrags {
		if names.Chars(f) == nil {
			out = append(out, f)
		}
	}
	return out
}()

// Bytes that are not UTF-8: an invalid start byte, an overlong NUL, an
// encoded surrogate, a truncated sequence, a 5-byte form.
var badRaw = []string{"\xff", "\xc0\x80", "\xed\xa0\x80", "\xe2\x82", "\xf8\x88\x80\x80\x80"}

// Lone surrogate escapes, which encoding/json would store as U+FFFD.
// Each ends in a plain character, so that two of them never make a
// valid pair.
var loneRaw = []string{`\ud800!`, `\udfff!`, `\uDBFF\u0041`, `\udc00\ud800!`, `\ud800\ud800!`}

// Escapes that decode to real characters (a valid surrogate pair among
// them); \u0000 and \uffff decode to characters no value may hold.
var escRaw = []piece{
	{raw: `\ud83d\ude00`, s: "😀"}, {raw: `\u00e9`, s: "é"}, {raw: `\u0024\u0024{x}`, s: "$${x}"},
	{raw: `\u0000`, s: "\x00"}, {raw: `\/`, s: "/"}, {raw: `\uFFFF`, s: "\uffff"}, {raw: `\u003c!--#`, s: "<!--#"},
}

// hostileGen strings together 1 to 5 pieces of anything.
var hostileGen = rapid.Custom(func(t *rapid.T) jstr {
	n := rapid.IntRange(1, 5).Draw(t, "pieces")
	var v jstr
	for i := 0; i < n; i++ {
		switch rapid.IntRange(0, 11).Draw(t, "kind") {
		case 0, 1, 2, 3:
			v = append(v, piece{s: rapid.SampledFrom(hostileFrags).Draw(t, "frag")})
		case 4, 5:
			v = append(v, piece{s: rapid.StringN(1, 12, -1).Draw(t, "any")})
		case 6:
			v = append(v, piece{s: rapid.StringMatching(`[A-Za-z0-9._-]{1,12}`).Draw(t, "word")})
		case 7:
			c := rapid.SampledFrom([]string{"a", "é", "😀", "1"}).Draw(t, "long")
			v = append(v, piece{s: strings.Repeat(c, rapid.SampledFrom([]int{62, 63, 64, 65, 127, 128, 129, 254, 255, 256, 511, 512, 513}).Draw(t, "len"))})
		case 8:
			v = append(v, piece{raw: rapid.SampledFrom(badRaw).Draw(t, "bad"), bad: true})
		case 9:
			v = append(v, piece{raw: rapid.SampledFrom(loneRaw).Draw(t, "lone"), lone: true})
		default:
			v = append(v, rapid.SampledFrom(escRaw).Draw(t, "esc"))
		}
	}
	return v
})

// textGen is text of the valid fragments and words: what a value may
// hold, hostile to XML and to the pre-processor.
func textGen(minRunes, maxRunes int, frags []string) *rapid.Generator[jstr] {
	return rapid.Custom(func(t *rapid.T) jstr {
		var b strings.Builder
		n := rapid.IntRange(0, 4).Draw(t, "frags")
		for i := 0; i < n; i++ {
			if rapid.Bool().Draw(t, "frag?") {
				b.WriteString(rapid.SampledFrom(frags).Draw(t, "frag"))
			} else {
				b.WriteString(rapid.StringMatching(`[A-Za-z0-9 ._-]{1,10}`).Draw(t, "word"))
			}
		}
		for len([]rune(b.String())) < minRunes {
			b.WriteString(rapid.SampledFrom([]string{"x", "é", "😀", "Z", "9"}).Draw(t, "pad"))
		}
		s := b.String()
		if r := []rune(s); len(r) > maxRunes {
			s = string(r[:maxRunes])
		}
		v := plain(s)
		if rapid.IntRange(0, 5).Draw(t, "escaped?") == 0 {
			v = append(v, rapid.SampledFrom(escRaw[:3]).Draw(t, "esc"))
		}
		return v
	})
}

func strGen(re string) *rapid.Generator[jstr] {
	return rapid.Map(rapid.StringMatching(re), plain)
}

func sample(vals ...string) *rapid.Generator[jstr] {
	return rapid.Map(rapid.SampledFrom(vals), plain)
}

// repeatGen is c repeated around a limit.
func repeatGen(prefix, c string, lens ...int) *rapid.Generator[jstr] {
	return rapid.Custom(func(t *rapid.T) jstr {
		return plain(prefix + strings.Repeat(c, rapid.SampledFrom(lens).Draw(t, "len")))
	})
}

// mostly draws from valid 15 times in 16 and from edge otherwise:
// valid shapes (hostile to XML and the pre-processor, near the length
// limits) keep most requests acceptable, so that both sides of the
// property are reached; edge holds near misses.
func mostly(valid, edge *rapid.Generator[jstr]) *rapid.Generator[jstr] {
	return rapid.Custom(func(t *rapid.T) jstr {
		if oneIn16(t) {
			return edge.Draw(t, "edge")
		}
		return valid.Draw(t, "valid")
	})
}

// oneIn16 is true one time in 16: four fair coins (rapid's integers lean
// towards the small end).
func oneIn16(t *rapid.T) bool {
	for i := 0; i < 4; i++ {
		if !rapid.Bool().Draw(t, "edge?") {
			return false
		}
	}
	return true
}

// noDollar are the valid fragments a display name may hold.
var noDollar = func() []string {
	var out []string
	for _, f := range validFrags {
		if !strings.ContainsAny(f, "$\\") {
			out = append(out, f)
		}
	}
	return out
}()

var (
	userIDGen = mostly(rapid.OneOf(
		strGen(`\+?[A-Za-z0-9][A-Za-z0-9._-]{0,20}`),
		strGen(`\+[1-9][0-9]{1,14}`),
		sample("1001", "alice.smith", "+493012345", "Alice", "+0123"),
		repeatGen("+1", "0", 62, 63), // 65 characters with the '+'
		repeatGen("a", "b", 62, 63),
	), rapid.OneOf(sample("+", "1001@x", "a b", "_1", ".1", "1001\u00e9"), repeatGen("+1", "0", 64), repeatGen("a", "b", 64)))
	dnsGen = mostly(rapid.OneOf(
		strGen(`[a-z]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,10}[a-z0-9])?){1,2}`),
		sample("pbx.example.com", "PBX.Example.COM", "example.com.", "sip.1und1.de", "localhost", "xn--mller-kva.de"),
		repeatGen("", "a.", 100, 126), // 252 characters
	), rapid.OneOf(sample("bad_host.de", "-bad.de", "a..b", "müller.de", "1.2.3", "example.123"), repeatGen("", "a.", 127)))
	ipGen = mostly(rapid.OneOf(
		strGen(`(1[0-9]{2}|[1-9][0-9]?)\.[0-9]{1,2}\.[0-9]{1,2}\.[1-9]`),
		sample("127.0.0.1", "2001:db8::1", "[2001:db8::1]", "2001:DB8::A", "[::1]", "::1", "2001:0db8:0000:0000:0000:0000:0000:0001"),
	), sample("fe80::1%eth0", "::ffff:192.0.2.1", "0.0.0.0", "::", "224.0.0.1", "[2001:db8::1", "[192.0.2.1]", "01.2.3.4"))
	domainGen = mostly(rapid.OneOf(dnsGen, ipGen), sample("pbx.example.com:5060", "[2001:db8::1]:5060", ""))
	hostGen   = mostly(rapid.OneOf(dnsGen, ipGen, sample("sip.example.com:5060", "[2001:db8::1]:5060", "92.197.176.16:5080", "sip.example.com:05060")),
		sample("sip.example.com:0", "sip.example.com:99999", "2001:db8::1:5060", "sip.example.com:", ""))
	passwordGen = mostly(rapid.OneOf(textGen(8, 40, validFrags), strGen(`[ -~]{8,30}`),
		repeatGen("", "p", 8, 127, 128), repeatGen("", "é", 127, 128), repeatGen("", "😀", 128)),
		rapid.OneOf(repeatGen("", "p", 7, 129), repeatGen("", "😀", 129), sample("")))
	displayGen = mostly(rapid.OneOf(textGen(1, 40, noDollar), sample("Reception Desk", "Müller & Söhne", "O'Brien <HQ>", "Zoë 😀"),
		repeatGen("", "n", 128)), rapid.OneOf(repeatGen("", "n", 129), sample("a$b", `a\b`, "$${x}")))
	e164Gen = mostly(strGen(`\+[1-9][0-9]{1,14}`),
		sample("+49 30 1234", "0301234", "+0123", "+1", "+4930(1234)", "+1234567890123456", "+49-30"))
	contextGen = mostly(rapid.OneOf(strGen(`[A-Za-z0-9_.-]{1,20}`), sample("default", "public"), repeatGen("", "c", 64)),
		rapid.OneOf(sample("de$${fault}", "a b", "", "dé"), repeatGen("", "c", 65)))
	descGen = mostly(rapid.OneOf(textGen(0, 60, validFrags), repeatGen("", "d", 511, 512), repeatGen("", "€", 512)),
		rapid.OneOf(repeatGen("", "d", 513), repeatGen("", "€", 513)))
	slugGen = mostly(rapid.OneOf(strGen(`[a-z0-9][a-z0-9._-]{0,15}`), repeatGen("g", "w", 61, 62)),
		rapid.OneOf(sample("Plusnet", "a b", "-x", "évil", ""), repeatGen("g", "w", 63)))
	sipUserGen = mostly(rapid.OneOf(strGen(`[A-Za-z0-9._~+=@-]{1,20}`), sample("4934556", "user@example.com", "+4930"),
		repeatGen("u", "1", 62, 63, 64, 127)), rapid.OneOf(sample("a b", "ü", "a:b", ""), repeatGen("u", "1", 128)))
	hostnameGen = mostly(strGen(`[a-z]([a-z0-9-]{0,9}[a-z0-9])?`), sample("FS1", "fs_1", "a.b", ""))
	boolGen     = rapid.Map(rapid.Bool(), func(b bool) jval { return jraw(fmt.Sprint(b)) })
)

// intMostly draws from valid 15 times in 16, else from edge.
func intMostly(valid, edge []int) *rapid.Generator[jval] {
	return rapid.Custom(func(t *rapid.T) jval {
		if oneIn16(t) {
			return intGen(edge...).Draw(t, "edge")
		}
		return intGen(valid...).Draw(t, "valid")
	})
}

func intGen(vals ...int) *rapid.Generator[jval] {
	return rapid.Map(rapid.SampledFrom(vals), func(n int) jval { return jraw(fmt.Sprint(n)) })
}

func strVal(g *rapid.Generator[jstr]) *rapid.Generator[jval] {
	return rapid.Map(g, func(s jstr) jval { return s })
}

func listVal(g *rapid.Generator[jstr], max int) *rapid.Generator[jval] {
	return rapid.Map(rapid.SliceOfN(g, 0, max), func(l []jstr) jval { return jarr(l) })
}

// wrongGen is a value of the wrong kind, or null.
var wrongGen = rapid.Map(rapid.SampledFrom([]string{"null", "5", "true", `"5060"`, "[]", "{}", "-1", "1e3", "70000"}),
	func(s string) jval { return jraw(s) })

// spoil replaces 0 to 2 of fields (or adds one unknown field) with hostile
// or wrongly typed values.
func spoil(t *rapid.T, b *body, fields []string) {
	n := []int{0, 0, 0, 1, 1, 2}[rapid.IntRange(0, 5).Draw(t, "spoiled")]
	for i := 0; i < n; i++ {
		switch rapid.IntRange(0, 9).Draw(t, "how") {
		case 0:
			b.set(rapid.SampledFrom([]string{"passwd", "Password", "id", "render_error"}).Draw(t, "unknown"), plain("x"))
		case 1:
			b.set(rapid.SampledFrom(fields).Draw(t, "field"), wrongGen.Draw(t, "wrong"))
		default:
			b.set(rapid.SampledFrom(fields).Draw(t, "field"), hostileGen.Draw(t, "hostile"))
		}
	}
}

// maybe adds name from g one time in two.
func maybe(t *rapid.T, b *body, name string, g *rapid.Generator[jval]) {
	if rapid.Bool().Draw(t, name+"?") {
		b.set(name, g.Draw(t, name))
	}
}

var extFields = []string{"domain", "user_id", "password", "display_name", "caller_id", "context", "enabled", "description"}

func extBody(t *rapid.T) body {
	var b body
	b.set("domain", strVal(domainGen).Draw(t, "domain"))
	b.set("user_id", strVal(userIDGen).Draw(t, "user_id"))
	b.set("password", strVal(passwordGen).Draw(t, "password"))
	maybe(t, &b, "display_name", strVal(displayGen))
	maybe(t, &b, "caller_id", strVal(e164Gen))
	maybe(t, &b, "context", strVal(contextGen))
	maybe(t, &b, "description", strVal(descGen))
	if rapid.IntRange(0, 4).Draw(t, "disabled?") == 0 {
		b.set("enabled", jraw("false"))
	}
	spoil(t, &b, extFields)
	return b
}

var trunkFields = []string{"name", "provider", "description", "profile", "proxy", "outbound_proxy", "register_proxy",
	"register", "realm", "username", "auth_username", "password", "from_user", "from_domain", "transport", "caller_id",
	"caller_id_in_from", "expire_seconds", "retry_seconds", "ping_seconds", "extension", "context", "enabled", "numbers", "hostnames"}

// presetFilled are the trunk fields a preset sets: a 422 may blame one
// that the request did not send.
var presetFilled = []string{"provider", "profile", "proxy", "outbound_proxy", "register_proxy", "register", "realm",
	"transport", "caller_id_in_from", "expire_seconds", "retry_seconds"}

func (w *propWorld) trunkBody(t *rapid.T) body {
	var b body
	b.set("name", strVal(slugGen).Draw(t, "name"))
	if rapid.IntRange(0, 3).Draw(t, "preset?") == 0 {
		preset := mostly(sample(providers.Plusnet, providers.OneAndOne), sample("sipgate", "Plusnet")).Draw(t, "preset").String()
		b.set("preset", plain(preset))
		if preset == providers.OneAndOne || rapid.IntRange(0, 3).Draw(t, "creds?") == 0 {
			b.set("username", strVal(sipUserGen).Draw(t, "username"))
			b.set("password", strVal(passwordGen).Draw(t, "password"))
		}
		maybe(t, &b, "numbers", listVal(e164Gen, 3))
	} else {
		profiles := []string{providers.ProfileExternalIPv4, providers.ProfileInternal}
		w.mu.Lock()
		for p := range w.profiles {
			if !slices.Contains(profiles, p) {
				profiles = append(profiles, p)
			}
		}
		w.mu.Unlock()
		slices.Sort(profiles[2:])
		profile := rapid.SampledFrom(profiles).Draw(t, "profile")
		b.set("profile", plain(profile))
		// Hosts of the profile's family, mostly, so that many trunks pass.
		hosts := hostGen
		switch profile {
		case providers.ProfileExternalIPv4:
			hosts = rapid.OneOf(dnsGen, strGen(`(1[0-9]{2}|[1-9][0-9]?)\.[0-9]{1,2}\.[0-9]{1,2}\.[1-9](:50[0-9]{2})?`))
		case providers.ProfileInternal:
			hosts = rapid.OneOf(dnsGen, sample("[2001:db8::1]", "2001:db8::2", "[2001:db8::3]:5060"))
		}
		b.set("proxy", strVal(hosts).Draw(t, "proxy"))
		maybe(t, &b, "outbound_proxy", strVal(hosts))
		maybe(t, &b, "register_proxy", strVal(hosts))
		register := rapid.Bool().Draw(t, "register")
		b.set("register", jraw(fmt.Sprint(register)))
		if register {
			b.set("username", strVal(sipUserGen).Draw(t, "username"))
			b.set("password", strVal(passwordGen).Draw(t, "password"))
			maybe(t, &b, "realm", strVal(dnsGen))
			maybe(t, &b, "provider", strVal(slugGen))
		} else {
			b.set("provider", sample(providers.Plusnet, providers.OneAndOne).Draw(t, "provider"))
		}
		maybe(t, &b, "transport", strVal(mostly(sample("udp", "tcp"), sample("tls", "UDP", "sctp"))))
		maybe(t, &b, "numbers", listVal(e164Gen, 3))
		maybe(t, &b, "from_domain", strVal(dnsGen))
	}
	maybe(t, &b, "auth_username", strVal(sipUserGen))
	maybe(t, &b, "from_user", strVal(sipUserGen))
	maybe(t, &b, "extension", strVal(sipUserGen))
	maybe(t, &b, "context", strVal(contextGen))
	maybe(t, &b, "caller_id", strVal(e164Gen))
	maybe(t, &b, "description", strVal(descGen))
	maybe(t, &b, "hostnames", listVal(hostnameGen, 2))
	maybe(t, &b, "ping_seconds", intMostly([]int{0, 5, 30, 3600}, []int{4, 3601, -1}))
	maybe(t, &b, "expire_seconds", intMostly([]int{60, 3600, 86400}, []int{59, 86401, 0}))
	maybe(t, &b, "caller_id_in_from", boolGen)
	if rapid.IntRange(0, 4).Draw(t, "disabled?") == 0 {
		b.set("enabled", jraw("false"))
	}
	spoil(t, &b, trunkFields)
	return b
}

var profileFields = []string{"name", "description", "family", "sip_ip", "sip_port", "rtp_ip", "ext_sip_ip", "ext_rtp_ip",
	"rtp_port_min", "rtp_port_max", "tls", "tls_port", "tls_cert_dir", "wss_binding", "inbound_acl", "auth_calls", "context", "params"}

var (
	settingNameGen = mostly(rapid.OneOf(
		strGen(`[a-z][a-z0-9-]{0,20}`),
		sample("user-agent-string", "dialplan", "rtp-timer-name", "inbound-codec-prefs", "x-pre-process"),
		repeatGen("s", "-", 62),
	), rapid.OneOf(sample("accept-blind-reg", "accept-blind-auth", "sip-ip", "context", "Bad_Name", "a b", "é", ""), repeatGen("s", "-", 63)))
	settingValueGen = mostly(rapid.OneOf(
		strGen(`[A-Za-z0-9.,;:_=+%-]{1,30}`),
		sample("x-pre-process", "X-PRE-PROCESS;é€😀", "%24%24{x}", "G722,PCMU,PCMA", "true", "XML", "🧑\u200d💻"),
		repeatGen("", "v", 254, 255),
		repeatGen("", "😀", 255),
	), rapid.OneOf(sample("$${x}", "a b", "<x>", "", "a&b", "\u00a0"), repeatGen("", "v", 256), repeatGen("", "😀", 256)))
	paramsGen = rapid.Custom(func(t *rapid.T) jval {
		n := rapid.IntRange(0, 3).Draw(t, "params")
		var o jobj
		seen := map[string]bool{}
		for i := 0; i < n; i++ {
			k := settingNameGen.Draw(t, "param")
			if seen[k.String()] {
				continue
			}
			seen[k.String()] = true
			v := settingValueGen.Draw(t, "value")
			if rapid.IntRange(0, 19).Draw(t, "hostile value?") == 0 {
				v = hostileGen.Draw(t, "hostile value")
			}
			o = append(o, jkv{k, v})
		}
		return o
	})
	extIPGen = mostly(rapid.OneOf(sample("auto-nat", "stun:stun.example.com", "stun:[2001:db8::1]:3478", "host:example.com", ""),
		rapid.Map(repeatGen("", "a.", 120, 125, 126), func(s jstr) jstr { return plain("host:" + s.String() + "de") }),
		rapid.Map(repeatGen("", "b.", 120, 125, 126), func(s jstr) jstr { return plain("stun:" + s.String() + "de:3478") })),
		sample("auto", "stun:", "host:", "host:a b", "stun:a:0"))
	wssGen = mostly(rapid.OneOf(sample(":7443", "[::]:7443", "0.0.0.0:7443", "[::1]:7443"),
		rapid.Map(repeatGen("", "z", 1, 40, 60), func(s jstr) jstr { return plain("[fe80::1%" + s.String() + "]:7443") })),
		sample("7443", ":0", "[::]", "[::]:7443 ", "a:7443"))
)

func profileBody(t *rapid.T) body {
	var b body
	b.set("name", strVal(slugGen).Draw(t, "name"))
	fam := rapid.SampledFrom([]string{"ipv4", "ipv6", "dual"}).Draw(t, "family")
	b.set("family", plain(fam))
	// addr is an address of the family; ext one that may stand as an
	// external address (not unspecified).
	var addr, ext *rapid.Generator[jstr]
	switch fam {
	case "ipv4":
		ext = rapid.OneOf(strGen(`10\.[0-9]{1,2}\.[0-9]{1,2}\.[1-9]`), sample(hostV4))
		addr = mostly(rapid.OneOf(ext, sample("0.0.0.0")), sample("2001:db8::5", "10.0.0", "0"))
	case "ipv6":
		ext = sample("2001:db8::5", "[2001:db8::6]", hostV6, "2001:DB8::7")
		addr = mostly(rapid.OneOf(ext, sample("::", "[::]")), sample("10.0.0.1", "[2001:db8::6", "fe80::1%eth0"))
	default:
		ext = sample(hostV6, "2001:db8::8")
		addr = mostly(sample("::", "[::]"), sample("0.0.0.0", "2001:db8::5"))
	}
	b.set("sip_ip", strVal(addr).Draw(t, "sip_ip"))
	if fam != "dual" {
		maybe(t, &b, "rtp_ip", strVal(addr))
	}
	extGen := rapid.OneOf(extIPGen, ext)
	maybe(t, &b, "ext_sip_ip", strVal(extGen))
	maybe(t, &b, "ext_rtp_ip", strVal(extGen))
	maybe(t, &b, "sip_port", intMostly([]int{5060, 5070, 5080, 65535}, []int{0, 65536}))
	if rapid.Bool().Draw(t, "rtp ports?") {
		b.set("rtp_port_min", intMostly([]int{16384, 1024}, []int{1023, 0}).Draw(t, "rtp_port_min"))
		b.set("rtp_port_max", intMostly([]int{32768, 65535}, []int{16000, 65536}).Draw(t, "rtp_port_max"))
	}
	if rapid.IntRange(0, 3).Draw(t, "tls?") == 0 {
		b.set("tls", jraw("true"))
		b.set("tls_port", intGen(5061, 5081).Draw(t, "tls_port"))
		maybe(t, &b, "tls_cert_dir", strVal(mostly(sample("/etc/freeswitch/tls", "/etc/ssl/x-pre-process", "/"), sample("/etc/ssl/é", "relative/dir", "/a b", ""))))
	}
	maybe(t, &b, "wss_binding", strVal(wssGen))
	maybe(t, &b, "inbound_acl", strVal(slugGen))
	maybe(t, &b, "auth_calls", boolGen)
	maybe(t, &b, "context", strVal(contextGen))
	maybe(t, &b, "description", strVal(descGen))
	maybe(t, &b, "params", paramsGen)
	spoil(t, &b, profileFields)
	return b
}

// ---- the property ----

// check is one run: maybe a profile, maybe a trunk (possibly on that
// profile), maybe an extension, each perhaps patched or deleted; what is
// left is deleted at the end, so that a failing run can be replayed (and
// shrunk) against the same state, and the change log gets deletes too.
func (w *propWorld) check(t *rapid.T) {
	w.undo = nil
	defer func() {
		for i := len(w.undo) - 1; i >= 0; i-- {
			w.undo[i]()
		}
	}()
	any := false
	if rapid.IntRange(0, 2).Draw(t, "profile?") == 0 {
		w.checkProfile(t)
		any = true
	}
	if rapid.Bool().Draw(t, "trunk?") {
		w.checkTrunk(t)
		any = true
	}
	if !any || rapid.Bool().Draw(t, "extension?") {
		w.checkExtension(t)
	}
}

// removeLater deletes path when the run ends (a 404 is fine: the run
// deleted it), then forgets the row.
func (w *propWorld) removeLater(path string, forget func()) {
	w.undo = append(w.undo, func() {
		req := httptest.NewRequest(http.MethodDelete, path, nil)
		req.RemoteAddr = "192.0.2.10:40000"
		req.Header.Set("Authorization", "Bearer "+w.token)
		rec := httptest.NewRecorder()
		w.ev.e.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent && rec.Code != http.StatusNotFound {
			// Not fatal here (this may run while a failure unwinds); the
			// next run would find the row and fail on its own.
			w.leftovers = append(w.leftovers, fmt.Sprintf("DELETE %s: %d %s", path, rec.Code, rec.Body))
		}
		forget()
	})
}

type propResp struct {
	code int
	body []byte
}

func (r propResp) json(t *rapid.T) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v\n%s", r.code, err, r.body)
	}
	return m
}

// send runs one API request and checks the answer against the OpenAPI
// document.
func (w *propWorld) send(t *rapid.T, method, path string, b []byte) propResp {
	var rd io.Reader
	if b != nil {
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.10:40000"
	if b != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	rec := httptest.NewRecorder()
	w.ev.e.ServeHTTP(rec, req)
	r := propResp{code: rec.Code, body: rec.Body.Bytes()}
	route, params, err := w.ev.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: not in the OpenAPI document: %v", method, path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.code, Header: rec.Header(),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s → %d does not match the OpenAPI document: %v\nbody: %s", method, path, r.code, err, r.body)
	}
	return r
}

// write sends b and checks what every answer must satisfy. It returns the
// answer when the write was accepted (ok) and whether the request should
// go on to the checks of an accepted row.
func (w *propWorld) write(t *rapid.T, method, path string, b body, known, filled []string, dup func() bool) (propResp, bool) {
	raw := b.json()
	r := w.send(t, method, path, raw)
	bad, lone := b.badFields()
	t.Logf("%s %s %s → %d %s", method, path, raw, r.code, r.body)
	kind := path
	if i := strings.LastIndexByte(path, '/'); strings.Trim(path[i+1:], "0123456789") == "" {
		kind = path[:i] + "/{id}"
	}
	w.outcomes[fmt.Sprintf("%s %s %d", method, kind, r.code)]++
	if r.code == http.StatusUnprocessableEntity {
		var eb api.ErrorBody
		_ = json.Unmarshal(r.body, &eb)
		for f := range eb.Fields {
			w.outcomes[fmt.Sprintf("%s %s 422 %s", method, kind, f)]++
		}
	}
	switch {
	case len(bad) > 0:
		if r.code != http.StatusBadRequest {
			t.Fatalf("a body that is not UTF-8 (bytes in %v) answered %d, want 400: %s", bad, r.code, r.body)
		}
		return r, false
	case r.code == http.StatusBadRequest:
		t.Fatalf("400 for a body that is valid UTF-8 JSON: %s", r.body)
	case r.code >= 500:
		t.Fatalf("%s %s answered %d: %s", method, path, r.code, r.body)
	}
	switch r.code {
	case http.StatusCreated, http.StatusOK:
		if len(lone) > 0 {
			t.Fatalf("a lone surrogate escape in %v was accepted (%d): it would be stored as U+FFFD", lone, r.code)
		}
		return r, true
	case http.StatusUnprocessableEntity:
		var eb api.ErrorBody
		if err := json.Unmarshal(r.body, &eb); err != nil || len(eb.Fields) == 0 {
			t.Fatalf("422 without fields: %s", r.body)
		}
		for _, f := range lone {
			if _, ok := eb.Fields[f]; !ok {
				t.Fatalf("lone surrogate escape in %q: the 422 does not name it: %s", f, r.body)
			}
		}
		// The brief: at least one named field is one the request sent (or
		// one its preset filled in), unless every refusal is of a missing
		// required field. Every name is a field of the resource (or the
		// unknown field the request sent).
		named := false
		allRequired := true
		for f, msg := range eb.Fields {
			if !b.has(f) && !slices.Contains(known, f) {
				t.Fatalf("422 names %q, which is no field of the resource: %s", f, r.body)
			}
			if b.has(f) || slices.Contains(filled, f) {
				named = true
			}
			allRequired = allRequired && strings.Contains(msg, "required")
		}
		if !named && !allRequired {
			t.Fatalf("422 names no field of the request: %s", r.body)
		}
		return r, false
	case http.StatusConflict:
		if len(lone) > 0 {
			t.Fatalf("409 for a body with a lone surrogate escape in %v", lone)
		}
		if dup == nil || !dup() {
			t.Fatalf("409 without an earlier row of the same key: %s", r.body)
		}
		return r, false
	}
	t.Fatalf("%s %s answered %d: %s", method, path, r.code, r.body)
	return r, false
}

// normHost is the form a host is stored in: ParseHost's.
func normHost(t *rapid.T, s string, allowPort bool) string {
	h, err := names.ParseHost(s, allowPort)
	if err != nil {
		t.Fatalf("accepted host %q does not parse: %v", s, err)
	}
	return h.String()
}

func (w *propWorld) get(t *rapid.T, path string) map[string]any {
	r := w.send(t, http.MethodGet, path, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.code, r.body)
	}
	m := r.json(t)
	if why, ok := m["render_error"]; ok {
		t.Fatalf("GET %s: an accepted row has render_error %q", path, why)
	}
	return m
}

// wantStored checks that the stored row has each string field of b
// exactly as sent (norm gives the normal form of a host field).
func wantStored(t *rapid.T, stored map[string]any, b body, norm map[string]func(string) string) {
	for _, f := range b {
		switch v := f.v.(type) {
		case jstr:
			if f.name == "password" || f.name == "preset" {
				continue
			}
			want := v.String()
			if n, ok := norm[f.name]; ok {
				want = n(want)
			}
			if got, _ := stored[f.name].(string); got != want {
				t.Fatalf("%s is stored as %q, sent %q", f.name, got, want)
			}
		case jarr:
			got, _ := json.Marshal(stored[f.name])
			want, _ := json.Marshal(v.strings())
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is stored as %s, sent %s", f.name, got, want)
			}
		case jobj:
			want := map[string]any{}
			for _, kv := range v {
				want[kv.k.String()] = kv.v.String()
			}
			got, _ := json.Marshal(stored[f.name])
			wantJ, _ := json.Marshal(want)
			if !bytes.Equal(got, wantJ) {
				t.Fatalf("%s is stored as %s, sent %s", f.name, got, wantJ)
			}
		case jraw:
			var want any
			_ = json.Unmarshal([]byte(v), &want)
			if got := stored[f.name]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s is stored as %v, sent %v", f.name, got, want)
			}
		}
	}
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// ---- extensions ----

func (w *propWorld) checkExtension(t *rapid.T) {
	b := extBody(t)
	domain, _ := b.str("domain")
	user, _ := b.str("user_id")
	key := func() string {
		if h, err := names.ParseHost(domain, false); err == nil {
			return user + "@" + h.String()
		}
		return user + "@" + domain
	}
	r, ok := w.write(t, http.MethodPost, "/api/v1/sip/extensions", b, extFields, nil, func() bool { return w.extKeys[key()] })
	if !ok {
		return
	}
	created := r.json(t)
	id := fmt.Sprint(created["id"])
	pw, _ := b.str("password")
	m := &extModel{id: id, password: pw}
	w.extKeys[key()] = true
	w.exts[id] = m
	w.removeLater("/api/v1/sip/extensions/"+id, func() {
		delete(w.exts, id)
		delete(w.extKeys, m.userID+"@"+m.domain)
	})
	w.verifyExtension(t, m, b)

	switch rapid.IntRange(0, 3).Draw(t, "then") {
	case 0, 1:
		var p body
		for _, f := range []struct {
			name string
			g    *rapid.Generator[jval]
		}{{"user_id", strVal(userIDGen)}, {"password", strVal(passwordGen)}, {"display_name", strVal(displayGen)},
			{"caller_id", strVal(e164Gen)}, {"context", strVal(contextGen)}, {"description", strVal(descGen)}, {"enabled", boolGen}} {
			if rapid.IntRange(0, 3).Draw(t, "patch "+f.name+"?") == 0 {
				p.set(f.name, f.g.Draw(t, "patch "+f.name))
			}
		}
		if len(p) == 0 {
			p.set("display_name", strVal(displayGen).Draw(t, "patch display_name"))
		}
		spoil(t, &p, []string{"user_id", "password", "display_name", "caller_id", "context", "description"})
		newUser, renamed := p.str("user_id")
		oldKey := m.userID + "@" + m.domain
		_, ok := w.write(t, http.MethodPatch, "/api/v1/sip/extensions/"+id, p, extFields, nil, func() bool {
			return renamed && w.extKeys[newUser+"@"+m.domain] && newUser+"@"+m.domain != oldKey
		})
		if !ok {
			return
		}
		if pw, ok := p.str("password"); ok {
			m.password = pw
		}
		if renamed {
			delete(w.extKeys, oldKey)
			w.extKeys[newUser+"@"+m.domain] = true
		}
		w.verifyExtension(t, m, p)
		if renamed && newUser != m.userID {
			t.Fatalf("user_id %q not renamed", newUser)
		}
	case 2:
		if r := w.send(t, http.MethodDelete, "/api/v1/sip/extensions/"+id, nil); r.code != http.StatusNoContent {
			t.Fatalf("DELETE extension: %d %s", r.code, r.body)
		}
		delete(w.exts, id)
		delete(w.extKeys, m.userID+"@"+m.domain)
		for _, h := range []*xmlcurl.Handler{w.xmlA1, w.xmlPW} {
			if ans := w.xmlCurl(t, h, sipAuthReq(m.userID, m.domain)); !isNotFoundDoc(ans) {
				t.Fatalf("deleted user %s@%s still answered:\n%s", m.userID, m.domain, ans)
			}
		}
	}
}

// verifyExtension checks the stored extension against what b sent and
// its directory answers against the stored row.
func (w *propWorld) verifyExtension(t *rapid.T, m *extModel, b body) {
	stored := w.get(t, "/api/v1/sip/extensions/"+m.id)
	wantStored(t, stored, b, map[string]func(string) string{"domain": func(s string) string { return normHost(t, s, false) }})
	if stored["has_password"] != true {
		t.Fatalf("accepted extension without a password: %v", stored)
	}
	m.userID, m.domain, m.stored = str(stored, "user_id"), str(stored, "domain"), stored
	for _, h := range []*xmlcurl.Handler{w.xmlA1, w.xmlPW} {
		ans := w.xmlCurl(t, h, sipAuthReq(m.userID, m.domain))
		if stored["enabled"] != true {
			if !isNotFoundDoc(ans) {
				t.Fatalf("disabled user answered:\n%s", ans)
			}
			continue
		}
		if isNotFoundDoc(ans) {
			t.Fatalf("accepted user %q@%q left out of the directory; log:\n%s", m.userID, m.domain, w.ev.logs)
		}
		doc := readBack(t, ans)
		d := doc.FindElement("//section[@name='directory']/domain")
		if d == nil || d.SelectAttrValue("name", "\x00") != m.domain {
			t.Fatalf("domain does not read back as %q:\n%s", m.domain, ans)
		}
		u := d.FindElement("user")
		if u == nil || u.SelectAttrValue("id", "\x00") != m.userID {
			t.Fatalf("user id does not read back as %q:\n%s", m.userID, ans)
		}
		params := attrMap(t, u, "params/param")
		if h == w.xmlPW {
			if params["password"] != m.password {
				t.Fatalf("password reads back as %q, sent %q", params["password"], m.password)
			}
		} else {
			sum := md5.Sum([]byte(m.userID + ":" + m.domain + ":" + m.password))
			if params["a1-hash"] != hex.EncodeToString(sum[:]) {
				t.Fatalf("a1-hash %q is not MD5(user:realm:password) of the password sent", params["a1-hash"])
			}
			if _, ok := params["password"]; ok {
				t.Fatalf("a1-hash answer carries the password")
			}
		}
		vars := attrMap(t, u, "variables/variable")
		name, number := str(stored, "display_name"), str(stored, "caller_id")
		if name == "" {
			name = m.userID
		}
		if number == "" {
			number = m.userID
		}
		for k, want := range map[string]string{"effective_caller_id_name": name,
			"effective_caller_id_number": number, "user_context": str(stored, "context")} {
			if vars[k] != want {
				t.Fatalf("%s reads back as %q, stored %q", k, vars[k], want)
			}
		}
	}
}

// ---- trunks ----

func (w *propWorld) checkTrunk(t *rapid.T) {
	b := w.trunkBody(t)
	name, _ := b.str("name")
	var filled []string
	if b.has("preset") {
		filled = presetFilled
	}
	r, ok := w.write(t, http.MethodPost, "/api/v1/sip/trunks", b, append([]string{"preset"}, trunkFields...), filled, func() bool { return w.trunkKey[name] })
	if !ok {
		return
	}
	created := r.json(t)
	id := fmt.Sprint(created["id"])
	pw, _ := b.str("password")
	m := &trunkModel{id: id, password: pw}
	w.trunkKey[name] = true
	w.trunks[id] = m
	w.removeLater("/api/v1/sip/trunks/"+id, func() {
		delete(w.trunks, id)
		delete(w.trunkKey, m.name)
	})
	w.verifyTrunk(t, m, b)

	switch rapid.IntRange(0, 3).Draw(t, "then") {
	case 0, 1:
		var p body
		for _, f := range []struct {
			name string
			g    *rapid.Generator[jval]
		}{{"name", strVal(slugGen)}, {"password", strVal(passwordGen)}, {"username", strVal(sipUserGen)},
			{"auth_username", strVal(sipUserGen)}, {"from_user", strVal(sipUserGen)}, {"extension", strVal(sipUserGen)},
			{"context", strVal(contextGen)}, {"caller_id", strVal(e164Gen)}, {"description", strVal(descGen)}, {"enabled", boolGen}} {
			if rapid.IntRange(0, 3).Draw(t, "patch "+f.name+"?") == 0 {
				p.set(f.name, f.g.Draw(t, "patch "+f.name))
			}
		}
		if len(p) == 0 {
			p.set("extension", strVal(sipUserGen).Draw(t, "patch extension"))
		}
		spoil(t, &p, []string{"name", "password", "username", "auth_username", "from_user", "extension", "context", "caller_id"})
		newName, renamed := p.str("name")
		oldName := m.name
		_, ok := w.write(t, http.MethodPatch, "/api/v1/sip/trunks/"+id, p, trunkFields, nil, func() bool {
			return renamed && newName != oldName && w.trunkKey[newName]
		})
		if !ok {
			return
		}
		if pw, ok := p.str("password"); ok {
			m.password = pw
		}
		if renamed {
			delete(w.trunkKey, oldName)
			w.trunkKey[newName] = true
		}
		w.verifyTrunk(t, m, p)
	case 2:
		if r := w.send(t, http.MethodDelete, "/api/v1/sip/trunks/"+id, nil); r.code != http.StatusNoContent {
			t.Fatalf("DELETE trunk: %d %s", r.code, r.body)
		}
		delete(w.trunks, id)
		delete(w.trunkKey, m.name)
		ans := w.xmlCurl(t, w.xmlA1, gatewaysReq(str(m.stored, "profile"), trunkHostname(m.stored)))
		if _, ok := gatewayParams(t, ans, m.name); ok {
			t.Fatalf("deleted trunk %q still a gateway:\n%s", m.name, ans)
		}
	}
}

func trunkHostname(stored map[string]any) string {
	if hs, _ := stored["hostnames"].([]any); len(hs) > 0 {
		return fmt.Sprint(hs[0])
	}
	return "vm"
}

func (w *propWorld) verifyTrunk(t *rapid.T, m *trunkModel, b body) {
	stored := w.get(t, "/api/v1/sip/trunks/"+m.id)
	host := func(s string) string { return normHost(t, s, true) }
	noPort := func(s string) string { return normHost(t, s, false) }
	wantStored(t, stored, b, map[string]func(string) string{"proxy": host, "outbound_proxy": host, "register_proxy": host,
		"realm": noPort, "from_domain": noPort})
	m.name, m.stored = str(stored, "name"), stored
	ans := w.xmlCurl(t, w.xmlA1, gatewaysReq(str(stored, "profile"), trunkHostname(stored)))
	params, found := gatewayParams(t, ans, m.name)
	if stored["enabled"] != true {
		if found {
			t.Fatalf("disabled trunk %q is a gateway:\n%s", m.name, ans)
		}
		return
	}
	if !found {
		t.Fatalf("accepted trunk %q left out of the gateways of profile %q; log:\n%s\n%s", m.name, str(stored, "profile"), w.ev.logs, ans)
	}
	want := map[string]string{
		"register": fmt.Sprint(stored["register"]), "username": str(stored, "username"), "auth-username": str(stored, "auth_username"),
		"password": m.password, "realm": str(stored, "realm"), "proxy": str(stored, "proxy"),
		"outbound-proxy": str(stored, "outbound_proxy"), "from-user": str(stored, "from_user"),
		"from-domain": str(stored, "from_domain"), "extension": str(stored, "extension"), "context": str(stored, "context"),
		"register-transport": strings.ToLower(str(stored, "transport")),
	}
	if stored["register"] == true && str(stored, "register_proxy") == "" {
		want["register-proxy"] = str(stored, "outbound_proxy")
	} else {
		want["register-proxy"] = str(stored, "register_proxy")
	}
	for k, v := range want {
		got, ok := params[k]
		if v == "" {
			if ok {
				t.Fatalf("gateway %s: %s rendered as %q, stored empty", m.name, k, got)
			}
			continue
		}
		if got != v {
			t.Fatalf("gateway %s: %s reads back as %q, stored %q\n%s", m.name, k, got, v, ans)
		}
	}
}

// ---- profiles ----

func (w *propWorld) checkProfile(t *rapid.T) {
	b := profileBody(t)
	name, _ := b.str("name")
	w.mu.Lock()
	known := w.profiles[name]
	w.mu.Unlock()
	r, ok := w.write(t, http.MethodPost, "/api/v1/sip/profiles", b, profileFields, nil, func() bool { return known })
	if !ok {
		return
	}
	created := r.json(t)
	w.mu.Lock()
	w.profiles[name] = true
	w.mu.Unlock()
	w.removeLater("/api/v1/sip/profiles/"+fmt.Sprint(created["id"]), func() {
		w.mu.Lock()
		delete(w.profiles, name)
		w.mu.Unlock()
	})
	// Addresses are stored bare and canonical ("[::]" → "::").
	addr := func(s string) string {
		if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
			return a.String()
		}
		return s
	}
	stored := w.get(t, "/api/v1/sip/profiles/"+fmt.Sprint(created["id"]))
	wantStored(t, stored, b, map[string]func(string) string{"sip_ip": addr, "rtp_ip": addr, "ext_sip_ip": addr, "ext_rtp_ip": addr})

	ans := w.xmlCurl(t, w.xmlA1, sofiaReq(name))
	doc := readBack(t, ans)
	w.mu.Lock()
	all := make([]string, 0, len(w.profiles))
	for p := range w.profiles {
		all = append(all, p)
	}
	w.mu.Unlock()
	for _, p := range all {
		if doc.FindElement("//profiles/profile[@name='"+p+"']") == nil {
			t.Fatalf("accepted profile %q left out of sofia.conf; log:\n%s\n%s", p, w.ev.logs, ans)
		}
	}
	settings := attrMap(t, doc.FindElement("//profiles/profile[@name='"+name+"']"), "settings/param")
	rtp := str(stored, "rtp_ip")
	if rtp == "" {
		rtp = str(stored, "sip_ip")
	}
	want := map[string]string{
		"sip-ip": str(stored, "sip_ip"), "sip-port": fmt.Sprint(stored["sip_port"]), "rtp-ip": rtp,
		"ext-sip-ip": str(stored, "ext_sip_ip"), "ext-rtp-ip": str(stored, "ext_rtp_ip"), "tls": fmt.Sprint(stored["tls"]),
		"tls-cert-dir": str(stored, "tls_cert_dir"), "wss-binding": str(stored, "wss_binding"),
		"apply-inbound-acl": str(stored, "inbound_acl"), "auth-calls": fmt.Sprint(stored["auth_calls"]),
		"context": str(stored, "context"), "dialplan": "XML",
	}
	params, _ := stored["params"].(map[string]any)
	for k, v := range params {
		// A free setting is rendered as stored, an empty value too.
		delete(want, k)
		if got, ok := settings[k]; !ok || got != fmt.Sprint(v) {
			t.Fatalf("profile %s: param %s reads back as %q (present: %v), stored %q\n%s", name, k, got, ok, v, ans)
		}
	}
	for k, v := range want {
		got, ok := settings[k]
		if v == "" {
			if ok {
				t.Fatalf("profile %s: %s rendered as %q, stored empty", name, k, got)
			}
			continue
		}
		if got != v {
			t.Fatalf("profile %s: %s reads back as %q, stored %q\n%s", name, k, got, v, ans)
		}
	}
}

// ---- xml-curl ----

func (w *propWorld) xmlCurl(t *rapid.T, h *xmlcurl.Handler, form string) string {
	r := httptest.NewRequest(http.MethodPost, xmlcurl.Path, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("User-Agent", "freeswitch-xml/1.0")
	r.SetBasicAuth(propBasicUser, propBasicPass)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("xml-curl answered %d to %s:\n%s", rec.Code, form, rec.Body)
	}
	return rec.Body.String()
}

// fsEscape encodes like switch_url_encode (xmlcurl's escape).
func fsEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// The request builders follow the bodies captured from FreeSWITCH 1.10.12
// (xmlcurl/testdata/freeswitch-requests): register.txt, gateway-rescan.txt
// and sofia_profile_internal_rescan.txt.

func sipAuthReq(user, domain string) string {
	return "hostname=vm&section=directory&tag_name=domain&key_name=name&key_value=" + domain +
		"&Event-Name=REQUEST_PARAMS&Core-UUID=4f030381-44f9-4bbd-bf1d-4c50c84a6347&FreeSWITCH-Hostname=vm" +
		"&Event-Calling-File=sofia_reg.c&Event-Calling-Function=sofia_reg_parse_auth&action=sip_auth&sip_profile=internal" +
		"&sip_user_agent=" + fsEscape("sipsak 0.9.8.1") + "&sip_auth_username=" + fsEscape(user) +
		"&sip_auth_realm=" + fsEscape(domain) + "&sip_auth_method=REGISTER&key=id&user=" + fsEscape(user) +
		"&domain=" + fsEscape(domain) + "&ip=127.0.0.1"
}

func gatewaysReq(profile, hostname string) string {
	return "hostname=" + hostname + "&section=directory&tag_name=&key_name=&key_value=&Event-Name=REQUEST_PARAMS" +
		"&Core-UUID=36c6db59-f5e7-4fa8-b892-3075814685ab&FreeSWITCH-Hostname=" + hostname +
		"&Event-Calling-File=sofia.c&Event-Calling-Function=config_sofia&purpose=gateways&profile=" + fsEscape(profile)
}

func sofiaReq(profile string) string {
	return "hostname=vm&section=configuration&tag_name=configuration&key_name=name&key_value=sofia.conf" +
		"&Event-Name=REQUEST_PARAMS&Core-UUID=36c6db59-f5e7-4fa8-b892-3075814685ab&FreeSWITCH-Hostname=vm" +
		"&Event-Calling-File=sofia.c&Event-Calling-Function=config_sofia&profile=" + fsEscape(profile) + "&reconfig=true"
}

func isNotFoundDoc(ans string) bool {
	return strings.Contains(ans, `<result status="not found"/>`)
}

// readBack checks that FreeSWITCH's pre-processor leaves the answer as it
// is, and parses it.
func readBack(t *rapid.T, ans string) *etree.Document {
	out, cmds := xmlcurltest.Preprocess(ans, map[string]string{"x": "EXPANDED", "hostname": "EXPANDED", "domain": "EXPANDED"})
	if len(cmds) > 0 {
		t.Fatalf("the pre-processor would execute %q in\n%s", cmds, ans)
	}
	if out != ans {
		t.Fatalf("the pre-processor changes the answer:\nbefore:\n%s\nafter:\n%s", ans, out)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(ans); err != nil {
		t.Fatalf("answer is not well-formed XML: %v\n%s", err, ans)
	}
	return doc
}

// attrMap reads name/value pairs under e; a name given twice fails.
func attrMap(t *rapid.T, e *etree.Element, path string) map[string]string {
	out := map[string]string{}
	if e == nil {
		t.Fatalf("no element for %s", path)
	}
	for _, p := range e.FindElements(path) {
		name := p.SelectAttrValue("name", "")
		if _, dup := out[name]; dup {
			t.Fatalf("%s %q given twice", path, name)
		}
		out[name] = p.SelectAttrValue("value", "")
	}
	return out
}

// gatewayParams reads the gateway named name from a gateways answer.
func gatewayParams(t *rapid.T, ans, name string) (map[string]string, bool) {
	doc := readBack(t, ans)
	for _, g := range doc.FindElements("//domain/user/gateways/gateway") {
		if g.SelectAttrValue("name", "") == name {
			return attrMap(t, g, "param"), true
		}
	}
	return nil, false
}

// ---- after the run ----

func (w *propWorld) checkNothingLeftOut(t *testing.T) {
	for _, h := range []*xmlcurl.Handler{w.xmlA1, w.xmlPW} {
		if p := h.Problems(); len(p) > 0 {
			t.Errorf("rows left out of xml-curl's answers: %+v", p)
		}
	}
	if len(w.leftovers) > 0 {
		t.Errorf("rows a run could not delete:\n%s", strings.Join(w.leftovers, "\n"))
	}
	keys := make([]string, 0, len(w.outcomes))
	for k := range w.outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("%5d × %s", w.outcomes[k], k)
	}
}

// checkESL replays the whole change log to an ESL Manager whose node is
// an esltest server: no value may be refused on the way to a command
// line, and the commands the changes call for must arrive.
func (w *propWorld) checkESL(t *testing.T) {
	ctx := context.Background()
	srv := esltest.Start(t, esltest.Options{Switchname: "vm", DeleteDelay: 5 * time.Millisecond})
	if err := w.store.SaveESLCursor(ctx, srv.Addr(), 0); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sw := &syncWriter{w: &bytes.Buffer{}}
	logs := func() string {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		return sw.w.(*bytes.Buffer).String()
	}
	m, err := esl.New(esl.Options{
		Nodes: []string{srv.Addr()}, Password: "ClueCon", Store: w.store, Registerer: reg,
		Logger:      slog.New(slog.NewTextHandler(sw, &slog.HandlerOptions{Level: slog.LevelWarn})),
		DialTimeout: time.Second, AuthTimeout: time.Second, CommandTimeout: 3 * time.Second,
		HealthInterval: 50 * time.Millisecond, HealthTimeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		CoalesceWindow: 5 * time.Millisecond, CoalesceMax: 100 * time.Millisecond,
		DeleteWait: 50 * time.Millisecond, GapGrace: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	last, err := w.store.LastChangeID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := m.Nodes()[0]
		if st.AppliedChangeID >= last && st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not catch up with change %d: %+v\n%s", last, st, logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := metricSum(t, reg, "fsplane_esl_refused_values_total"); n != 0 {
		t.Errorf("%v values refused on the way to an ESL command line:\n%s", n, logs())
	}
	cmds := srv.Commands()
	w.mu.Lock()
	evs := slices.Clone(w.events)
	w.mu.Unlock()
	var want []string
	for _, ev := range evs {
		switch {
		case ev.Kind == models.KindExtension && ev.Op != models.OpCreate && !ev.Cosmetic:
			for _, n := range []string{ev.Name, ev.OldName} {
				if i := strings.LastIndexByte(n, '@'); i > 0 {
					want = append(want, "api xml_flush_cache id "+n[:i]+" "+n[i+1:])
				}
			}
		case ev.Kind == models.KindTrunk && ev.Op == models.OpDelete && ev.OldEnabled:
			// killgw finds a gateway by name in any profile: the planner
			// kills a name once, on the first profile it saw it on.
			want = append(want, "killgw "+ev.Name)
		case ev.Kind == models.KindProfile && ev.Op == models.OpCreate:
			want = append(want, "api sofia profile "+ev.Name+" start")
		}
	}
	for _, line := range want {
		if !slices.ContainsFunc(cmds, func(c string) bool {
			return c == line || strings.HasPrefix(line, "killgw ") && strings.HasPrefix(c, "api sofia profile ") && strings.HasSuffix(c, " "+line)
		}) {
			t.Errorf("the change log calls for %q; the node got %d commands:\n%s\n%s", line, len(cmds), strings.Join(cmds, "\n"), logs())
			break
		}
	}
	t.Logf("ESL replay: %d changes, %d commands expected, %d sent", len(evs), len(want), len(cmds))
}

func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// ---- FreeSWITCH's pre-processor ----

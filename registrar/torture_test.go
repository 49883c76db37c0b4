package registrar_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

// RFC 4475's torture messages (testdata/rfc4475, CRLF as in the RFC).
// want is the status the registrar answers; dropped means the parser
// refuses the message (it is never handed to the registrar); response
// means the message is a response, which a registrar without a client
// transaction for it ignores.
const (
	dropped  = 0
	response = -1
)

var torture = map[string]struct {
	want int
	why  string
}{
	// §3.1.1: valid; answered. The domains other than example.com are not
	// served: 404; example.com has the users user, watson and j.user, none
	// registered: 480 for them, 404 for others.
	"valid/dblreq":     {401, "only the first REGISTER of the datagram is read; it is challenged"},
	"valid/esc01":      {404, "AOR at example.net, not served"},
	"valid/esc02":      {405, "RE%47IST%45R is not REGISTER: an unknown method to the registrar itself"},
	"valid/escnull":    {401, "a REGISTER with %00 in the AOR: challenged like any other"},
	"valid/intmeth":    {404, "unknown method to an unknown AOR: the proxy has nowhere to send it"},
	"valid/longreq":    {480, "user@example.com exists and has no binding"},
	"valid/lwsdisp":    {480, "user@example.com exists and has no binding"},
	"valid/mpart01":    {404, "AOR at example.org, not served"},
	"valid/noreason":   {response, ""},
	"valid/semiuri":    {404, "unknown AOR"},
	"valid/transports": {480, "user@example.com exists and has no binding"},
	"valid/unreason":   {response, ""},
	"valid/wsinv":      {404, "AOR at chair-dnrc.example.com, not served"},
	// §3.1.2: syntactically invalid; refused by the parser (dropped) or 400.
	"invalid/badaspec":   {dropped, "§3.1.2.x: bad addr-spec"},
	"invalid/baddn":      {dropped, "non-token characters in display name"},
	"invalid/badinv01":   {dropped, "extraneous header field separators"},
	"invalid/badvers":    {505, "SIP/7.0"},
	"invalid/bigcode":    {dropped, "overlarge response code"},
	"invalid/clerr":      {dropped, "Content-Length larger than the message"},
	"invalid/escruri":    {400, "escaped headers in the Request-URI"},
	"invalid/ltgtruri":   {dropped, "<> around the Request-URI"},
	"invalid/lwsruri":    {dropped, "LWS inside the Request-URI"},
	"invalid/lwsstart":   {dropped, "several SP in the request line"},
	"invalid/mismatch01": {400, "CSeq method differs from the request's"},
	"invalid/mismatch02": {400, "unknown method with a mismatched CSeq method"},
	"invalid/ncl":        {dropped, "negative Content-Length"},
	"invalid/quotbal":    {dropped, "unterminated quoted display name"},
	"invalid/regbadct":   {dropped, "Contact URI with headers not in <> (strictContact)"},
	"invalid/scalar02":   {dropped, "overlarge scalar fields"},
	"invalid/scalarlg":   {dropped, "overlarge response scalars"},
	"invalid/trws":       {dropped, "SP at the end of the request line"},
	"invalid/baddate":    {480, "§3.1.2.12: a non-GMT Date may be accepted when the Date does not matter (it does not here); user@example.com exists and has no binding"},
	// §3.2 transaction layer: an RFC 2543 branch is processed.
	"invalid/badbranch": {480, "branch without the magic cookie's tail: processed, user@example.com exists and has no binding"},
	"invalid/inv2543":   {404, "RFC 2543 syntax: the handler accepts it (unknown AOR at example.com); on the wire sipgo's transaction layer wants a From tag and answers 400 itself, and on TCP, without Content-Length, the framing answers 400"},
	// §3.3 application layer.
	"invalid/insuf":    {400, "missing To, From, Call-ID"},
	"invalid/unkscm":   {416, "unknown Request-URI scheme"},
	"invalid/novelsc":  {dropped, "soap.beep: Request-URI: sipgo's parser refuses the scheme; the registrar's UDP fast path and stream framing answer 416 (TestRFC4475OverTheWire)"},
	"invalid/unksm2":   {416, "REGISTER whose To is an isbn: URI"},
	"invalid/bext01":   {420, "Proxy-Require of unknown extensions, when proxying"},
	"invalid/invut":    {480, "a proxy forwards an unknown body type (only the UAS answers 415): user@example.com exists and has no binding"},
	"invalid/regaut01": {401, "an unknown Authorization scheme is no credential: challenged"},
	"invalid/multi01":  {400, "two To, two From, two Call-ID, two CSeq"},
	"invalid/mcl01":    {400, "two Content-Length"},
	"invalid/bcast":    {response, ""},
	"invalid/zeromf":   {483, "Max-Forwards 0 to a proxied AOR"},
	"invalid/cparam01": {401, "contact parameter in addr-spec form: valid, challenged"},
	"invalid/cparam02": {401, "URI parameter in a bracketed contact: valid, challenged"},
	"invalid/regescrt": {401, "escaped header in a bracketed contact: valid, challenged (and stored once authenticated)"},
	"invalid/sdp01":    {480, "a proxy does not judge Accept: user@example.com exists and has no binding"},
}

func tortureRegistrar(t testing.TB) (*registrar.Registrar, *models.Store) {
	t.Helper()
	s := modelstest.Open(t, "sqlite", modelstest.Options{})
	pw := "torture-pw"
	for _, u := range []string{"user", "watson", "j.user"} {
		if err := s.CreateExtension(context.Background(), &models.Extension{Domain: "example.com", UserID: u, Password: &pw, Context: "default", Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := registrar.New(registrar.Options{Store: s, NonceKey: []byte("torture nonce key of 32 bytes..."), Listen: "127.0.0.1:0", FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, s
}

func TestRFC4475Torture(t *testing.T) {
	r, _ := tortureRegistrar(t)
	files, err := filepath.Glob("testdata/rfc4475/*/*.dat")
	if err != nil || len(files) != len(torture) {
		t.Fatalf("%d messages in testdata, %d expectations (%v)", len(files), len(torture), err)
	}
	parser := registrar.NewParser()
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "testdata/rfc4475/"), ".dat")
		t.Run(name, func(t *testing.T) {
			exp, ok := torture[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := parser.ParseSIP(raw)
			switch {
			case exp.want == dropped:
				if err == nil {
					t.Fatalf("parsed, want refused (%s)", exp.why)
				}
				return
			case err != nil:
				t.Fatalf("refused by the parser (%v), want %d (%s)", err, exp.want, exp.why)
			}
			req, isReq := msg.(*sip.Request)
			if exp.want == response {
				if isReq {
					t.Fatal("parsed as a request, want a response")
				}
				return
			}
			if !isReq {
				t.Fatal("parsed as a response, want a request")
			}
			req.SetSource("127.0.0.1:5099")
			req.SetTransport("UDP")
			res := r.Answer(req)
			if res == nil || res.StatusCode != exp.want {
				t.Fatalf("answered %v, want %d (%s)", res, exp.want, exp.why)
			}
			if exp.want == 420 && len(res.GetHeaders("Unsupported")) == 0 {
				t.Fatal("420 without Unsupported")
			}
			if exp.want == 505 && res.SipVersion != "SIP/2.0" {
				t.Fatalf("505 in %s", res.SipVersion)
			}
		})
	}
}

// Over the wire: every torture message to a running registrar, each on
// its own TCP connection (a UDP answer goes to the Via's sent-by, which
// these messages set to other hosts; and clerr's framing would swallow the
// next message of a stream), answered as above or not at all; the
// registrar still registers afterwards, and regescrt's contact,
// authenticated, is stored with its escaped header.
// unframable messages cannot be delimited on a stream (RFC 3261 §18.3,
// §20.14: no Content-Length, two, or a negative one): they are answered
// 400 and the connection is closed, never left waiting.
// dblreq is a datagram test (two requests in one UDP datagram): it is sent
// over UDP below instead.
var unframable = map[string]bool{"invalid/inv2543": true, "invalid/mcl01": true, "invalid/ncl": true}

// streamAnswers differ on a stream from the request path's own answers:
// the framing answers before any parsing (inv2543 would be 404, ncl
// dropped by the parser), and novelsc's scheme, which the parser refuses,
// is answered 416 by the stream's framing as by the UDP fast path.
var streamAnswers = map[string]int{"invalid/inv2543": 400, "invalid/ncl": 400, "invalid/novelsc": 416}

func TestRFC4475OverTheWire(t *testing.T) {
	_, s := tortureRegistrar(t)
	r, udp, tcp := registrartest.Start(t, registrar.Options{Store: s})
	files, _ := filepath.Glob("testdata/rfc4475/*/*.dat")
	seen := map[string]string{} // transaction key → message
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "testdata/rfc4475/"), ".dat")
		exp := torture[name]
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := registrartest.Dial(t, "tcp", tcp)
		c.SendRaw(raw)
		if name == "valid/dblreq" {
			continue
		}
		want := exp.want
		if w, ok := streamAnswers[name]; ok {
			want = w
		}
		if want <= 0 {
			continue
		}
		// cparam01 and cparam02 share branch, sent-by and method: by RFC
		// 3261 §17.2.3 the second is a retransmission of the first's
		// transaction, absorbed by it, not a new request.
		if msg, err := registrar.NewParser().ParseSIP(raw); err == nil {
			if key, err := sip.ServerTxKeyMake(msg); err == nil {
				if first, dup := seen[key]; dup {
					t.Logf("%s: same transaction as %s, not answered anew", name, first)
					continue
				}
				seen[key] = name
			}
		}
		res := c.Read(5 * time.Second)
		if res == nil || res.StatusCode != want {
			t.Fatalf("%s: answered %v, want %d", name, res, want)
		}
		if unframable[name] && !c.Closed(5*time.Second) {
			t.Fatalf("%s: the connection stays open after a message that cannot be framed", name)
		}
	}
	// dblreq over UDP, its Via pointed at our socket so that the answer
	// reaches us: the REGISTER is answered, the INVITE behind it in the
	// same datagram is not.
	c := registrartest.Dial(t, "udp", udp)
	raw, err := os.ReadFile("testdata/rfc4475/valid/dblreq.dat")
	if err != nil {
		t.Fatal(err)
	}
	c.SendRaw([]byte(strings.Replace(string(raw), "192.0.2.125", c.Local, 1)))
	if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 401 || res.CSeq().MethodName != "REGISTER" {
		t.Fatalf("dblreq over UDP: %v", res)
	}
	if res := c.Read(300 * time.Millisecond); res != nil {
		t.Fatalf("the second request of dblreq's datagram was answered: %v", res)
	}
	// novelsc over UDP (Via pointed at our socket): sipgo's parser refuses
	// a soap.beep: Request-URI; the registrar's UDP path answers it 416.
	raw, err = os.ReadFile("testdata/rfc4475/invalid/novelsc.dat")
	if err != nil {
		t.Fatal(err)
	}
	novelsc := strings.Replace(string(raw), "SIP/2.0/TCP host9.example.com", "SIP/2.0/UDP "+c.Local, 1)
	if novelsc == string(raw) {
		t.Fatal("novelsc's Via not found")
	}
	c.SendRaw([]byte(novelsc))
	if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 416 {
		t.Fatalf("novelsc over UDP: %v, want 416", res)
	}
	reg := registrartest.Reg{User: "user", Domain: "example.com", Contacts: []string{"<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"}}
	res := c.Register(reg, "torture-pw", "MD5")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER after the torture: %d", res.StatusCode)
	}
	got := res.GetHeader("Contact")
	if got == nil || !strings.Contains(got.Value(), "?Route=%3Csip:sip.example.com%3E") {
		t.Fatalf("escaped header lost: %v", got)
	}
	if r.Count() != 1 {
		t.Fatalf("%d bindings", r.Count())
	}
}

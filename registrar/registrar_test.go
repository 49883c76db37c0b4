package registrar_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/icholy/digest"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

const (
	domain = "example.com"
	pw1001 = "s3cret-1001-pw"
	pw1002 = "other-1002-pw"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ptr(s string) *string { return &s }

// seed creates the extensions the tests register as.
func seed(t testing.TB, s *models.Store) {
	t.Helper()
	ctx := context.Background()
	for _, e := range []*models.Extension{
		{Domain: domain, UserID: "1001", Password: ptr(pw1001), Context: "default", Enabled: true},
		{Domain: domain, UserID: "1002", Password: ptr(pw1002), Context: "default", Enabled: true},
		{Domain: domain, UserID: "1003", Password: ptr("disabled-pw"), Context: "default", Enabled: false},
	} {
		if err := s.CreateExtension(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
}

type fixture struct {
	store    *models.Store
	reg      *registrar.Registrar
	udp, tcp string
	clk      *clock
	log      *syncBuf
}

func start(t *testing.T, opt registrar.Options) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}, log: &syncBuf{}}
	if opt.Store == nil {
		opt.Store = modelstest.Open(t, "sqlite", modelstest.Options{})
		seed(t, opt.Store)
	}
	f.store = opt.Store
	if opt.Now == nil {
		opt.Now = f.clk.Now
	}
	opt.Logger = slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opt.FlushInterval == 0 {
		opt.FlushInterval = 10 * time.Millisecond
	}
	f.reg, f.udp, f.tcp = registrartest.Start(t, opt)
	return f
}

func (f *fixture) dial(t *testing.T, network string) *registrartest.Client {
	if network == "udp" {
		return registrartest.Dial(t, "udp", f.udp)
	}
	return registrartest.Dial(t, "tcp", f.tcp)
}

func contactsOf(res *sip.Response) map[string]string {
	out := map[string]string{}
	for _, h := range res.GetHeaders("Contact") {
		c := h.(*sip.ContactHeader)
		exp, _ := c.Params.Get("expires")
		out[c.Address.String()] = exp
	}
	return out
}

func wantCode(t *testing.T, res *sip.Response, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("got %d %s, want %d:\n%s", res.StatusCode, res.Reason, code, res)
	}
}

func TestRegisterDigestBothAlgorithmsBothTransports(t *testing.T) {
	f := start(t, registrar.Options{})
	for _, network := range []string{"udp", "tcp"} {
		for _, alg := range []string{"MD5", "SHA-256"} {
			t.Run(network+"/"+alg, func(t *testing.T) {
				c := f.dial(t, network)
				reg := registrartest.Reg{User: "1001", Domain: domain}
				res := c.Do(reg)
				wantCode(t, res, 401)
				chs := res.GetHeaders("WWW-Authenticate")
				if len(chs) != 2 || !strings.Contains(chs[0].Value(), "algorithm=SHA-256") || !strings.Contains(chs[1].Value(), "algorithm=MD5") {
					t.Fatalf("challenges %v: want SHA-256 then MD5", chs)
				}
				for _, h := range chs {
					if !strings.Contains(h.Value(), `qop="auth"`) || !strings.Contains(h.Value(), `realm="example.com"`) {
						t.Fatalf("challenge %q lacks qop=auth or the domain's realm", h.Value())
					}
				}
				ch := registrartest.Challenge(t, res, alg)
				reg.Authorization = registrartest.Answer(t, ch, "1001", domain, pw1001)
				res = c.Do(reg)
				wantCode(t, res, 200)
				contact := "sip:1001@" + c.Local + ";transport=" + network
				if got := contactsOf(res); got[contact] != "3600" {
					t.Fatalf("200 lists %v, want %s with expires=3600 (the default)", got, contact)
				}
				if d := res.GetHeader("Date"); d == nil || d.Value() != "Mon, 30 Nov 2026 12:00:00 GMT" {
					t.Fatalf("Date header %v", d)
				}
				found := false
				for _, b := range f.reg.List() {
					if b.AOR == "1001@example.com" && b.Contact == contact {
						found = true
						if b.Received != c.Local || b.Transport != network || b.UserAgent != "registrartest" {
							t.Fatalf("binding %+v: want received %s over %s", b, c.Local, network)
						}
					}
				}
				if !found {
					t.Fatalf("binding %s not listed: %+v", contact, f.reg.List())
				}
			})
		}
	}
	if n := f.reg.Count(); n != 4 {
		t.Fatalf("Count %d, want 4 bindings", n)
	}
	if strings.Contains(f.log.String(), pw1001) {
		t.Fatal("the password reached the log")
	}
}

// An unknown user is answered exactly like a known one (svwar compares
// the answers): the same 401 without credentials, 403 with.
func TestNoUserEnumeration(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	shape := func(res *sip.Response) string {
		var names []string
		for _, h := range res.Headers() {
			names = append(names, h.Name())
		}
		return res.Reason + " " + strings.Join(names, ",")
	}
	known := c.Do(registrartest.Reg{User: "1001", Domain: domain})
	unknown := c.Do(registrartest.Reg{User: "9999", Domain: domain})
	disabled := c.Do(registrartest.Reg{User: "1003", Domain: domain})
	wantCode(t, known, 401)
	wantCode(t, unknown, 401)
	wantCode(t, disabled, 401)
	if shape(known) != shape(unknown) || shape(known) != shape(disabled) {
		t.Fatalf("401s differ:\n%s\n%s\n%s", shape(known), shape(unknown), shape(disabled))
	}
	wrong := c.Register(registrartest.Reg{User: "1001", Domain: domain}, "wrong", "MD5")
	nouser := c.Register(registrartest.Reg{User: "9999", Domain: domain}, "wrong", "MD5")
	nouser256 := c.Register(registrartest.Reg{User: "9999", Domain: domain}, "wrong", "SHA-256")
	off := c.Register(registrartest.Reg{User: "1003", Domain: domain}, "disabled-pw", "MD5")
	for _, res := range []*sip.Response{wrong, nouser, nouser256, off} {
		wantCode(t, res, 403)
	}
	if shape(wrong) != shape(nouser) || shape(wrong) != shape(off) {
		t.Fatalf("403s differ:\n%s\n%s", shape(wrong), shape(nouser))
	}
	if f.reg.Count() != 0 {
		t.Fatal("a refused REGISTER left a binding")
	}
}

func TestStaleAndForgedNonce(t *testing.T) {
	f := start(t, registrar.Options{NonceTTL: time.Minute})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "1001", Domain: domain}
	ch := registrartest.Challenge(t, c.Do(reg), "MD5")
	f.clk.Add(2 * time.Minute)
	reg.Authorization = registrartest.Answer(t, ch, "1001", domain, pw1001)
	res := c.Do(reg)
	wantCode(t, res, 401)
	if !strings.Contains(registrartest.Challenge(t, res, "MD5").String(), "stale=true") {
		t.Fatalf("expired nonce not answered stale=true: %s", res)
	}
	// A nonce the registrar did not sign is challenged afresh, not stale.
	ch.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	reg.Authorization = registrartest.Answer(t, ch, "1001", domain, pw1001)
	res = c.Do(reg)
	wantCode(t, res, 401)
	if strings.Contains(res.String(), "stale=true") {
		t.Fatal("a forged nonce was called stale")
	}
	// A second replica with the same key accepts the first one's nonce.
	g := start(t, registrar.Options{Store: f.store, Now: f.clk.Now})
	ch = registrartest.Challenge(t, c.Do(reg), "SHA-256")
	c2 := registrartest.Dial(t, "udp", g.udp)
	reg.Authorization = registrartest.Answer(t, ch, "1001", domain, pw1001)
	wantCode(t, c2.Do(reg), 200)
}

func TestExpiryPolicy(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "1001", Domain: domain, Expires: "30"}
	res := c.Register(reg, pw1001, "MD5")
	wantCode(t, res, 423)
	if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != "60" {
		t.Fatalf("423 without Min-Expires: 60: %s", res)
	}
	reg.Expires = "100000"
	res = c.Register(reg, pw1001, "MD5")
	wantCode(t, res, 200)
	for k, v := range contactsOf(res) {
		if v != "7200" {
			t.Fatalf("%s expires %s, want shortened to 7200", k, v)
		}
	}
	// A contact's own expires wins over the header; exactly the minimum
	// is accepted.
	reg.Contacts = []string{"<sip:1001@127.0.0.1:7000>;expires=60"}
	res = c.Register(reg, pw1001, "MD5")
	wantCode(t, res, 200)
	if got := contactsOf(res)["sip:1001@127.0.0.1:7000"]; got != "60" {
		t.Fatalf("contact expires %q, want 60", got)
	}
	reg.Contacts = []string{"<sip:1001@127.0.0.1:7000>;expires=59"}
	wantCode(t, c.Register(reg, pw1001, "MD5"), 423)
	reg.Expires = "soon"
	wantCode(t, c.Register(reg, pw1001, "MD5"), 400)
}

func TestThirdPartyRegistrationForbidden(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	// 1002 registers 1001's AOR with 1002's credentials, and with 1001's.
	res := c.Register(registrartest.Reg{User: "1001", FromUser: "1002", Domain: domain}, pw1001, "MD5")
	wantCode(t, res, 403)
	reg := registrartest.Reg{User: "1001", FromUser: "1002", Domain: domain}
	ch := registrartest.Challenge(t, c.Do(reg), "MD5")
	reg.Authorization = registrartest.Answer(t, ch, "1002", domain, pw1002)
	wantCode(t, c.Do(reg), 403)
	if f.reg.Count() != 0 {
		t.Fatal("third-party registration bound a contact")
	}
}

func TestContactsQRemovalWildcard(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "tcp")
	reg := registrartest.Reg{User: "1001", Domain: domain, Expires: "600",
		Contacts: []string{"<sip:1001@127.0.0.1:7001>;q=0.5", "<sip:1001@127.0.0.1:7002>;q=1.0, <sip:1001@127.0.0.1:7003>"}}
	res := c.Register(reg, pw1001, "SHA-256")
	wantCode(t, res, 200)
	if got := contactsOf(res); len(got) != 3 || got["sip:1001@127.0.0.1:7001"] != "600" {
		t.Fatalf("200 lists %v", got)
	}
	if !strings.Contains(res.String(), ";q=0.5") {
		t.Fatalf("q not echoed: %s", res)
	}
	// Expires 0 on one contact removes only it.
	reg.Contacts, reg.Expires = []string{"<sip:1001@127.0.0.1:7002>;expires=0"}, ""
	res = c.Register(reg, pw1001, "SHA-256")
	wantCode(t, res, 200)
	if got := contactsOf(res); len(got) != 2 || got["sip:1001@127.0.0.1:7002"] != "" {
		t.Fatalf("after removal 200 lists %v", got)
	}
	// A REGISTER without Contact lists the bindings and changes nothing.
	reg.Contacts = []string{}
	res = c.Register(reg, pw1001, "SHA-256")
	wantCode(t, res, 200)
	if len(contactsOf(res)) != 2 {
		t.Fatalf("query lists %v", contactsOf(res))
	}
	// "*" needs Expires: 0 and no other contact.
	for _, bad := range []registrartest.Reg{
		{User: "1001", Domain: domain, Contacts: []string{"*"}},
		{User: "1001", Domain: domain, Contacts: []string{"*"}, Expires: "60"},
		{User: "1001", Domain: domain, Contacts: []string{"*", "<sip:1001@127.0.0.1:7009>"}, Expires: "0"},
	} {
		wantCode(t, c.Register(bad, pw1001, "SHA-256"), 400)
	}
	res = c.Register(registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"*"}, Expires: "0"}, pw1001, "SHA-256")
	wantCode(t, res, 200)
	if len(res.GetHeaders("Contact")) != 0 || f.reg.Count() != 0 {
		t.Fatalf("wildcard left bindings: %s", res)
	}
}

func TestCallIDCSeqOrdering(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:1001@127.0.0.1:7001>"}}
	c.CSeq = 10
	wantCode(t, c.Register(reg, pw1001, "MD5"), 200) // CSeq 10 challenged, 11 bound
	c.CSeq = 5                                       // 5 challenged, 6: older than 11
	wantCode(t, c.Register(reg, pw1001, "MD5"), 500)
	// Another Call-ID (a rebooted phone) replaces the binding whatever its CSeq.
	c.CallID, c.CSeq = "rebooted@test", 1
	res := c.Register(reg, pw1001, "MD5")
	wantCode(t, res, 200)
	if len(contactsOf(res)) != 1 {
		t.Fatalf("contact duplicated: %s", res)
	}
}

func TestLimits503(t *testing.T) {
	f := start(t, registrar.Options{MaxContacts: 2, MaxBindings: 3, RetryAfter: 30})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:1001@127.0.0.1:7001>", "<sip:1001@127.0.0.1:7002>"}}
	wantCode(t, c.Register(reg, pw1001, "MD5"), 200)
	reg.Contacts = []string{"<sip:1001@127.0.0.1:7003>"}
	res := c.Register(reg, pw1001, "MD5")
	wantCode(t, res, 503)
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "30" {
		t.Fatalf("503 without Retry-After: 30: %s", res)
	}
	// Refreshing an existing contact is not a new one.
	reg.Contacts = []string{"<sip:1001@127.0.0.1:7002>"}
	wantCode(t, c.Register(reg, pw1001, "MD5"), 200)
	// The total: 1002 may add one, not two.
	c2 := f.dial(t, "udp")
	reg2 := registrartest.Reg{User: "1002", Domain: domain, Contacts: []string{"<sip:1002@127.0.0.1:7004>", "<sip:1002@127.0.0.1:7005>"}}
	wantCode(t, c2.Register(reg2, pw1002, "MD5"), 503)
	reg2.Contacts = reg2.Contacts[:1]
	wantCode(t, c2.Register(reg2, pw1002, "MD5"), 200)
}

func TestRequireAndDomain(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	res := c.Do(registrartest.Reg{User: "1001", Domain: domain, Extra: []string{"Require: nonsense"}})
	wantCode(t, res, 420)
	if h := res.GetHeader("Unsupported"); h == nil || h.Value() != "nonsense" {
		t.Fatalf("420 without Unsupported: %s", res)
	}
	wantCode(t, c.Do(registrartest.Reg{User: "1001", Domain: "elsewhere.example"}), 404)
}

// Bindings survive a restart; registration churn writes no change event
// and no audit row.
func TestBindingsSurviveRestart(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		seed(t, s)
		var before, auditsBefore int64
		s.DB().Model(&models.ChangeEvent{}).Count(&before)
		s.DB().Table("audit_events").Count(&auditsBefore)
		clk := &clock{t: time.Now().UTC()}
		r, err := registrar.New(registrar.Options{Store: s, Now: clk.Now, Listen: "127.0.0.1:0", NonceKey: []byte("registrartest nonce key, 32 byte"), FlushInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		addrs, err := r.Addrs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := registrartest.Dial(t, "udp", strings.TrimPrefix(addrs[0], "udp "))
		for i := 0; i < 5; i++ {
			wantCode(t, c.Register(registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:1001@127.0.0.1:7001>;q=0.7"}}, pw1001, "MD5"), 200)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var after, auditsAfter int64
		s.DB().Model(&models.ChangeEvent{}).Count(&after)
		s.DB().Table("audit_events").Count(&auditsAfter)
		if after != before || auditsAfter != auditsBefore {
			t.Fatalf("REGISTERs wrote %d change events and %d audit rows", after-before, auditsAfter-auditsBefore)
		}
		g := start(t, registrar.Options{Store: modelstest.Reopen(t, s, modelstest.Options{}), Now: clk.Now})
		bs := g.reg.List()
		if len(bs) != 1 || bs[0].AOR != "1001@example.com" || bs[0].Contact != "sip:1001@127.0.0.1:7001" || bs[0].Q != 0.7 || bs[0].Received != c.Local {
			t.Fatalf("after restart: %+v", bs)
		}
		// Expired bindings are swept from memory and database.
		clk.Add(2 * time.Hour)
		if bs := g.reg.List(); len(bs) != 0 {
			t.Fatalf("expired binding listed: %+v", bs)
		}
		n, err := s.DeleteExpiredBindings(context.Background(), clk.Now())
		if err != nil || n != 1 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
	})
}

// A new extension (a change event) can register without a restart; a
// deleted one no longer can.
func TestCredentialsFollowChanges(t *testing.T) {
	f := start(t, registrar.Options{})
	ctx := context.Background()
	e := &models.Extension{Domain: "new.example", UserID: "2001", Password: ptr("fresh-pw-2001"), Context: "default", Enabled: true}
	if err := f.store.CreateExtension(ctx, e); err != nil {
		t.Fatal(err)
	}
	f.reg.OnChange(models.ChangeEvent{Kind: models.KindExtension, Op: "create", Name: "2001@new.example"})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "2001", Domain: "new.example"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		res := c.Register(reg, "fresh-pw-2001", "SHA-256")
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new extension still refused: %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := f.store.DeleteExtension(ctx, e.ID, e.Version); err != nil {
		t.Fatal(err)
	}
	f.reg.OnChange(models.ChangeEvent{Kind: models.KindExtension, Op: "delete", Name: "2001@new.example"})
	for {
		res := c.Register(reg, "fresh-pw-2001", "SHA-256")
		if res.StatusCode == 404 { // its domain is no longer served
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted extension still answered %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOptionsToRegistrar(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	c.SendRaw([]byte("OPTIONS sip:" + domain + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.Local + ";branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\n" +
		"From: <sip:probe@" + domain + ">;tag=1\r\nTo: <sip:" + domain + ">\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
	res := c.Read(5 * time.Second)
	if res == nil {
		t.Fatal("no answer to OPTIONS")
	}
	wantCode(t, res, 200)
}

// No credential reaches the log, whatever the message: sipgo logs an
// unparseable message whole at Error, and the registrar's own logs never
// name one. The digest response and the password stay out.
func TestNoCredentialInLog(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	const secret = "deadbeefcafe0123456789secretresponse"
	// Unparseable (a Contact in addr-spec form with headers), carrying
	// a digest answer.
	c.SendRaw([]byte("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP " + c.Local + ";branch=z9hG4bKlog1\r\nMax-Forwards: 70\r\n" +
		"From: <sip:1001@example.com>;tag=1\r\nTo: <sip:1001@example.com>\r\nCall-ID: log1\r\nCSeq: 1 REGISTER\r\n" +
		"Contact: sip:1001@127.0.0.1?Route=x\r\nAuthorization: Digest username=\"1001\", realm=\"example.com\", nonce=\"n\", uri=\"sip:example.com\", response=\"" + secret + "\"\r\nContent-Length: 0\r\n\r\n"))
	// A header line without a name, quoting a password: sipgo's parse
	// error names the line.
	c.SendRaw([]byte("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP " + c.Local + ";branch=z9hG4bKlog2\r\nMax-Forwards: 70\r\n" +
		"From: <sip:1001@example.com>;tag=1\r\nTo: <sip:1001@example.com>\r\nCall-ID: log2\r\nCSeq: 1 REGISTER\r\n" +
		"username=1001 password=" + pw1001 + "\r\nContent-Length: 0\r\n\r\n"))
	// A wrong password and a right one.
	wantCode(t, c.Register(registrartest.Reg{User: "1001", Domain: domain}, "wrong-"+secret, "MD5"), 403)
	wantCode(t, c.Register(registrartest.Reg{User: "1001", Domain: domain}, pw1001, "SHA-256"), 200)
	// The unparseable one is logged by sipgo's reader goroutine.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(f.log.String(), "failed to parse") || !strings.Contains(f.log.String(), "no value in header") {
		if time.Now().After(deadline) {
			t.Fatalf("the unparseable message was not logged at all (the test would prove nothing):\n%s", f.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	log := f.log.String()
	for _, s := range []string{secret, pw1001, "Digest "} {
		if strings.Contains(log, s) {
			t.Fatalf("%q reached the log:\n%s", s, log)
		}
	}
}

// benchStore is an SQLite store with n users b000… (password
// bench-pw-123) in the test domain.
func benchStore(tb testing.TB, n int) *models.Store {
	tb.Helper()
	s := modelstest.Open(tb, "sqlite", modelstest.Options{})
	for i := 0; i < n; i++ {
		if err := s.CreateExtension(context.Background(), &models.Extension{Domain: domain, UserID: fmt.Sprintf("b%03d", i),
			Password: ptr("bench-pw-123"), Context: "default", Enabled: true}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// UDP REGISTERs are answered statelessly: a retransmission (same branch,
// same CSeq) is answered 200 again, while another request with the same
// Call-ID, CSeq and nonce count is a replay of its Authorization (403).
func TestStatelessRetransmission(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:1001@127.0.0.1:7001>"}}
	ch := registrartest.Challenge(t, c.Do(reg), "MD5")
	reg.Authorization = registrartest.Answer(t, ch, "1001", domain, pw1001)
	msg := c.Build(reg)
	for i := 0; i < 2; i++ {
		c.SendRaw([]byte(msg))
		res := c.Read(5 * time.Second)
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("send %d: %v", i+1, res)
		}
	}
	other := strings.Replace(msg, "branch=z9hG4bK", "branch=z9hG4bKother", 1)
	c.SendRaw([]byte(other))
	if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 403 {
		t.Fatalf("same CSeq, another branch: %v, want 403", res)
	}
	if f.reg.Count() != 1 {
		t.Fatalf("%d bindings", f.reg.Count())
	}
}

// A captured Authorization header cannot register another contact: the
// same nonce count again, in a new request, is refused (403); the owner's
// next request with the next nc, and a retransmission of the same request,
// still work.
func TestReplayedAuthorizationRefused(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:1001@127.0.0.1:7001>"}}
	ch := registrartest.Challenge(t, c.Do(reg), "MD5")
	reg.Authorization = registrartest.Answer(t, ch, "1001", domain, pw1001)
	wantCode(t, c.Do(reg), 200)

	attacker := f.dial(t, "udp")
	stolen := registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:evil@127.0.0.1:6666>"}, Authorization: reg.Authorization}
	wantCode(t, attacker.Do(stolen), 403)
	// The owner's next REGISTER (nc 2), captured on the way: resent with
	// Call-ID, CSeq and branch kept but another Contact, or unchanged from
	// another address (where the binding would then be reached), it is
	// no retransmission.
	answer := func(nc int) string {
		t.Helper()
		cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: "sip:" + domain, Username: "1001", Password: pw1001, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	reg.Authorization = answer(2)
	captured := c.Build(reg)
	c.SendRaw([]byte(captured))
	if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 200 {
		t.Fatalf("the owner's REGISTER: %v", res)
	}
	for name, msg := range map[string]string{
		"another contact": strings.Replace(captured, "sip:1001@127.0.0.1:7001", "sip:evil@127.0.0.1:6666", 1),
		"another source":  captured,
	} {
		attacker.SendRaw([]byte(msg))
		if res := attacker.Read(5 * time.Second); res == nil || res.StatusCode != 403 {
			t.Fatalf("captured REGISTER replayed (%s): %v, want 403", name, res)
		}
	}
	for _, b := range f.reg.List() {
		if strings.Contains(b.Contact, "evil") || b.Received != c.Local {
			t.Fatalf("the replayed request changed the binding: %+v (client at %s)", b, c.Local)
		}
	}
	// The owner's own retransmission still passes; the next nc works.
	c.SendRaw([]byte(captured))
	if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 200 {
		t.Fatalf("the owner's retransmission: %v", res)
	}
	reg.Authorization = answer(3)
	wantCode(t, c.Do(reg), 200)
}

// The UDP demux over an IPv6 socket: a registrar listening on IPv6
// answers, and records the source as the client's.
func TestRegisterOverIPv6(t *testing.T) {
	if ln, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	f := start(t, registrar.Options{Listen: "[::1]:0"})
	c := f.dial(t, "udp")
	res := c.Register(registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:1001@[::1]:7001>"}}, pw1001, "MD5")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over IPv6: %d", res.StatusCode)
	}
	bs := f.reg.List()
	if len(bs) != 1 || !strings.HasPrefix(bs[0].Received, "[::1]:") || bs[0].Transport != "udp" {
		t.Fatalf("bindings %+v: want one from [::1] over udp", bs)
	}
}

// Credentials computed for another URI are not for this request (RFC 2617
// §3.2.2.5): 400, nothing bound; the registrar's own address stands for
// the domain (what SIPp's [authentication] puts there).
func TestDigestURIMustMatch(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	reg := registrartest.Reg{User: "1001", Domain: domain, Contacts: []string{"<sip:1001@127.0.0.1:7001>"}}
	ch := registrartest.Challenge(t, c.Do(reg), "MD5")
	for i, uri := range []string{"sip:unrelated.invalid", "sip:1002@" + domain} {
		cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: uri, Username: "1001", Password: pw1001, Count: i + 1})
		if err != nil {
			t.Fatal(err)
		}
		reg.Authorization = cred.String()
		wantCode(t, c.Do(reg), 400)
	}
	if n := f.reg.Count(); n != 0 {
		t.Fatalf("%d bindings after mismatched credentials", n)
	}
	cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: "sip:" + f.udp, Username: "1001", Password: pw1001, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	reg.Authorization = cred.String()
	wantCode(t, c.Do(reg), 200)
}

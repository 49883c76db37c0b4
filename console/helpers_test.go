package console_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/console"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/providers"
)

// fakeResolver answers the presets' proxies as the runbook found them, so
// no test depends on the network's DNS.
type fakeResolver struct{}

func (fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	table := map[string][]string{
		"sip.plusnet.de": {"92.197.176.16", "92.197.176.17", "92.197.177.16"},
		"sip.1und1.de":   {"212.227.124.129", "2001:8d8:104:100:212:227:124:129"},
	}
	var out []net.IPAddr
	for _, s := range table[host] {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// clock is a settable clock for session expiry.
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

type env struct {
	t      testing.TB
	store  *models.Store
	logs   *syncBuffer // the console's log
	ui     *console.Console
	srv    *httptest.Server
	clock  *clock
	tokens map[string]string // by scope; "admin" is the admin token
	reg    *prometheus.Registry
}

type envOptions struct {
	// eslNode, when set, runs a real ESL manager against this event
	// socket (an esltest server) for the API and the console.
	eslNode     string
	tls         bool
	gatewayPoll time.Duration
	// stunProbe, when set, answers GET /api/v1/stun/probe.
	stunProbe func() *api.STUNProbeOut
	// registrations, when set, is fsplane's own registrar.
	registrations api.Registrations
	// backend is "sqlite" (the default) or "postgres".
	backend string
	// replicaOf, when set, serves another API and console on that env's
	// database, clock and tokens: a second replica, or the same one after
	// a restart (nothing in memory is shared).
	replicaOf *env
}

// syncBuffer is a log sink the console's goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv serves the API and the console the way serve mounts them, on
// loopback, over a fresh SQLite store with the default profiles and the
// presets' ranges.
func newEnv(t testing.TB, opts ...envOptions) *env {
	t.Helper()
	var opt envOptions
	if len(opts) > 0 {
		opt = opts[0]
	}
	ev := &env{t: t, clock: &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}, tokens: map[string]string{}, logs: &syncBuffer{}}
	bus := &events.Bus{}
	if o := opt.replicaOf; o != nil {
		ev.store = modelstest.Reopen(t, o.store, modelstest.Options{OnCommit: bus.Publish})
		ev.clock, ev.tokens = o.clock, o.tokens
	} else {
		if opt.backend == "" {
			opt.backend = "sqlite"
		}
		ev.store = modelstest.Open(t, opt.backend, modelstest.Options{OnCommit: bus.Publish})
		ctx := context.Background()
		if err := providers.Seed(ctx, ev.store, providers.SeedOptions{ExternalIPv4: "46.4.96.105", ExternalIPv6: "2a01:4f8:140:829d::2"}); err != nil {
			t.Fatal(err)
		}
		for _, sc := range auth.AllScopes {
			ev.tokens[sc] = ev.mintToken(sc, []string{sc})
		}
	}
	verifier := auth.NewVerifier(auth.VerifierOptions{Store: ev.store})
	ao := api.Options{Store: ev.store, Resolver: fakeResolver{}, Verifier: verifier, STUNProbe: opt.stunProbe, Registrations: opt.registrations}
	var view console.ESL
	if opt.eslNode != "" {
		m := ev.runESL(bus, opt.eslNode)
		ao.ESL, view = m, m
	}
	apiHandler := api.New(ao)
	ev.reg = prometheus.NewRegistry()
	ui, err := console.New(console.Options{API: apiHandler, Verifier: verifier, Store: ev.store, ESL: view, Registerer: ev.reg,
		Logger: slog.New(slog.NewTextHandler(ev.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    ev.clock.Now, IdleTimeout: time.Hour, MaxAge: 12 * time.Hour, GatewayPoll: opt.gatewayPoll})
	if err != nil {
		t.Fatal(err)
	}
	ev.ui = ui
	bus.Subscribe(ui.OnChange)
	mux := http.NewServeMux()
	mux.Handle("/", apiHandler)
	mux.Handle(console.Path, ui)
	ev.srv = httptest.NewUnstartedServer(mux)
	ev.srv.Config.RegisterOnShutdown(ui.Close)
	if opt.tls {
		ev.srv.StartTLS()
	} else {
		ev.srv.Start()
	}
	t.Cleanup(func() {
		within(t, "the console and its HTTP server to close", func() { ui.Close(); ev.srv.Close() })
	})
	return ev
}

// metric returns the value of the counter or gauge name with the label
// value (any label when value is "").
func (ev *env) metric(name, value string) float64 {
	ev.t.Helper()
	mfs, err := ev.reg.Gather()
	if err != nil {
		ev.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := value == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == value
			}
			if match {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// within runs f and fails the test with every goroutine's stack if it
// does not return in 30 seconds: a hang at cleanup names itself instead
// of running into the package's timeout.
func within(t testing.TB, what string, f func()) {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		buf := make([]byte, 4<<20)
		t.Errorf("waited 30s for %s; goroutines:\n%s", what, buf[:runtime.Stack(buf, true)])
	}
}

// runESL starts an ESL manager tuned for tests, stopped at cleanup
// (before the store closes: cleanups run last-in first-out).
func (ev *env) runESL(bus *events.Bus, node string) *esl.Manager {
	ev.t.Helper()
	m, err := esl.New(esl.Options{
		Nodes: []string{node}, Password: "ClueCon", Store: ev.store,
		DialTimeout: time.Second, AuthTimeout: time.Second, CommandTimeout: 3 * time.Second,
		HealthInterval: 200 * time.Millisecond, HealthTimeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		CoalesceWindow: 20 * time.Millisecond, CoalesceMax: 200 * time.Millisecond, DeleteWait: time.Second,
	})
	if err != nil {
		ev.t.Fatal(err)
	}
	bus.Subscribe(m.OnChange)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	ev.t.Cleanup(func() { cancel(); within(ev.t, "the ESL manager to stop", func() { <-done }) })
	return m
}

func (ev *env) mintToken(name string, scopes []string) string {
	ev.t.Helper()
	text, err := auth.NewToken()
	if err != nil {
		ev.t.Fatal(err)
	}
	if err := ev.store.CreateToken(context.Background(), &models.APIToken{Name: name, Hash: auth.Hash(text), Scopes: scopes}); err != nil {
		ev.t.Fatal(err)
	}
	return text
}

// revoke deletes the tokens with this name.
func (ev *env) revoke(name string) {
	ev.t.Helper()
	toks, err := ev.store.ListTokens(context.Background())
	if err != nil {
		ev.t.Fatal(err)
	}
	for _, k := range toks {
		if k.Name == name {
			if err := ev.store.DeleteToken(context.Background(), k.ID); err != nil {
				ev.t.Fatal(err)
			}
		}
	}
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see where each answer leads.
type browser struct {
	t    testing.TB
	ev   *env
	c    *http.Client
	csrf string // from the last page that had a form
}

func (ev *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := *ev.srv.Client() // a copy: each browser has its own jar
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: ev.t, ev: ev, c: &c}
}

type page struct {
	Code     int
	Location string
	Header   http.Header
	Body     string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := &page{Code: res.StatusCode, Location: res.Header.Get("Location"), Header: res.Header, Body: string(body)}
	if m := csrfRE.FindStringSubmatch(p.Body); m != nil {
		b.csrf = m[1]
	}
	return p
}

// at is a browser with this one's cookies that talks to another env (both
// listen on 127.0.0.1, and cookies do not tell ports apart).
func (b *browser) at(ev *env) *browser {
	c := *ev.srv.Client()
	c.Jar = b.c.Jar
	c.CheckRedirect = b.c.CheckRedirect
	return &browser{t: b.t, ev: ev, c: &c, csrf: b.csrf}
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.ev.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form; the page's CSRF token is added unless the form has a
// "csrf" entry of its own (nil to leave it out).
func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	} else if form["csrf"] == nil {
		delete(form, "csrf")
	}
	req, err := http.NewRequest(http.MethodPost, b.ev.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login logs in with token and fails the test unless it leads on.
func (b *browser) login(token string) {
	b.t.Helper()
	b.get("/ui/login")
	p := b.post("/ui/login", url.Values{"token": {token}})
	if p.Code != http.StatusSeeOther || p.Location != "/ui/" {
		b.t.Fatalf("login: %d → %q\n%s", p.Code, p.Location, p.Body)
	}
}

func (b *browser) sessionCookie() *http.Cookie {
	u, _ := url.Parse(b.ev.srv.URL + "/ui/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "fsplane_session" {
			return c
		}
	}
	return nil
}

func (p *page) want(t testing.TB, code int) *page {
	t.Helper()
	if p.Code != code {
		t.Fatalf("status %d, want %d (Location %q)\n%s", p.Code, code, p.Location, p.Body)
	}
	return p
}

func (p *page) toLogin(t testing.TB) {
	t.Helper()
	if p.Code != http.StatusSeeOther || p.Location != "/ui/login" {
		t.Fatalf("want a redirect to /ui/login, got %d → %q", p.Code, p.Location)
	}
}

func (ev *env) trunkNames() []string {
	ev.t.Helper()
	rows, _, err := ev.store.ListTrunks(context.Background(), models.TrunkFilter{})
	if err != nil {
		ev.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Name)
	}
	return out
}

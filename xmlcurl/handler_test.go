package xmlcurl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
)

// verifier is what serve passes: the API's verifier over the store.
func verifier(s *models.Store) *auth.Verifier {
	return auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: time.Minute})
}

// downTokens is a token store whose database cannot be reached.
type downTokens struct{}

func (downTokens) TokenByHash(context.Context, string) (*models.APIToken, error) {
	return nil, fmt.Errorf("token: %w", models.ErrUnavailable)
}

func (downTokens) TouchToken(context.Context, uint, time.Time) error { return models.ErrUnavailable }

func TestAuthentication(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	seed(t, f.s)
	f.h.verifier = verifier(f.s)
	xml, admin, reader := mintToken(t, f.s, auth.ScopeXMLCurl), mintToken(t, f.s, auth.ScopeAdmin), mintToken(t, f.s, auth.ScopeSIPRead)

	cases := []struct {
		name  string
		set   func(r *http.Request)
		want  int
		realm bool
	}{
		{"none", func(r *http.Request) {}, 401, true},
		{"basic", func(r *http.Request) { r.SetBasicAuth(testBasicUser, testBasicPass) }, 200, false},
		{"basic wrong password", func(r *http.Request) { r.SetBasicAuth(testBasicUser, testBasicPass+"x") }, 401, true},
		{"basic wrong user", func(r *http.Request) { r.SetBasicAuth("other", testBasicPass) }, 401, true},
		{"basic password prefix", func(r *http.Request) { r.SetBasicAuth(testBasicUser, testBasicPass[:3]) }, 401, true},
		{"bearer xmlcurl", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+xml) }, 200, false},
		{"bearer admin", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+admin) }, 200, false},
		{"bearer without the scope", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+reader) }, 401, true},
		{"bearer unknown", func(r *http.Request) { r.Header.Set("Authorization", "Bearer fsp_nope") }, 401, true},
		{"garbage", func(r *http.Request) { r.Header.Set("Authorization", "Negotiate abc") }, 401, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(sipAuth("1000", "127.0.0.1")))
			c.set(r)
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d", w.Code, c.want)
			}
			if got := w.Header().Get("WWW-Authenticate"); c.realm != (got == `Basic realm="fsplane"`) {
				t.Fatalf("WWW-Authenticate %q", got)
			}
			if c.want == 200 {
				if pw, _ := userPassword(t, w.Body.String()); !pw.is("1234-secret") {
					t.Fatalf("authenticated answer: %s", w.Body.String())
				}
			} else if strings.Contains(w.Body.String(), "1234-secret") {
				t.Fatal("refused request got the password")
			}
		})
	}

	t.Run("token store failing", func(t *testing.T) {
		h := New(Options{Store: f.s, Verifier: auth.NewVerifier(auth.VerifierOptions{Store: downTokens{}})})
		r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(configReq("sofia.conf")))
		r.Header.Set("Authorization", "Bearer "+xml)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
			!strings.Contains(w.Body.String(), "database unavailable") {
			t.Fatalf("status %d, Retry-After %q, body %q", w.Code, w.Header().Get("Retry-After"), w.Body.String())
		}
	})
	t.Run("basic disabled", func(t *testing.T) {
		h := New(Options{Store: f.s})
		r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(configReq("sofia.conf")))
		r.SetBasicAuth("", "")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d with Basic disabled and empty credentials", w.Code)
		}
	})
}

func TestSourceNetworks(t *testing.T) {
	f := newFixture(t, "sqlite", Options{Networks: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"),
	}})
	for addr, want := range map[string]int{
		"192.0.2.7:40000":          200,
		"[::ffff:192.0.2.7]:40000": 200,
		"[2001:db8::5]:40000":      200,
		"198.51.100.1:40000":       403,
		"[2001:db9::1]:40000":      403,
		"garbage":                  403,
	} {
		r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(configReq("timezones.conf")))
		r.RemoteAddr = addr
		r.SetBasicAuth(testBasicUser, testBasicPass)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%s: status %d, want %d", addr, w.Code, want)
		}
	}
}

func TestRequestLimits(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	r := httptest.NewRequest(http.MethodPut, Path, strings.NewReader(""))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", w.Code)
	}
	big := configReq("sofia.conf") + "&X-Pad=" + strings.Repeat("a", maxBody)
	if code, _ := f.post(t, big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", code)
	}
	// A body that breaks off is a bad request, not an oversized one.
	r = httptest.NewRequest(http.MethodPost, Path, io.MultiReader(strings.NewReader("hostname=vm"), errReader{}))
	r.SetBasicAuth(testBasicUser, testBasicPass)
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("broken body: %d", w.Code)
	}
	// GET with the form in the query (mod_xml_curl's method=GET style).
	r = httptest.NewRequest(http.MethodGet, Path+"?"+configReq("post_load_switch.conf"), nil)
	r.SetBasicAuth(testBasicUser, testBasicPass)
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != 200 || !isNotFound(w.Body.String()) {
		t.Fatalf("GET: %d %s", w.Code, w.Body.String())
	}
}

// TestNotOursWithoutDatabase: lookups fsplane does not own are answered
// not-found without the database, so FreeSWITCH's start-up is never held
// up by them.
func TestNotOursWithoutDatabase(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, body := range capturedBodies(t)["startup.txt"] {
		req := ParseRequest(body)
		ours := req.Section == "directory" && req.Purpose == "gateways" ||
			req.KeyValue == "sofia.conf" || req.KeyValue == "acl.conf"
		if ours {
			continue
		}
		code, answer := f.post(t, body)
		if code != 200 || !isNotFound(answer) {
			t.Errorf("%s/%s: %d\n%s", req.Section, req.KeyValue, code, answer)
		}
	}
	if st, _ := f.h.Health(); st != "ok" {
		t.Fatalf("not-ours lookups touched the database: health %q", st)
	}
}

// TestCapturedBodiesAll answers every captured body: 200, parseable,
// untouched by the pre-processor.
func TestCapturedBodiesAll(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	seed(t, f.s)
	n := 0
	for file, bodies := range capturedBodies(t) {
		for i, body := range bodies {
			code, answer := f.post(t, body)
			if code != 200 {
				t.Errorf("%s line %d: status %d", file, i+1, code)
			}
			parseDoc(t, answer)
			assertSurvivesPreprocess(t, answer)
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d captured bodies", n)
	}
}

func TestGatewayRules(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	seed(t, f.s)
	ctx := context.Background()
	create := func(tr *models.Trunk) {
		t.Helper()
		if err := f.s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	base := func(name string) *models.Trunk {
		return &models.Trunk{Name: name, Provider: "lab", Profile: "lab", Proxy: "sip.lab.example", Transport: "udp", Enabled: true}
	}
	for i := 0; i < maxInlineCIDRs+3; i++ {
		if err := f.s.CreateRange(ctx, &models.ProviderRange{Provider: "lab", CIDR: fmt.Sprintf("10.%d.0.0/16", i)}); err != nil {
			t.Fatal(err)
		}
	}
	noPW := base("reg-no-password")
	noPW.Register, noPW.Username = true, "u"
	create(noPW)
	tls := base("tls-on-plain-profile")
	tls.Transport = "tls"
	create(tls)
	sctp := base("odd-transport")
	sctp.Transport = "sctp"
	create(sctp)
	v6 := base("v6-registrar")
	v6.Register, v6.Username, v6.Password = true, "u", ptr("p")
	v6.Realm, v6.FromDomain, v6.OutboundProxy = "2001:db8::1", "2001:db8::2", "sip:2001:db8::3"
	v6.PingSeconds, v6.ExpireSeconds = 3, 120
	create(v6)
	explicit := base("explicit-register-proxy")
	explicit.Register, explicit.Username, explicit.Password = true, "u", ptr("p")
	explicit.OutboundProxy, explicit.RegisterProxy = "192.0.2.1", "192.0.2.2:5070"
	create(explicit)

	_, body := f.post(t, gatewaysReq("lab", "vm"))
	if got := strings.Join(gatewayNames(t, body), ","); got != "explicit-register-proxy,v6-registrar" {
		t.Fatalf("gateways %q\n%s", got, body)
	}
	want := map[string]string{
		"realm": "[2001:db8::1]", "from-domain": "[2001:db8::2]", "outbound-proxy": "sip:[2001:db8::3]",
		"register-proxy": "sip:[2001:db8::3]", "expire-seconds": "120",
	}
	for name, v := range want {
		if got, _ := gatewayParam(t, body, "v6-registrar", name); got != v {
			t.Errorf("v6-registrar %s = %q, want %q", name, got, v)
		}
	}
	if _, ok := gatewayParam(t, body, "v6-registrar", "ping"); ok {
		t.Error("ping below 5 s rendered")
	}
	if got, _ := gatewayParam(t, body, "explicit-register-proxy", "register-proxy"); got != "192.0.2.2:5070" {
		t.Errorf("explicit register-proxy = %q", got)
	}
	acl, _ := gatewayParam(t, body, "v6-registrar", "gw-auth-acl")
	if n := len(strings.Split(acl, ",")); n != maxInlineCIDRs {
		t.Errorf("gw-auth-acl has %d CIDRs, want %d", n, maxInlineCIDRs)
	}
	log := f.log.String()
	for _, w := range []string{`trunk \"reg-no-password\" left out`, `trunk \"tls-on-plain-profile\" left out`,
		`trunk \"odd-transport\" left out`, "at most 32 inline CIDRs"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q", w)
		}
	}
}

func TestBracketHost(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8::1":         "[2001:db8::1]",
		"[2001:db8::1]":       "[2001:db8::1]",
		"[2001:db8::1]:5060":  "[2001:db8::1]:5060",
		"sip:2001:db8::1":     "sip:[2001:db8::1]",
		"SIPS:2001:db8::1":    "SIPS:[2001:db8::1]",
		"192.0.2.1":           "192.0.2.1",
		"192.0.2.1:5060":      "192.0.2.1:5060",
		"sip.example.com":     "sip.example.com",
		"::ffff:192.0.2.1":    "::ffff:192.0.2.1",
		"fe80::1%eth0":        "fe80::1%eth0",
		"":                    "",
		"sip.example.com:506": "sip.example.com:506",
	} {
		if got := bracketHost(in); got != want {
			t.Errorf("bracketHost(%q) = %q, want %q", in, got, want)
		}
	}
	if got := bareHost("[2001:db8::1]"); got != "2001:db8::1" {
		t.Errorf("bareHost = %q", got)
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, "sqlite", Options{Registerer: reg})
	f.post(t, configReq("timezones.conf"))
	if got := f.count(kindOther, resultNotFound); got != 1 {
		t.Fatalf("counter %v", got)
	}
	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(""))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	io.Copy(io.Discard, w.Result().Body)
	if got := f.count(kindDenied, resultDenied); got != 1 {
		t.Fatalf("denied counter %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"fsplane_xmlcurl_requests_total", "fsplane_xmlcurl_request_duration_seconds", "fsplane_xmlcurl_degraded"} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %s not registered (have %q)", want, names)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

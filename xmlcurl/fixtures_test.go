package xmlcurl

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/providers"
)

func ptr[T any](v T) *T { return &v }

const (
	testBasicUser = "freeswitch"
	testBasicPass = "xml-curl-pw"
	testCarrierPW = "carrier-test-password"
)

// The seed's hosts: the runbook's public addresses.
var (
	seedIPv4 = netip.MustParseAddr("46.4.96.105")
	seedIPv6 = netip.MustParseAddr("2a01:4f8:140:829d::2")
)

// presetTrunk creates a trunk from a built-in preset the way the API does:
// the preset fills everything but name, numbers and credentials.
func presetTrunk(t testing.TB, preset, name string, numbers ...string) *models.Trunk {
	t.Helper()
	p, err := providers.ByName(preset)
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Trunk()
	tr.Name = name
	tr.Numbers = numbers
	return &tr
}

func plusnetTrunk(t testing.TB) *models.Trunk {
	return presetTrunk(t, providers.Plusnet, "plusnet", "+493455667290")
}

func einsUndEinsTrunk(t testing.TB) *models.Trunk {
	tr := presetTrunk(t, providers.OneAndOne, "1und1", "+4934556643378", "+493455630488")
	tr.Username = "493455664337"
	tr.Password = ptr("1und1-Secret")
	return tr
}

// seed writes the fixture every golden file is rendered from.
func seed(t testing.TB, s *models.Store) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range providers.DefaultProfiles(seedIPv4, seedIPv6) {
		must(s.CreateProfile(ctx, &p))
	}
	// Operator extras: one valid, the rest refused for the reason named.
	must(s.CreateProfile(ctx, &models.Profile{
		Name: "lab", Family: models.FamilyIPv4, BindIP: "192.0.2.10", SIPPort: 5080, RTPIP: "192.0.2.11",
		AuthCalls: true, Context: "lab",
		Params: models.StringMap{
			"dtmf-type": "rfc2833", "dialplan": "XML,enum", "sip-ip": "203.0.113.66",
			"accept-blind-reg": "true", "Bad Name": "x", "user-agent-string": "fsplane\x01",
		},
	}))
	// Ranges first: an IP-authenticated trunk needs its provider's.
	for _, name := range []string{providers.Plusnet, providers.OneAndOne} {
		p, err := providers.ByName(name)
		must(err)
		for _, r := range p.ProviderRanges() {
			must(s.CreateRange(ctx, &r))
		}
	}
	must(s.CreateTrunk(ctx, plusnetTrunk(t)))
	must(s.CreateTrunk(ctx, einsUndEinsTrunk(t)))
	// Only on node fs2; a bare IPv6 proxy gets bracketed.
	must(s.CreateTrunk(ctx, &models.Trunk{
		Name: "lab-fs2", Provider: "plusnet", Profile: "internal", Proxy: "2001:db8::10",
		Register: false, Transport: "tcp", PingSeconds: 30, Context: "lab", Enabled: true,
		Hostnames: models.StringList{"fs2"},
	}))
	must(s.CreateTrunk(ctx, &models.Trunk{
		Name: "old-provider", Provider: "plusnet", Profile: "internal", Proxy: "sip.old.example",
		Register: false, Transport: "udp", Enabled: false,
	}))
	must(s.CreateExtension(ctx, &models.Extension{
		Domain: "127.0.0.1", UserID: "1000", Password: ptr("1234-secret"), DisplayName: "Reception",
		CallerID: "+493455664337", Context: "default", Enabled: true,
	}))
	must(s.CreateExtension(ctx, &models.Extension{
		Domain: "127.0.0.1", UserID: "1001", Password: ptr("gone"), Context: "default", Enabled: false,
	}))
	must(s.CreateExtension(ctx, &models.Extension{
		Domain: "127.0.0.1", UserID: "1002", Context: "default", Enabled: true,
	}))
}

// logBuffer collects the handler's log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	h   *Handler
	s   *models.Store
	log *logBuffer
}

// newFixture opens a store on backend whose commits feed the handler's
// OnChange, as serve wires it through the events bus.
func newFixture(t testing.TB, backend string, opt Options) *fixture {
	t.Helper()
	var h *Handler
	s := modelstest.Open(t, backend, modelstest.Options{OnCommit: func(ev models.ChangeEvent) {
		if h != nil {
			h.OnChange(ev)
		}
	}})
	lb := &logBuffer{}
	opt.Store = s
	opt.Logger = slog.New(slog.NewTextHandler(lb, nil))
	if opt.BasicUser == "" {
		opt.BasicUser, opt.BasicPassword = testBasicUser, testBasicPass
	}
	h = New(opt)
	h.carrierPassword = testCarrierPW
	return &fixture{h: h, s: s, log: lb}
}

// post sends body as FreeSWITCH does and returns status and answer.
func (f *fixture) post(t testing.TB, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("User-Agent", "freeswitch-xml/1.0")
	r.SetBasicAuth(testBasicUser, testBasicPass)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// sipAuth builds the body of a REGISTER's directory lookup, shaped like
// the captured one.
func sipAuth(user, domain string) string {
	return formatRequest(Request{Hostname: "vm", Section: "directory", TagName: "domain", KeyName: "name", KeyValue: domain}, []Param{
		{"Event-Name", "REQUEST_PARAMS"}, {"Core-UUID", "4f030381-44f9-4bbd-bf1d-4c50c84a6347"},
		{"FreeSWITCH-Hostname", "vm"}, {"Event-Calling-Function", "sofia_reg_parse_auth"},
		{"action", "sip_auth"}, {"sip_profile", "internal"}, {"sip_auth_username", user},
		{"sip_auth_realm", domain}, {"sip_auth_method", "REGISTER"},
		{"key", "id"}, {"user", user}, {"domain", domain}, {"ip", "127.0.0.1"},
	})
}

func gatewaysReq(profile, hostname string) string {
	return formatRequest(Request{Hostname: hostname, Section: "directory"}, []Param{
		{"Event-Name", "REQUEST_PARAMS"}, {"Event-Calling-Function", "config_sofia"},
		{"purpose", "gateways"}, {"profile", profile},
	})
}

func configReq(name string) string {
	return formatRequest(Request{Hostname: "vm", Section: "configuration", TagName: "configuration", KeyName: "name", KeyValue: name}, nil)
}

// parseDoc parses an answer as any XML parser would.
func parseDoc(t testing.TB, body string) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatalf("answer is not XML: %v\n%s", err, body)
	}
	return doc
}

func isNotFound(body string) bool { return body == string(notFound) }

// paramValue returns the value of <param name=name> under path, and
// whether there is one.
func paramValue(doc *etree.Document, path, name string) (string, bool) {
	for _, e := range doc.FindElements(path) {
		if e.SelectAttrValue("name", "") == name {
			return e.SelectAttrValue("value", ""), true
		}
	}
	return "", false
}

package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/providers"
)

// The runbook's host addresses.
const (
	hostV4 = "46.4.96.105"
	hostV6 = "2a01:4f8:140:829d::2"
)

// fakeResolver answers from a table; hook, when set, runs inside every
// lookup (tests use it to write concurrently between read and write).
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	fail    bool
	hook    func()
	asked   []string
}

func (r *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	hook := r.hook
	r.asked = append(r.asked, host)
	ips, fail := r.answers[host], r.fail
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	if fail {
		return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

type env struct {
	t        testing.TB
	store    *models.Store
	e        *echo.Echo
	resolver *fakeResolver
	logs     *bytes.Buffer
	// tokens by scope; "admin" is the admin token.
	tokens map[string]string

	mu     sync.Mutex
	events []models.ChangeEvent

	doc    *openapi3.T
	router routers.Router
}

type envOptions struct {
	esl api.ESL
	// eslOn, when set, builds the ESL source on the env's store.
	eslOn func(*models.Store) api.ESL
	// renderOn, when set, builds the render_error source on the env's store.
	renderOn func(*models.Store) api.Renderer
	// federation, when set, serves /api/v1/federation on the env's store.
	federation func(*models.Store) api.Federation
	// registrarOn, when set, builds the registrations source on the env's
	// store.
	registrarOn func(*models.Store) api.Registrations
}

func newEnv(t testing.TB, backend string, opts ...envOptions) *env {
	t.Helper()
	var opt envOptions
	if len(opts) > 0 {
		opt = opts[0]
	}
	ev := &env{t: t, tokens: map[string]string{}, logs: &bytes.Buffer{}}
	ev.resolver = &fakeResolver{answers: map[string][]string{
		"sip.plusnet.de": {"92.197.176.16", "92.197.176.17", "92.197.177.16"},
		"sip.1und1.de":   {"212.227.124.129", "2001:8d8:104:100:212:227:124:129"},
	}}
	ev.store = modelstest.Open(t, backend, modelstest.Options{OnCommit: func(c models.ChangeEvent) {
		ev.mu.Lock()
		ev.events = append(ev.events, c)
		ev.mu.Unlock()
	}})
	ctx := context.Background()
	if err := providers.Seed(ctx, ev.store, providers.SeedOptions{ExternalIPv4: hostV4, ExternalIPv6: hostV6}); err != nil {
		t.Fatal(err)
	}
	for _, sc := range auth.AllScopes {
		ev.tokens[sc] = ev.mintToken(sc, []string{sc}, nil)
	}
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: ev.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := api.Options{Store: ev.store, Logger: logger, Resolver: ev.resolver}
	if opt.esl != nil {
		o.ESL = opt.esl
	}
	if opt.eslOn != nil {
		o.ESL = opt.eslOn(ev.store)
	}
	if opt.renderOn != nil {
		o.Render = opt.renderOn(ev.store)
	}
	if opt.federation != nil {
		o.Federation = opt.federation(ev.store)
	}
	if opt.registrarOn != nil {
		o.Registrations = opt.registrarOn(ev.store)
	}
	ev.e = api.New(o)
	ev.loadDoc()
	ev.events = nil
	return ev
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (ev *env) mintToken(name string, scopes []string, expires *time.Time) string {
	ev.t.Helper()
	text, err := auth.NewToken()
	if err != nil {
		ev.t.Fatal(err)
	}
	err = ev.store.CreateToken(context.Background(), &models.APIToken{Name: name, Hash: auth.Hash(text), Scopes: scopes, ExpiresAt: expires})
	if err != nil {
		ev.t.Fatal(err)
	}
	return text
}

func (ev *env) loadDoc() {
	ev.t.Helper()
	rec := httptest.NewRecorder()
	ev.e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		ev.t.Fatalf("openapi.json: %d", rec.Code)
	}
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		ev.t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		ev.t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	ev.doc = doc
	if ev.router, err = legacy.NewRouter(doc); err != nil {
		ev.t.Fatal(err)
	}
}

type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r *resp) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Fields returns the error body's fields.
func (r *resp) Fields(t *testing.T) map[string]string {
	t.Helper()
	var b api.ErrorBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("not an error body: %v\n%s", err, r.Body)
	}
	return b.Fields
}

type hdr map[string]string

// do sends a request through the echo handler as a client at
// 192.0.2.10 and checks the answer against the OpenAPI document.
func (ev *env) do(method, path, token string, body any, h ...hdr) *resp {
	ev.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			ev.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.10:40000"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, m := range h {
		for k, v := range m {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
	}
	rec := httptest.NewRecorder()
	ev.e.ServeHTTP(rec, req)
	r := &resp{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	ev.checkDoc(req, r)
	return r
}

// checkDoc validates a response against the OpenAPI document: the route
// and status must be documented and the body must match its schema
// (which forbids undocumented fields).
func (ev *env) checkDoc(req *http.Request, r *resp) {
	ev.t.Helper()
	if r.Code == http.StatusMethodNotAllowed {
		return // echo's router answered: no operation to check against
	}
	route, params, err := ev.router.FindRoute(req)
	if err != nil {
		if r.Code == http.StatusNotFound || r.Code == http.StatusMethodNotAllowed {
			return // no such route: nothing to check against
		}
		ev.t.Errorf("%s %s answered %d but is not in the OpenAPI document: %v", req.Method, req.URL.Path, r.Code, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.Code,
		Header:                 r.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		ev.t.Errorf("%s %s → %d does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, r.Code, err, r.Body)
	}
}

// want fails unless the response has the status.
func (r *resp) want(t *testing.T, code int) *resp {
	t.Helper()
	if r.Code != code {
		t.Fatalf("status %d, want %d; body: %s", r.Code, code, r.Body)
	}
	return r
}

func (ev *env) takeEvents() []models.ChangeEvent {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := ev.events
	ev.events = nil
	return out
}

func init() {
	// acl.conf comes back as XML text; the document types it */*.
	openapi3filter.RegisterBodyDecoder("text/xml", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
}

package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/models/modelstest"
)

// TestOpenAPIMatchesRoutes: every route echo serves is in the document,
// and every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	store := modelstest.Open(t, "sqlite", modelstest.Options{})
	for _, withXMLCurl := range []bool{false, true} {
		opt := api.Options{Store: store}
		if withXMLCurl {
			opt.XMLCurl = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
		}
		e := api.New(opt)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
		var doc struct {
			OpenAPI string                               `json:"openapi"`
			Paths   map[string]map[string]map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.") {
			t.Errorf("openapi %q", doc.OpenAPI)
		}
		served := map[string]bool{}
		for _, r := range e.Routes() {
			p := r.Path
			for _, seg := range strings.Split(p, "/") {
				if strings.HasPrefix(seg, ":") {
					p = strings.Replace(p, seg, "{"+seg[1:]+"}", 1)
				}
			}
			key := strings.ToLower(r.Method) + " " + p
			served[key] = true
			if _, ok := doc.Paths[p][strings.ToLower(r.Method)]; !ok {
				t.Errorf("%s is served but not documented", key)
			}
		}
		documented := 0
		for p, ops := range doc.Paths {
			for m, op := range ops {
				documented++
				if !served[m+" "+p] {
					t.Errorf("%s %s is documented but not served", m, p)
				}
				if scope, ok := op["x-fsplane-scope"].(string); ok {
					resp := op["responses"].(map[string]any)
					if resp["401"] == nil || resp["403"] == nil {
						t.Errorf("%s %s (scope %s) does not document 401/403", m, p, scope)
					}
				}
			}
		}
		if documented != len(served) || len(served) < 35 {
			t.Errorf("%d documented, %d served", documented, len(served))
		}
		if withXMLCurl != served["post /api/v1/sip/xml-curl"] {
			t.Errorf("xml-curl served = %v with XMLCurl set = %v", served["post /api/v1/sip/xml-curl"], withXMLCurl)
		}
	}
}

// TestOpenAPIForbidsUndocumentedFields shows the response check has
// teeth: a trunk with a password field does not match the document.
func TestOpenAPIForbidsUndocumentedFields(t *testing.T) {
	ev := newEnv(t, "sqlite")
	r := ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], map[string]any{"preset": "plusnet", "name": "plusnet"}).want(t, http.StatusCreated)
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	delete(m, "warnings")
	req := httptest.NewRequest("GET", "/api/v1/sip/trunks/plusnet", nil)
	route, params, err := ev.router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	check := func(body map[string]any) error {
		b, _ := json.Marshal(body)
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 200, Header: http.Header{"Content-Type": {"application/json"}},
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		in.SetBodyBytes(b)
		return openapi3filter.ValidateResponse(context.Background(), in)
	}
	if err := check(m); err != nil {
		t.Fatalf("the real trunk does not match: %v", err)
	}
	if err := check(with(m, "password", "x")); err == nil {
		t.Error("a trunk with a password field matches the document")
	}
	if err := check(with(m, "has_password", nil)); err == nil {
		t.Error("a trunk without has_password matches the document")
	}
}

// TestInternalErrorsDoNotLeak: a broken database gives 500 "internal
// error"; the cause is logged once, at the boundary.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	store := modelstest.Open(t, "sqlite", modelstest.Options{})
	var logs bytes.Buffer
	e := api.New(api.Options{Store: store, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ev := &env{t: t, store: store, e: e}
	ev.loadDoc()
	tok := ev.mintToken("admin", []string{"admin"}, nil)
	if err := store.DB().Exec("DROP TABLE trunks").Error; err != nil {
		t.Fatal(err)
	}
	r := ev.do("GET", "/api/v1/sip/trunks", tok, nil).want(t, http.StatusInternalServerError)
	if string(r.Body) != `{"error":"internal error"}`+"\n" {
		t.Errorf("500 body %s", r.Body)
	}
	if n := strings.Count(logs.String(), "api request failed"); n != 1 || !strings.Contains(logs.String(), "trunks") {
		t.Errorf("logged %d times:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the token reached the log")
	}
	// Unknown routes and methods are JSON too.
	ev.do("GET", "/api/v1/nope", tok, nil).want(t, http.StatusNotFound)
	m := ev.do("DELETE", "/api/v1/sip/trunks", tok, nil).want(t, http.StatusMethodNotAllowed)
	if !slices.Contains([]string{`{"error":"method not allowed"}` + "\n"}, string(m.Body)) {
		t.Errorf("405 body %s", m.Body)
	}
}

// TestPanicIsAnInternalError: a panicking handler (here a mounted
// xml-curl handler) is a 500 with nothing of the panic in the answer.
func TestPanicIsAnInternalError(t *testing.T) {
	store := modelstest.Open(t, "sqlite", modelstest.Options{})
	var logs bytes.Buffer
	e := api.New(api.Options{Store: store, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		XMLCurl: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret-panic-detail") })})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/sip/xml-curl", strings.NewReader("section=directory")))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "secret-panic-detail") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "secret-panic-detail") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

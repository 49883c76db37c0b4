package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestMetrics(t *testing.T) {
	store := modelstest.Open(t, "sqlite", modelstest.Options{})
	reg := prometheus.NewRegistry()
	e := api.New(api.Options{Store: store, Registerer: reg})
	ev := &env{t: t, store: store, e: e}
	ev.loadDoc()
	rd := ev.mintToken("reader", []string{auth.ScopeSIPRead}, nil)
	ev.do("GET", "/api/v1/sip/trunks", "", nil).want(t, http.StatusUnauthorized)
	ev.do("GET", "/api/v1/sip/trunks", rd, nil).want(t, http.StatusOK)
	ev.do("GET", "/api/v1/sip/trunks", rd, nil).want(t, http.StatusOK)
	ev.do("POST", "/api/v1/sip/trunks", rd, base()).want(t, http.StatusForbidden)
	ev.do("GET", "/api/v1/sip/trunks/42", rd, nil).want(t, http.StatusNotFound)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/no/such/route/12345", nil))
	for _, m := range []string{"FOO1", "FOO2"} { // invented methods share one label
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/api/v1/sip/trunks", nil))
	}
	byMethod := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "fsplane_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "method" {
					byMethod[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if byMethod["other"] != 2 || byMethod["FOO1"] != 0 || byMethod["FOO2"] != 0 {
		t.Errorf("requests by method %v: invented methods must share the label other", byMethod)
	}

	if got := counter(t, reg, "fsplane_api_requests_total", map[string]string{"method": "GET", "route": "/api/v1/sip/trunks", "code": "200"}); got != 2 {
		t.Errorf("200s: %v", got)
	}
	if got := counter(t, reg, "fsplane_api_requests_total", map[string]string{"method": "GET", "route": "/api/v1/sip/trunks/:id", "code": "404"}); got != 1 {
		t.Errorf("404s by route: %v", got)
	}
	if got := counter(t, reg, "fsplane_api_requests_total", map[string]string{"method": "GET", "route": "unmatched", "code": "404"}); got != 1 {
		t.Errorf("unmatched: %v", got)
	}
	if got := counter(t, reg, "fsplane_api_auth_failures_total", map[string]string{"reason": "missing"}); got != 1 {
		t.Errorf("missing: %v", got)
	}
	if got := counter(t, reg, "fsplane_api_auth_failures_total", map[string]string{"reason": "scope"}); got != 1 {
		t.Errorf("scope: %v", got)
	}
}

// counter returns one labelled counter's value from reg (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

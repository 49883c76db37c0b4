package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestAuth(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		past := time.Now().Add(-time.Minute)
		expired := ev.mintToken("old", []string{auth.ScopeAdmin}, &past)

		for _, tc := range []struct {
			name, authz string
			wantErr     string
		}{
			{"none", "", "a valid bearer token is required"},
			{"unknown", "Bearer fsp_notatoken", "unknown or expired token"},
			{"expired", "Bearer " + expired, "unknown or expired token"},
			{"basic", "Basic YWRtaW46YWRtaW4=", `Authorization must be \"Bearer TOKEN\"`},
			{"empty bearer", "Bearer ", `Authorization must be`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ev.do("GET", "/api/v1/sip/trunks", "", nil, hdr{"Authorization": tc.authz}).want(t, http.StatusUnauthorized)
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
				}
				if !strings.Contains(string(r.Body), tc.wantErr) {
					t.Errorf("body %s lacks %q", r.Body, tc.wantErr)
				}
			})
		}
		// Scheme is case-insensitive.
		ev.do("GET", "/api/v1/sip/trunks", "", nil, hdr{"Authorization": "bearer " + ev.tokens["sip:read"]}).want(t, http.StatusOK)

		// Scopes: each route's scope, admin carries all.
		for _, tc := range []struct {
			method, path, scope string
			body                any
			want                int
		}{
			{"GET", "/api/v1/sip/trunks", "sip:read", nil, 200},
			{"GET", "/api/v1/sip/trunks", "sip:write", nil, 403},
			{"GET", "/api/v1/sip/trunks", "firewall:read", nil, 403},
			{"GET", "/api/v1/sip/trunks", "xmlcurl", nil, 403},
			{"GET", "/api/v1/sip/trunks", "admin", nil, 200},
			{"POST", "/api/v1/sip/trunks", "sip:read", base(), 403},
			{"POST", "/api/v1/sip/trunks", "sip:secrets", base(), 403},
			{"GET", "/api/v1/sip/profiles", "sip:read", nil, 200},
			{"GET", "/api/v1/providers", "sip:read", nil, 200},
			{"GET", "/api/v1/tokens", "sip:write", nil, 403},
			{"GET", "/api/v1/tokens", "admin", nil, 200},
			{"GET", "/api/v1/audit", "sip:read", nil, 403},
			{"GET", "/api/v1/audit", "admin", nil, 200},
			{"GET", "/api/v1/esl/nodes", "sip:read", nil, 200},
			{"GET", "/api/v1/firewall/rules?format=ufw", "sip:read", nil, 403},
		} {
			r := ev.do(tc.method, tc.path, ev.tokens[tc.scope], tc.body)
			if r.Code != tc.want {
				t.Errorf("%s %s with %s: %d, want %d (%s)", tc.method, tc.path, tc.scope, r.Code, tc.want, r.Body)
			}
			if tc.want == 403 && !strings.Contains(string(r.Body), "scope") {
				t.Errorf("403 body %s", r.Body)
			}
		}
		// 401 comes before body checks: no store write, no 415/422.
		ev.do("POST", "/api/v1/sip/trunks", "", "not json", hdr{"Content-Type": "text/plain"}).want(t, http.StatusUnauthorized)

		// Public routes.
		ev.do("GET", "/healthz", "", nil).want(t, http.StatusOK)
		ev.do("GET", "/readyz", "", nil).want(t, http.StatusOK)
		ev.do("GET", "/api/v1/openapi.json", "", nil).want(t, http.StatusOK)
	})
}

// TestActor checks that audit events name the token and the TCP peer,
// not an address the client claims.
func TestActor(t *testing.T) {
	ev := newEnv(t, "sqlite")
	tok := ev.mintToken("ci-deploy", []string{auth.ScopeSIPWrite}, nil)
	ev.do("POST", "/api/v1/sip/trunks", tok, base(), hdr{"X-Forwarded-For": "203.0.113.99", "X-Real-IP": "203.0.113.98"}).want(t, http.StatusCreated)
	evs, err := ev.store.ListAudit(context.Background(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "ci-deploy" || evs[0].RemoteIP != "192.0.2.10" || evs[0].Action != models.OpCreate || evs[0].Name != "pn" {
		t.Errorf("audit %+v", evs)
	}
}

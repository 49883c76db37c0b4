package api_test

import (
	"net/http"
	"testing"
)

// A database that cannot be reached is a 503 with Retry-After and one
// plain message, documented in the OpenAPI document (ev.do checks), for
// reads, writes and the token check itself; never a 500.
func TestDatabaseUnavailableIs503(t *testing.T) {
	ev := newEnv(t, "sqlite")
	ev.do("GET", "/api/v1/sip/trunks", ev.tokens["admin"], nil).want(t, http.StatusOK)
	ev.store.Close() // every statement now fails as with a lost server
	for _, c := range []struct {
		method, path, scope string
		body                any
	}{
		{"GET", "/api/v1/sip/trunks", "sip:read", nil},
		{"GET", "/api/v1/sip/extensions/1", "sip:read", nil},
		{"POST", "/api/v1/sip/extensions", "sip:write", map[string]any{
			"domain": "127.0.0.1", "user_id": "1000", "password": "Secret-1000", "context": "default"}},
		{"DELETE", "/api/v1/tokens/1", "admin", nil},
	} {
		r := ev.do(c.method, c.path, ev.tokens[c.scope], c.body).want(t, http.StatusServiceUnavailable)
		if b := r.JSON(t); len(b) != 1 || b["error"] != "database unavailable" {
			t.Errorf("%s %s: body %s", c.method, c.path, r.Body)
		}
		if ra := r.Header.Get("Retry-After"); ra != "5" {
			t.Errorf("%s %s: Retry-After %q", c.method, c.path, ra)
		}
	}
}

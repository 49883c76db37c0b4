package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestTokens(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		admin := ev.tokens["admin"]
		c := ev.do("POST", "/api/v1/tokens", admin, map[string]any{"name": "freeswitch", "scopes": []string{"xmlcurl", "xmlcurl"}, "expires_in_seconds": 3600}).want(t, http.StatusCreated)
		got := c.JSON(t)
		text, _ := got["token"].(string)
		if !strings.HasPrefix(text, auth.Prefix) || fmt.Sprint(got["scopes"]) != "[xmlcurl]" || got["expires_at"] == nil {
			t.Errorf("created %v", got)
		}
		id := fmt.Sprint(got["id"])
		// The list never shows a token or digest.
		l := ev.do("GET", "/api/v1/tokens", admin, nil).want(t, http.StatusOK)
		if strings.Contains(string(l.Body), text) || strings.Contains(string(l.Body), auth.Hash(text)) || strings.Contains(string(l.Body), `"hash"`) {
			t.Errorf("token list leaks: %s", l.Body)
		}
		if n := l.JSON(t)["total"]; n != float64(len(auth.AllScopes)+1) {
			t.Errorf("total %v", n)
		}
		// A sip:read token works until it is revoked.
		rt := ev.do("POST", "/api/v1/tokens", admin, map[string]any{"name": "dashboard", "scopes": []string{"sip:read"}}).want(t, http.StatusCreated).JSON(t)
		if rt["last_used_at"] != nil {
			t.Errorf("a new token has been used already: %v", rt["last_used_at"])
		}
		ev.do("GET", "/api/v1/sip/trunks", rt["token"].(string), nil).want(t, http.StatusOK)
		if used := lastUsed(t, ev, admin, rt["id"]); used == nil {
			t.Error("using a token did not record last_used_at")
		}
		ev.do("POST", "/api/v1/tokens", rt["token"].(string), map[string]any{"name": "x", "scopes": []string{"admin"}}).want(t, http.StatusForbidden)
		ev.do("DELETE", fmt.Sprintf("/api/v1/tokens/%v", rt["id"]), admin, nil).want(t, http.StatusNoContent)
		ev.do("GET", "/api/v1/sip/trunks", rt["token"].(string), nil).want(t, http.StatusUnauthorized)
		ev.do("DELETE", "/api/v1/tokens/"+id, admin, nil).want(t, http.StatusNoContent)
		ev.do("DELETE", "/api/v1/tokens/"+id, admin, nil).want(t, http.StatusNotFound)

		for _, tc := range []struct {
			body               map[string]any
			wantField, wantErr string
		}{
			{map[string]any{"name": "x", "scopes": []string{"root"}}, "scopes", `unknown scope "root"`},
			{map[string]any{"name": "x", "scopes": []string{}}, "scopes", "at least one"},
			{map[string]any{"name": "", "scopes": []string{"admin"}}, "name", "must not be empty"},
			{map[string]any{"name": "a\nb", "scopes": []string{"admin"}}, "name", "line breaks"},
			{map[string]any{"scopes": []string{"admin"}}, "name", "required"},
			{map[string]any{"name": "x", "scopes": []string{"admin"}, "expires_in_seconds": 5}, "expires_in_seconds", "between 60"},
		} {
			r := ev.do("POST", "/api/v1/tokens", admin, tc.body).want(t, http.StatusUnprocessableEntity)
			if f := r.Fields(t)[tc.wantField]; !strings.Contains(f, tc.wantErr) {
				t.Errorf("%v: fields %v", tc.body, r.Fields(t))
			}
		}
	})
}

func TestAuditNewestFirst(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		w, admin := ev.tokens["sip:write"], ev.tokens["admin"]
		for _, n := range []string{"a1", "a2", "a3"} {
			ev.do("POST", "/api/v1/sip/trunks", w, map[string]any{"preset": "plusnet", "name": n}).want(t, http.StatusCreated)
		}
		ev.do("DELETE", "/api/v1/sip/trunks/a2", w, nil).want(t, http.StatusNoContent)
		page := ev.do("GET", "/api/v1/audit?limit=3", admin, nil).want(t, http.StatusOK).JSON(t)
		var got []string
		for _, it := range page["items"].([]any) {
			m := it.(map[string]any)
			got = append(got, fmt.Sprint(m["action"], " ", m["name"], " ", m["actor"], " ", m["remote_ip"]))
		}
		want := []string{"delete a2 sip:write 192.0.2.10", "create a3 sip:write 192.0.2.10", "create a2 sip:write 192.0.2.10"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("audit\n%v\nwant\n%v", got, want)
		}
		next := page["next_before"]
		older := ev.do("GET", fmt.Sprintf("/api/v1/audit?limit=1&before=%v", next), admin, nil).want(t, http.StatusOK).JSON(t)
		if it := older["items"].([]any); len(it) != 1 || it[0].(map[string]any)["name"] != "a1" {
			t.Errorf("older page %v", older)
		}
		ev.do("GET", "/api/v1/audit?limit=0", admin, nil).want(t, http.StatusUnprocessableEntity)
		ev.do("GET", "/api/v1/audit?before=x", admin, nil).want(t, http.StatusUnprocessableEntity)
	})
}

// lastUsed returns the last_used_at the token list shows for id.
func lastUsed(t *testing.T, ev *env, admin string, id any) any {
	t.Helper()
	items, _ := ev.do("GET", "/api/v1/tokens", admin, nil).want(t, http.StatusOK).JSON(t)["items"].([]any)
	for _, it := range items {
		m := it.(map[string]any)
		if fmt.Sprint(m["id"]) == fmt.Sprint(id) {
			return m["last_used_at"]
		}
	}
	t.Fatalf("token %v not listed", id)
	return nil
}

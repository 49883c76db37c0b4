package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models/modelstest"
)

const extPassword = "ext-Secret-1001"

func TestExtensions(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		w, rd, sec := ev.tokens["sip:write"], ev.tokens["sip:read"], ev.tokens["sip:secrets"]
		body := map[string]any{"domain": "pbx.example.com", "user_id": "1001", "password": extPassword,
			"display_name": "Support", "caller_id": "+493455630488"}
		got := ev.do("POST", "/api/v1/sip/extensions", w, body).want(t, http.StatusCreated).JSON(t)
		id := fmt.Sprint(got["id"])
		if got["has_password"] != true || got["context"] != "default" || got["enabled"] != true {
			t.Errorf("created %v", got)
		}
		ev.do("POST", "/api/v1/sip/extensions", w, body).want(t, http.StatusConflict)

		for _, path := range []string{"/api/v1/sip/extensions", "/api/v1/sip/extensions/" + id} {
			r := ev.do("GET", path, rd, nil).want(t, http.StatusOK)
			if strings.Contains(string(r.Body), extPassword) || strings.Contains(string(r.Body), `"password"`) {
				t.Errorf("%s shows the password: %s", path, r.Body)
			}
		}
		l := ev.do("GET", "/api/v1/sip/extensions?domain=other.example.com", rd, nil).want(t, http.StatusOK).JSON(t)
		if l["total"] != float64(0) {
			t.Errorf("domain filter %v", l)
		}

		// Credentials: only with sip:secrets (or admin), every read audited.
		cfg := "/api/v1/sip/extensions/" + id + "/config"
		ev.do("GET", cfg, rd, nil).want(t, http.StatusForbidden)
		ev.do("GET", cfg, w, nil).want(t, http.StatusForbidden)
		r := ev.do("GET", cfg, sec, nil).want(t, http.StatusOK)
		c := r.JSON(t)
		if c["password"] != extPassword || c["username"] != "1001" || c["realm"] != "pbx.example.com" {
			t.Errorf("config %v", c)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		ev.do("GET", cfg, ev.tokens["admin"], nil).want(t, http.StatusOK)
		ev.do("GET", "/api/v1/sip/extensions/999/config", sec, nil).want(t, http.StatusNotFound)
		evs, err := ev.store.ListAudit(context.Background(), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var reads []string
		for _, e := range evs {
			if e.Action == "read-secret" {
				reads = append(reads, e.Actor+"@"+e.RemoteIP+" "+e.Kind+" "+e.Name)
			}
			if strings.Contains(fmt.Sprint(e), extPassword) {
				t.Errorf("audit event holds the password: %+v", e)
			}
		}
		want := []string{"admin@192.0.2.10 extension 1001@pbx.example.com", "sip:secrets@192.0.2.10 extension 1001@pbx.example.com"}
		if fmt.Sprint(reads) != fmt.Sprint(want) {
			t.Errorf("read-secret audit %v, want %v", reads, want)
		}

		// PATCH keeps the password; PUT without one keeps it too.
		// People's names have spaces and ampersands; etree escapes them.
		ev.do("PATCH", "/api/v1/sip/extensions/"+id, w, map[string]any{"display_name": "Müller & Söhne Hotline"}, hdr{"If-Match": `"1"`}).want(t, http.StatusOK)
		if c := ev.do("GET", cfg, sec, nil).JSON(t); c["display_name"] != "Müller & Söhne Hotline" {
			t.Errorf("display name with spaces: %v", c["display_name"])
		}
		ev.do("PUT", "/api/v1/sip/extensions/"+id, w, map[string]any{"domain": "pbx.example.com", "user_id": "1001"}).want(t, http.StatusOK)
		if c := ev.do("GET", cfg, sec, nil).JSON(t); c["password"] != extPassword || c["display_name"] != "" {
			t.Errorf("after PUT %v", c)
		}
		ev.do("PATCH", "/api/v1/sip/extensions/"+id, w, map[string]any{"password": "new-Secret-2"}).want(t, http.StatusOK)
		if c := ev.do("GET", cfg, sec, nil).JSON(t); c["password"] != "new-Secret-2" {
			t.Errorf("after password change %v", c["password"])
		}
		ev.do("PATCH", "/api/v1/sip/extensions/"+id, w, map[string]any{"enabled": false}, hdr{"If-Match": `"1"`}).want(t, http.StatusPreconditionFailed)
		ev.do("DELETE", "/api/v1/sip/extensions/"+id, w, nil).want(t, http.StatusNoContent)
		ev.do("GET", "/api/v1/sip/extensions/"+id, rd, nil).want(t, http.StatusNotFound)
		ev.do("GET", "/api/v1/sip/extensions/abc", rd, nil).want(t, http.StatusNotFound)
	})
}

func TestExtensionValidation(t *testing.T) {
	ev := newEnv(t, "sqlite")
	ok := map[string]any{"domain": "pbx.example.com", "user_id": "1001", "password": extPassword}
	for _, tc := range []struct {
		name               string
		body               map[string]any
		wantField, wantErr string
	}{
		{"no password", with(ok, "password", nil), "password", "required"},
		{"empty password", with(ok, "password", ""), "password", "would register without one"},
		{"short password", with(ok, "password", "1234"), "password", "at least 8"},
		{"password newline", with(ok, "password", "abcdefgh\nijk"), "password", "line breaks"},
		{"user id space", with(ok, "user_id", "10 01"), "user_id", "whitespace"},
		{"user id xml", with(ok, "user_id", "<1001>"), "user_id", `'<'`},
		{"domain", with(ok, "domain", "pbx example"), "domain", "whitespace"},
		{"domain port", with(ok, "domain", "pbx.example.com:5060"), "domain", "must not carry a port"},
		{"display name newline", with(ok, "display_name", "Front\nDesk"), "display_name", "line breaks"},
		{"display name variable", with(ok, "display_name", "${x}"), "display_name", "'$'"},
		{"caller id", with(ok, "caller_id", "1001"), "caller_id", "E.164"},
		{"context", with(ok, "context", "de$fault"), "context", `'$'`},
		{"version on create", with(ok, "version", 1), "version", "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ev.do("POST", "/api/v1/sip/extensions", ev.tokens["admin"], tc.body).want(t, http.StatusUnprocessableEntity)
			if f := r.Fields(t)[tc.wantField]; !strings.Contains(f, tc.wantErr) {
				t.Errorf("fields %v, want %s: %q", r.Fields(t), tc.wantField, tc.wantErr)
			}
			if strings.Contains(string(r.Body), "abcdefgh") {
				t.Errorf("error repeats the password: %s", r.Body)
			}
		})
	}
}

package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStrictJSON(t *testing.T) {
	ev := newEnv(t, "sqlite")
	w := ev.tokens["sip:write"]
	big := `{"name":"pn","description":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name      string
		body      string
		hdr       hdr
		want      int
		wantField string
		wantErr   string
	}{
		{name: "unknown field", body: `{"name":"pn","colour":"red"}`, want: 422, wantField: "colour", wantErr: "unknown field"},
		{name: "password_enc is unknown", body: `{"name":"pn","password_enc":"gAAAA"}`, want: 422, wantField: "password_enc", wantErr: "unknown field"},
		{name: "has_password is read-only", body: `{"name":"pn","has_password":true}`, want: 422, wantField: "has_password", wantErr: "unknown field"},
		{name: "null", body: `{"name":"pn","realm":null}`, want: 422, wantField: "realm", wantErr: "null is not allowed"},
		{name: "wrong type", body: `{"name":42}`, want: 422, wantField: "name", wantErr: "must be a string"},
		{name: "wrong list type", body: `{"name":"pn","numbers":"+493455667290"}`, want: 422, wantField: "numbers", wantErr: "must be an array of strings"},
		{name: "bool as string", body: `{"name":"pn","register":"false"}`, want: 422, wantField: "register", wantErr: "must be true or false"},
		{name: "malformed", body: `{"name":"pn",`, want: 400, wantErr: "malformed JSON"},
		{name: "array", body: `[{"name":"pn"}]`, want: 400, wantErr: "must be a JSON object"},
		{name: "trailing data", body: `{"name":"pn"} {"name":"x"}`, want: 400, wantErr: "malformed JSON"},
		{name: "empty", body: ``, want: 400, wantErr: "empty"},
		{name: "no content type", body: `{"name":"pn"}`, hdr: hdr{"Content-Type": ""}, want: 415, wantErr: "application/json"},
		{name: "form", body: `name=pn`, hdr: hdr{"Content-Type": "application/x-www-form-urlencoded"}, want: 415},
		{name: "json with charset", body: `{"preset":"plusnet","name":"pn"}`, hdr: hdr{"Content-Type": "application/json; charset=utf-8"}, want: 201},
		{name: "too large", body: big, want: 413, wantErr: "exceeds 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ev.do("POST", "/api/v1/sip/trunks", w, tc.body, tc.hdr)
			if r.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Code, tc.want, r.Body)
			}
			if tc.wantField != "" {
				if f := r.Fields(t)[tc.wantField]; !strings.Contains(f, tc.wantErr) {
					t.Errorf("fields %v, want %s: %q", r.Fields(t), tc.wantField, tc.wantErr)
				}
			} else if !strings.Contains(string(r.Body), tc.wantErr) {
				t.Errorf("body %s lacks %q", r.Body, tc.wantErr)
			}
		})
	}
	ev.do("DELETE", "/api/v1/sip/trunks/pn", w, nil).want(t, http.StatusNoContent)
}

// TestBodyLimitWithoutLength streams a large body with no Content-Length:
// the limit holds while reading.
func TestBodyLimitWithoutLength(t *testing.T) {
	ev := newEnv(t, "sqlite")
	body := io.MultiReader(strings.NewReader(`{"name":"pn","description":"` + strings.Repeat("y", 100<<10) + `"}`))
	req := httptest.NewRequest("POST", "/api/v1/sip/trunks", body)
	if req.ContentLength > 0 {
		t.Fatalf("request has a Content-Length %d", req.ContentLength)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ev.tokens["sip:write"])
	rec := httptest.NewRecorder()
	ev.e.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

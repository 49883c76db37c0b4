package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/models/pgtest"
)

// TestDatabaseOutage: serve on a PostgreSQL that the test stops and starts.
// While it is down, API reads and writes are 503 {"error": "database
// unavailable"} with Retry-After (not 500), xml-curl keeps answering a warm
// user to a bearer token verified before the outage (as it does with Basic),
// and a token never seen before is refused clearly. Once PostgreSQL is back
// everything works again, without restarting fsplane.
func TestDatabaseOutage(t *testing.T) {
	pg := pgtest.Start(t)
	env := map[string]string{
		"FSPLANE_DATA_DIR":         t.TempDir(),
		"DATABASE_URL":             pg.CreateDB(t, "fsplane"),
		"FSPLANE_EXTERNAL_IPV4":    "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":    "2a01:4f8:140:829d::2",
		"FSPLANE_XMLCURL_USER":     "freeswitch",
		"FSPLANE_XMLCURL_PASSWORD": "xml-pass",
		// Longer than the test: the outage must not outlast the cache.
		"FSPLANE_TOKEN_CACHE_TTL": "10m",
	}
	addr, stderr, _ := startServe(t, env)
	admin := tokenRe.FindString(stderr.String())
	base := "http://" + addr

	newToken := func(name string) string {
		t.Helper()
		code, body := do(t, http.MethodPost, base+"/api/v1/tokens", admin, "application/json",
			`{"name":"`+name+`","scopes":["xmlcurl"]}`)
		var out struct{ Token string }
		if code != http.StatusCreated || json.Unmarshal([]byte(body), &out) != nil || out.Token == "" {
			t.Fatalf("create token %s: %d %s", name, code, body)
		}
		return out.Token
	}
	warm, fresh := newToken("fs-warm"), newToken("fs-never-used")
	extension := func(user string) string {
		return `{"domain":"127.0.0.1","user_id":"` + user + `","password":"Reg-Secret-` + user + `","context":"default","enabled":true}`
	}
	if code, body := do(t, http.MethodPost, base+"/api/v1/sip/extensions", admin, "application/json", extension("1000")); code != http.StatusCreated {
		t.Fatalf("create extension: %d %s", code, body)
	}

	basic := base64.StdEncoding.EncodeToString([]byte("freeswitch:xml-pass"))
	// sipAuth is a REGISTER's directory lookup for user 1000.
	sipAuth := func(authz string) (int, http.Header, string) {
		t.Helper()
		form := url.Values{
			"hostname": {"fs1"}, "section": {"directory"}, "tag_name": {"domain"}, "key_name": {"name"},
			"key_value": {"127.0.0.1"}, "Event-Name": {"REQUEST_PARAMS"}, "action": {"sip_auth"},
			"sip_profile": {"internal"}, "sip_auth_username": {"1000"}, "sip_auth_realm": {"127.0.0.1"},
			"sip_auth_method": {"REGISTER"}, "key": {"id"}, "user": {"1000"}, "domain": {"127.0.0.1"}, "ip": {"127.0.0.1"},
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/sip/xml-curl", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", authz)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		doc := etree.NewDocument()
		if _, err := doc.ReadFrom(resp.Body); err != nil {
			return resp.StatusCode, resp.Header, "" // not XML: a refusal
		}
		if doc.FindElement("//domain//user[@id='1000']") == nil {
			return resp.StatusCode, resp.Header, ""
		}
		s, _ := doc.WriteToString()
		return resp.StatusCode, resp.Header, s
	}
	bearer := func(tok string) string { return "Bearer " + tok }
	// Before the outage: the warm token is verified and user 1000 cached.
	if code, _, user := sipAuth(bearer(warm)); code != http.StatusOK || user == "" {
		t.Fatalf("before the outage: xml-curl with a bearer token: %d, user found %v", code, user != "")
	}
	if code, body := do(t, http.MethodGet, base+"/api/v1/sip/extensions", admin, "", ""); code != http.StatusOK {
		t.Fatalf("before the outage: %d %s", code, body)
	}

	pg.Stop(t)

	wantUnavailable := func(what string, code int, hdr http.Header, body string) {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: body is not JSON: %q", what, body)
		}
		if code != http.StatusServiceUnavailable || len(got) != 1 || got["error"] != "database unavailable" {
			t.Fatalf("%s: %d %s, want 503 {\"error\": \"database unavailable\"}", what, code, body)
		}
		if ra := hdr.Get("Retry-After"); ra == "" || strings.Trim(ra, "0123456789") != "" {
			t.Fatalf("%s: Retry-After %q, want seconds", what, ra)
		}
	}
	apiCall := func(method, path, token, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	// The API: a read, a write, and a token the verifier has not seen.
	code, hdr, body := apiCall(http.MethodGet, "/api/v1/sip/extensions", admin, "")
	wantUnavailable("API read", code, hdr, body)
	code, hdr, body = apiCall(http.MethodGet, "/api/v1/sip/trunks", admin, "")
	wantUnavailable("API read (second)", code, hdr, body)
	code, hdr, body = apiCall(http.MethodPost, "/api/v1/sip/extensions", admin, extension("1001"))
	wantUnavailable("API write", code, hdr, body)
	code, hdr, body = apiCall(http.MethodGet, "/api/v1/sip/trunks", fresh, "")
	wantUnavailable("API with a token not verified before the outage", code, hdr, body)
	if code, body := do(t, http.MethodGet, base+"/readyz", "", "", ""); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "database unreachable") {
		t.Fatalf("readyz during the outage: %d %s", code, body)
	}

	// xml-curl: the warm user, to the token verified before the outage
	// and to Basic; a token never verified is refused, never answered.
	if code, _, user := sipAuth(bearer(warm)); code != http.StatusOK || user == "" {
		t.Fatalf("outage: xml-curl with a verified bearer token: %d, user found %v", code, user != "")
	}
	if code, _, user := sipAuth("Basic " + basic); code != http.StatusOK || user == "" {
		t.Fatalf("outage: xml-curl with Basic: %d, user found %v", code, user != "")
	}
	code, hdr, user := sipAuth(bearer(fresh))
	if code != http.StatusServiceUnavailable || user != "" || hdr.Get("Retry-After") == "" {
		t.Fatalf("outage: xml-curl with a token never verified: %d (Retry-After %q), user found %v",
			code, hdr.Get("Retry-After"), user != "")
	}
	if code, _, user := sipAuth(bearer("fsp_" + strings.Repeat("A", 43))); code == http.StatusOK || user != "" {
		t.Fatalf("outage: xml-curl with a made-up token: %d", code)
	}

	pg.Start(t)

	// Recovery: the pool reconnects on its own. Broken pooled connections
	// may fail a request or two first; then every call succeeds.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _, body = apiCall(http.MethodGet, "/api/v1/sip/extensions", admin, "")
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the restart: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, body := apiCall(http.MethodPost, "/api/v1/sip/extensions", admin, extension("1001")); code != http.StatusCreated {
		t.Fatalf("after the restart: write %d %s", code, body)
	}
	if code, _, user := sipAuth(bearer(fresh)); code != http.StatusOK || user == "" {
		t.Fatalf("after the restart: xml-curl with the new token: %d, user found %v", code, user != "")
	}
	if code, body := do(t, http.MethodGet, base+"/readyz", "", "", ""); code != http.StatusOK {
		t.Fatalf("readyz after the restart: %d %s", code, body)
	}
}

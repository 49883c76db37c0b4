package xmlcurl

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/auth"
)

// At debug level every answered lookup is one log line naming what was
// asked and how it was answered; no credential is ever in it: not the
// Basic password or header, not a bearer token, not the digest nonce or
// response FreeSWITCH forwards, not the password in the answer.
func TestDebugLogNamesTheLookupNeverASecret(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	seed(t, f.s)
	token := mintToken(t, f.s, auth.ScopeXMLCurl)
	f.h.verifier = verifier(f.s)
	lb := &logBuffer{}
	f.h.log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))

	const nonce, response = "5d7c0f1e-nonce-value", "0123456789abcdef-response-value"
	register := formatRequest(Request{Hostname: "vm", Section: "directory", TagName: "domain", KeyName: "name", KeyValue: "127.0.0.1"}, []Param{
		{"Event-Name", "REQUEST_PARAMS"}, {"action", "sip_auth"}, {"sip_profile", "internal"},
		{"sip_auth_username", "1000"}, {"sip_auth_realm", "127.0.0.1"}, {"sip_auth_nonce", nonce},
		{"sip_auth_response", response}, {"sip_auth_method", "REGISTER"},
		{"key", "id"}, {"user", "1000"}, {"domain", "127.0.0.1"}, {"ip", "127.0.0.1"},
	})
	for range 2 { // a miss, then a hit
		if code, body := f.post(t, register); code != http.StatusOK || !a1Of(t, body).is("1234-secret") {
			t.Fatalf("sip_auth: %d %s", code, body)
		}
	}
	// Gateways, with a bearer token: the answer carries a trunk password.
	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(gatewaysReq("internal", "fs1")))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "1und1-Secret") {
		t.Fatalf("gateways: %d %s", w.Code, w.Body.String())
	}

	lines := strings.Split(strings.TrimSpace(lb.String()), "\n")
	var reqLines []string
	for _, l := range lines {
		if strings.Contains(l, `msg="xml-curl request"`) {
			reqLines = append(reqLines, l)
		}
	}
	if len(reqLines) != 3 {
		t.Fatalf("%d request lines, want 3:\n%s", len(reqLines), lb.String())
	}
	for i, want := range [][]string{
		{"level=DEBUG", "hostname=vm", "section=directory", "tag_name=domain", "key_name=name", "key_value=127.0.0.1",
			"user=1000", "domain=127.0.0.1", "profile=internal", "action=sip_auth", "status=200", "kind=user", "result=miss", "cache_hit=false", "duration="},
		{"user=1000", "result=hit", "cache_hit=true", "status=200", "duration="},
		{"hostname=fs1", "section=directory", "profile=internal", "purpose=gateways", "kind=gateways", "status=200", "result=miss", "duration="},
	} {
		for _, w := range want {
			if !strings.Contains(reqLines[i], w) {
				t.Errorf("line %d lacks %q: %s", i+1, w, reqLines[i])
			}
		}
	}
	basic := base64.StdEncoding.EncodeToString([]byte(testBasicUser + ":" + testBasicPass))
	for _, secret := range []string{testBasicPass, basic, token, nonce, response, "1234-secret", "1und1-Secret", testCarrierPW} {
		if strings.Contains(lb.String(), secret) {
			t.Errorf("the log holds the secret %q:\n%s", secret, lb.String())
		}
	}

	// Above debug, nothing.
	f.h.log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	before := strings.Count(lb.String(), "xml-curl request")
	f.post(t, register)
	if strings.Count(lb.String(), "xml-curl request") != before {
		t.Fatal("a lookup was logged at info level")
	}
}

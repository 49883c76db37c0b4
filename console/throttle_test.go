package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var loginCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// loginFrom logs in with token as a client at remote (ip:port), through
// the console's handler itself so the source address can be chosen.
func (ev *env) loginFrom(t *testing.T, remote, token string) *httptest.ResponseRecorder {
	t.Helper()
	get := httptest.NewRequest(http.MethodGet, "/ui/login", nil)
	get.RemoteAddr = remote
	page := httptest.NewRecorder()
	ev.ui.ServeHTTP(page, get)
	m := loginCSRF.FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no login form:\n%s", page.Body)
	}
	post := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader(url.Values{"token": {token}, "csrf": {m[1]}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.RemoteAddr = remote
	for _, c := range page.Result().Cookies() {
		post.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	ev.ui.ServeHTTP(rec, post)
	return rec
}

func TestLoginThrottled(t *testing.T) {
	ev := newEnv(t)
	const attacker, neighbour, elsewhere = "192.0.2.1:40000", "[2001:db8:1:2::1]:40000", "198.51.100.9:40000"
	guess := func(i int) string { return "fsp_guess-" + strings.Repeat("x", i+1) }
	for i := range 5 {
		if rec := ev.loginFrom(t, attacker, guess(i)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, rec.Code)
		}
	}
	rec := ev.loginFrom(t, attacker, guess(5))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "20" {
		t.Fatalf("6th failed login: %d Retry-After %q, want 429 and 20", rec.Code, rec.Header().Get("Retry-After"))
	}
	if !strings.Contains(rec.Body.String(), "Too many failed logins") || !strings.Contains(rec.Body.String(), `name="token"`) {
		t.Errorf("the 429 page does not say why or has no form:\n%s", rec.Body)
	}
	// Refused before the token is looked at: a valid one does not help.
	if rec := ev.loginFrom(t, attacker, ev.tokens["admin"]); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("valid token from the throttled source: %d, want 429", rec.Code)
	}
	// Another source is not held back.
	if rec := ev.loginFrom(t, elsewhere, ev.tokens["admin"]); rec.Code != http.StatusSeeOther {
		t.Fatalf("login from another source: %d, want 303", rec.Code)
	}
	// The allowance comes back one try per 20 s.
	ev.clock.Add(19 * time.Second)
	if rec := ev.loginFrom(t, attacker, guess(6)); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("after 19 s: %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	ev.clock.Add(time.Second)
	if rec := ev.loginFrom(t, attacker, guess(7)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after 20 s: %d, want one more try (401)", rec.Code)
	}
	if rec := ev.loginFrom(t, attacker, guess(8)); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("the try after it: %d, want 429", rec.Code)
	}
	ev.clock.Add(20 * time.Second)
	if rec := ev.loginFrom(t, attacker, ev.tokens["admin"]); rec.Code != http.StatusSeeOther {
		t.Fatalf("valid login once the wait is over: %d, want 303", rec.Code)
	}

	// An IPv6 host is its /64; successful logins cost nothing.
	for i := range 10 {
		if rec := ev.loginFrom(t, neighbour, ev.tokens["sip:read"]); rec.Code != http.StatusSeeOther {
			t.Fatalf("successful login %d: %d, want 303", i+1, rec.Code)
		}
	}
	for i := range 5 {
		ev.loginFrom(t, "[2001:db8:1:2::"+string(rune('a'+i))+"]:1", guess(i))
	}
	if rec := ev.loginFrom(t, "[2001:db8:1:2:ffff::1]:1", guess(9)); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("another address of the same /64: %d, want 429", rec.Code)
	}
	if rec := ev.loginFrom(t, "[2001:db8:1:3::1]:1", ev.tokens["admin"]); rec.Code != http.StatusSeeOther {
		t.Fatalf("the next /64: %d, want 303", rec.Code)
	}

	if n := ev.metric("fsplane_console_logins_total", "throttled"); n != 5 {
		t.Errorf("logins_total{result=throttled} = %v, want 5", n)
	}
	logs := ev.logs.String()
	if !strings.Contains(logs, "login throttled") {
		t.Errorf("the throttle is not logged:\n%s", logs)
	}
	if strings.Contains(logs, "guess") || strings.Contains(logs, ev.tokens["admin"]) {
		t.Errorf("a submitted token is in the log:\n%s", logs)
	}
}

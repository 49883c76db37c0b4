package console_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
)

// A restart logs nobody out: a new console on the same database knows the
// session, its CSRF token and its pending messages.
func TestSessionSurvivesRestart(t *testing.T) {
	a := newEnv(t)
	b := a.browser()
	b.login(a.tokens["admin"])
	b.get("/ui/trunks/new?preset=plusnet").want(t, http.StatusOK)
	// A write whose message waits for the next page.
	p := b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	if p.Location != "/ui/trunks" {
		t.Fatalf("create leads to %q", p.Location)
	}
	csrf := b.csrf
	within(t, "the first console to stop", func() { a.ui.Close(); a.srv.Close() })

	restarted := newEnv(t, envOptions{replicaOf: a})
	rb := b.at(restarted)
	page := rb.get("/ui/trunks").want(t, http.StatusOK)
	if !strings.Contains(page.Body, "Trunk plusnet created.") {
		t.Errorf("the message of the write before the restart is lost:\n%s", page.Body)
	}
	if rb.csrf != csrf {
		t.Errorf("the session's CSRF token changed across the restart")
	}
	rb.post("/ui/trunks", url.Values{"preset": {"1und1"}, "name": {"einsundeins"}, "numbers": {"+493455664337"},
		"username": {"4934556643378"}, "password": {"Secret-1und1-pw"}}).want(t, http.StatusSeeOther)
	rb.post("/ui/logout", url.Values{}).toLogin(t)
	rb.get("/ui/trunks").toLogin(t)
}

// Two replicas on one PostgreSQL: a session opened on A works on B, with
// its CSRF token and its messages; activity on either keeps it alive;
// logout on A ends it on B; revoking its token anywhere ends it everywhere.
func TestSessionAcrossReplicas(t *testing.T) {
	a := newEnv(t, envOptions{backend: "postgres"})
	b := newEnv(t, envOptions{replicaOf: a})
	onA := a.browser()
	onA.login(a.tokens["admin"])
	onA.get("/ui/trunks/new?preset=plusnet").want(t, http.StatusOK)
	onB := onA.at(b)

	// A write on A, its message on B.
	onA.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	if p := onB.get("/ui/trunks").want(t, http.StatusOK); !strings.Contains(p.Body, "Trunk plusnet created.") {
		t.Errorf("B does not show the message of A's write:\n%s", p.Body)
	}
	if p := onA.get("/ui/trunks").want(t, http.StatusOK); strings.Contains(p.Body, "Trunk plusnet created.") {
		t.Error("the message was shown twice, on B and again on A")
	}
	// A form rendered by B is accepted by A, and a wrong token by neither.
	onB.get("/ui/trunks/new?preset=1und1").want(t, http.StatusOK)
	onA.csrf = onB.csrf
	form := url.Values{"preset": {"1und1"}, "name": {"einsundeins"}, "numbers": {"+493455664337"},
		"username": {"4934556643378"}, "password": {"Secret-1und1-pw"}}
	onA.post("/ui/trunks", form).want(t, http.StatusSeeOther)
	form.Set("csrf", "x"+onB.csrf)
	onB.post("/ui/trunks", form).want(t, http.StatusForbidden)

	// Idle time: a request on B keeps alive what A opened, and the other
	// way round.
	a.clock.Add(59 * time.Minute)
	onB.get("/ui/trunks").want(t, http.StatusOK)
	a.clock.Add(59 * time.Minute)
	onA.get("/ui/trunks").want(t, http.StatusOK)
	a.clock.Add(59 * time.Minute)
	onB.get("/ui/trunks").want(t, http.StatusOK)

	// Logout on A ends the session on B at once.
	old := onA.sessionCookie()
	onA.post("/ui/logout", url.Values{}).toLogin(t)
	onB.get("/ui/trunks").toLogin(t)
	replay := b.browser()
	u, _ := url.Parse(b.srv.URL + "/ui/")
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: old.Name, Value: old.Value, Path: "/ui/"}})
	replay.get("/ui/trunks").toLogin(t)

	// A token revoked through A's API ends its session on B, and the row
	// goes with the token.
	tok := a.mintToken("short-lived", []string{auth.ScopeSIPRead})
	reader := b.browser()
	reader.login(tok)
	reader.get("/ui/trunks").want(t, http.StatusOK)
	if n := sessionRows(t, b.store, tok); n != 1 {
		t.Fatalf("%d session rows for the new token, want 1", n)
	}
	var id uint
	list, _ := a.store.ListTokens(context.Background())
	for _, k := range list {
		if k.Name == "short-lived" {
			id = k.ID
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/api/v1/tokens/%d", a.srv.URL, id), nil)
	req.Header.Set("Authorization", "Bearer "+a.tokens["admin"])
	res, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if n := sessionRows(t, b.store, tok); n != 0 {
		t.Errorf("%d session rows left for the revoked token", n)
	}
	reader.get("/ui/trunks").toLogin(t)
}

func sessionRows(t *testing.T, s *models.Store, token string) int64 {
	t.Helper()
	var n int64
	if err := s.DB().Model(&models.ConsoleSession{}).Where("token_hash = ?", auth.Hash(token)).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// Neither the session id nor the API token reaches the database: the row
// holds their digests.
func TestSessionStoresNoSecret(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks").want(t, http.StatusOK)
	id := b.sessionCookie().Value
	var row models.ConsoleSession
	if err := ev.store.DB().Where("id_hash = ?", auth.Hash(id)).First(&row).Error; err != nil {
		t.Fatalf("no row under the session id's digest: %v", err)
	}
	if row.TokenHash != auth.Hash(ev.tokens["admin"]) || row.TokenName != "admin" {
		t.Errorf("row names token %q (%q), want the admin token's digest", row.TokenHash, row.TokenName)
	}
	if err := ev.store.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
		t.Fatal(err)
	}
	var file string
	if err := ev.store.DB().Raw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file).Error; err != nil {
		t.Fatal(err)
	}
	var disk []byte
	for _, p := range []string{file, file + "-wal", file + "-journal"} {
		if b, err := os.ReadFile(p); err == nil {
			disk = append(disk, b...)
		}
	}
	if !bytes.Contains(disk, []byte(auth.Hash(id))) {
		t.Fatal("the scan does not see the session row; it would prove nothing")
	}
	for what, secret := range map[string]string{"session id": id, "API token": ev.tokens["admin"],
		"API token without its prefix": strings.TrimPrefix(ev.tokens["admin"], auth.Prefix)} {
		if bytes.Contains(disk, []byte(secret)) {
			t.Errorf("the %s is in the database file", what)
		}
	}
	if strings.Contains(ev.logs.String(), id) || strings.Contains(ev.logs.String(), ev.tokens["admin"]) {
		t.Error("the log holds the session id or the token")
	}
}

// Ended sessions' rows are swept at the next login.
func TestEndedSessionsSwept(t *testing.T) {
	ev := newEnv(t)
	first := ev.browser()
	first.login(ev.tokens["admin"])
	ev.clock.Add(2 * time.Hour) // past the idle time; the browser never comes back
	second := ev.browser()
	second.login(ev.tokens["sip:read"])
	var hashes []string
	if err := ev.store.DB().Model(&models.ConsoleSession{}).Pluck("id_hash", &hashes).Error; err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 1 || hashes[0] != auth.Hash(second.sessionCookie().Value) {
		t.Errorf("session rows %v, want only the second login's", hashes)
	}
	first.get("/ui/trunks").toLogin(t)
}

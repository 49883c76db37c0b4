package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

func TestRegistrationsDisabled(t *testing.T) {
	ev := newEnv(t, "sqlite")
	got := ev.do("GET", "/api/v1/sip/registrations", ev.tokens["sip:read"], nil).want(t, http.StatusOK).JSON(t)
	if got["enabled"] != false || got["registered_devices"] != float64(0) || len(got["items"].([]any)) != 0 {
		t.Fatalf("without a registrar: %v", got)
	}
	ev.do("DELETE", "/api/v1/sip/registrations?aor=1001@example.com&contact=sip:x@y", ev.tokens["sip:write"], nil).want(t, http.StatusNotFound)
}

func TestRegistrationsListAndDelete(t *testing.T) {
	var udp string
	var reg *registrar.Registrar
	ev := newEnv(t, "sqlite", envOptions{registrarOn: func(s *models.Store) api.Registrations {
		pw := "api-test-pw-1001"
		if err := s.CreateExtension(context.Background(), &models.Extension{Domain: "example.com", UserID: "1001", Password: &pw, Context: "default", Enabled: true}); err != nil {
			t.Fatal(err)
		}
		reg, udp, _ = registrartest.Start(t, registrar.Options{Store: s})
		return reg
	}})
	c := registrartest.Dial(t, "udp", udp)
	res := c.Register(registrartest.Reg{User: "1001", Domain: "example.com", Contacts: []string{"<sip:1001@127.0.0.1:7001>;q=0.5"}, Expires: "600"}, "api-test-pw-1001", "MD5")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	ev.do("GET", "/api/v1/sip/registrations", "", nil).want(t, http.StatusUnauthorized)
	ev.do("GET", "/api/v1/sip/registrations", ev.tokens["firewall:read"], nil).want(t, http.StatusForbidden)
	r := ev.do("GET", "/api/v1/sip/registrations", ev.tokens["sip:read"], nil).want(t, http.StatusOK)
	if strings.Contains(string(r.Body), "api-test-pw-1001") {
		t.Fatal("the list carries the password")
	}
	got := r.JSON(t)
	items := got["items"].([]any)
	if got["enabled"] != true || got["registered_devices"] != float64(1) || len(items) != 1 {
		t.Fatalf("list: %v", got)
	}
	it := items[0].(map[string]any)
	if it["aor"] != "1001@example.com" || it["contact"] != "sip:1001@127.0.0.1:7001" || it["q"] != 0.5 || it["received"] != c.Local ||
		it["transport"] != "udp" || it["user_agent"] != "registrartest" || it["expires"].(float64) < 595 || it["expires"].(float64) > 600 {
		t.Fatalf("item: %v", it)
	}
	ev.do("DELETE", "/api/v1/sip/registrations", ev.tokens["sip:write"], nil).want(t, http.StatusUnprocessableEntity)
	ev.do("DELETE", "/api/v1/sip/registrations?aor=1001@example.com&contact="+url.QueryEscape("sip:1001@127.0.0.1:7001"), ev.tokens["sip:read"], nil).want(t, http.StatusForbidden)
	ev.do("DELETE", "/api/v1/sip/registrations?aor=1001@example.com&contact=sip:nobody@127.0.0.1", ev.tokens["sip:write"], nil).want(t, http.StatusNotFound)
	ev.do("DELETE", "/api/v1/sip/registrations?aor=1001@example.com&contact="+url.QueryEscape("sip:1001@127.0.0.1:7001"), ev.tokens["sip:write"], nil).want(t, http.StatusNoContent)
	if reg.Count() != 0 {
		t.Fatal("the binding is still there")
	}
	audit := ev.do("GET", "/api/v1/audit", ev.tokens["admin"], nil).want(t, http.StatusOK)
	if !strings.Contains(string(audit.Body), `"action":"unregister"`) || !strings.Contains(string(audit.Body), "1001@example.com") {
		t.Fatalf("no audit event for the DELETE: %s", audit.Body)
	}
	got = ev.do("GET", "/api/v1/sip/registrations", ev.tokens["sip:read"], nil).want(t, http.StatusOK).JSON(t)
	if got["registered_devices"] != float64(0) {
		t.Fatalf("after DELETE: %v", got)
	}
}

// A removal the registrar could not write to the database (which the
// other replicas read) is not a 204: 503 with a JSON error and
// Retry-After; the write is retried, and lands once the database takes it.
func TestRegistrationsDeleteNotWritten(t *testing.T) {
	var udp string
	ev := newEnv(t, "sqlite", envOptions{registrarOn: func(s *models.Store) api.Registrations {
		pw := "api-test-pw-1001"
		if err := s.CreateExtension(context.Background(), &models.Extension{Domain: "example.com", UserID: "1001", Password: &pw, Context: "default", Enabled: true}); err != nil {
			t.Fatal(err)
		}
		var reg *registrar.Registrar
		reg, udp, _ = registrartest.Start(t, registrar.Options{Store: s, FlushInterval: 10 * time.Millisecond})
		return reg
	}})
	c := registrartest.Dial(t, "udp", udp)
	const aor, contact = "1001@example.com", "sip:1001@127.0.0.1:7001"
	if res := c.Register(registrartest.Reg{User: "1001", Domain: "example.com", Contacts: []string{"<" + contact + ">"}}, "api-test-pw-1001", "MD5"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	stored := func() int {
		rows, err := ev.store.BindingsOf(context.Background(), aor, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	for deadline := time.Now().Add(10 * time.Second); stored() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the binding is never written")
		}
	}
	// Deletes from the table fail from now on.
	if err := ev.store.DB().Exec("CREATE TRIGGER refuse_delete BEFORE DELETE ON sip_bindings BEGIN SELECT RAISE(FAIL, 'refused by the test'); END").Error; err != nil {
		t.Fatal(err)
	}
	r := ev.do("DELETE", "/api/v1/sip/registrations?aor="+aor+"&contact="+url.QueryEscape(contact), ev.tokens["sip:write"], nil).want(t, http.StatusServiceUnavailable)
	if msg, _ := r.JSON(t)["error"].(string); !strings.Contains(msg, "not yet written") || r.Header.Get("Retry-After") == "" {
		t.Fatalf("503 body %s, Retry-After %q", r.Body, r.Header.Get("Retry-After"))
	}
	if stored() != 1 {
		t.Fatal("the row went although deletes fail")
	}
	if err := ev.store.DB().Exec("DROP TRIGGER refuse_delete").Error; err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); stored() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the removal is never written")
		}
	}
}

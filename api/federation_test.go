package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/federation/fedtest"
	"github.com/fsplane/fsplane/models"
)

// TestFederationAPI: PUT checks the certificate and puts agent.pem and
// cafile.pem in place before storing; a refused certificate leaves the
// files and the settings as they were; the firewall export gains the
// federation port; GET …/check runs the checklist on what is stored.
func TestFederationAPI(t *testing.T) {
	p := fedtest.NewPKI(t)
	cert, key := p.Files("good", fedtest.Leaf{Names: []string{"sip.good.test"}})
	wild, wildKey := p.Files("wild", fedtest.Leaf{Names: []string{"*.good.test"}})
	port := fedtest.SIPTLS(t, cert, key)
	z := fedtest.NewZoneServer(t, "sip.good.test. 60 IN A 127.0.0.1",
		fmt.Sprintf("_sipfederationtls._tcp.good.test. 60 IN SRV 0 0 %d sip.good.test.", port))
	dir := filepath.Join(t.TempDir(), "tls")
	var svc *federation.Service
	ev := newEnv(t, "sqlite", envOptions{federation: func(s *models.Store) api.Federation {
		svc = federation.NewService(federation.ServiceOptions{Store: s, TLSDir: dir, Resolver: z.Addr})
		return svc
	}})
	const path = "/api/v1/federation"
	// The settings name files on the host: writing them takes admin.
	read, write := ev.tokens["sip:read"], ev.tokens["admin"]
	if r := ev.do(http.MethodPut, path, ev.tokens["sip:write"], map[string]any{"enabled": false}); r.Code != http.StatusForbidden {
		t.Fatalf("PUT with sip:write: %d %s", r.Code, r.Body)
	}

	r := ev.do(http.MethodGet, path, read, nil)
	if r.Code != 200 {
		t.Fatalf("GET: %d %s", r.Code, r.Body)
	}
	m := r.JSON(t)
	if m["version"] != float64(0) || m["enabled"] != false || m["port"] != float64(5061) || m["mode"] != "open" {
		t.Errorf("unconfigured: %s", r.Body)
	}
	// The seeded internal profile has tls=true and no tls-cert-dir.
	if ws := fmt.Sprint(m["warnings"]); !strings.Contains(ws, `profile "internal" has TLS without a configured certificate`) {
		t.Errorf("warnings: %s", ws)
	}
	// The profile itself says so in the API, and only the TLS one.
	profileWarnings := func() string {
		t.Helper()
		pr := ev.do(http.MethodGet, "/api/v1/sip/profiles/internal", read, nil)
		if pr.Code != 200 {
			t.Fatalf("profile: %d %s", pr.Code, pr.Body)
		}
		return fmt.Sprint(pr.JSON(t)["warnings"])
	}
	if ws := profileWarnings(); !strings.Contains(ws, "TLS without a configured certificate") {
		t.Errorf("profile internal: warnings %s", ws)
	}
	if ws := fmt.Sprint(ev.do(http.MethodGet, "/api/v1/sip/profiles/external-ipv4", read, nil).JSON(t)["warnings"]); ws != "<nil>" {
		t.Errorf("profile external-ipv4 (no TLS) warned: %s", ws)
	}

	body := map[string]any{"enabled": true, "domain": "good.test", "fqdn": "sip.good.test", "cert_file": wild, "key_file": wildKey,
		"ca_file": p.RootFile, "profile": "internal", "bind_address": "127.0.0.1", "port": port, "public_address": "127.0.0.1"}
	r = ev.do(http.MethodPut, path, write, body)
	if r.Code != 422 || !strings.Contains(r.Fields(t)["cert_file"], "wildcard certificate") {
		t.Fatalf("wildcard: %d %s", r.Code, r.Body)
	}
	if _, err := os.Stat(filepath.Join(dir, federation.AgentFile)); !os.IsNotExist(err) {
		t.Errorf("a refused certificate was put in place: %v", err)
	}

	bad := map[string]any{"enabled": true, "domain": "good..test", "fqdn": "sip.good.test", "cert_file": "relative.pem",
		"profile": "nosuch", "mode": "sideways"}
	r = ev.do(http.MethodPut, path, write, bad)
	f := r.Fields(t)
	if r.Code != 422 || f["domain"] == "" || f["cert_file"] == "" || f["profile"] == "" || f["mode"] == "" {
		t.Errorf("invalid: %d %v", r.Code, f)
	}

	body["cert_file"], body["key_file"] = cert, key
	r = ev.do(http.MethodPut, path, write, body)
	if r.Code != 200 {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if r.Header.Get("ETag") != `"1"` {
		t.Errorf("ETag %q", r.Header.Get("ETag"))
	}
	leaf := federation.Installed(dir)
	if leaf == nil || leaf.DNSNames[0] != "sip.good.test" {
		t.Fatalf("agent.pem/cafile.pem not in place: %v", leaf)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, federation.CAFileName))
	root, _ := os.ReadFile(p.RootFile)
	if string(ca) != string(root) {
		t.Errorf("cafile.pem is not the chain up to the root:\n%s", ca)
	}
	if ws := fmt.Sprint(r.JSON(t)["warnings"]); strings.Contains(ws, `"internal"`) {
		t.Errorf("the federation profile still warned about: %s", ws)
	}
	if ws := profileWarnings(); ws != "<nil>" {
		t.Errorf("profile internal still warns with its certificate in place: %s", ws)
	}
	ev.mu.Lock()
	last := ev.events[len(ev.events)-1]
	ev.mu.Unlock()
	if last.Kind != models.KindProfile || last.Name != "internal" || !last.HasField("tls_cert_dir") {
		t.Errorf("change event %+v: the planner would not restart the profile", last)
	}

	// A stale version is refused.
	body["version"] = 0
	if r = ev.do(http.MethodPut, path, write, body); r.Code != 412 {
		t.Errorf("stale version: %d %s", r.Code, r.Body)
	}
	delete(body, "version")

	r = ev.do(http.MethodGet, "/api/v1/firewall/rules?format=ufw", ev.tokens["firewall:read"], nil)
	if want := fmt.Sprintf("ufw allow %d/tcp comment 'fsplane:general'", port); !strings.Contains(string(r.Body), want) {
		t.Errorf("firewall rules lack %q:\n%s", want, r.Body)
	}

	r = ev.do(http.MethodGet, path+"/check", read, nil)
	if r.Code != 200 {
		t.Fatalf("check: %d %s", r.Code, r.Body)
	}
	var rep struct{ Checks []federation.Check }
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.Status != federation.Pass {
			t.Errorf("%s: %s: %s", c.ID, c.Status, c.Detail)
		}
	}
	if len(rep.Checks) != 6 {
		t.Errorf("%d checks", len(rep.Checks))
	}
}

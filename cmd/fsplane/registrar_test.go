package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/registrar/registrartest"
)

// serve runs the registrar when FSPLANE_REGISTRAR_LISTEN is set: an
// extension created through the API registers at once (the change feed
// refreshes the credentials), and the binding shows in the API, the metric
// and readiness.
func TestServeRunsRegistrar(t *testing.T) {
	env := map[string]string{
		"FSPLANE_DATA_DIR":         t.TempDir(),
		"FSPLANE_EXTERNAL_IPV4":    "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":    "2a01:4f8:140:829d::2",
		"FSPLANE_REGISTRAR_LISTEN": "127.0.0.1:0",
	}
	addr, stderr, _ := startServe(t, env)
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr
	var udp string
	udpRe := regexp.MustCompile(`udp (127\.0\.0\.1:\d+)`)
	waitFor(t, "the registrar to listen", func() bool {
		m := udpRe.FindStringSubmatch(stderr.String())
		if m != nil {
			udp = m[1]
		}
		return m != nil
	})
	code, body := do(t, http.MethodPost, base+"/api/v1/sip/extensions", token, "application/json",
		`{"domain":"example.com","user_id":"1001","password":"Serve-Reg-Pw-1001","context":"default"}`)
	if code != http.StatusCreated {
		t.Fatalf("create extension: %d %s", code, body)
	}
	c := registrartest.Dial(t, "udp", udp)
	reg := registrartest.Reg{User: "1001", Domain: "example.com", Contacts: []string{"<sip:1001@127.0.0.1:7001>"}}
	// The change event reloads the credentials in the registrar's own
	// goroutine: shortly after the API answered, not before.
	code = 0
	waitFor(t, "the registrar to know the new extension", func() bool {
		code = c.Register(reg, "Serve-Reg-Pw-1001", "SHA-256").StatusCode
		return code == 200
	})
	code, body = do(t, http.MethodGet, base+"/api/v1/sip/registrations", token, "", "")
	if code != http.StatusOK || !strings.Contains(body, `"registered_devices":1`) || !strings.Contains(body, "sip:1001@127.0.0.1:7001") {
		t.Fatalf("registrations: %d %s", code, body)
	}
	code, body = do(t, http.MethodGet, base+"/metrics", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, "fsplane_registrar_registered_devices 1") {
		t.Fatalf("/metrics lacks the registered devices gauge at 1: %d", code)
	}
	code, body = do(t, http.MethodGet, base+"/readyz", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"registrar":{"status":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if strings.Contains(stderr.String(), "Serve-Reg-Pw-1001") {
		t.Fatal("the password reached the log")
	}
}

package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/registrar/registrartest"
)

// freeSIPAddr is a loopback port free for UDP and TCP now (the registrar
// listens on both; a fixed port because the dial-string names it).
func freeSIPAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no port free for UDP and TCP")
	return ""
}

// directoryXML is replica p's xml-curl answer for user@domain's directory
// entry (as FreeSWITCH asks before bridging to the user).
func (p *replicaProc) directoryXML(t testing.TB, user, domain string) string {
	t.Helper()
	form := "hostname=vm&section=directory&tag_name=domain&key_name=name&key_value=" + domain +
		"&Event-Name=REQUEST_PARAMS&action=sip_auth&sip_auth_realm=" + domain +
		"&key=id&user=" + url.QueryEscape(user) + "&domain=" + domain
	req, _ := http.NewRequest(http.MethodPost, p.base+"/api/v1/sip/xml-curl", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("fs", "fs-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

var fsPathRe = regexp.MustCompile(`fs_path=(?:&lt;|<)sip:(127\.0\.0\.1:\d+);lr(?:&gt;|>)`)

// Two `fsplane serve` replicas with registrars on one PostgreSQL: a phone
// registered at A is listed by B's API, reached by the dial-string B's
// xml-curl renders (through B's registrar), unregistered through B's API
// and then gone from A's list.
func TestReplicasShareRegistrations(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts processes")
	}
	regAddrs := []string{freeSIPAddr(t), freeSIPAddr(t)}
	rs, token := replicaSetWith(t, 2, func(i int) map[string]string {
		return map[string]string{"FSPLANE_REGISTRAR_LISTEN": regAddrs[i]}
	})
	a, b := rs[0], rs[1]
	code, body := do(t, http.MethodPost, a.base+"/api/v1/sip/extensions", token, "application/json",
		`{"domain":"example.com","user_id":"1001","password":"Replica-Reg-Pw-1001","context":"default"}`)
	if code != http.StatusCreated {
		t.Fatalf("create extension: %d %s", code, body)
	}
	// The phone's socket takes datagrams from any address: B's registrar
	// sends from its own.
	phone := registrartest.DialUnconnected(t, regAddrs[0])
	contact := "sip:1001@" + phone.Local
	reg := registrartest.Reg{User: "1001", Domain: "example.com", Contacts: []string{"<" + contact + ">"}}
	waitFor(t, "a registration at A", func() bool {
		return phone.Register(reg, "Replica-Reg-Pw-1001", "MD5").StatusCode == 200
	})
	waitFor(t, "B's API to list A's registration", func() bool {
		code, body = do(t, http.MethodGet, b.base+"/api/v1/sip/registrations", token, "", "")
		return code == http.StatusOK && strings.Contains(body, contact) && strings.Contains(body, `"registered_devices":1`)
	})

	// FreeSWITCH beside B, with no registration of its own, takes the
	// dial-string's fallback leg: the AOR through B's registrar.
	dir := b.directoryXML(t, "1001", "example.com")
	m := fsPathRe.FindStringSubmatch(dir)
	if m == nil {
		t.Fatalf("B's directory entry has no fs_path leg to its registrar:\n%s", dir)
	}
	proxy := m[1]
	if proxy != regAddrs[1] {
		t.Fatalf("B's dial-string goes through %s, want B's registrar %s", proxy, regAddrs[1])
	}
	got := make(chan string, 1)
	go func() {
		req := phone.ReadRequest(10 * time.Second)
		if req == nil {
			got <- ""
			return
		}
		phone.Respond(req, 200, "OK")
		got <- req.Recipient.String()
	}()
	fs := registrartest.Dial(t, "udp", proxy)
	res := fs.Request("MESSAGE", "sip:1001@example.com", "2000", "example.com", "Route: <sip:"+proxy+";lr>")
	if res.StatusCode != 200 {
		t.Fatalf("through B's registrar: %d %s", res.StatusCode, res.Reason)
	}
	if r := <-got; !strings.Contains(r, phone.Local) {
		t.Fatalf("the phone got %q", r)
	}

	code, body = do(t, http.MethodDelete, b.base+"/api/v1/sip/registrations?aor=1001@example.com&contact="+url.QueryEscape(contact), token, "", "")
	if code != http.StatusNoContent {
		t.Fatalf("unregister through B: %d %s", code, body)
	}
	waitFor(t, "A to drop the binding B unregistered", func() bool {
		code, body = do(t, http.MethodGet, a.base+"/api/v1/sip/registrations", token, "", "")
		return code == http.StatusOK && !strings.Contains(body, contact) && strings.Contains(body, `"registered_devices":0`)
	})
}

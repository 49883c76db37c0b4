package console_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl/esltest"
)

// synced waits for the ESL manager's first sync of fs (its reloadacl).
func synced(t *testing.T, fs *esltest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fs.Wait(ctx, func(s *esltest.Server) bool { return s.Count("api reloadacl") > 0 }); err != nil {
		t.Fatal("the ESL manager never synced the node")
	}
}

// The registrations page lists FreeSWITCH's own registrations, escaped,
// per node and profile; a token that may write flushes one through the
// API, a read-only one sees no control and is refused.
func TestFreeSWITCHRegistrationsPage(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{Profiles: []string{"internal"}})
	fs.SetRegistrations("internal", []esltest.Registration{{CallID: "c1@192.0.2.10", SIPUser: "1001", SIPHost: "pbx.example.com",
		Contact: "<sip:1001@192.0.2.10:5062>", Agent: "<script>phone</script>", Expires: time.Now().Add(time.Hour),
		NetworkIP: "198.51.100.7", NetworkPort: "41234"}})
	ev := newEnv(t, envOptions{eslNode: fs.Addr()})
	synced(t, fs)
	fs.StopProfile("external-ipv4") // the sync started it

	ro := ev.browser()
	ro.login(ev.tokens["sip:read"])
	p := ro.get("/ui/registrations").want(t, http.StatusOK)
	row := regexp.MustCompile(`(?s)<tr data-fs-user="1001@pbx.example.com" data-fs-node="` + regexp.QuoteMeta(fs.Addr()) + `" data-fs-profile="internal">(.*?)</tr>`).FindStringSubmatch(p.Body)
	if row == nil {
		t.Fatalf("no row for FreeSWITCH's registration:\n%s", p.Body)
	}
	for _, want := range []string{"<td>&lt;script&gt;phone&lt;/script&gt;</td>", "<td>&lt;sip:1001@192.0.2.10:5062&gt;</td>", "<td>198.51.100.7</td>", "<td>41234</td>"} {
		if !strings.Contains(row[1], want) {
			t.Errorf("row lacks %q:\n%s", want, row[1])
		}
	}
	if strings.Contains(p.Body, "<script>phone") {
		t.Fatal("the agent is not escaped")
	}
	// The profile FreeSWITCH does not run says so.
	if !strings.Contains(p.Body, "profile external-ipv4: profile not running on this node") {
		t.Errorf("no note for the profile not running:\n%s", p.Body)
	}
	if strings.Contains(p.Body, `action="/ui/registrations/freeswitch/unregister"`) {
		t.Fatal("a read-only token sees the unregister control")
	}
	form := func() url.Values {
		return url.Values{"node": {fs.Addr()}, "profile": {"internal"}, "call_id": {"c1@192.0.2.10"}, "user": {"1001@pbx.example.com"}}
	}
	ro.post("/ui/registrations/freeswitch/unregister", form()).want(t, http.StatusForbidden)
	if len(fs.Flushes()) != 0 {
		t.Fatal("a read-only token flushed a registration")
	}

	rw := ev.browser()
	rw.login(ev.tokens["admin"])
	if p := rw.get("/ui/registrations").want(t, http.StatusOK); !strings.Contains(p.Body, `action="/ui/registrations/freeswitch/unregister"`) {
		t.Fatalf("no unregister control for a token that may write:\n%s", p.Body)
	}
	// A Call-ID no command line can carry: the API's 422, nothing sent.
	bad := url.Values{"node": {fs.Addr()}, "profile": {"internal"}, "call_id": {"c1@192.0.2.10 reboot"}}
	if p := rw.post("/ui/registrations/freeswitch/unregister", bad).want(t, http.StatusUnprocessableEntity); !strings.Contains(p.Body, "command line") {
		t.Fatalf("the refusal does not say why:\n%s", p.Body)
	}
	// A Call-ID FreeSWITCH does not list: the API's 404, nothing sent.
	missing := url.Values{"node": {fs.Addr()}, "profile": {"internal"}, "call_id": {"c9@192.0.2.10"}}
	rw.post("/ui/registrations/freeswitch/unregister", missing).want(t, http.StatusNotFound)
	rw.post("/ui/registrations/freeswitch/unregister", form()).want(t, http.StatusSeeOther)
	if f := fs.Flushes(); len(f) != 1 || f[0].Arg != "c1@192.0.2.10" || f[0].Reboot || f[0].Profile != "internal" {
		t.Fatalf("flushes %+v", f)
	}
	p = rw.get("/ui/registrations").want(t, http.StatusOK)
	if !strings.Contains(p.Body, "Unregistered 1001@pbx.example.com from FreeSWITCH") || !strings.Contains(p.Body, "No registration at FreeSWITCH.") {
		t.Fatalf("after the flush:\n%s", p.Body)
	}
}

// The trunk row says "N inbound / N outbound" and the last REGISTER reply
// with its reason: in the HTML (JavaScript off) and live, the reason as
// FreeSWITCH's event brings it, the calls with the next poll.
func TestTrunkCallsAndRegisterReason(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{Profiles: []string{"external-ipv4", "internal"}})
	fs.DefineGateway(esltest.Gateway{Name: "1und1", Profile: "internal", Register: true})
	ev := newEnv(t, envOptions{eslNode: fs.Addr(), gatewayPoll: 50 * time.Millisecond})
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks")
	b.post("/ui/trunks", url.Values{"preset": {"1und1"}, "name": {"1und1"}, "numbers": {"+4934556643378"},
		"username": {"4934556643378"}, "password": {"your-sip-password"}}).want(t, http.StatusSeeOther)
	stream := b.events(t)
	if d := stream.next(t, "gateway", `"state":"REGED"`); !strings.Contains(d, `"calls":"0 inbound / 0 outbound"`) {
		t.Errorf("gateway event %s", d)
	}
	fs.SetGatewayCalls("1und1", 7, 3, 0, 1)
	stream.next(t, "gateway", `"calls":"7 inbound / 3 outbound (failed: 0 / 1)"`)
	fs.SetGatewayStateReply("1und1", "FAILED", "DOWN", 403, "Forbidden")
	fs.SetGatewayStateReply("1und1", "FAIL_WAIT", "DOWN", 0, "")
	d := stream.next(t, "gateway", `"register":"last REGISTER: 403 Forbidden"`)
	if !strings.Contains(d, `"register_failed":true`) {
		t.Errorf("gateway event %s", d)
	}
	// (Its state is FAILED or already FAIL_WAIT: the two events come in
	// a burst and the cell is read from the node.)

	p := b.get("/ui/trunks").want(t, http.StatusOK)
	cell := regexp.MustCompile(`<span class="gw bad" data-gw-trunk="1und1"[^>]*>(.*?)</span>\s*</td>`).FindStringSubmatch(p.Body)
	if cell == nil {
		t.Fatalf("no failing cell for 1und1:\n%s", p.Body)
	}
	for _, want := range []string{`<span class="state">FAIL_WAIT</span>`, `<small class="register bad">last REGISTER: 403 Forbidden</small>`,
		`<small class="calls">7 inbound / 3 outbound (failed: 0 / 1)</small>`} {
		if !strings.Contains(cell[1], want) {
			t.Errorf("cell lacks %q:\n%s", want, cell[1])
		}
	}
	// The API's trunk status carries them too.
	st := b.ev.apiGet(t, "/api/v1/sip/trunks/1und1/status")
	if !strings.Contains(st, `"calls":{"in":7,"out":3,"failed_in":0,"failed_out":1}`) || !strings.Contains(st, `"status":403,"phrase":"Forbidden","state":"FAILED"`) {
		t.Errorf("trunk status %s", st)
	}
}

// apiGet reads an API path with the admin token.
func (ev *env) apiGet(t *testing.T, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ev.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+ev.tokens["admin"])
	res, err := ev.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", path, res.StatusCode, body)
	}
	return string(body)
}

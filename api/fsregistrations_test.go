package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
)

// fsEnv is an API over a real ESL manager connected to an esltest
// FreeSWITCH that runs the seed's profiles.
func fsEnv(t *testing.T) (*env, *esltest.Server, func()) {
	t.Helper()
	srv := esltest.Start(t, esltest.Options{Profiles: []string{"external-ipv4", "internal"}, Switchname: "fs1"})
	var m *esl.Manager
	var stop func()
	ev := newEnv(t, "sqlite", envOptions{eslOn: func(s *models.Store) api.ESL {
		var err error
		m, err = esl.New(esl.Options{Nodes: []string{srv.Addr()}, Password: "ClueCon", Store: s,
			DialTimeout: time.Second, AuthTimeout: time.Second, CommandTimeout: 3 * time.Second,
			HealthInterval: 200 * time.Millisecond, HealthTimeout: time.Second,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = m.Run(ctx); close(done) }()
		stop = func() { cancel(); <-done }
		t.Cleanup(stop)
		return m
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Wait(ctx, func(s *esltest.Server) bool { return s.Count("api reloadacl") > 0 }); err != nil {
		t.Fatal("the manager never synced the node")
	}
	return ev, srv, stop
}

func TestFreeSWITCHRegistrations(t *testing.T) {
	ev, srv, stop := fsEnv(t)
	exp := time.Now().Add(30 * time.Minute)
	srv.SetRegistrations("internal", []esltest.Registration{
		{CallID: "c1@192.0.2.10", SIPUser: "1001", SIPHost: "pbx.example.com", Contact: `"Desk" <sip:1001@192.0.2.10:5062>`,
			Agent: "Yealink SIP-T46U", Expires: exp, NetworkIP: "198.51.100.7", NetworkPort: "41234"},
		{CallID: "odd<id", SIPUser: "1002", SIPHost: "pbx.example.com", Contact: "<sip:1002@192.0.2.11>", Expires: exp,
			NetworkIP: "198.51.100.8", NetworkPort: "5060"},
	})
	rd, wr := ev.tokens["sip:read"], ev.tokens["sip:write"]
	path := "/api/v1/sip/freeswitch-registrations"
	ev.do("GET", path, "", nil).want(t, http.StatusUnauthorized)
	ev.do("GET", path, ev.tokens["firewall:read"], nil).want(t, http.StatusForbidden)
	got := ev.do("GET", path, rd, nil).want(t, http.StatusOK).JSON(t)
	items := got["items"].([]any)
	if got["configured"] != true || got["registered_devices"] != float64(2) || len(items) != 2 {
		t.Fatalf("list: %v", got)
	}
	var internal map[string]any
	for _, it := range items {
		if m := it.(map[string]any); m["profile"] == "internal" {
			internal = m
		}
	}
	regs := internal["registrations"].([]any)
	r := regs[0].(map[string]any)
	if internal["node"] != srv.Addr() || internal["ok"] != true || r["user"] != "1001@pbx.example.com" || r["agent"] != "Yealink SIP-T46U" ||
		r["contact"] != `"Desk" <sip:1001@192.0.2.10:5062>` || r["network_ip"] != "198.51.100.7" || r["network_port"] != float64(41234) ||
		r["expires_in"].(float64) < 1790 || r["call_id"] != "c1@192.0.2.10" {
		t.Fatalf("internal: %v", internal)
	}
	if one := ev.do("GET", path+"?profile=internal", rd, nil).want(t, http.StatusOK).JSON(t); len(one["items"].([]any)) != 1 {
		t.Errorf("?profile=internal: %v", one)
	}
	ev.do("GET", path+"?profile=nope", rd, nil).want(t, http.StatusNotFound)
	ev.do("GET", path+"?profile="+url.QueryEscape("in ternal"), rd, nil).want(t, http.StatusUnprocessableEntity)

	del := func(q url.Values, token string) *resp { return ev.do("DELETE", path+"?"+q.Encode(), token, nil) }
	q := func(callID string) url.Values {
		return url.Values{"node": {srv.Addr()}, "profile": {"internal"}, "call_id": {callID}}
	}
	if f := del(url.Values{}, wr).want(t, http.StatusUnprocessableEntity).Fields(t); f["node"] == "" || f["profile"] == "" || f["call_id"] == "" {
		t.Errorf("fields %v", f)
	}
	del(q("c1@192.0.2.10"), rd).want(t, http.StatusForbidden)
	del(q("nope"), wr).want(t, http.StatusNotFound)
	del(url.Values{"node": {"127.0.0.1:1"}, "profile": {"internal"}, "call_id": {"c1@192.0.2.10"}}, wr).want(t, http.StatusNotFound)
	del(url.Values{"node": {srv.Addr()}, "profile": {"nope"}, "call_id": {"c1@192.0.2.10"}}, wr).want(t, http.StatusNotFound)
	bad := q("c1@192.0.2.10")
	bad.Set("reboot", "yes")
	del(bad, wr).want(t, http.StatusUnprocessableEntity)
	// Listed, but not sendable on a command line: refused, named.
	if f := del(q("odd<id"), wr).want(t, http.StatusUnprocessableEntity).Fields(t); !strings.Contains(f["call_id"], "command line") {
		t.Errorf("fields %v", f)
	}
	// An injection attempt is refused before FreeSWITCH is asked, and
	// never reaches the wire.
	if f := del(q("c1@192.0.2.10\napi fsctl shutdown"), wr).want(t, http.StatusUnprocessableEntity).Fields(t); !strings.Contains(f["call_id"], "command line") {
		t.Errorf("fields %v", f)
	}
	for _, c := range srv.Commands() {
		if strings.Contains(c, "fsctl") || strings.Contains(c, "flush_inbound_reg") {
			t.Fatalf("on the wire: %q", c)
		}
	}

	del(q("c1@192.0.2.10"), wr).want(t, http.StatusNoContent)
	if n := srv.Count("api sofia profile internal flush_inbound_reg c1@192.0.2.10"); n != 1 {
		t.Fatalf("flush sent %d times: %q", n, srv.Commands())
	}
	if regs := srv.Registrations("internal"); len(regs) != 1 || regs[0].CallID != "odd<id" {
		t.Fatalf("left: %+v", regs)
	}
	audit := ev.do("GET", "/api/v1/audit?kind=freeswitch_registration&action=unregister", ev.tokens["admin"], nil).want(t, http.StatusOK)
	if !strings.Contains(string(audit.Body), `"kind":"freeswitch_registration"`) || !strings.Contains(string(audit.Body), "1001@pbx.example.com") {
		t.Fatalf("no audit event: %s", audit.Body)
	}

	// A replica on standby lists nothing and says why; it refuses writes.
	stop()
	got = ev.do("GET", path+"?profile=internal", rd, nil).want(t, http.StatusOK).JSON(t)
	it := got["items"].([]any)[0].(map[string]any)
	if it["ok"] != false || it["state"] != "standby" || !strings.Contains(it["detail"].(string), "standby") {
		t.Errorf("standby: %v", it)
	}
	del(q("c1@192.0.2.10"), wr).want(t, http.StatusServiceUnavailable)
}

func TestFreeSWITCHRegistrationsWithoutESL(t *testing.T) {
	ev := newEnv(t, "sqlite")
	got := ev.do("GET", "/api/v1/sip/freeswitch-registrations", ev.tokens["sip:read"], nil).want(t, http.StatusOK).JSON(t)
	if got["configured"] != false || len(got["items"].([]any)) != 0 {
		t.Fatalf("%v", got)
	}
	ev.do("DELETE", "/api/v1/sip/freeswitch-registrations?node=127.0.0.1:8021&profile=internal&call_id=x", ev.tokens["sip:write"], nil).
		want(t, http.StatusServiceUnavailable)
}

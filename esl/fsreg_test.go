package esl_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
)

// FreeSWITCH's registrations travel the wire as sofia writes them, and a
// flush goes out only for a Call-ID FreeSWITCH listed, matching nothing
// else.
func TestFreeSWITCHRegistrationsAtTheWire(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{Switchname: "fs1"})
	exp := time.Now().Add(time.Hour)
	srv.SetRegistrations("internal", []esltest.Registration{
		{CallID: "a<b&c@192.0.2.10", SIPUser: "1001", SIPHost: "pbx.example.com", Contact: `"Desk" <sip:1001@192.0.2.10:5062>`,
			Agent: "Téléphone & co", Expires: exp, NetworkIP: "198.51.100.7", NetworkPort: "41234", AuthUser: "1001", AuthRealm: "pbx.example.com"},
		{CallID: "1002-call", SIPUser: "1002", SIPHost: "pbx.example.com", Contact: "<sip:1002@[2001:db8::2]:5060>",
			Agent: "Yealink", Expires: exp, NetworkIP: "2001:db8::2", NetworkPort: "5060"},
		// A Call-ID without '@' that is also a registration's host:
		// FreeSWITCH's flush would take every row of that host.
		{CallID: "pbx.example.com", SIPUser: "1003", SIPHost: "other.example.com", Expires: exp, NetworkIP: "192.0.2.3", NetworkPort: "5060", Contact: "<sip:1003@192.0.2.3>"},
	})
	m, stop := w.run(fast(w, srv.Addr()))
	synced(t, srv)
	ctx := context.Background()

	got, err := m.Registrations(ctx, []string{"internal", "external-ipv4", "gone"})
	if err != nil || len(got) != 3 {
		t.Fatalf("%+v %v", got, err)
	}
	in := got[0]
	if !in.OK || in.Node != srv.Addr() || in.Profile != "internal" || in.State != esl.StateConnected || len(in.Registrations) != 3 {
		t.Fatalf("internal: %+v", in)
	}
	r := in.Registrations[0]
	if r.CallID != "a<b&c@192.0.2.10" || r.User != "1001@pbx.example.com" || r.Contact != `"Desk" <sip:1001@192.0.2.10:5062>` ||
		r.Agent != "Téléphone & co" || r.NetworkIP != "198.51.100.7" || r.NetworkPort != 41234 || r.Host != "fs1" ||
		r.ExpiresIn < 3590 || r.ExpiresIn > 3600 || r.Status != "Registered(UDP)" {
		t.Errorf("registration: %+v", r)
	}
	if e := got[1]; !e.OK || len(e.Registrations) != 0 || e.Registrations == nil {
		t.Errorf("external-ipv4 (none): %+v", e)
	}
	if e := got[2]; e.OK || !strings.Contains(e.Detail, "not running") {
		t.Errorf("a profile FreeSWITCH does not run: %+v", e)
	}
	if srv.Count("api sofia xmlstatus profile internal reg") != 1 {
		t.Errorf("commands: %q", srv.Commands())
	}
	if _, err := m.Registrations(ctx, []string{"in ternal"}); !errors.Is(err, esl.ErrInvalidValue) {
		t.Errorf("a profile name with a space: %v", err)
	}

	// Refusals: nothing is flushed.
	for name, c := range map[string]struct {
		u    esl.Unregistration
		want error
	}{
		"unknown node":         {esl.Unregistration{Node: "127.0.0.1:1", Profile: "internal", CallID: "1002-call"}, esl.ErrUnknownNode},
		"unlisted call-id":     {esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "nope"}, esl.ErrNoSuchRegistration},
		"wrong profile":        {esl.Unregistration{Node: srv.Addr(), Profile: "external-ipv4", CallID: "1002-call"}, esl.ErrNoSuchRegistration},
		"second command":       {esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "x\n\napi fsctl shutdown"}, esl.ErrInvalidValue},
		"second argument":      {esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "1002-call reboot"}, esl.ErrInvalidValue},
		"the flag":             {esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "reboot"}, esl.ErrInvalidValue},
		"unsendable call-id":   {esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "a<b&c@192.0.2.10"}, esl.ErrInvalidValue},
		"would flush a host":   {esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "pbx.example.com"}, esl.ErrWouldFlushOthers},
		"profile in injection": {esl.Unregistration{Node: srv.Addr(), Profile: "internal\nreloadxml", CallID: "1002-call"}, esl.ErrInvalidValue},
	} {
		if _, err := m.Unregister(ctx, c.u); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if f := srv.Flushes(); len(f) != 0 {
		t.Fatalf("a refused unregister reached FreeSWITCH: %+v", f)
	}
	for _, c := range srv.Commands() {
		if strings.Contains(c, "fsctl") || strings.Contains(c, "flush_inbound_reg") {
			t.Fatalf("on the wire: %q", c)
		}
	}

	// The flush itself: FreeSWITCH's exact form, the row gone.
	r, err = m.Unregister(ctx, esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "1002-call", Others: []string{"external-ipv4"}})
	if err != nil || r.User != "1002@pbx.example.com" {
		t.Fatalf("unregister: %+v %v", r, err)
	}
	if srv.Count("api sofia profile internal flush_inbound_reg 1002-call") != 1 {
		t.Errorf("commands: %q", srv.Commands())
	}
	if f := srv.Flushes(); len(f) != 1 || f[0].Reboot || strings.Join(f[0].Removed, ",") != "1002-call" {
		t.Errorf("flushes: %+v", f)
	}
	if _, err := m.Unregister(ctx, esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "1002-call"}); !errors.Is(err, esl.ErrNoSuchRegistration) {
		t.Errorf("flushed twice: %v", err)
	}
	srv.SetRegistrations("external-ipv4", []esltest.Registration{{CallID: "x1@h", SIPUser: "9", SIPHost: "h", NetworkIP: "192.0.2.9", NetworkPort: "5060", Contact: "<sip:9@h>"}})
	if _, err := m.Unregister(ctx, esl.Unregistration{Node: srv.Addr(), Profile: "external-ipv4", CallID: "x1@h", Reboot: true}); err != nil {
		t.Fatal(err)
	}
	if srv.Count("api sofia profile external-ipv4 flush_inbound_reg x1@h reboot") != 1 {
		t.Errorf("commands: %q", srv.Commands())
	}

	// A replica that does not drive the node says so.
	stop()
	got, _ = m.Registrations(ctx, []string{"internal"})
	if len(got) != 1 || got[0].OK || got[0].State != esl.StateStandby || !strings.Contains(got[0].Detail, "standby") {
		t.Errorf("standby: %+v", got)
	}
	if _, err := m.Unregister(ctx, esl.Unregistration{Node: srv.Addr(), Profile: "internal", CallID: "pbx.example.com"}); !errors.Is(err, esl.ErrStandby) {
		t.Errorf("standby unregister: %v", err)
	}
}

// The gateway status carries FreeSWITCH's call counters and the REGISTER
// reply of the last sofia::gateway_state that had one; the state machine's
// own next step (FAILED → FAIL_WAIT, no Status) keeps it.
func TestGatewayCallsAndRegisterReply(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	m, _ := w.run(fast(w, srv.Addr()))
	var mu sync.Mutex
	var events []esl.GatewayEvent
	m.OnGatewayState(func(ev esl.GatewayEvent) { mu.Lock(); events = append(events, ev); mu.Unlock() })
	synced(t, srv)
	ctx := context.Background()
	one, _ := w.store.TrunkByName(w.ctx, "einsundeins")

	got, _ := m.GatewayStatus(ctx, *one)
	if g := got[0]; g.Calls == nil || *g.Calls != (esl.GatewayCalls{}) || g.LastRegister != nil {
		t.Fatalf("fresh gateway: %+v", g)
	}
	srv.SetGatewayCalls("einsundeins", 7, 3, 1, 2)
	srv.SetGatewayStateReply("einsundeins", "FAILED", "DOWN", 403, "Forbidden")
	srv.SetGatewayStateReply("einsundeins", "FAIL_WAIT", "DOWN", 0, "")
	waitFor(t, "both events", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 })
	mu.Lock()
	if e := events[0]; e.State != "FAILED" || e.Status != 403 || e.Phrase != "Forbidden" {
		t.Errorf("event: %+v", e)
	}
	if e := events[1]; e.State != "FAIL_WAIT" || e.Status != 0 {
		t.Errorf("event: %+v", e)
	}
	mu.Unlock()
	got, _ = m.GatewayStatus(ctx, *one)
	g := got[0]
	if g.State != "FAIL_WAIT" || g.Calls == nil || *g.Calls != (esl.GatewayCalls{In: 7, Out: 3, FailedIn: 1, FailedOut: 2}) {
		t.Fatalf("status: %+v", g)
	}
	if lr := g.LastRegister; lr == nil || lr.Status != 403 || lr.Phrase != "Forbidden" || lr.State != "FAILED" || lr.At.IsZero() {
		t.Fatalf("last register: %+v", g.LastRegister)
	}

	// Node away: the cache still has both.
	srv.Kill()
	waitFor(t, "node down", func() bool { return nodeStatus(m, srv.Addr()).State != esl.StateConnected })
	got, _ = m.GatewayStatus(ctx, *one)
	if g := got[0]; g.Calls == nil || g.Calls.In != 7 || g.LastRegister == nil || g.LastRegister.Status != 403 {
		t.Fatalf("from the cache: %+v", g)
	}
}

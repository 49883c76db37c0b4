package esl_test

import (
	"context"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// term runs m.Run once (a leader's term); the returned stop ends it and
// waits for Run to return.
func term(t *testing.T, m *esl.Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// A Manager leads, steps down, another replica leads, and the first leads
// again: each term starts from the cursor in the database, so a change
// applied in an earlier term (by either replica) is not applied again, and
// a change made in between is applied once. Between terms the node is on
// standby, not down.
func TestTermsContinueFromTheCursor(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		w := newWorld(t, backend)
		w.trunk(&models.Trunk{Name: "sipgate", Provider: "plusnet", Profile: "external-ipv4", Proxy: "sipgate.de", Enabled: true})
		srv := runbookServer(t, esltest.Options{Gateways: []esltest.Gateway{
			{Name: "plusnet", Profile: "external-ipv4", Realm: "sip.plusnet.de"},
			{Name: "sipgate", Profile: "external-ipv4", Realm: "sipgate.de"},
			{Name: "einsundeins", Profile: "internal", Register: true, Realm: "sip.1und1.de"},
		}})
		addr := srv.Addr()
		killgw := "api sofia profile external-ipv4 killgw plusnet"
		newManager := func() *esl.Manager {
			m, err := esl.New(fast(w, addr))
			if err != nil {
				t.Fatal(err)
			}
			w.bus.Subscribe(m.OnChange)
			return m
		}
		applied := func(m *esl.Manager) {
			t.Helper()
			last, err := w.store.LastChangeID(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "everything applied", func() bool {
				st := nodeStatus(m, addr)
				return st.State == esl.StateConnected && st.Pending == 0 && st.AppliedChangeID == last
			})
		}
		standby := func(m *esl.Manager) {
			t.Helper()
			if st := nodeStatus(m, addr); st.State != esl.StateStandby || st.Pending != 0 {
				t.Fatalf("node of a manager that does not run: %+v; want standby, nothing pending", st)
			}
		}

		a := newManager()
		standby(a)
		stopA := term(t, a)
		synced(t, srv)
		w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip-a.plusnet.de" })
		waitCmd(t, srv, killgw, 1)
		applied(a)
		stopA()
		standby(a)

		// Meanwhile another replica leads and applies a change.
		b := newManager()
		stopB := term(t, b)
		waitCmd(t, srv, "api reloadacl", 2) // its sync
		w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip-b.plusnet.de" })
		waitCmd(t, srv, killgw, 2)
		applied(b)
		stopB()
		// And a change to another trunk nobody applied yet.
		w.edit("sipgate", func(tr *models.Trunk) { tr.Proxy = "sip-c.sipgate.de" })

		// A's second term owes that change only: B's was applied by B.
		srv.ResetTranscript()
		stopA = term(t, a)
		synced(t, srv)
		applied(a)
		killSipgate := "api sofia profile external-ipv4 killgw sipgate"
		if n, m := srv.Count(killgw), srv.Count(killSipgate); n != 0 || m != 1 {
			t.Fatalf("second term sent %d × %q (want 0: applied in B's term) and %d × %q (want 1):\n%q",
				n, killgw, m, killSipgate, srv.Commands())
		}
		w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip-d.plusnet.de" })
		waitCmd(t, srv, killgw, 1)
		applied(a)
		stopA()
		standby(a)
		if n := srv.Count(killgw); n != 1 {
			t.Fatalf("second term sent %d × %q, want 1", n, killgw)
		}
	})
}

package esl_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
)

// FreeSWITCH is killed and restarted 20 times at random moments (idle, or
// with a change's commands in flight); each time fsplane reconnects, syncs
// the node and applies the change made while it was down, and keeps one
// connection.
func TestReconnectsAfterEveryRestart(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	reg := prometheus.NewRegistry()
	opt := fast(w, srv.Addr())
	// Probes take over once the backoff passes 50 ms.
	opt.ReconnectMin, opt.ReconnectMax, opt.ProbeInterval, opt.Registerer = 10*time.Millisecond, 2*time.Second, 50*time.Millisecond, reg
	m, _ := w.run(opt)
	synced(t, srv)
	rng := rand.New(rand.NewPCG(10, uint64(time.Now().UnixNano())))
	for i := range 20 {
		if rng.IntN(2) == 0 {
			// A change whose commands may be in flight when the node dies.
			w.edit("einsundeins", func(tr *models.Trunk) { tr.RetrySeconds = 30 + i })
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		srv.Kill()
		w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = fmt.Sprintf("sip%d.plusnet.de", i) })
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		srv.ResetTranscript()
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		last, err := w.store.LastChangeID(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("restart %d: connected, synced, nothing owed", i+1), func() bool {
			st := nodeStatus(m, srv.Addr())
			return st.State == esl.StateConnected && st.Pending == 0 && st.AppliedChangeID == last
		})
		cmds := srv.Commands()
		for _, want := range []string{"api sofia xmlstatus", "api sofia profile external-ipv4 rescan",
			"api sofia profile internal rescan", "api reloadacl", "api sofia profile external-ipv4 killgw plusnet"} {
			if indexOf(cmds, want) < 0 {
				t.Fatalf("restart %d: %q not sent: %q", i+1, want, cmds)
			}
		}
		if srv.Auths() < 1 || srv.Conns() != 1 {
			t.Fatalf("restart %d: %d authentications, %d connections open", i+1, srv.Auths(), srv.Conns())
		}
		if st := nodeStatus(m, srv.Addr()); st.LastError != "" || st.PreviousError == "" {
			t.Fatalf("restart %d: a healthy node shows %q as its last error (previous %q)", i+1, st.LastError, st.PreviousError)
		}
	}
	if n := counter(t, reg, "fsplane_esl_connects_total", map[string]string{"result": "ok"}); n < 21 {
		t.Fatalf("%v successful connects for 20 restarts", n)
	}
}

// The node is down when fsplane starts and FreeSWITCH will start with the
// new binding: no operator action is needed, and none is asked for. A
// binding changed while it runs still is.
func TestBindingChangedBeforeFreeSWITCHStartedNeedsNothing(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	srv.Kill()
	reg := prometheus.NewRegistry()
	opt := fast(w, srv.Addr())
	opt.Registerer = reg
	m, _ := w.run(opt)
	waitFor(t, "first attempt failed", func() bool { return nodeStatus(m, srv.Addr()).LastError != "" })
	p, _ := w.store.ProfileByName(w.ctx, "internal")
	p.SIPPort = 5070
	if err := w.store.UpdateProfile(w.ctx, p); err != nil {
		t.Fatal(err)
	}
	last, _ := w.store.LastChangeID(w.ctx)
	waitFor(t, "change folded", func() bool { return m.SeenChangeID(srv.Addr()) >= last })
	time.Sleep(10 * time.Millisecond) // FreeSWITCH starts strictly after the change
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	synced(t, srv)
	waitFor(t, "synced", func() bool { return nodeStatus(m, srv.Addr()).Pending == 0 })
	if n := counter(t, reg, "fsplane_esl_operator_actions_needed_total", nil); n != 0 {
		t.Fatalf("%v operator actions asked for a binding FreeSWITCH started with", n)
	}
	p.SIPPort = 5080
	if err := w.store.UpdateProfile(w.ctx, p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the running profile's binding change reported", func() bool {
		return counter(t, reg, "fsplane_esl_operator_actions_needed_total", nil) == 1
	})
}

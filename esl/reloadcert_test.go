package esl_test

import (
	"slices"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
)

// Replaced certificate files (field tls_cert): `reloadcert` where
// FreeSWITCH has it; without it (before 1.11.1) a restart of the profile
// when allowed, else the profile is reported as needing one.
func TestCertificateRenewal(t *testing.T) {
	for _, tc := range []struct {
		name         string
		hasReload    bool
		allowRestart bool
		restarts     int
		needed       []string
	}{
		{name: "reloadcert", hasReload: true},
		{name: "restart", allowRestart: true, restarts: 1},
		{name: "restart-needed", needed: []string{"internal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "sqlite")
			srv := runbookServer(t, esltest.Options{RestartGuard: time.Millisecond})
			if tc.hasReload {
				srv.SetReply("reloadcert", "+OK\n")
			}
			opt := fast(w, srv.Addr())
			opt.AllowRestart = tc.allowRestart
			m, _ := w.run(opt)
			synced(t, srv)
			srv.SetProfileStarted("internal", time.Now().Add(-time.Minute))
			if err := w.store.CertificateRenewed(w.ctx, "internal", false); err != nil {
				t.Fatal(err)
			}
			w.barrier()
			waitCmd(t, srv, "api reloadacl", 2)
			waitFor(t, "nothing owed", func() bool { return nodeStatus(m, srv.Addr()).Pending == 0 })
			if n := srv.Count("api reloadcert"); n != 1 {
				t.Errorf("%d reloadcert, want 1", n)
			}
			if n := srv.Count("api sofia profile internal restart"); n != tc.restarts {
				t.Errorf("%d restarts, want %d", n, tc.restarts)
			}
			if n := srv.Count("api sofia profile internal rescan"); n != 1 { // the sync's only
				t.Errorf("%d rescans of internal: a certificate is no reason to rescan", n)
			}
			st := nodeStatus(m, srv.Addr())
			if !slices.Equal(st.RestartNeeded, tc.needed) {
				t.Errorf("restart needed %q, want %q", st.RestartNeeded, tc.needed)
			}
			if tc.needed != nil {
				// A FreeSWITCH that starts again reads the new files.
				srv.Kill()
				if err := srv.Restart(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "restart needed cleared", func() bool {
					st := nodeStatus(m, srv.Addr())
					return st.State == esl.StateConnected && len(st.RestartNeeded) == 0
				})
			}
		})
	}
}

// A direct-federation route that changed: its gateway is killed, and the
// profile rescanned to add it again.
func TestFederationRouteChanged(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	m, _ := w.run(fast(w, srv.Addr()))
	synced(t, srv)
	f := &models.Federation{Enabled: true, Domain: "good.test", FQDN: "sip.good.test", CertFile: "/c.pem", Profile: "internal",
		Port: 5061, Mode: "direct", Routes: `[{"domain":"peer.example","fqdn":"sip.peer.example","port":5061}]`}
	if err := w.store.PutFederation(w.ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Routes = `[{"domain":"peer.example","fqdn":"sip2.peer.example","port":5061}]`
	if err := w.store.PutFederation(w.ctx, f); err != nil {
		t.Fatal(err)
	}
	w.barrier()
	waitCmd(t, srv, "api reloadacl", 2)
	waitFor(t, "nothing owed", func() bool { return nodeStatus(m, srv.Addr()).Pending == 0 })
	if n := srv.Count("api sofia profile internal killgw federation-peer.example"); n != 1 {
		t.Errorf("%d killgw of the changed route: %q", n, srv.Commands())
	}
	if n := srv.Count("api sofia profile internal rescan"); n < 2 {
		t.Errorf("no rescan after the change: %q", srv.Commands())
	}
}

package federation

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/federation/fedtest"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// waitFor polls cond; the limit only stops a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// renew replaces dir's fullchain.pem and privkey.pem by rename, as
// certbot replaces its files.
func renew(t *testing.T, p *fedtest.PKI, dir string, l fedtest.Leaf) []byte {
	t.Helper()
	der, key := p.Issue(l)
	for name, data := range map[string][]byte{"privkey.pem": fedtest.KeyPEM(t, key), "fullchain.pem": fedtest.PEMBlock("CERTIFICATE", der)} {
		tmp := filepath.Join(dir, "."+name+".new")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return der
}

func count(cmds []string, cmd string) int {
	n := 0
	for _, c := range cmds {
		if c == cmd {
			n++
		}
	}
	return n
}

// TestRenewalReloadsOnce: a renewed certificate replaced by rename is
// validated, put in place and announced with exactly one reloadcert on the
// ESL wire; an invalid replacement is refused, reported, and sends none.
func TestRenewalReloadsOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var m *esl.Manager
	store := modelstest.Open(t, "sqlite", modelstest.Options{OnCommit: func(ev models.ChangeEvent) { m.OnChange(ev) }})
	srv := esltest.Start(t, esltest.Options{})
	srv.SetReply("reloadcert", "+OK\n") // FreeSWITCH 1.11.1+ built with TLS reload
	var err error
	m, err = esl.New(esl.Options{
		Nodes: []string{srv.Addr()}, Password: "ClueCon", Store: store,
		DialTimeout: time.Second, AuthTimeout: time.Second, CommandTimeout: 3 * time.Second,
		HealthInterval: 100 * time.Millisecond, HealthTimeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		CoalesceWindow: 10 * time.Millisecond, CoalesceMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mdone := make(chan error, 1)
	go func() { mdone <- m.Run(ctx) }()
	defer func() { cancel(); <-mdone }()

	p := fedtest.NewPKI(t)
	live := filepath.Join(t.TempDir(), "live", "sip.good.test")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	first := renew(t, p, live, fedtest.Leaf{Names: []string{"sip.good.test"}})
	tlsDir := filepath.Join(t.TempDir(), "tls")
	svc := NewService(ServiceOptions{Store: store, TLSDir: tlsDir, Roots: func() *x509.CertPool { return p.Pool },
		Debounce: 50 * time.Millisecond})
	set := Settings{Enabled: true, Domain: "good.test", FQDN: "sip.good.test", CertFile: filepath.Join(live, "fullchain.pem"),
		KeyFile: filepath.Join(live, "privkey.pem"), Profile: "federation", BindAddress: "127.0.0.1"}
	set.Normalize()
	if err := svc.Apply(set); err != nil {
		t.Fatal(err)
	}
	if err := store.PutFederation(ctx, set.ToModel(0)); err != nil {
		t.Fatal(err)
	}
	if l := Installed(tlsDir); l == nil || !slices.Equal(l.Raw, first) {
		t.Fatal("the first certificate is not in place")
	}

	// settled waits until the node has applied every committed change.
	settled := func() {
		t.Helper()
		waitFor(t, "the node to apply every change", func() bool {
			last, err := store.LastChangeID(ctx)
			n := m.Nodes()[0]
			return err == nil && n.State == esl.StateConnected && n.Pending == 0 && n.AppliedChangeID == last
		})
	}
	settled()
	changed := make(chan struct{}) // unbuffered: a send returns once Watch has taken it
	wdone := make(chan error, 1)
	go func() { wdone <- svc.Watch(ctx, changed) }()
	defer func() { cancel(); <-wdone }()
	changed <- struct{}{} // Watch runs: its directories are watched
	if n := count(srv.Commands(), "api reloadcert"); n != 0 {
		t.Fatalf("%d reloadcert before any renewal", n)
	}

	second := renew(t, p, live, fedtest.Leaf{Names: []string{"sip.good.test"}})
	waitFor(t, "reloadcert", func() bool { return count(srv.Commands(), "api reloadcert") > 0 })
	changed <- struct{}{} // one more look at unchanged files
	settled()
	if n := count(srv.Commands(), "api reloadcert"); n != 1 {
		t.Errorf("%d reloadcert for one renewal, want 1: %q", n, srv.Commands())
	}
	if l := Installed(tlsDir); l == nil || !slices.Equal(l.Raw, second) {
		t.Error("the renewed certificate is not in place")
	}

	// A wildcard "renewal" is refused: the old certificate stays, nothing
	// is sent, and the refusal is reported.
	renew(t, p, live, fedtest.Leaf{Names: []string{"*.good.test"}})
	// A transient key mismatch may be reported between the two renames.
	waitFor(t, "the refusal", func() bool { return strings.Contains(svc.Refused(), "wildcard certificate") })
	changed <- struct{}{}
	settled()
	if n := count(srv.Commands(), "api reloadcert"); n != 1 {
		t.Errorf("%d reloadcert after a refused replacement, want still 1", n)
	}
	if l := Installed(tlsDir); l == nil || !slices.Equal(l.Raw, second) {
		t.Error("a refused certificate replaced the one in place")
	}
	if r := svc.Refused(); !strings.Contains(r, "wildcard certificate") || !strings.Contains(r, "the one in place stays") {
		t.Errorf("refusal %q", r)
	}
	wantWarning(t, svc, "wildcard")
	if n := testutil.ToFloat64(svc.metrics.renewals.WithLabelValues("installed")); n != 1 {
		t.Errorf("installed renewals counted: %v", n)
	}
	if n := testutil.ToFloat64(svc.metrics.renewals.WithLabelValues("refused")); n < 1 {
		t.Errorf("refused renewals counted: %v", n)
	}
	leaf, _ := x509.ParseCertificate(second)
	if got := testutil.ToFloat64(svc.metrics.expiry); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("expiry metric %v, want %v", got, leaf.NotAfter.Unix())
	}
}

package federation

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/federation/fedtest"
	"github.com/fsplane/fsplane/models/modelstest"
)

// TestExpiryWarning: a certificate in place that expires within
// ExpiryWarnDays is a warning on /readyz; TLS is offered to xml-curl only
// once its files are in place.
func TestExpiryWarning(t *testing.T) {
	ctx := context.Background()
	store := modelstest.Open(t, "sqlite", modelstest.Options{})
	p := fedtest.NewPKI(t)
	cert, key := p.Files("soon", fedtest.Leaf{Names: []string{"sip.good.test"}, NotAfter: time.Now().Add(5*24*time.Hour + time.Hour)})
	dir := filepath.Join(t.TempDir(), "tls")
	svc := NewService(ServiceOptions{Store: store, TLSDir: dir, Roots: func() *x509.CertPool { return p.Pool }, ExpiryWarnDays: 7})
	set := Settings{Enabled: true, Domain: "good.test", FQDN: "sip.good.test", CertFile: cert, KeyFile: key, Profile: "federation"}
	set.Normalize()
	if err := store.PutFederation(ctx, set.ToModel(0)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := svc.TLS(ctx); ok || err != nil {
		t.Fatalf("TLS offered before the files are in place (err %v)", err)
	}
	wantWarning(t, svc, "no certificate is in place")
	if err := svc.Apply(set); err != nil {
		t.Fatal(err)
	}
	side, ok, err := svc.TLS(ctx)
	if !ok || err != nil || side.Profile != "federation" || side.Port != DefaultPort || side.Dir != dir || side.Routes != nil {
		t.Errorf("TLS: %+v %v %v", side, ok, err)
	}
	wantWarning(t, svc, "the federation certificate expires in 5 days")
	svc.opt.ExpiryWarnDays = 3
	if st, detail := svc.Readiness(ctx); st != "ok" {
		t.Errorf("%s %q", st, detail)
	}
}

func TestWarningsRestartNeeded(t *testing.T) {
	store := modelstest.Open(t, "sqlite", modelstest.Options{})
	svc := NewService(ServiceOptions{Store: store, TLSDir: t.TempDir()})
	svc.UseESL(func() []esl.NodeStatus {
		return []esl.NodeStatus{{Node: "127.0.0.1:8021", RestartNeeded: []string{"federation"}}, {Node: "127.0.0.2:8021"}}
	})
	ws, err := svc.Warnings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || !strings.Contains(ws[0], "FreeSWITCH 127.0.0.1:8021 reads the renewed certificate only after `sofia profile federation restart`") {
		t.Errorf("warnings %q", ws)
	}
}

// wantWarning: the one warning contains want, and /readyz, which is
// public, says only that there is one (never a path of this host).
func wantWarning(t *testing.T, svc *Service, want string) {
	t.Helper()
	ws, err := svc.Warnings(context.Background())
	if err != nil || len(ws) != 1 || !strings.Contains(ws[0], want) {
		t.Errorf("warnings %q (%v), want one with %q", ws, err, want)
	}
	if st, detail := svc.Readiness(context.Background()); st != "degraded" || detail != "1 federation warning (GET /api/v1/federation)" || strings.Contains(detail, svc.opt.TLSDir) {
		t.Errorf("readiness %s %q", st, detail)
	}
}

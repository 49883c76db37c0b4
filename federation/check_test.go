package federation

import (
	"context"
	"fmt"
	"github.com/fsplane/fsplane/federation/fedtest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// world is a DNS server, a private root and a SIP/TLS listener for
// sip.good.test presenting the good certificate.
type world struct {
	dns  *fedtest.ZoneServer
	pki  *fedtest.PKI
	cert string
	key  string
	port int
}

func newWorld(t *testing.T) *world {
	w := &world{pki: fedtest.NewPKI(t)}
	w.cert, w.key = w.pki.Files("good", fedtest.Leaf{Names: []string{"sip.good.test"}})
	w.port = fedtest.SIPTLS(t, w.cert, w.key)
	w.dns = fedtest.NewZoneServer(t)
	return w
}

func (w *world) checker() *Checker {
	return &Checker{
		Resolver: Resolver{Server: w.dns.Addr, Timeout: 2 * time.Second},
		Search:   []string{"corp.example"},
		Roots:    w.pki.Pool,
		Timeout:  3 * time.Second,
	}
}

// settings are good settings for domain with FQDN sip.<domain>.
func (w *world) settings(domain string) Settings {
	return Settings{Enabled: true, Domain: domain, FQDN: "sip." + domain, CertFile: w.cert, KeyFile: w.key,
		Profile: "federation", BindAddress: "127.0.0.1", Port: w.port, Mode: ModeOpen, PublicAddress: "127.0.0.1"}
}

func expect(t *testing.T, r Report, id, status string, detailHas ...string) {
	t.Helper()
	c := r.Get(id)
	if c.Status != status {
		t.Errorf("%s: status %q, want %q (detail %q)", id, c.Status, status, c.Detail)
	}
	for _, s := range detailHas {
		if !strings.Contains(c.Detail, s) {
			t.Errorf("%s: detail %q lacks %q", id, c.Detail, s)
		}
	}
	if (status == Fail || status == Warn) && c.Fix == "" {
		t.Errorf("%s: %s without a fix", id, status)
	}
}

func TestRunGood(t *testing.T) {
	w := newWorld(t)
	w.dns.Add(t, "sip.good.test. 60 IN A 127.0.0.1",
		fmt.Sprintf("_sipfederationtls._tcp.good.test. 60 IN SRV 0 0 %d sip.good.test.", w.port))
	r := w.checker().Run(context.Background(), w.settings("good.test"))
	ids := []string{IDFQDNInDomain, IDARecord, IDSRVRecord, IDCertificate, IDReachable, IDBound}
	if len(r.Checks) != len(ids) {
		t.Fatalf("%d checks, want %d", len(r.Checks), len(ids))
	}
	for i, c := range r.Checks {
		if c.ID != ids[i] {
			t.Errorf("check %d is %q, want %q", i, c.ID, ids[i])
		}
		if c.Status != Pass {
			t.Errorf("%s: %s: %s", c.ID, c.Status, c.Detail)
		}
	}
	if r.Failed() {
		t.Error("Failed() on a good report")
	}
	expect(t, r, IDSRVRecord, Pass, "priority 0, weight 0")
	expect(t, r, IDCertificate, Pass, "days left", "fsplane test root")
	expect(t, r, IDReachable, Pass, "OPTIONS answered 200")
}

func TestRunDNSBroken(t *testing.T) {
	w := newWorld(t)
	w.dns.Add(t,
		"sip.nosrv.test. 60 IN A 127.0.0.1",
		"sip.otherhost.test. 60 IN A 127.0.0.1",
		"_sipfederationtls._tcp.otherhost.test. 60 IN SRV 0 0 5061 lync.otherhost.test.",
		"sip.wrongport.test. 60 IN A 127.0.0.1",
		"_sipfederationtls._tcp.wrongport.test. 60 IN SRV 10 5 5062 sip.wrongport.test.",
		"sip.amismatch.test. 60 IN A 127.0.0.2",
		"sip.search.test.corp.example. 60 IN A 127.0.0.1",
	)
	c := w.checker()
	ctx := context.Background()

	s := w.settings("nosrv.test")
	r := c.Run(ctx, s)
	expect(t, r, IDSRVRecord, Fail, "_sipfederationtls._tcp.nosrv.test.", "does not exist")
	expect(t, r, IDARecord, Pass)
	if !r.Failed() {
		t.Error("a report with a failed check does not fail")
	}
	s.Mode = ModeDirect
	expect(t, c.Run(ctx, s), IDSRVRecord, Skip)

	// Never dial a real 5061 on this machine: a closed loopback port.
	s = w.settings("otherhost.test")
	s.Port = fedtest.ClosedPort(t)
	expect(t, c.Run(ctx, s), IDSRVRecord, Fail, "lync.otherhost.test.", "another host")

	s = w.settings("wrongport.test")
	s.Port = fedtest.ClosedPort(t)
	expect(t, c.Run(ctx, s), IDSRVRecord, Fail, fmt.Sprintf("port 5062, not %d", s.Port), "priority 10, weight 5")

	s = w.settings("amismatch.test")
	r = c.Run(ctx, s)
	expect(t, r, IDARecord, Fail, "resolves to 127.0.0.2, not to the public address 127.0.0.1")

	s = w.settings("search.test")
	r = c.Run(ctx, s)
	expect(t, r, IDARecord, Fail, "sip.search.test. does not exist", "resolves only as sip.search.test.corp.example.")
	expect(t, r, IDReachable, Fail, "does not resolve")

	s.PublicAddress = ""
	s.BindAddress = "127.0.0.1"
	w.dns.Add(t, "sip.nopublic.test. 60 IN A 127.0.0.1")
	s.Domain, s.FQDN = "nopublic.test", "sip.nopublic.test"
	expect(t, c.Run(ctx, s), IDARecord, Warn, "no public address")
}

func TestFQDNInDomain(t *testing.T) {
	c := &Checker{}
	for _, tc := range []struct {
		domain, fqdn, status string
	}{
		{"zahnfee.de", "xphone.zahnfee.de", Pass},
		{"zahnfee.de", "XPhone.Zahnfee.DE.", Pass},
		{"zahnfee.de", "zahnfee.de", Pass},
		{"zahnfee.de", "xphonezahnfee.de", Fail}, // a suffix, not a label boundary
		{"zahnfee.de", "xphone.zahnfee.com", Fail},
		{"zahnfee.de", "", Fail},
		{"", "xphone.zahnfee.de", Fail},
		{"zahnfee.de", "xphone_.zahnfee.de", Fail},
	} {
		s := Settings{Domain: tc.domain, FQDN: tc.fqdn}
		s.Normalize()
		if got := c.fqdnInDomain(s); got.Status != tc.status {
			t.Errorf("%q in %q: %s (%s), want %s", tc.fqdn, tc.domain, got.Status, got.Detail, tc.status)
		}
	}
}

func TestCertificateCheck(t *testing.T) {
	p := fedtest.NewPKI(t)
	c := &Checker{Roots: p.Pool}
	s := Settings{Domain: "good.test", FQDN: "sip.good.test"}
	now := time.Now()
	_, otherKey := p.Issue(fedtest.Leaf{Names: []string{"sip.good.test"}})
	for _, tc := range []struct {
		name   string
		leaf   fedtest.Leaf
		status string
		detail string
		mutate func(s *Settings)
	}{
		{name: "exact", leaf: fedtest.Leaf{Names: []string{"sip.good.test"}}, status: Pass, detail: "days left"},
		{name: "cn-only", leaf: fedtest.Leaf{CN: "sip.good.test"}, status: Pass},
		{name: "wildcard", leaf: fedtest.Leaf{Names: []string{"*.good.test"}}, status: Fail, detail: "wildcard certificate (*.good.test)"},
		{name: "wrong-name", leaf: fedtest.Leaf{Names: []string{"www.good.test"}}, status: Fail, detail: "wrong name: issued for www.good.test, not sip.good.test"},
		{name: "cn-ignored-with-san", leaf: fedtest.Leaf{CN: "sip.good.test", Names: []string{"www.good.test"}}, status: Fail, detail: "wrong name"},
		{name: "expired", leaf: fedtest.Leaf{Names: []string{"sip.good.test"}, NotBefore: now.Add(-100 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, status: Fail, detail: "expired on"},
		{name: "self-signed", leaf: fedtest.Leaf{Names: []string{"sip.good.test"}, SelfSigned: true}, status: Fail, detail: "self-signed certificate"},
		{name: "expiring", leaf: fedtest.Leaf{Names: []string{"sip.good.test"}, NotAfter: now.Add(5 * 24 * time.Hour)}, status: Warn, detail: "4 days left"},
		{name: "key-mismatch", leaf: fedtest.Leaf{Names: []string{"sip.good.test"}}, status: Fail, detail: "private key does not match",
			mutate: func(s *Settings) { s.KeyFile = p.Write("other.key", fedtest.KeyPEM(t, otherKey)) }},
		{name: "untrusted-root", leaf: fedtest.Leaf{Names: []string{"sip.good.test"}}, status: Fail, detail: "does not chain to a trusted root",
			mutate: func(*Settings) { c.Roots = fedtest.NewPKI(t).Pool }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Roots = p.Pool
			s := s
			s.CertFile, s.KeyFile = p.Files(tc.name, tc.leaf)
			if tc.mutate != nil {
				tc.mutate(&s)
			}
			_, got := c.certificate(s, now)
			if got.Status != tc.status || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("%s %q, want %s containing %q", got.Status, got.Detail, tc.status, tc.detail)
			}
			if tc.status != Pass && got.Fix == "" {
				t.Error("no fix")
			}
		})
	}
}

func TestCertificateInOneFile(t *testing.T) {
	// agent.pem style: certificate and key in one file, no key file.
	p := fedtest.NewPKI(t)
	der, k := p.Issue(fedtest.Leaf{Names: []string{"sip.good.test"}})
	f := p.Write("agent.pem", append(fedtest.PEMBlock("CERTIFICATE", der), fedtest.KeyPEM(t, k)...))
	_, got := (&Checker{Roots: p.Pool}).certificate(Settings{FQDN: "sip.good.test", CertFile: f}, time.Now())
	if got.Status != Pass || strings.Contains(got.Detail, "not checked") {
		t.Errorf("%s %q", got.Status, got.Detail)
	}
}

func TestReachableOtherCertificate(t *testing.T) {
	w := newWorld(t)
	w.dns.Add(t, "sip.good.test. 60 IN A 127.0.0.1")
	// The listener presents a self-signed certificate, as sofia does when
	// agent.pem is missing; the configured one is the good one.
	ssCert, ssKey := w.pki.Files("selfsigned", fedtest.Leaf{Names: []string{"sip.good.test"}, SelfSigned: true})
	s := w.settings("good.test")
	s.Port = fedtest.SIPTLS(t, ssCert, ssKey)
	r := w.checker().Run(context.Background(), s)
	expect(t, r, IDReachable, Fail, "self-signed certificate", "not the configured one")

	// Nothing listening: the telnet test fails.
	s.Port = fedtest.ClosedPort(t)
	expect(t, w.checker().Run(context.Background(), s), IDReachable, Fail, "TCP connection to sip.good.test")
}

func TestBound(t *testing.T) {
	local := func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.10")}, nil
	}
	c := &Checker{LocalAddrs: local}
	s := Settings{Enabled: true, Profile: "federation", BindAddress: "192.0.2.10", Port: 5061}
	if got := c.bound(s); got.Status != Pass || got.Detail != "enabled, profile federation bound to 192.0.2.10:5061" {
		t.Errorf("%+v", got)
	}
	s.BindAddress = "192.0.2.11"
	if got := c.bound(s); got.Status != Fail || !strings.Contains(got.Detail, "not an address of this host") {
		t.Errorf("%+v", got)
	}
	s.Enabled = false
	if got := c.bound(s); got.Status != Fail || got.Detail != "federation is not enabled" {
		t.Errorf("%+v", got)
	}
	c.OneOff = true
	if got := c.bound(s); got.Status != Skip {
		t.Errorf("%+v", got)
	}
}

// The system resolver is resolv.conf's first nameserver, with its search
// list (which the checks name when only a suffix makes a name resolve).
func TestSystemResolver(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("search corp.example\nnameserver 127.0.0.53\nnameserver 127.0.0.54\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, search, err := resolverFrom(conf)
	if err != nil || r.Server != "127.0.0.53:53" || len(search) != 1 || search[0] != "corp.example" {
		t.Fatalf("resolver %+v search %v: %v", r, search, err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search corp.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := resolverFrom(empty); err == nil || !strings.Contains(err.Error(), "no nameserver") {
		t.Fatalf("no nameserver: %v", err)
	}
}

func TestBoundProfileIP(t *testing.T) {
	c := &Checker{LocalAddrs: func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("192.0.2.10")}, nil }}
	s := Settings{Enabled: true, Profile: "federation", BindAddress: "192.0.2.10", Port: 5061}
	for ip, want := range map[string]string{"": Pass, "::": Pass, "0.0.0.0": Pass, "192.0.2.10": Pass, "192.0.2.11": Fail} {
		c.ProfileIP = ip
		if got := c.bound(s); got.Status != want {
			t.Errorf("profile sip-ip %q: %+v, want %s", ip, got, want)
		}
	}
}

// TestReachableMutualTLS: a peer that demands a client certificate gets
// the configured one; without the key the check says so.
func TestReachableMutualTLS(t *testing.T) {
	w := newWorld(t)
	w.dns.Add(t, "sip.good.test. 60 IN A 127.0.0.1")
	s := w.settings("good.test")
	s.Port = fedtest.SIPMTLS(t, w.cert, w.key, w.pki.Pool)
	expect(t, w.checker().Run(context.Background(), s), IDReachable, Pass, "OPTIONS answered 200")
	s.KeyFile = ""
	expect(t, w.checker().Run(context.Background(), s), IDReachable, Fail, "requires a client certificate")
}

func TestSettingsFieldErrors(t *testing.T) {
	s := Settings{Enabled: true, Domain: "Good.Test", FQDN: "sip.good.test.", CertFile: "rel.pem", Profile: "federation",
		Mode: ModeDirect, BindAddress: "sip.good.test", UsePublicAddress: true,
		Routes: []Route{{Domain: "peer.example", FQDN: "sip.peer.example"}, {Domain: "peer.example", FQDN: "x..y"},
			{Domain: "a-peer-domain-long-enough-that-its-gateway-name-exceeds.example", FQDN: "sip.peer.example"}}}
	s.Defaults()
	got := s.FieldErrors()
	for field, want := range map[string]string{
		"domain":           `"Good.Test" is not in normal form: write good.test`,
		"fqdn":             `"sip.good.test." is not in normal form: write sip.good.test`,
		"cert_file":        "must be an absolute path",
		"bind_address":     "is not an IP address",
		"public_address":   "required with use_public_address",
		"routes[1].domain": "has two routes",
		"routes[1].fqdn":   "empty or over-long label",
		"routes[0].domain": "",
		"routes[2].domain": "gateway name",
		"profile":          "",
		"mode":             "",
	} {
		if want == "" {
			if got[field] != "" {
				t.Errorf("%s: unexpected %q", field, got[field])
			}
			continue
		}
		if !strings.Contains(got[field], want) {
			t.Errorf("%s: %q, want %q", field, got[field], want)
		}
	}
	if s.Validate() == nil || s.Routes[0].Port != DefaultPort {
		t.Errorf("validate %v, route port %d", s.Validate(), s.Routes[0].Port)
	}
}

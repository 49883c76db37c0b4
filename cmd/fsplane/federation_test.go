package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/federation/fedtest"
)

// TestFederationCheckCLI: a one-off check from flags against a DNS server,
// a private root and a SIP/TLS listener on loopback; --json has the
// contract's shape, and the exit status follows failures.
func TestFederationCheckCLI(t *testing.T) {
	p := fedtest.NewPKI(t)
	cert, key := p.Files("good", fedtest.Leaf{Names: []string{"sip.good.test"}})
	port := fedtest.SIPTLS(t, cert, key)
	z := fedtest.NewZoneServer(t,
		"sip.good.test. 60 IN A 127.0.0.1",
		fmt.Sprintf("_sipfederationtls._tcp.good.test. 60 IN SRV 0 0 %d sip.good.test.", port),
	)
	env := map[string]string{"FSPLANE_DATA_DIR": t.TempDir()}
	args := []string{"federation", "check", "--json", "--domain", "good.test", "--fqdn", "sip.good.test",
		"--cert", cert, "--key", key, "--public-ip", "127.0.0.1", "--resolver", z.Addr,
		"--ca-file", p.RootFile, "--port", fmt.Sprint(port)}
	out, stderr, rc := runFsplane(t, env, args...)
	if rc != 0 {
		t.Fatalf("rc %d: %s\n%s", rc, stderr, out)
	}
	var raw map[string][]map[string]string
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := []string{"fqdn-in-domain", "a-record", "srv-record", "certificate", "reachable", "bound"}
	if len(raw["checks"]) != len(want) || len(raw) != 1 {
		t.Fatalf("output %s", out)
	}
	for i, c := range raw["checks"] {
		if len(c) != 4 || c["id"] != want[i] {
			t.Errorf("check %d: %v, want id %s and exactly id, status, detail, fix", i, c, want[i])
		}
		status := "pass"
		if c["id"] == "bound" {
			status = "skip" // one-off: nothing stored to bind
		}
		if c["status"] != status {
			t.Errorf("%s: %s (%s)", c["id"], c["status"], c["detail"])
		}
	}

	// Without --ca-file the private root is not trusted: the certificate
	// check fails, and so does the command.
	noCA := slicesWithout(args, "--ca-file", p.RootFile)
	out, _, rc = runFsplane(t, env, noCA...)
	var rep federation.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rc != 1 || rep.Get("certificate").Status != federation.Fail || !strings.Contains(rep.Get("certificate").Detail, "trusted root") {
		t.Errorf("rc %d, certificate %+v", rc, rep.Get("certificate"))
	}

	// Text output: one line per check, the fix under a failing one.
	out, stderr, rc = runFsplane(t, env, slicesWithout(noCA, "--json")...)
	if rc != 1 || !strings.Contains(stderr, "1 of 6 checks failed") {
		t.Errorf("rc %d, stderr %q", rc, stderr)
	}
	if !strings.Contains(out, "FAIL  certificate") || !strings.Contains(out, "fix: ") || !strings.Contains(out, "PASS  srv-record") {
		t.Errorf("text output:\n%s", out)
	}
}

func slicesWithout(args []string, drop ...string) []string {
	var out []string
	for _, a := range args {
		keep := true
		for _, d := range drop {
			keep = keep && a != d
		}
		if keep {
			out = append(out, a)
		}
	}
	return out
}

// TestFederationSetShowCheck: `federation set` checks and installs the
// certificate and stores the settings; `show` prints them; `check` without
// flags runs on them (bound included); the firewall export opens the port.
func TestFederationSetShowCheck(t *testing.T) {
	env, _, _ := firewallEnv(t)
	tlsDir := t.TempDir() + "/tls"
	env["FSPLANE_FEDERATION_TLS_DIR"] = tlsDir
	p := fedtest.NewPKI(t)
	cert, key := p.Files("good", fedtest.Leaf{Names: []string{"sip.good.test"}})
	wild, wildKey := p.Files("wild", fedtest.Leaf{Names: []string{"*.good.test"}})
	port := fedtest.SIPTLS(t, cert, key)
	z := fedtest.NewZoneServer(t, "sip.good.test. 60 IN A 127.0.0.1",
		fmt.Sprintf("_sipfederationtls._tcp.good.test. 60 IN SRV 0 0 %d sip.good.test.", port))
	env["FSPLANE_FEDERATION_RESOLVER"] = z.Addr

	base := []string{"federation", "set", "--enabled", "--domain", "good.test", "--fqdn", "sip.good.test",
		"--ca-file", p.RootFile, "--profile", "internal", "--bind-address", "127.0.0.1",
		"--public-address", "127.0.0.1", "--port", fmt.Sprint(port)}
	_, stderr, rc := runFsplane(t, env, append(base, "--cert", wild, "--key", wildKey)...)
	if rc != 1 || !strings.Contains(stderr, "wildcard certificate") {
		t.Fatalf("wildcard: rc %d %s", rc, stderr)
	}
	if _, stderr, rc = runFsplane(t, env, "federation", "set", "--route", "peer.example"); rc != 1 || !strings.Contains(stderr, "--route") {
		t.Errorf("bad route: rc %d %s", rc, stderr)
	}
	if _, stderr, rc = runFsplane(t, env, append(base, "--cert", cert, "--key", key)...); rc != 0 {
		t.Fatalf("set: rc %d %s", rc, stderr)
	}
	if federation.Installed(tlsDir) == nil {
		t.Fatal("agent.pem and cafile.pem not in place")
	}

	out, stderr, rc := runFsplane(t, env, "federation", "show")
	var shown map[string]any
	if rc != 0 || json.Unmarshal([]byte(out), &shown) != nil {
		t.Fatalf("show: rc %d %s %s", rc, stderr, out)
	}
	if shown["version"] != float64(1) || shown["fqdn"] != "sip.good.test" || shown["tls_cert_dir"] != tlsDir || shown["enabled"] != true {
		t.Errorf("show: %s", out)
	}

	out, stderr, rc = runFsplane(t, env, "federation", "check", "--json")
	if rc != 0 {
		t.Fatalf("check: rc %d %s\n%s", rc, stderr, out)
	}
	var rep federation.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if b := rep.Get("bound"); b.Status != federation.Pass || !strings.Contains(b.Detail, "profile internal bound to 127.0.0.1") {
		t.Errorf("bound: %+v", b)
	}

	out, _, _ = runFsplane(t, env, "firewall", "export", "--format", "ufw")
	if want := fmt.Sprintf("ufw allow %d/tcp comment 'fsplane:general'", port); !strings.Contains(out, want) {
		t.Errorf("firewall export lacks %q:\n%s", want, out)
	}
}

// TestFederationCheckFlags: bad flag values are refused with the flag named.
func TestFederationCheckFlags(t *testing.T) {
	env := map[string]string{"FSPLANE_DATA_DIR": t.TempDir()}
	for _, tc := range []struct{ args, want string }{
		{"--domain good..test --fqdn sip.good.test --cert /x", "--domain"},
		{"--fqdn sip.good.test --public-ip 1.2.3 --cert /x", "--public-ip"},
		{"--fqdn sip.good.test --port 70000 --cert /x", "--port"},
		{"--fqdn sip.good.test --resolver localhost --cert /x", "--resolver"},
	} {
		_, stderr, rc := runFsplane(t, env, append([]string{"federation", "check"}, strings.Fields(tc.args)...)...)
		if rc != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: rc %d %q", tc.args, rc, stderr)
		}
	}
}

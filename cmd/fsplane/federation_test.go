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

package registrar_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/registrar"
)

// sipp (Debian's sip-tester) against the registrar: real REGISTERs with
// MD5 digest over UDP and TCP. scripts/test-peers.sh installs it; with
// CI=true a missing sipp fails the test.

func needSipp(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp (package sip-tester) is missing; under CI=true it is required (scripts/test-peers.sh installs it)")
		}
		t.Skip("sipp not installed (package sip-tester; scripts/test-peers.sh)")
	}
	return p
}

// sippStep is one REGISTER: challenged, then sent with credentials,
// answered want.
type sippStep struct {
	contact string // Contact header value; "" for one at sipp's socket
	expires string // Expires header value; "" for none
	from    string // From user; "" for the AOR's user
	want    int
}

func sippScenario(steps []sippStep) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="ISO-8859-1" ?>` + "\n<scenario name=\"fsplane registrar\">\n")
	cseq := 1
	for _, s := range steps {
		contact := s.contact
		if contact == "" {
			contact = "<sip:[user]@[local_ip]:[local_port];transport=[transport]>"
		}
		from := s.from
		if from == "" {
			from = "[user]"
		}
		for _, auth := range []bool{false, true} {
			fmt.Fprintf(&b, "<send retrans=\"500\"><![CDATA[\n\nREGISTER sip:[domain] SIP/2.0\n"+
				"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport\n"+
				"From: <sip:%s@[domain]>;tag=[pid]SIPpTag[call_number]\nTo: <sip:[user]@[domain]>\n"+
				"Call-ID: [call_id]\nCSeq: %d REGISTER\nContact: %s\nMax-Forwards: 70\n", from, cseq, contact)
			cseq++
			if s.expires != "" {
				fmt.Fprintf(&b, "Expires: %s\n", s.expires)
			}
			if auth {
				b.WriteString("[authentication]\n")
			}
			b.WriteString("User-Agent: sipp\nContent-Length: 0\n\n]]></send>\n")
			if !auth {
				b.WriteString("<recv response=\"401\" auth=\"true\"/>\n")
			} else {
				fmt.Fprintf(&b, "<recv response=\"%d\"/>\n", s.want)
			}
		}
	}
	b.WriteString("</scenario>\n")
	return b.String()
}

// runSipp runs one call of the scenario as user with password over
// transport ("u1" or "t1") against addr and fails the test on any
// unexpected answer.
func runSipp(t *testing.T, addr, transport, user, password string, steps []sippStep) {
	t.Helper()
	sipp := needSipp(t)
	dir := t.TempDir()
	sf := filepath.Join(dir, "scenario.xml")
	if err := os.WriteFile(sf, []byte(sippScenario(steps)), 0o644); err != nil {
		t.Fatal(err)
	}
	errFile := filepath.Join(dir, "errors.log")
	cmd := exec.Command(sipp, "-sf", sf, "-m", "1", "-t", transport, "-i", "127.0.0.1", "-nostdin",
		"-timeout", "15s", "-timeout_error", "-trace_err", "-error_file", errFile,
		"-au", user, "-ap", password, "-key", "user", user, "-key", "domain", domain, addr)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(errFile)
		t.Fatalf("sipp %s: %v\n%s\nerrors:\n%s", transport, err, tail(string(out), 2000), tail(string(errs), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestSippRegisterScenarios(t *testing.T) {
	needSipp(t)
	for _, tc := range []struct {
		name, transport, user, password string
		steps                           []sippStep
		left                            int // bindings afterwards
	}{
		{"register udp", "u1", "1001", pw1001, []sippStep{{expires: "300", want: 200}}, 1},
		{"register tcp, re-register, unregister", "t1", "1001", pw1001, []sippStep{
			{expires: "300", want: 200}, {expires: "600", want: 200}, {expires: "0", want: 200}}, 0},
		{"wildcard removal", "u1", "1001", pw1001, []sippStep{
			{contact: "<sip:1001@127.0.0.1:7001>", expires: "300", want: 200},
			{contact: "<sip:1001@127.0.0.1:7002>", expires: "300", want: 200},
			{contact: "*", expires: "0", want: 200}}, 0},
		{"423 interval too brief", "u1", "1001", pw1001, []sippStep{{expires: "30", want: 423}}, 0},
		{"403 third party", "u1", "1001", pw1001, []sippStep{{from: "1002", expires: "300", want: 403}}, 0},
		{"403 wrong password", "t1", "1001", "not-the-password", []sippStep{{expires: "300", want: 403}}, 0},
		{"503 beyond max contacts", "u1", "1002", pw1002, []sippStep{
			{contact: "<sip:1002@127.0.0.1:7001>", expires: "300", want: 200},
			{contact: "<sip:1002@127.0.0.1:7002>", expires: "300", want: 200},
			{contact: "<sip:1002@127.0.0.1:7003>", expires: "300", want: 503},
			{contact: "*", expires: "0", want: 200}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// sipp answers the topmost challenge only and knows MD5 only.
			f := start(t, registrar.Options{MaxContacts: 2, Algorithms: []string{"MD5", "SHA-256"}})
			addr := f.udp
			if tc.transport == "t1" {
				addr = f.tcp
			}
			runSipp(t, addr, tc.transport, tc.user, tc.password, tc.steps)
			if n := f.reg.Count(); n != tc.left {
				t.Fatalf("%d bindings left, want %d: %+v", n, tc.left, f.reg.List())
			}
		})
	}
}

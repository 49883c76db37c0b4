package registrar_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/registrar"
)

// linphonec (Debian's linphone-cli, belle-sip 5.1) registers with SHA-256
// digest (RFC 8760): it picks the topmost challenge it supports.
// scripts/test-peers.sh installs it; with CI=true a missing one fails.
func TestLinphoneRegistersWithSHA256(t *testing.T) {
	bin, err := exec.LookPath("linphonec")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("linphonec (package linphone-cli) is missing; under CI=true it is required (scripts/test-peers.sh installs it)")
		}
		t.Skip("linphonec not installed (package linphone-cli; scripts/test-peers.sh)")
	}
	reg := prometheus.NewRegistry()
	f := start(t, registrar.Options{Registerer: reg})
	home := t.TempDir()
	rc := filepath.Join(home, "linphonerc")
	// linphonec's core does not start without its database directory.
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A free UDP port, no TCP or TLS; no audio device is needed to register.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	conf := fmt.Sprintf("[sip]\nsip_port=%d\nsip_tcp_port=0\nsip_tls_port=0\n", port)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", rc, "-d", "0")
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Dir = home
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		io.WriteString(stdin, "quit\n")
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	fmt.Fprintf(stdin, "register sip:1001@%s sip:%s %s\n", domain, f.udp, pw1001)
	deadline := time.Now().Add(20 * time.Second)
	for f.reg.Count() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("linphonec did not register:\n%s\nregistrar log:\n%s", out.String(), f.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := f.reg.List()[0]
	if b.AOR != "1001@"+domain || b.Transport != "udp" {
		t.Fatalf("binding %+v", b)
	}
	if !strings.Contains(strings.ToLower(b.UserAgent), "linphone") && !strings.Contains(strings.ToLower(b.UserAgent), "belle-sip") {
		t.Fatalf("user agent %q: not linphonec's", b.UserAgent)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "fsplane_registrar_digest_checks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			checks[strings.TrimSpace(key)] = m.GetCounter().GetValue()
		}
	}
	if checks["algorithm=SHA-256 result=ok"] < 1 || checks["algorithm=MD5 result=ok"] != 0 {
		t.Fatalf("digest checks %v: want linphonec's SHA-256 and no MD5", checks)
	}
}

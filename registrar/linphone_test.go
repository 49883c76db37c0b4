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
	bin := needLinphone(t)
	reg := prometheus.NewRegistry()
	f := start(t, registrar.Options{Registerer: reg})
	lp := startLinphone(t, bin, "")
	lp.send("register sip:1001@%s sip:%s %s", domain, f.udp, pw1001)
	deadline := time.Now().Add(20 * time.Second)
	for f.reg.Count() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("linphonec did not register:\n%s\nregistrar log:\n%s", lp.out.String(), f.log.String())
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

// Two linphonec register (SHA-256) and one sends the other a MESSAGE by
// AOR: the proxy delivers it to the contact the other registered.
func TestLinphoneMessageThroughProxy(t *testing.T) {
	bin := needLinphone(t)
	f := start(t, registrar.Options{})
	// Accounts in the config, with the registrar as outbound route, so
	// that the MESSAGE goes to it and not to example.com's DNS.
	account := func(user, pw string) string {
		return fmt.Sprintf("[sip]\ndefault_proxy=0\n[proxy_0]\nreg_proxy=<sip:%[1]s;transport=udp>\nreg_route=<sip:%[1]s;transport=udp;lr>\n"+
			"reg_identity=sip:%[2]s@%[3]s\nreg_expires=600\nreg_sendregister=1\n[auth_info_0]\nusername=%[2]s\npasswd=%[4]s\nrealm=%[3]s\n",
			f.udp, user, domain, pw)
	}
	alice, bob := startLinphone(t, bin, account("1001", pw1001)), startLinphone(t, bin, account("1002", pw1002))
	deadline := time.Now().Add(20 * time.Second)
	for f.reg.Count() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("linphonec did not both register:\n%s\n%s", alice.out.String(), bob.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	const text = "hello-bob-through-fsplane"
	alice.send("chat sip:1002@%s \"%s\"", domain, text)
	for !strings.Contains(bob.out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("bob did not get the MESSAGE:\nbob:\n%s\nalice:\n%s", bob.out.String(), alice.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func needLinphone(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("linphonec")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("linphonec (package linphone-cli) is missing; under CI=true it is required (scripts/test-peers.sh installs it)")
		}
		t.Skip("linphonec not installed (package linphone-cli; scripts/test-peers.sh)")
	}
	return bin
}

type linphone struct {
	stdin io.Writer
	out   *syncBuf
}

func (l *linphone) send(format string, args ...any) { fmt.Fprintf(l.stdin, format+"\n", args...) }

// startLinphone runs linphonec headless with its own home, a free UDP
// port, no TCP or TLS, and extra config sections, until the test ends.
func startLinphone(t *testing.T, bin, extra string) *linphone {
	t.Helper()
	home := t.TempDir()
	rc := filepath.Join(home, "linphonerc")
	// linphonec's core does not start without its database directory.
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	// extra's [sip] lines continue this [sip] section.
	conf := fmt.Sprintf("[sip]\nsip_port=%d\nsip_tcp_port=0\nsip_tls_port=0\n", port) + strings.TrimPrefix(extra, "[sip]\n")
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
	t.Cleanup(func() {
		io.WriteString(stdin, "quit\n")
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return &linphone{stdin: stdin, out: out}
}

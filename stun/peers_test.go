package stun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Tests against the real peers Debian ships (scripts/test-peers.sh
// installs them): coturn's turnutils_stunclient, turnutils_natdiscovery
// and turnserver, Vovida's stun client and stund. Loopback only: A1 is
// 127.0.0.1, A2 127.0.0.2.

// needPeer returns the path of a peer binary; missing, it skips locally
// and fails under CI=true.
func needPeer(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/bin/", "/usr/sbin/", "/sbin/"} {
			if _, serr := os.Stat(dir + name); serr == nil {
				return dir + name
			}
		}
		why := name + " is not installed (Debian: see scripts/test-peers.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s", why)
		}
		t.Skipf("skipping: %s", why)
	}
	return path
}

// runPeer runs a client to completion (at most 20s) and returns its
// combined output; it must exit 0.
func runPeer(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runPeerStatus(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// runPeerStatus is runPeer for clients whose exit status is a verdict.
func runPeerStatus(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, needPeer(t, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: did not finish:\n%s", name, strings.Join(args, " "), out.String())
	}
	return out.String(), err
}

// startPeerServer runs a server until the test ends and waits until A1:P1
// answers a Binding request.
func startPeerServer(t *testing.T, at netip.AddrPort, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(needPeer(t, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := udpClient(t, "127.0.0.1:0")
	for range 50 {
		if _, _, err := exchange(t, c, at, request(t), 100*time.Millisecond); err == nil {
			return
		}
	}
	t.Fatalf("%s does not answer on %s:\n%s", name, at, out.String())
}

// freePorts finds P1 and P2 free for UDP and TCP on A1 and A2, for
// servers that want fixed ports.
func freePorts(t *testing.T) (p1, p2 uint16) {
	t.Helper()
	free := func(p uint16) bool {
		for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
			a := fmt.Sprintf("%s:%d", ip, p)
			u, err := net.ListenPacket("udp", a)
			if err != nil {
				return false
			}
			u.Close()
			l, err := net.Listen("tcp", a)
			if err != nil {
				return false
			}
			l.Close()
		}
		return true
	}
	for range 100 {
		p := uint16(20000 + rand.IntN(30000))
		if free(p) && free(p+1) {
			return p, p + 1
		}
	}
	t.Fatal("no free port pair on 127.0.0.1/127.0.0.2")
	return 0, 0
}

func fsplaneFour(t *testing.T) Addresses {
	s := startServer(t, Config{Primary: netip.MustParseAddrPort("127.0.0.1:0"), Secondary: netip.MustParseAddrPort("127.0.0.2:0")}, nil)
	return s.Addresses()
}

var (
	reResponse = regexp.MustCompile(`RFC 5780 response (\d)`)
	reOrigin   = regexp.MustCompile(`Response origin: : (\S+)`)
	reOther    = regexp.MustCompile(`Other addr: : (\S+)`)
	reRefl     = regexp.MustCompile(`UDP reflexive addr: (\S+)`)
)

// responses splits coturn's client output into its numbered responses.
func responses(out string) map[string]string {
	r := map[string]string{}
	idx := reResponse.FindAllStringSubmatchIndex(out, -1)
	for i, m := range idx {
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		r[out[m[2]:m[3]]] = out[m[0]:end]
	}
	return r
}

func field(t *testing.T, re *regexp.Regexp, block string) string {
	t.Helper()
	m := re.FindStringSubmatch(block)
	if m == nil {
		t.Fatalf("no %v in:\n%s", re, block)
	}
	return m[1]
}

func TestPeerTurnutilsStunclient(t *testing.T) {
	a := fsplaneFour(t)
	for _, args := range [][]string{{}, {"-f"}} {
		out := runPeer(t, "turnutils_stunclient", append(args, "-p", fmt.Sprint(a.A1P1.Port()), "127.0.0.1")...)
		r := responses(out)
		// 1: plain Binding; 2: change IP and port with RESPONSE-PORT;
		// then PADDING, answered with 420 (no amplification).
		if len(r) != 2 || !strings.Contains(out, "The response is an error 420") {
			t.Fatalf("want responses 1 and 2 and a 420 for PADDING:\n%s", out)
		}
		if got := field(t, reOrigin, r["1"]); got != a.A1P1.String() {
			t.Fatalf("response 1 origin %s, want %s", got, a.A1P1)
		}
		if got := field(t, reOther, r["1"]); got != a.A2P2.String() {
			t.Fatalf("OTHER-ADDRESS %s, want %s", got, a.A2P2)
		}
		if got := field(t, reOrigin, r["2"]); got != a.A2P2.String() {
			t.Fatalf("change IP and port answered from %s, want %s", got, a.A2P2)
		}
		refl := field(t, reRefl, r["1"])
		if !strings.HasPrefix(refl, "127.0.0.1:") || field(t, reRefl, r["2"]) != refl {
			t.Fatalf("reflexive addresses %s / %s", refl, field(t, reRefl, r["2"]))
		}
	}
}

func TestPeerTurnutilsNatdiscovery(t *testing.T) {
	a := fsplaneFour(t)
	out := runPeer(t, "turnutils_natdiscovery", "-m", "-f", "-p", fmt.Sprint(a.A1P1.Port()), "127.0.0.1")
	if !strings.Contains(out, "NAT with Endpoint Independent Mapping!") || !strings.Contains(out, "NAT with Endpoint Independent Filtering!") {
		t.Fatalf("want endpoint-independent mapping and filtering:\n%s", out)
	}
	r := responses(out)
	for n, want := range map[string]netip.AddrPort{"1": a.A1P1, "2": a.A2P1, "3": a.A1P1, "4": a.A2P2} {
		if got := field(t, reOrigin, r[n]); got != want.String() {
			t.Fatalf("response %s from %s, want %s:\n%s", n, got, want, out)
		}
	}
	if field(t, reRefl, r["1"]) != field(t, reRefl, r["2"]) {
		t.Fatalf("mapping differs between A1:P1 and A2:P1:\n%s", out)
	}
}

// Vovida's RFC 3489 client: it rejects unknown attributes below 0x8000,
// so its verdict "Open" also proves the answers carry none; its -v lines
// show where the change answers say they come from (the Go tests check
// the real source).
func TestPeerClassicStunClient(t *testing.T) {
	a := fsplaneFour(t)
	// Its exit status is its verdict: 1 for Open.
	out, err := runPeerStatus(t, "stun", a.A1P1.String(), "-v")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "Primary: Open") {
		t.Fatalf("verdict is not Open (%v):\n%s", err, out)
	}
	// id=1: test I; id=2: change IP (flag 4); id=3: change port (flag 2).
	for id, want := range map[string]netip.AddrPort{"1": a.A1P1, "2": a.A2P1, "3": a.A1P2} {
		re := regexp.MustCompile(`SourceAddress = (\S+)\nChangedAddress = (\S+)\nReceived message of type 257  id=` + id + `\n`)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no answer id=%s:\n%s", id, out)
		}
		if m[1] != want.String() || m[2] != a.A2P2.String() {
			t.Fatalf("answer id=%s: SOURCE-ADDRESS %s CHANGED-ADDRESS %s, want %s and %s", id, m[1], m[2], want, a.A2P2)
		}
	}
}

func probeLoopback(t *testing.T, server netip.AddrPort) ProbeResult {
	t.Helper()
	res, err := Probe(context.Background(), ProbeOptions{Server: server.String(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// On loopback: no NAT, no filter.
func wantOpen(t *testing.T, res ProbeResult, other netip.AddrPort) {
	t.Helper()
	if res.NATType != NATOpen || res.Title != "Open Internet" || res.Mapping != EndpointIndependent || res.Filtering != EndpointIndependent ||
		res.PublicAddress != res.LocalAddress || !strings.HasPrefix(res.PublicAddress, "127.0.0.1:") || res.OtherAddress != other.String() {
		t.Fatalf("probe: %+v", res)
	}
}

func TestProbeFsplane(t *testing.T) {
	a := fsplaneFour(t)
	wantOpen(t, probeLoopback(t, a.A1P1), a.A2P2)

	one := startServer(t, Config{Primary: netip.MustParseAddrPort("127.0.0.1:0")}, nil).Addresses().A1P1
	res := probeLoopback(t, one)
	if res.NATType != NATUnknown || res.PublicAddress != res.LocalAddress || !strings.Contains(res.Detail, "no other address") {
		t.Fatalf("one address: %+v", res)
	}
	// Nothing listens: blocked.
	c := udpClient(t, "127.0.0.1:0")
	silent := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if res := probeLoopback(t, silent); res.NATType != NATBlocked || res.PublicAddress != "" {
		t.Fatalf("silent server: %+v", res)
	}
}

func TestProbeCoturn(t *testing.T) {
	p1, p2 := freePorts(t)
	dir := t.TempDir()
	at := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p1)
	startPeerServer(t, at, "turnserver", "-n", "--stun-only", "--no-tls", "--no-dtls", "--no-cli",
		"-L", "127.0.0.1", "-L", "127.0.0.2", "-p", fmt.Sprint(p1), "--alt-listening-port", fmt.Sprint(p2),
		"--pidfile", dir+"/turn.pid", "--log-file", "stdout", "--simple-log")
	wantOpen(t, probeLoopback(t, at), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), p2))
}

func TestProbeStund(t *testing.T) {
	p1, p2 := freePorts(t)
	at := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p1)
	startPeerServer(t, at, "stund", "-h", "127.0.0.1", "-a", "127.0.0.2", "-p", fmt.Sprint(p1), "-o", fmt.Sprint(p2))
	// stund answers RFC 5389 requests the RFC 3489 way: CHANGED-ADDRESS.
	wantOpen(t, probeLoopback(t, at), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), p2))
}

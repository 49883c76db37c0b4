package firewall

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as a small UDP/TCP peer run inside the network
// namespaces (FSPLANE_FW_HELPER=recv|send): the checks need real packets
// and Debian has no such tool in the base system.
func TestMain(m *testing.M) {
	switch os.Getenv("FSPLANE_FW_HELPER") {
	case "":
		os.Exit(m.Run())
	case "recv":
		os.Exit(helperRecv(os.Args[1:]))
	case "send":
		os.Exit(helperSend(os.Args[1:]))
	default:
		os.Exit(2)
	}
}

// helperRecv listens on "udp/PORT" and "tcp/PORT" arguments (all
// addresses, both families), prints "ready", then one "PROTO PORT SRC"
// line per datagram or connection until stdin closes.
func helperRecv(args []string) int {
	var mu sync.Mutex
	report := func(proto, port string, a net.Addr) {
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return
		}
		mu.Lock()
		fmt.Printf("%s %s %s\n", proto, port, ap.Addr().Unmap())
		mu.Unlock()
	}
	for _, arg := range args {
		proto, port, _ := strings.Cut(arg, "/")
		switch proto {
		case "udp":
			c, err := net.ListenPacket("udp", ":"+port)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			go func() {
				buf := make([]byte, 1500)
				for {
					_, from, err := c.ReadFrom(buf)
					if err != nil {
						return
					}
					report(proto, port, from)
				}
			}()
		case "tcp":
			l, err := net.Listen("tcp", ":"+port)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					report(proto, port, c.RemoteAddr())
					c.Close()
				}
			}()
		}
	}
	mu.Lock()
	fmt.Println("ready")
	mu.Unlock()
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// helperSend takes "PROTO SRC DST PORT" arguments: it sends one datagram
// or opens one connection from SRC to DST:PORT for each, concurrently.
func helperSend(args []string) int {
	var wg sync.WaitGroup
	for _, arg := range args {
		f := strings.Fields(arg)
		if len(f) != 4 {
			return 2
		}
		wg.Go(func() {
			src := netip.MustParseAddr(f[1])
			dst := net.JoinHostPort(f[2], f[3])
			switch f[0] {
			case "udp":
				c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
				if err == nil {
					_, _ = c.Write([]byte("fsplane"))
					c.Close()
				}
			case "tcp":
				d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 1500 * time.Millisecond}
				if c, err := d.Dial("tcp", dst); err == nil {
					c.Close()
				}
			}
		})
	}
	wg.Wait()
	return 0
}

// newNetns creates a network namespace with its loopback up and deletes
// it when the test ends.
func newNetns(t *testing.T, ip string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "fsplane-test-" + hex.EncodeToString(b)
	run(t, ip, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, ip, "-n", name, "link", "set", "lo", "up")
	return name
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// recvProcess is the receiving helper running in a namespace.
type recvProcess struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	lines chan string
}

func startRecv(t *testing.T, ip, ns string, listen ...string) *recvProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, ip, append([]string{"netns", "exec", ns, self}, listen...)...)
	cmd.Env = append(os.Environ(), "FSPLANE_FW_HELPER=recv")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &recvProcess{cmd: cmd, stdin: stdin, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	select {
	case l := <-p.lines:
		if l != "ready" {
			t.Fatalf("receiver said %q", l)
		}
	case <-ctx.Done():
		t.Fatal("receiver did not start")
	}
	return p
}

// stop ends the receiver and adds what else it received to got.
func (p *recvProcess) stop(t *testing.T, got map[string]bool) {
	t.Helper()
	p.stdin.Close()
	for l := range p.lines {
		got[l] = true
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("receiver: %v", err)
	}
}

// waitFor reads received lines until line arrives (or the deadline).
func (p *recvProcess) waitFor(t *testing.T, line string, got map[string]bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !got[line] {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("receiver ended before %q", line)
			}
			got[l] = true
		case <-deadline:
			t.Fatalf("%q never arrived", line)
		}
	}
}

func send(t *testing.T, ip, ns string, probes ...string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ip, append([]string{"netns", "exec", ns, self}, probes...)...)
	cmd.Env = append(os.Environ(), "FSPLANE_FW_HELPER=send")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sender: %v\n%s", err, out)
	}
}

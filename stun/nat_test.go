//go:build linux

package stun

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"golang.org/x/sys/unix"
)

// The probe through real NAT: three network namespaces built by the test
// (client 10.0.0.2 — router 10.0.0.1 | 192.0.2.1 — server A1 192.0.2.10,
// A2 192.0.2.11), nftables on the router. The addresses exist only inside
// those namespaces.

const (
	natServerA1 = "192.0.2.10"
	natServerA2 = "192.0.2.11"
)

// netnsLab creates the namespaces with the router's nftables ruleset and
// returns their names: client, router, server.
func netnsLab(t *testing.T, ruleset string) (cl, rt, sv string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: network namespaces need root")
		}
		t.Skip("skipping: network namespaces need root")
	}
	ip, nft := needPeer(t, "ip"), needPeer(t, "nft")
	id := fmt.Sprintf("fsps%d%d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	cl, rt, sv = id+"c", id+"r", id+"s"
	run := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{cl, rt, sv} {
		run(ip, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
		run(ip, "-n", ns, "link", "set", "lo", "up")
	}
	run(ip, "link", "add", id+"a", "netns", cl, "type", "veth", "peer", "name", id+"b", "netns", rt)
	run(ip, "link", "add", id+"x", "netns", rt, "type", "veth", "peer", "name", id+"y", "netns", sv)
	for _, c := range [][]string{
		{cl, "addr", "add", "10.0.0.2/24", "dev", id + "a"},
		{cl, "link", "set", id + "a", "up"},
		{cl, "route", "add", "default", "via", "10.0.0.1"},
		{rt, "addr", "add", "10.0.0.1/24", "dev", id + "b"},
		{rt, "link", "set", id + "b", "up"},
		{rt, "addr", "add", "192.0.2.1/24", "dev", id + "x"},
		{rt, "link", "set", id + "x", "up"},
		{sv, "addr", "add", natServerA1 + "/24", "dev", id + "y"},
		{sv, "addr", "add", natServerA2 + "/24", "dev", id + "y"},
		{sv, "link", "set", id + "y", "up"},
		// Unused behind NAT; without NAT the way back to the client.
		{sv, "route", "add", "10.0.0.0/24", "via", "192.0.2.1"},
	} {
		run(ip, append([]string{"-n", c[0]}, c[1:]...)...)
	}
	run(ip, "netns", "exec", rt, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if ruleset == "" {
		return cl, rt, sv
	}
	cmd := exec.Command(ip, "netns", "exec", rt, nft, "-f", "-")
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(ruleset, "OUT", id+"x"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, ruleset)
	}
	return cl, rt, sv
}

// inNetns runs f on a thread moved into namespace ns; sockets f creates
// stay there.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with the goroutine.
		t.Fatalf("back to the original namespace: %v", err)
	}
	runtime.UnlockOSThread()
}

func TestProbeThroughNAT(t *testing.T) {
	const masquerade = `table ip nat {
	chain post { type nat hook postrouting priority 100; oifname "OUT" masquerade; }
}`
	// Cone NATs: masquerade plus a static forward of the client's port
	// (kept by masquerade) from anyone (full cone), or only from the
	// addresses the client has sent to (restricted cone).
	const forward = `table ip nat {
	chain pre { type nat hook prerouting priority -100; iifname "OUT" udp dport 40000 dnat to 10.0.0.2:40000; }
	chain post { type nat hook postrouting priority 100; oifname "OUT" masquerade; }
}`
	for _, tc := range []struct {
		name      string
		ruleset   string
		want      NATType
		mapping   Behavior
		filtering Behavior
	}{
		// Linux keeps the source port per source (endpoint-independent
		// mapping) and lets in only what conntrack knows.
		{"masquerade", masquerade, NATPortRestrictedCone, EndpointIndependent, AddressAndPortDependent},
		// A new random port for every destination.
		{"masquerade fully-random", `table ip nat {
	chain post { type nat hook postrouting priority 100; oifname "OUT" masquerade fully-random; }
}`, NATSymmetric, AddressAndPortDependent, AddressAndPortDependent},
		{"full cone", forward, NATFullCone, EndpointIndependent, EndpointIndependent},
		{"restricted cone", forward + `
table ip filter {
	set contacted { type ipv4_addr; flags dynamic; timeout 1m; }
	chain block {
		type filter hook forward priority 0;
		oifname "OUT" update @contacted { ip daddr }
		iifname "OUT" ip saddr @contacted accept
		iifname "OUT" drop
	}
}`, NATRestrictedCone, EndpointIndependent, AddressDependent},
		// No NAT: routed.
		{"routed", "", NATOpen, EndpointIndependent, EndpointIndependent},
		{"routed through a stateful firewall", `table inet filter {
	chain block {
		type filter hook forward priority 0;
		iifname "OUT" ct state established,related accept
		iifname "OUT" drop
	}
}`, NATSymmetricUDPFirewall, EndpointIndependent, AddressAndPortDependent},
		{"UDP blocked", masquerade + `
table inet filter {
	chain block {
		type filter hook forward priority 0;
		meta l4proto udp drop
	}
}`, NATBlocked, BehaviorUnknown, BehaviorUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, _, sv := netnsLab(t, tc.ruleset)
			var srv *Server
			inNetns(t, sv, func() {
				var err error
				srv, err = New(Options{Config: Config{
					Primary: netip.MustParseAddrPort(natServerA1 + ":3478"), Secondary: netip.MustParseAddrPort(natServerA2 + ":3479"),
				}, Readers: 1})
				if err == nil {
					err = srv.Listen()
				}
				if err != nil {
					t.Error(err)
				}
			})
			if t.Failed() {
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			defer func() { cancel(); <-done }()

			var conn *net.UDPConn
			inNetns(t, cl, func() {
				var err error
				if conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.0.0.2"), Port: 40000}); err != nil {
					t.Error(err)
				}
			})
			if t.Failed() {
				return
			}
			defer conn.Close()
			res, err := Probe(context.Background(), ProbeOptions{Server: natServerA1 + ":3478", Conn: conn, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.NATType != tc.want || res.Mapping != tc.mapping || res.Filtering != tc.filtering {
				t.Fatalf("got %s (mapping %s, filtering %s), want %s (%s, %s): %+v", res.NATType, res.Mapping, res.Filtering, tc.want, tc.mapping, tc.filtering, res)
			}
			switch tc.want {
			case NATBlocked:
			case NATOpen, NATSymmetricUDPFirewall:
				if res.PublicAddress != "10.0.0.2:40000" || res.LocalAddress != res.PublicAddress {
					t.Fatalf("addresses: %+v", res)
				}
			default:
				// The server saw the router's outside address.
				if res.PublicAddress != "192.0.2.1:40000" && !(tc.want == NATSymmetric && strings.HasPrefix(res.PublicAddress, "192.0.2.1:")) ||
					res.LocalAddress != "10.0.0.2:40000" || res.OtherAddress != natServerA2+":3479" {
					t.Fatalf("addresses: %+v", res)
				}
			}
		})
	}
}

// The four-socket model over IPv6: A1 2001:db8::10 and A2 2001:db8::11 on
// the loopback of a namespace built by the test (the host's loopback has
// only ::1).
func TestServerIPv6FourSockets(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: network namespaces need root")
		}
		t.Skip("skipping: network namespaces need root")
	}
	ip := needPeer(t, "ip")
	ns := fmt.Sprintf("fsps6%d%d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", "2001:db8::10/128", "dev", "lo", "nodad"},
		{"-n", ns, "addr", "add", "2001:db8::11/128", "dev", "lo", "nodad"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
		}
	}
	var srv *Server
	var c *net.UDPConn
	inNetns(t, ns, func() {
		var err error
		srv, err = New(Options{Config: Config{Primary: netip.MustParseAddrPort("[2001:db8::10]:3478"), Secondary: netip.MustParseAddrPort("[2001:db8::11]:3479")}, Readers: 1})
		if err == nil {
			err = srv.Listen()
		}
		if err == nil {
			c, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("2001:db8::10")})
		}
		if err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	a := srv.Addresses()
	me := c.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, tc := range []struct {
		change ChangeRequest
		from   netip.AddrPort
	}{
		{ChangeRequest{}, a.A1P1},
		{ChangeRequest{ChangePort: true}, a.A1P2},
		{ChangeRequest{ChangeIP: true}, a.A2P1},
		{ChangeRequest{ChangeIP: true, ChangePort: true}, a.A2P2},
	} {
		// Every test here is answered: a generous wait costs nothing and
		// holds under a loaded -race run.
		out, from, err := exchange(t, c, a.A1P1, request(t, tc.change), 5*time.Second)
		if err != nil || from != tc.from {
			t.Fatalf("%+v: answered from %v (%v), want %v", tc.change, from, err, tc.from)
		}
		m := decodeReply(t, out)
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(m); err != nil || xa.String() != me.String() {
			t.Fatalf("XOR-MAPPED-ADDRESS %v (%v), want %v", xa, err, me)
		}
		if got := getAddr(t, m, stun.AttrOtherAddress); got != a.A2P2 {
			t.Fatalf("OTHER-ADDRESS %v, want %v", got, a.A2P2)
		}
	}
	// Open: no test goes unanswered, so the timeout is never waited out.
	res, err := Probe(context.Background(), ProbeOptions{Server: a.A1P1.String(), Conn: c, Timeout: 3 * time.Second})
	if err != nil || res.NATType != NATOpen || res.PublicAddress != me.String() {
		t.Fatalf("probe over IPv6: %+v (%v)", res, err)
	}
}

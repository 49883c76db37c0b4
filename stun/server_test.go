package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// startServer runs a responder on loopback until the test ends.
func startServer(t *testing.T, c Config, reg prometheus.Registerer) *Server {
	t.Helper()
	return startWith(t, Options{Config: c, Registerer: reg, Readers: 2})
}

func startWith(t *testing.T, o Options) *Server {
	t.Helper()
	return startWithBatch(t, o, true)
}

func startWithBatch(t *testing.T, o Options, batch bool) *Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.noBatch = !batch
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// exchange sends req from c to to and returns the reply and its source,
// or ErrNoResponse after wait.
func exchange(t *testing.T, c *net.UDPConn, to netip.AddrPort, req []byte, wait time.Duration) ([]byte, netip.AddrPort, error) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(req, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, netip.AddrPort{}, ErrNoResponse
		}
		t.Fatal(err)
	}
	return buf[:n], from, nil
}

func udpClient(t *testing.T, at string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(at)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServerFourSockets(t *testing.T) {
	t.Run("batches", func(t *testing.T) { testServerFourSockets(t, true) })
	t.Run("one packet per syscall", func(t *testing.T) { testServerFourSockets(t, false) })
}

func testServerFourSockets(t *testing.T, batch bool) {
	reg := prometheus.NewRegistry()
	s := startWithBatch(t, Options{Config: Config{Primary: netip.MustParseAddrPort("127.0.0.1:0"), Secondary: netip.MustParseAddrPort("127.0.0.2:0")}, Registerer: reg, Readers: 2}, batch)
	a := s.Addresses()
	if a.A1P1.Addr() != a.A1P2.Addr() || a.A2P1.Addr() != a.A2P2.Addr() || a.A1P1.Port() != a.A2P1.Port() || a.A1P2.Port() != a.A2P2.Port() || a.A1P1.Port() == a.A2P2.Port() {
		t.Fatalf("not RFC 3489's four addresses: %+v", a)
	}
	c := udpClient(t, "127.0.0.1:0")
	me := c.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, tc := range []struct {
		to     netip.AddrPort
		change ChangeRequest
		from   netip.AddrPort
		other  netip.AddrPort
	}{
		{a.A1P1, ChangeRequest{}, a.A1P1, a.A2P2},
		{a.A1P1, ChangeRequest{ChangePort: true}, a.A1P2, a.A2P2},
		{a.A1P1, ChangeRequest{ChangeIP: true}, a.A2P1, a.A2P2},
		{a.A1P1, ChangeRequest{ChangeIP: true, ChangePort: true}, a.A2P2, a.A2P2},
		{a.A2P2, ChangeRequest{}, a.A2P2, a.A1P1},
		{a.A2P1, ChangeRequest{ChangePort: true}, a.A2P2, a.A1P2},
		{a.A1P2, ChangeRequest{ChangeIP: true}, a.A2P2, a.A2P1},
	} {
		out, from, err := exchange(t, c, tc.to, request(t, tc.change, stun.Fingerprint), time.Second)
		if err != nil {
			t.Fatalf("to %v %+v: %v", tc.to, tc.change, err)
		}
		if from != tc.from {
			t.Fatalf("to %v %+v: answered from %v, want %v", tc.to, tc.change, from, tc.from)
		}
		m := decodeReply(t, out)
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(m); err != nil || xa.String() != me.String() {
			t.Fatalf("XOR-MAPPED-ADDRESS %v (%v), want %v", xa, err, me)
		}
		if got := getAddr(t, m, stun.AttrResponseOrigin); got != tc.from {
			t.Fatalf("RESPONSE-ORIGIN %v, want %v", got, tc.from)
		}
		if got := getAddr(t, m, stun.AttrOtherAddress); got != tc.other {
			t.Fatalf("OTHER-ADDRESS %v, want %v", got, tc.other)
		}
	}
	if got := testutil.ToFloat64(s.m.requests[sockA1P1][0]); got != 4 {
		t.Fatalf("requests on A1:P1 = %v, want 4", got)
	}
	if got := testutil.ToFloat64(s.m.responses[sockA2P2][0]); got != 4 {
		t.Fatalf("responses from A2:P2 = %v, want 4", got)
	}
	// RESPONSE-PORT: the answer goes to another port of the source address.
	c2 := udpClient(t, "127.0.0.1:0")
	port2 := c2.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	for _, change := range []ChangeRequest{{}, {ChangeIP: true}} {
		if _, err := c.WriteToUDPAddrPort(request(t, responsePort(port2), change), a.A1P1); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		_ = c2.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c2.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("RESPONSE-PORT %+v: %v", change, err)
		}
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(decodeReply(t, buf[:n])); err != nil || xa.String() != me.String() {
			t.Fatalf("RESPONSE-PORT answer maps %v (%v), want %v", xa, err, me)
		}
	}

	// Malformed: dropped and counted, no reply.
	if _, _, err := exchange(t, c, a.A1P1, []byte("GET / HTTP/1.0\r\n\r\n  "), 100*time.Millisecond); err != ErrNoResponse {
		t.Fatalf("malformed packet answered (%v)", err)
	}
	if got := testutil.ToFloat64(s.m.drops[sockA1P1][dropMalformed]); got != 1 {
		t.Fatalf("malformed drops = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "fsplane_stun_requests_total", "fsplane_stun_responses_total", "fsplane_stun_dropped_total"); err != nil || n == 0 {
		t.Fatalf("metrics not registered: %d, %v", n, err)
	}
}

func TestServerTCP(t *testing.T) {
	s := startServer(t, Config{Primary: netip.MustParseAddrPort("127.0.0.1:0"), Secondary: netip.MustParseAddrPort("127.0.0.2:0")}, nil)
	c, err := net.Dial("tcp", s.Addresses().A1P1.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	me := c.LocalAddr().(*net.TCPAddr).AddrPort()
	// Two requests back to back, then a change request (420 over TCP).
	req := append(request(t, stun.Fingerprint), request(t, stun.Fingerprint)...)
	req = append(req, request(t, ChangeRequest{ChangePort: true})...)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		hdr := make([]byte, 20)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		m := decodeReply(t, append(hdr, body...))
		if i == 2 {
			if m.Type != stun.BindingError {
				t.Fatalf("change over TCP: %v, want 420", m.Type)
			}
			continue
		}
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(m); err != nil || xa.String() != me.String() {
			t.Fatalf("XOR-MAPPED-ADDRESS %v (%v), want %v", xa, err, me)
		}
	}
}

func TestServerIPv6AndAdvertised(t *testing.T) {
	if _, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	s := startServer(t, Config{Primary: netip.MustParseAddrPort("[::1]:0")}, nil)
	c := udpClient(t, "[::1]:0")
	out, from, err := exchange(t, c, s.Addresses().A1P1, request(t, ChangeRequest{ChangeIP: true}), time.Second)
	if err != nil || from != s.Addresses().A1P1 {
		t.Fatalf("from %v: %v", from, err)
	}
	if m := decodeReply(t, out); m.Type != stun.BindingError {
		t.Fatalf("change IP with one address: %v, want 420", m.Type)
	}
	out, _, err = exchange(t, c, s.Addresses().A1P1, request(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(decodeReply(t, out)); err != nil || xa.String() != c.LocalAddr().String() {
		t.Fatalf("XOR-MAPPED-ADDRESS %v (%v), want %v", xa, err, c.LocalAddr())
	}

	// One dual-stack socket answers IPv4 clients with their IPv4 address,
	// in batches and one by one.
	for _, batch := range []bool{true, false} {
		dual := startWithBatch(t, Options{Config: Config{Primary: netip.MustParseAddrPort("[::]:0")}, Readers: 1}, batch)
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dual.Addresses().A1P1.Port())
		c4 := udpClient(t, "127.0.0.1:0")
		out, _, err := exchange(t, c4, to, request(t), time.Second)
		if err != nil {
			t.Fatalf("dual stack, batch %v: %v", batch, err)
		}
		if err := xa.GetFrom(decodeReply(t, out)); err != nil || xa.String() != c4.LocalAddr().String() {
			t.Fatalf("dual stack: XOR-MAPPED-ADDRESS %v (%v), want %v", xa, err, c4.LocalAddr())
		}
	}

	// Behind a 1:1 NAT the advertised addresses are what clients are told.
	adv := startServer(t, Config{
		Primary: netip.MustParseAddrPort("127.0.0.1:0"), Secondary: netip.MustParseAddrPort("127.0.0.2:0"),
		PrimaryAdvertised: netip.MustParseAddr("203.0.113.1"), SecondaryAdvertised: netip.MustParseAddr("203.0.113.2"),
	}, nil)
	c4 := udpClient(t, "127.0.0.1:0")
	out, _, err = exchange(t, c4, adv.Addresses().A1P1, request(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeReply(t, out)
	a := adv.Addresses()
	if got, want := getAddr(t, m, stun.AttrOtherAddress), netip.AddrPortFrom(netip.MustParseAddr("203.0.113.2"), a.A2P2.Port()); got != want {
		t.Fatalf("OTHER-ADDRESS %v, want %v", got, want)
	}
	if got, want := getAddr(t, m, stun.AttrResponseOrigin), netip.AddrPortFrom(netip.MustParseAddr("203.0.113.1"), a.A1P1.Port()); got != want {
		t.Fatalf("RESPONSE-ORIGIN %v, want %v", got, want)
	}
}

func TestServerRateLimit(t *testing.T) {
	// A stopped clock: the bucket holds its burst of 10 and never refills.
	frozen := time.Unix(1000, 0)
	s := startWith(t, Options{Config: Config{Primary: netip.MustParseAddrPort("127.0.0.1:0"), RateLimit: 1}, Now: func() time.Time { return frozen }})
	c := udpClient(t, "127.0.0.1:0")
	answered := 0
	for range 13 {
		if _, _, err := exchange(t, c, s.Addresses().A1P1, request(t), 100*time.Millisecond); err == nil {
			answered++
		}
	}
	if answered != 10 {
		t.Fatalf("%d of 13 answered, want the burst of 10", answered)
	}
	if got := testutil.ToFloat64(s.m.drops[sockA1P1][dropRateLimited]); got != 3 {
		t.Fatalf("rate_limited drops = %v, want 3", got)
	}
	// Another source is not limited by the first.
	if _, _, err := exchange(t, udpClient(t, "127.0.0.3:0"), s.Addresses().A1P1, request(t), time.Second); err != nil {
		t.Fatalf("another source: %v", err)
	}
}

func TestServerBusyPort(t *testing.T) {
	busy := udpClient(t, "127.0.0.2:0")
	s, err := New(Options{Config: Config{Primary: netip.MustParseAddrPort("127.0.0.1:0"), Secondary: busy.LocalAddr().(*net.UDPAddr).AddrPort()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil {
		t.Fatal("Listen on a port in use succeeded")
	}
	if s.udp[sockA1P1] != nil || s.tcp != nil {
		t.Fatal("a failed Listen left sockets open")
	}
}

// One source cannot take every TCP slot: beyond maxTCPConnsPerSource its
// connections are closed at once, while another source is still served.
func TestServerTCPPerSourceLimit(t *testing.T) {
	s := startServer(t, Config{Primary: netip.MustParseAddrPort("127.0.0.1:0")}, nil)
	addr := s.Addresses().A1P1.String()
	dialFrom := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	answers := func(c net.Conn) bool {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(request(t, stun.Fingerprint)); err != nil {
			return false
		}
		hdr := make([]byte, 20)
		_, err := io.ReadFull(c, hdr)
		return err == nil
	}
	for i := range maxTCPConnsPerSource {
		if c := dialFrom("127.0.0.1"); !answers(c) {
			t.Fatalf("connection %d within the limit not answered", i)
		}
	}
	if answers(dialFrom("127.0.0.1")) {
		t.Fatal("a connection over the per-source limit was served")
	}
	if !answers(dialFrom("127.0.0.3")) {
		t.Fatal("another source was refused")
	}
}

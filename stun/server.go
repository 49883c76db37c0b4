package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// Options configure a Server.
type Options struct {
	Config Config
	// Software is the SOFTWARE attribute of RFC 5389 answers; default
	// "fsplane".
	Software string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the rate limiter's clock; default time.Now.
	Now func() time.Time
	// Readers is how many sockets (SO_REUSEPORT), each with its own
	// goroutine and buffers, serve A1:P1; default half of GOMAXPROCS, at
	// least one (measured on 2 cores against stun-bench: one reader costs
	// 5-12 % less CPU per request than two, at the same rate; the kernel's
	// share of each packet runs beside it).
	Readers int
}

// Addresses are the four UDP sockets as bound; a zero value is a socket
// that does not exist (no secondary).
type Addresses struct {
	A1P1, A2P1, A1P2, A2P2 netip.AddrPort
}

// Server is the STUN responder.
type Server struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	lim      *limiter
	software string
	readers  int
	noBatch  bool // read and write one packet per syscall (tests)

	mu    sync.Mutex
	udp   [numUDP][]*net.UDPConn // [socket][reader]; [i][0] also sends
	tcp   net.Listener
	bound [numUDP]netip.AddrPort
	r     *responder
}

// New checks the configuration; nothing is bound until Listen or Run.
func New(o Options) (*Server, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: o.Config, log: o.Logger, software: o.Software, readers: o.Readers, m: newMetrics(o.Registerer)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.software == "" {
		s.software = "fsplane"
	}
	if s.readers <= 0 {
		s.readers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if o.Config.RateLimit > 0 {
		now := o.Now
		if now == nil {
			now = time.Now
		}
		s.lim = newLimiter(o.Config.RateLimit, now)
	}
	return s, nil
}

// Addresses returns the bound sockets (after Listen).
func (s *Server) Addresses() Addresses {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Addresses{A1P1: s.bound[sockA1P1], A2P1: s.bound[sockA2P1], A1P2: s.bound[sockA1P2], A2P2: s.bound[sockA2P2]}
}

// Listen binds every socket: UDP A1:P1 (Readers times) and TCP A1:P1,
// and with a secondary A2:P2, A1:P2 and A2:P1. A port 0 is chosen by the
// kernel (P1 from A1:P1, P2 from A2:P2).
func (s *Server) Listen() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp[sockA1P1] != nil {
		return nil
	}
	defer func() {
		if err != nil {
			s.closeLocked()
		}
	}()
	p := s.cfg.Primary
	// A port chosen by the kernel for UDP may be taken for TCP: try again.
	for try := 0; ; try++ {
		if err := s.bindUDP(sockA1P1, p, s.readers); err != nil {
			return err
		}
		at := s.bound[sockA1P1]
		ln, err := net.Listen("tcp", at.String())
		if err == nil {
			s.tcp = ln
			break
		}
		if p.Port() != 0 || try == 10 {
			return fmt.Errorf("stun: listen on TCP %s: %w", at, err)
		}
		s.closeLocked()
	}
	p1 := s.bound[sockA1P1].Port()
	if sec := s.cfg.Secondary; sec.IsValid() {
		if err := s.bindUDP(sockA2P2, sec, 1); err != nil {
			return err
		}
		p2 := s.bound[sockA2P2].Port()
		if err := s.bindUDP(sockA1P2, netip.AddrPortFrom(p.Addr(), p2), 1); err != nil {
			return err
		}
		if err := s.bindUDP(sockA2P1, netip.AddrPortFrom(sec.Addr(), p1), 1); err != nil {
			return err
		}
	}
	var adv [numUDP]netip.AddrPort
	for i, b := range s.bound {
		if !b.IsValid() {
			continue
		}
		a := b.Addr()
		if pa, sa := s.cfg.PrimaryAdvertised, s.cfg.SecondaryAdvertised; i&1 == 0 && pa.IsValid() {
			a = pa
		} else if i&1 == 1 && sa.IsValid() {
			a = sa
		}
		adv[i] = netip.AddrPortFrom(a, b.Port())
	}
	s.r = newResponder(adv, s.software)
	return nil
}

func (s *Server) bindUDP(sock int, at netip.AddrPort, n int) error {
	lc := net.ListenConfig{}
	if n > 1 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	network := "udp4"
	if at.Addr().Is6() && !at.Addr().Is4In6() {
		network = "udp6"
		if at.Addr().IsUnspecified() {
			network = "udp" // dual stack: IPv4 and IPv6 on one socket
		}
	}
	for i := range n {
		addr := at
		if i > 0 {
			addr = s.bound[sock]
		}
		pc, err := lc.ListenPacket(context.Background(), network, addr.String())
		if err != nil {
			return fmt.Errorf("stun: listen on UDP %s (%s): %w", addr, socketNames[sock], err)
		}
		c := pc.(*net.UDPConn)
		if i == 0 {
			s.bound[sock] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		}
		s.udp[sock] = append(s.udp[sock], c)
	}
	return nil
}

func (s *Server) closeLocked() {
	for i := range s.udp {
		for _, c := range s.udp[i] {
			_ = c.Close()
		}
		s.udp[i] = nil
		s.bound[i] = netip.AddrPort{}
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
		s.tcp = nil
	}
}

// Run serves until ctx ends (binding first if Listen was not called),
// then closes every socket. It returns the first socket error; after it
// returns Run may be called again.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	udp, tcp, r := s.udp, s.tcp, s.r
	s.mu.Unlock()
	s.log.Info("STUN responder listening", "A1:P1", s.bound[sockA1P1], "A2:P2", s.bound[sockA2P2], "readers", s.readers)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	for sock := range udp {
		for _, c := range udp[sock] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.serveUDP(r, &udp, sock, c); err != nil && ctx.Err() == nil {
					fail(fmt.Errorf("stun: UDP %s: %w", socketNames[sock], err))
				}
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.acceptLoop(ctx, r, tcp); err != nil && ctx.Err() == nil {
			fail(fmt.Errorf("stun: TCP: %w", err))
		}
	}()
	<-ctx.Done()
	s.mu.Lock()
	s.closeLocked()
	s.mu.Unlock()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// readLoop answers the requests of one UDP socket one packet per syscall
// (where batches are not available). It allocates nothing per packet: one
// buffer, one Message, netip addresses.
func (s *Server) readLoop(r *responder, udp *[numUDP][]*net.UDPConn, sock int, c *net.UDPConn) error {
	m := stun.New()
	buf := make([]byte, maxRequest+1) // +1: a longer datagram shows as too long
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if s.lim != nil && !s.lim.allow(src.Addr()) {
			s.m.drops[sock][dropRateLimited].Inc()
			continue
		}
		out, v := r.handle(m, buf[:n], sock, src)
		if out != nil {
			if _, err := udp[v.from][0].WriteToUDPAddrPort(out, v.to); err != nil {
				v.out = dropSendError
			}
		}
		s.m.count(sock, v)
	}
}

const (
	tcpIdle     = 30 * time.Second
	maxTCPConns = 256
	// maxTCPConnsPerSource keeps one address from taking every slot.
	maxTCPConnsPerSource = 8
)

func (s *Server) acceptLoop(ctx context.Context, r *responder, ln net.Listener) error {
	sem := make(chan struct{}, maxTCPConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	perSource := map[netip.Addr]int{}
	go func() {
		<-ctx.Done()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		mu.Lock()
		full := perSource[src] >= maxTCPConnsPerSource
		if !full {
			perSource[src]++
		}
		mu.Unlock()
		if full {
			_ = c.Close() // that source holds its share already
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			_ = c.Close() // too many: the client may retry
			mu.Lock()
			if perSource[src]--; perSource[src] <= 0 {
				delete(perSource, src)
			}
			mu.Unlock()
			continue
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveTCP(r, c)
			_ = c.Close()
			mu.Lock()
			delete(conns, c)
			if perSource[src]--; perSource[src] <= 0 {
				delete(perSource, src)
			}
			mu.Unlock()
			<-sem
		}()
	}
}

// serveTCP answers the requests of one TCP connection (RFC 8489 §6.2.2:
// messages back to back, framed by their length) until it idles, errs or
// sends something that is not STUN.
func (s *Server) serveTCP(r *responder, c net.Conn) {
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	m := stun.New()
	buf := make([]byte, maxRequest)
	for {
		_ = c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, buf[:headerSize]); err != nil {
			return
		}
		n := headerSize + int(binary.BigEndian.Uint16(buf[2:4]))
		if n > maxRequest {
			s.m.drops[sockTCP][dropMalformed].Inc()
			return
		}
		if _, err := io.ReadFull(c, buf[headerSize:n]); err != nil {
			return
		}
		if s.lim != nil && !s.lim.allow(src.Addr()) {
			s.m.drops[sockTCP][dropRateLimited].Inc()
			continue
		}
		out, v := r.handle(m, buf[:n], sockTCP, src)
		if out != nil {
			_ = c.SetWriteDeadline(time.Now().Add(tcpIdle))
			if _, err := c.Write(out); err != nil {
				v.out = dropSendError
			}
		}
		s.m.count(sockTCP, v)
		if v.out == dropMalformed || v.out == dropSendError {
			return
		}
	}
}

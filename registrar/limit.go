package registrar

import (
	"net"
	"sync"
	"time"
)

// Limits on the stream (TCP, TLS) side. A connection costs a descriptor
// and a goroutine, and the API and xml-curl share the process's
// descriptors: nobody may hold them without speaking SIP.
const (
	// maxStreamConns bounds the open TCP and TLS connections in all.
	maxStreamConns = 10000
	// maxStreamConnsPerSource bounds them per source address (a PBX or a
	// NAT gateway in front of many phones needs more than one).
	maxStreamConnsPerSource = 64
	// firstByteTimeout bounds how long a new connection may stay silent
	// (the TLS handshake included) before it sends its first bytes.
	firstByteTimeout = 30 * time.Second
	// streamWriteTimeout bounds one write to a peer that does not read.
	streamWriteTimeout = 30 * time.Second
)

// limitListener closes connections beyond the limits at once, and puts
// deadlines on what it accepts: a first read within firstByteTimeout of the
// accept, later reads within idle (a registered phone re-registers within
// its expiry, so idle is the longest expiry and a margin), every write
// within streamWriteTimeout. sipgo sets none of these by default.
type limitListener struct {
	net.Listener
	max, perSource int
	idle           time.Duration

	mu      sync.Mutex
	total   int
	bySrc   map[string]int
	dropped func() // counts a refused connection (metrics); may be nil
}

func newLimitListener(ln net.Listener, max, perSource int, idle time.Duration, dropped func()) *limitListener {
	return &limitListener{Listener: ln, max: max, perSource: perSource, idle: idle, bySrc: map[string]int{}, dropped: dropped}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(src); err == nil {
			src = h
		}
		l.mu.Lock()
		ok := l.total < l.max && l.bySrc[src] < l.perSource
		if ok {
			l.total++
			l.bySrc[src]++
		}
		l.mu.Unlock()
		if !ok {
			if l.dropped != nil {
				l.dropped() // counted before the close the peer sees
			}
			c.Close()
			continue
		}
		return &limitConn{Conn: c, l: l, src: src, firstBy: time.Now().Add(firstByteTimeout)}, nil
	}
}

func (l *limitListener) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.bySrc[src]--; l.bySrc[src] <= 0 {
		delete(l.bySrc, src)
	}
}

// limitConn counts itself out once closed and bounds its reads and writes
// in time (see limitListener).
type limitConn struct {
	net.Conn
	l       *limitListener
	src     string
	firstBy time.Time

	mu     sync.Mutex
	spoke  bool
	closed bool
}

func (c *limitConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	deadline := c.firstBy
	if c.spoke {
		deadline = time.Now().Add(c.l.idle)
	}
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.spoke = true
		c.mu.Unlock()
	}
	return n, err
}

func (c *limitConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *limitConn) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	c.mu.Unlock()
	if first {
		c.l.release(c.src)
	}
	return c.Conn.Close()
}

package registrar

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A stream connection beyond the per-source limit is closed at once; one
// that never speaks is closed after firstByteTimeout (shortened here by a
// listener built with the same code); closing one frees its slot.
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	ln := newLimitListener(raw, 100, 2, time.Hour, func() { refused.Add(1) })
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1, c2 := dial(), dial()
	s1, s2 := <-accepted, <-accepted
	c3 := dial() // the third from 127.0.0.1: closed by the listener
	_ = c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection over the per-source limit was not closed")
	}
	if n := refused.Load(); n != 1 {
		t.Fatalf("refused %d, want 1", n)
	}
	// A closed connection frees its slot.
	s1.Close()
	c1.Close()
	dial()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the freed slot was not given to a new connection")
	}

	// A silent connection's first read ends at its first-byte deadline.
	lc := s2.(*limitConn)
	lc.firstBy = time.Now().Add(50 * time.Millisecond)
	if _, err := lc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a silent connection's read did not time out")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read error %v, want a timeout", err)
	}
	// Once it spoke, the idle bound applies instead of the first-byte one.
	lc.firstBy = time.Now().Add(5 * time.Second)
	buf := make([]byte, 1)
	for _, b := range []string{"x", "y"} {
		if _, err := c2.Write([]byte(b)); err != nil {
			t.Fatal(err)
		}
		if n, err := lc.Read(buf); n != 1 || err != nil {
			t.Fatalf("read of %q: %d %v", b, n, err)
		}
		lc.firstBy = time.Now().Add(-time.Second) // past: only the idle bound may apply now
	}
}

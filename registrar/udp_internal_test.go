package registrar

import (
	"bytes"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A flood of datagrams for sipgo, which nobody reads here, does not hold
// the readers: the REGISTER behind it still reaches the fast path, and
// what did not fit in the queue is dropped and counted. A datagram larger
// than sipgo's buffer is dropped, not cut short.
func TestUDPDemuxNeverWaitsForSipgo(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	registers := make(chan struct{}, 1)
	filter := func(_ sip.TransportReadProps, data []byte) ([]byte, error) {
		if bytes.HasPrefix(data, []byte("REGISTER ")) {
			registers <- struct{}{}
			return nil, nil // answered on the fast path
		}
		return data, nil
	}
	var dropped atomic.Int64
	d := newUDPDemux(conn, filter, slog.New(slog.DiscardHandler), func() { dropped.Add(1) })
	d.start()
	t.Cleanup(func() { d.Close(); d.readers.Wait() })

	c, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 1000 {
		if _, err := c.Write([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("REGISTER sip:x SIP/2.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-registers:
	case <-time.After(10 * time.Second):
		t.Fatalf("the REGISTER behind the flood never reached the fast path (%d dropped)", dropped.Load())
	}
	if dropped.Load() == 0 {
		t.Fatal("a queue of 256 took 1,000 datagrams and nothing was dropped")
	}

	// sipgo's side (a demux of its own, no readers): a datagram larger
	// than sipgo's buffer is skipped.
	var skipped atomic.Int64
	d2 := &udpDemux{other: make(chan datagram, 2), done: make(chan struct{}), dropped: func() { skipped.Add(1) }}
	d2.other <- datagram{data: make([]byte, 100), from: c.LocalAddr()}
	d2.other <- datagram{data: []byte("OPTIONS"), from: c.LocalAddr()}
	buf := make([]byte, 50)
	n, _, err := d2.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "OPTIONS" || skipped.Load() != 1 {
		t.Fatalf("ReadFrom: %q %v, %d dropped", buf[:n], err, skipped.Load())
	}
}

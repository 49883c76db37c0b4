package registrar

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// udpDemux owns the UDP socket: several goroutines (one per CPU) read it
// and run the fast path's filter on each datagram, so REGISTERs are
// answered in parallel, as Kamailio's children answer them (sipgo reads a
// listener with a single goroutine, which held the registrar to one core).
// Every datagram the filter hands on is queued for sipgo, which reads
// them through the demux as its net.PacketConn and writes through it to
// the socket. Reading is serialised by the socket's read lock; only the
// work runs in parallel.
type udpDemux struct {
	conn    *net.UDPConn
	filter  sip.TransportReadFilter
	log     *slog.Logger
	dropped func()
	other   chan datagram
	done    chan struct{}
	once    sync.Once
	readers sync.WaitGroup
}

type datagram struct {
	data []byte
	from net.Addr
}

// udpReadSize is the readers' buffer: a whole UDP datagram. (sipgo's own
// is smaller: see ReadFrom.)
const udpReadSize = 65535

// udpReadBuffer is the socket's receive buffer (the kernel caps it at
// net.core.rmem_max): a burst that arrives while the readers are held up
// (a binding flush, a GC cycle) waits in it instead of being dropped and
// retransmitted by the client 500 ms later.
const udpReadBuffer = 4 << 20

func newUDPDemux(conn *net.UDPConn, filter sip.TransportReadFilter, log *slog.Logger, dropped func()) *udpDemux {
	if err := conn.SetReadBuffer(udpReadBuffer); err != nil {
		log.Warn("registrar: cannot enlarge the UDP receive buffer", "err", err)
	}
	return &udpDemux{conn: conn, filter: filter, log: log, dropped: dropped, other: make(chan datagram, 256), done: make(chan struct{})}
}

// start runs the readers until the socket is closed (Close) or fails.
func (d *udpDemux) start() {
	n := max(runtime.GOMAXPROCS(0), 1)
	d.readers.Add(n)
	for range n {
		go d.read()
	}
}

func (d *udpDemux) read() {
	defer d.readers.Done()
	buf := make([]byte, udpReadSize)
	props := sip.TransportReadProps{Transport: "UDP", LocalAddr: d.conn.LocalAddr()}
	for {
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				// As sipgo does: a failing socket ends the listener
				// (Run then returns).
				d.log.Error("registrar: reading the UDP socket failed", "err", err)
			}
			d.Close()
			return
		}
		props.RemoteAddr = from
		data, err := d.filter(props, buf[:n])
		if err != nil || len(data) == 0 {
			continue
		}
		// Never wait for sipgo: a reader held here would leave the
		// REGISTERs behind it unanswered, so a flood of other requests
		// would hold registrations to sipgo's one reader. UDP senders
		// retransmit what is dropped.
		select {
		case d.other <- datagram{data: bytes.Clone(data), from: from}:
		case <-d.done:
			return
		default:
			d.dropped()
		}
	}
}

// ReadFrom hands sipgo the next datagram the fast path did not answer.
// One larger than sipgo's buffer is dropped, not cut short: a cut message
// without Content-Length would parse as a shorter, complete one.
func (d *udpDemux) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		select {
		case p := <-d.other:
			if len(p.data) > len(b) {
				d.dropped()
				continue
			}
			return copy(b, p.data), p.from, nil
		case <-d.done:
			return 0, nil, net.ErrClosed
		}
	}
}

func (d *udpDemux) WriteTo(b []byte, addr net.Addr) (int, error) { return d.conn.WriteTo(b, addr) }

// Close closes the socket; the readers and sipgo's reader stop. It may be
// called more than once (sipgo closes its listeners too).
func (d *udpDemux) Close() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		err = d.conn.Close()
	})
	return err
}

func (d *udpDemux) LocalAddr() net.Addr                { return d.conn.LocalAddr() }
func (d *udpDemux) SetDeadline(t time.Time) error      { return d.conn.SetDeadline(t) }
func (d *udpDemux) SetReadDeadline(t time.Time) error  { return d.conn.SetReadDeadline(t) }
func (d *udpDemux) SetWriteDeadline(t time.Time) error { return d.conn.SetWriteDeadline(t) }

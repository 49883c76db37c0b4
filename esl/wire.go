package esl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/percipia/eslgo"
)

// The event socket wire format (mod_event_socket.c): a frame is header lines
// "Name: value\n" ended by an empty line; a Content-Length header announces
// a body of that many bytes. FreeSWITCH writes "\n" line ends; "\r\n" is
// accepted too. fsplane reads frames itself only to take the greeting and
// to relay whole frames to eslgo, which parses them again (conn.go).

// Content types FreeSWITCH sends.
const (
	ctAuthRequest = "auth/request"
	ctReply       = "command/reply"
	ctAPIResponse = "api/response"
	ctEventPlain  = "text/event-plain"
	ctDisconnect  = "text/disconnect-notice"
	ctRejection   = "text/rude-rejection"
)

// Limits that keep a broken or hostile peer from exhausting memory.
const (
	maxHeaderBytes = 64 << 10
	maxBodyBytes   = 32 << 20
)

// frame is one message from FreeSWITCH.
type frame struct {
	header map[string]string // keys as sent; see get
	head   []byte            // the header block as received, blank line included
	body   []byte
}

// get returns a header, matching its name case-insensitively.
func (f frame) get(name string) string { return header(f.header, name) }

// header looks name up in h, exactly first, then case-insensitively (eslgo
// normalises header case; FreeSWITCH does not).
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (f frame) contentType() string { return f.get("Content-Type") }

// buffers is the frame's bytes as received, for relaying.
func (f frame) buffers() *net.Buffers {
	b := net.Buffers{f.head}
	if len(f.body) > 0 {
		b = append(b, f.body)
	}
	return &b
}

// raw is the frame's bytes as received.
func (f frame) raw() []byte { return append(append([]byte(nil), f.head...), f.body...) }

// readFrame reads one frame. Blank lines before a frame are skipped, as
// FreeSWITCH itself does.
func readFrame(r *bufio.Reader) (frame, error) {
	f := frame{header: map[string]string{}}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return f, fmt.Errorf("%w: header line longer than %d bytes", ErrProtocol, r.Size())
			}
			if errors.Is(err, io.EOF) && (len(f.header) > 0 || len(line) > 0) {
				return f, io.ErrUnexpectedEOF
			}
			return f, err
		}
		if len(f.head)+len(line) > maxHeaderBytes {
			return f, fmt.Errorf("%w: header block over %d bytes", ErrProtocol, maxHeaderBytes)
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			if len(f.header) == 0 {
				continue
			}
			f.head = append(f.head, line...)
			break
		}
		name, value, ok := bytes.Cut(trimmed, []byte(":"))
		if !ok {
			return f, fmt.Errorf("%w: header line without colon: %.40q", ErrProtocol, trimmed)
		}
		f.head = append(f.head, line...)
		f.header[string(bytes.TrimSpace(name))] = string(bytes.TrimSpace(value))
	}
	if cl := f.get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > maxBodyBytes {
			return f, fmt.Errorf("%w: Content-Length %.20q", ErrProtocol, cl)
		}
		f.body = make([]byte, n)
		if _, err := io.ReadFull(r, f.body); err != nil {
			return f, fmt.Errorf("read body of %d bytes: %w", n, err)
		}
	}
	return f, nil
}

// Event is one FreeSWITCH event (text/event-plain), its header values
// URL-decoded.
type Event struct {
	Headers map[string]string
	Body    string
}

// Get returns a header, matching its name case-insensitively.
func (e Event) Get(name string) string { return header(e.Headers, name) }

// Subclass is the Event-Subclass of a CUSTOM event, e.g.
// "sofia::gateway_state".
func (e Event) Subclass() string { return e.Get("Event-Subclass") }

// eventFrom converts eslgo's event. eslgo keeps the values as sent and
// decodes them on each GetHeader, returning "" when one does not decode
// (event.go:89-92); a value that does not decode is kept as sent instead.
func eventFrom(ev *eslgo.Event) Event {
	out := Event{Headers: make(map[string]string, len(ev.Headers)), Body: string(ev.Body)}
	for k, vs := range ev.Headers {
		if len(vs) == 0 {
			continue
		}
		v := vs[len(vs)-1]
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
		out.Headers[k] = v
	}
	return out
}

// eventSequence returns an event body's Event-Sequence, parsing it exactly
// as eslgo's readPlainEvent does (event.go:35-60): an event it would drop
// is not forwarded, so the sequencer never waits for one.
func eventSequence(body []byte) (uint64, bool) {
	r := bufio.NewReader(bytes.NewReader(body))
	h, err := textproto.NewReader(r).ReadMIMEHeader()
	if err != nil {
		return 0, false
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(body) {
			return 0, false
		}
		if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(h.Get("Event-Sequence"), 10, 64)
	return seq, err == nil
}

// Sequencer limits.
const (
	// maxEventBacklog events may be on their way through eslgo or waiting
	// for the handler; then the relay waits, as a reader calling the
	// handler itself would.
	maxEventBacklog = 1024
	// headWait is how long the sequencer waits for the next event before
	// taking it for lost. eslgo drops an event only when its event loop
	// does not take it within 5 s (connection.go:332-342).
	headWait = 6 * time.Second
)

// sequencer restores the wire order of events that eslgo hands to its
// listener on one goroutine each. The relay announces each event's
// Event-Sequence as it forwards it (expect); the listener hands the event
// over (arrive); next returns them in the announced order.
type sequencer struct {
	slots    chan struct{}
	kick     chan struct{}
	headWait time.Duration

	mu      sync.Mutex
	order   []uint64           // announced, not yet returned
	want    map[uint64]int     // announced and not arrived, by sequence
	arrived map[uint64][]Event // arrived, not yet returned
}

func newSequencer() *sequencer {
	return &sequencer{
		slots: make(chan struct{}, maxEventBacklog), kick: make(chan struct{}, 1), headWait: headWait,
		want: map[uint64]int{}, arrived: map[uint64][]Event{},
	}
}

// expect announces an event about to be forwarded; false when done closed
// while waiting for room.
func (s *sequencer) expect(seq uint64, done <-chan struct{}) bool {
	select {
	case s.slots <- struct{}{}:
	case <-done:
		return false
	}
	s.mu.Lock()
	s.order = append(s.order, seq)
	s.want[seq]++
	s.mu.Unlock()
	return true
}

// arrive takes an event from eslgo's listener; it never blocks.
func (s *sequencer) arrive(seq uint64, ev Event) {
	s.mu.Lock()
	if s.want[seq] == 0 {
		s.mu.Unlock()
		return // not announced, or given up on
	}
	if s.want[seq]--; s.want[seq] == 0 {
		delete(s.want, seq)
	}
	s.arrived[seq] = append(s.arrived[seq], ev)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// next returns the next event in wire order; false once done is closed.
func (s *sequencer) next(done <-chan struct{}) (Event, bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var waitingFor uint64
	var since time.Time
	for {
		select {
		case <-done:
			return Event{}, false
		default:
		}
		var timeout <-chan time.Time
		s.mu.Lock()
		if len(s.order) > 0 {
			head := s.order[0]
			if evs := s.arrived[head]; len(evs) > 0 {
				ev := evs[0]
				if len(evs) == 1 {
					delete(s.arrived, head)
				} else {
					s.arrived[head] = evs[1:]
				}
				s.pop()
				s.mu.Unlock()
				return ev, true
			}
			if since.IsZero() || waitingFor != head {
				waitingFor, since = head, time.Now()
			}
			left := s.headWait - time.Since(since)
			if left <= 0 {
				// Lost inside eslgo: order the rest without it.
				if s.want[head]--; s.want[head] <= 0 {
					delete(s.want, head)
				}
				s.pop()
				since = time.Time{}
				s.mu.Unlock()
				continue
			}
			if timer == nil {
				timer = time.NewTimer(left)
			} else {
				timer.Reset(left)
			}
			timeout = timer.C
		}
		s.mu.Unlock()
		select {
		case <-done:
			return Event{}, false
		case <-s.kick:
		case <-timeout:
		}
	}
}

// pop removes the head of order and frees its slot; s.mu is held.
func (s *sequencer) pop() {
	s.order = s.order[1:]
	<-s.slots
}

package esl

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/percipia/eslgo"
	eslcmd "github.com/percipia/eslgo/command"
)

// Frames as mod_event_socket.c writes them.
func TestReadFrame(t *testing.T) {
	rescan := "Reload XML [Success]\n+OK scan complete\n\n"
	stream := "Content-Type: auth/request\n\n" +
		"Content-Type: command/reply\nReply-Text: +OK accepted\n\n" +
		"Content-Type: api/response\nContent-Length: " + strconv.Itoa(len(rescan)) + "\n\n" + rescan +
		"\n\nContent-Type: text/disconnect-notice\r\nContent-Length: 67\r\n\r\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
	r := bufio.NewReader(strings.NewReader(stream))
	want := []struct{ ct, reply, body string }{
		{ctAuthRequest, "", ""},
		{ctReply, "+OK accepted", ""},
		{ctAPIResponse, "", "Reload XML [Success]\n+OK scan complete\n\n"},
		{ctDisconnect, "", "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"},
	}
	var relayed []byte
	for i, w := range want {
		f, err := readFrame(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.contentType() != w.ct || f.get("reply-text") != w.reply || string(f.body) != w.body {
			t.Fatalf("frame %d: %q %q %q, want %+v", i, f.contentType(), f.get("Reply-Text"), f.body, w)
		}
		relayed = append(relayed, f.raw()...)
	}
	// What the relay forwards is the frames as received, without the blank
	// lines between them.
	if want := strings.Replace(stream, "\n\nContent-Type: text/disconnect", "Content-Type: text/disconnect", 1); string(relayed) != want {
		t.Fatalf("relayed %q\nwant    %q", relayed, want)
	}
	if _, err := readFrame(r); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

func TestReadFrameRejectsMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"no colon":        "Content-Type auth/request\n\n",
		"bad length":      "Content-Type: api/response\nContent-Length: x\n\n",
		"negative length": "Content-Type: api/response\nContent-Length: -1\n\n",
		"huge length":     "Content-Type: api/response\nContent-Length: 999999999999\n\n",
		"short body":      "Content-Type: api/response\nContent-Length: 10\n\nabc",
		"cut headers":     "Content-Type: api/response\n",
		"endless header":  "X: " + strings.Repeat("a", 70<<10) + "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := readFrame(bufio.NewReaderSize(strings.NewReader(in), 64<<10)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// An event body as switch_event_serialize writes it (URL-encoded values),
// parsed by eslgo's own parser (textproto, event.go:146) and converted.
func TestEventFrom(t *testing.T) {
	body := "Event-Name: CUSTOM\nCore-UUID: 36c6db59\nFreeSWITCH-Hostname: vm\nFreeSWITCH-IPv6: fd00%3A%3A2\n" +
		"Event-Date-Local: 2026-11-22%2018%3A16%3A56\nEvent-Subclass: sofia%3A%3Agateway_state\n" +
		"Gateway: einsundeins\nState: FAIL_WAIT\nPing-Status: DOWN\nPhrase: Operation%20has%20no%20matching%20challenge\n" +
		"Odd: 100%\nEvent-Sequence: 4711\nContent-Length: 5\n\nhello"
	seq, ok := eventSequence([]byte(body))
	if !ok || seq != 4711 {
		t.Fatalf("sequence %d %v", seq, ok)
	}
	r := bufio.NewReader(strings.NewReader(body))
	h, err := textproto.NewReader(r).ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	ev := eventFrom(&eslgo.Event{Headers: h, Body: rest})
	if ev.Subclass() != "sofia::gateway_state" || ev.Get("gateway") != "einsundeins" ||
		ev.Get("Phrase") != "Operation has no matching challenge" || ev.Get("FreeSWITCH-IPv6") != "fd00::2" ||
		ev.Get("Odd") != "100%" || ev.Body != "hello" {
		t.Fatalf("%+v", ev)
	}
}

// Events eslgo's parser would drop are not forwarded (the sequencer would
// wait for them), nor are events without an Event-Sequence.
func TestEventSequenceRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"no sequence":   "Event-Name: CUSTOM\n\n",
		"bad sequence":  "Event-Name: CUSTOM\nEvent-Sequence: x\n\n",
		"no blank line": "Event-Name: CUSTOM\nEvent-Sequence: 1\n",
		"no colon":      "Event-Name CUSTOM\nEvent-Sequence: 1\n\n",
		"bad length":    "Event-Sequence: 1\nContent-Length: x\n\n",
		"short body":    "Event-Sequence: 1\nContent-Length: 10\n\nabc",
	} {
		t.Run(name, func(t *testing.T) {
			if seq, ok := eventSequence([]byte(in)); ok {
				t.Fatalf("accepted, sequence %d", seq)
			}
		})
	}
}

// The lines eslgo writes for fsplane's commands (it adds "\r\n\r\n").
func TestCommandLines(t *testing.T) {
	for _, c := range []struct {
		cmd  eslcmd.Command
		want string
	}{
		{apiCommand("status"), "api status"},
		{apiCommand("sofia profile internal rescan"), "api sofia profile internal rescan"},
		{apiCommand("sofia xmlstatus gateway plusnet"), "api sofia xmlstatus gateway plusnet"},
		{eslcmd.Event{Format: "plain", Listen: []string{"CUSTOM", "sofia::gateway_state", "sofia::gateway_delete"}},
			"event plain CUSTOM sofia::gateway_state sofia::gateway_delete"},
	} {
		if got := c.cmd.BuildMessage(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

func seqEvent(n int) Event {
	return Event{Headers: map[string]string{"Event-Sequence": strconv.Itoa(n)}}
}

// Arrivals in any order come out in the announced (wire) order; arrivals
// nobody announced are ignored.
func TestSequencerRestoresOrder(t *testing.T) {
	s := newSequencer()
	done := make(chan struct{})
	announced := []uint64{7, 9, 12, 13, 40, 41}
	for _, n := range announced {
		if !s.expect(n, done) {
			t.Fatal("expect refused")
		}
	}
	for _, n := range []int{41, 12, 99, 9, 40, 13, 7} {
		s.arrive(uint64(n), seqEvent(n))
	}
	for _, n := range announced {
		ev, ok := s.next(done)
		if !ok || ev.Get("Event-Sequence") != strconv.FormatUint(n, 10) {
			t.Fatalf("got %v %v, want %d", ev.Headers, ok, n)
		}
	}
	close(done)
	if _, ok := s.next(done); ok {
		t.Fatal("next after done")
	}
}

// An event eslgo lost is given up on after headWait; the rest keep their
// order.
func TestSequencerSkipsLostEvent(t *testing.T) {
	s := newSequencer()
	s.headWait = 20 * time.Millisecond
	done := make(chan struct{})
	defer close(done)
	for _, n := range []uint64{1, 2, 3} {
		s.expect(n, done)
	}
	s.arrive(3, seqEvent(3))
	s.arrive(2, seqEvent(2))
	for _, want := range []string{"2", "3"} {
		if ev, ok := s.next(done); !ok || ev.Get("Event-Sequence") != want {
			t.Fatalf("got %v %v, want %s", ev.Headers, ok, want)
		}
	}
	s.arrive(1, seqEvent(1)) // too late: not delivered out of order
	s.expect(4, done)
	s.arrive(4, seqEvent(4))
	if ev, ok := s.next(done); !ok || ev.Get("Event-Sequence") != "4" {
		t.Fatalf("got %v %v, want 4", ev.Headers, ok)
	}
}

// A full backlog holds the relay back until the handler catches up, or the
// connection ends.
func TestSequencerBackpressure(t *testing.T) {
	s := newSequencer()
	done := make(chan struct{})
	for i := range maxEventBacklog {
		s.expect(uint64(i), done)
		s.arrive(uint64(i), seqEvent(i))
	}
	freed := make(chan bool)
	go func() { freed <- s.expect(maxEventBacklog, done) }()
	select {
	case <-freed:
		t.Fatal("expect went past a full backlog")
	default:
	}
	if _, ok := s.next(done); !ok {
		t.Fatal("next")
	}
	if !<-freed {
		t.Fatal("expect refused after room was made")
	}
	go func() { freed <- s.expect(maxEventBacklog+1, done) }()
	close(done)
	if <-freed {
		t.Fatal("expect accepted after done")
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("Content-Type: api/response\nContent-Length: 3\n\n+OK"))
	f.Add([]byte("Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"))
	f.Add([]byte("Content-Length: 30\nContent-Type: text/event-plain\n\nEvent-Name: CUSTOM\nA: b%20c\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 4096)
		for range 8 {
			fr, err := readFrame(r)
			if err != nil {
				return
			}
			if len(fr.body) > maxBodyBytes {
				t.Fatalf("body of %d bytes", len(fr.body))
			}
			if fr.contentType() == ctEventPlain {
				_, _ = eventSequence(fr.body)
			}
		}
	})
}

// What eventSequence accepts, eslgo's parser accepts too.
func FuzzEventSequence(f *testing.F) {
	f.Add([]byte("Event-Name: CUSTOM\nEvent-Subclass: sofia%3A%3Agateway_delete\nGateway: plusnet\nEvent-Sequence: 3\n\n"))
	f.Add([]byte("Event-Name: CUSTOM\nEvent-Sequence: 3\nContent-Length: 2\n\nok"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, ok := eventSequence(b); !ok {
			return
		}
		r := bufio.NewReader(bytes.NewReader(b))
		h, err := textproto.NewReader(r).ReadMIMEHeader()
		if err != nil {
			t.Fatalf("accepted what eslgo drops: %v", err)
		}
		if cl := h.Get("Content-Length"); cl != "" {
			n, err := strconv.Atoi(cl)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
				t.Fatalf("accepted a short body: %v", err)
			}
		}
	})
}

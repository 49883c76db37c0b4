package esl

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
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
	for i, w := range want {
		f, err := readFrame(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.contentType() != w.ct || f.get("reply-text") != w.reply || string(f.body) != w.body {
			t.Fatalf("frame %d: %q %q %q, want %+v", i, f.contentType(), f.get("Reply-Text"), f.body, w)
		}
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

// An event body as switch_event_serialize writes it: URL-encoded values.
func TestParseEvent(t *testing.T) {
	body := "Event-Name: CUSTOM\nCore-UUID: 36c6db59\nFreeSWITCH-Hostname: vm\nFreeSWITCH-IPv6: fd00%3A%3A2\n" +
		"Event-Date-Local: 2026-11-22%2018%3A16%3A56\nEvent-Subclass: sofia%3A%3Agateway_state\n" +
		"Gateway: einsundeins\nState: FAIL_WAIT\nPing-Status: DOWN\nPhrase: Operation%20has%20no%20matching%20challenge\n" +
		"Status: 904\nContent-Length: 5\n\nhello"
	ev, err := parseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Subclass() != "sofia::gateway_state" || ev.Get("gateway") != "einsundeins" ||
		ev.Get("Phrase") != "Operation has no matching challenge" || ev.Get("FreeSWITCH-IPv6") != "fd00::2" || ev.Body != "hello" {
		t.Fatalf("%+v", ev)
	}
	if _, err := parseEvent([]byte("\n\n")); err == nil {
		t.Fatal("empty event accepted")
	}
}

func TestWriteCommandRefusesLineBreaks(t *testing.T) {
	for _, line := range []string{"api status\n\napi fsctl shutdown", "api status\r\n", "auth x\ry"} {
		var b bytes.Buffer
		if err := writeCommand(&b, line); !errors.Is(err, ErrInvalidCommand) || b.Len() != 0 {
			t.Errorf("%q: err %v, wrote %q", line, err, b.String())
		}
	}
	var b bytes.Buffer
	if err := writeCommand(&b, "api sofia profile internal rescan"); err != nil || b.String() != "api sofia profile internal rescan\n\n" {
		t.Fatalf("%v %q", err, b.String())
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
				_, _ = parseEvent(fr.body)
			}
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte("Event-Name: CUSTOM\nEvent-Subclass: sofia%3A%3Agateway_delete\nGateway: plusnet\n\n"))
	f.Add([]byte("Event-Name: CUSTOM\nContent-Length: 2\n\nok"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseEvent(b)
		if err == nil && len(ev.Headers) == 0 {
			t.Fatal("event without headers accepted")
		}
	})
}

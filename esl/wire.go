package esl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// The event socket wire format (mod_event_socket.c): a frame is header lines
// "Name: value\n" ended by an empty line; a Content-Length header announces
// a body of that many bytes. FreeSWITCH writes "\n" line ends; "\r\n" is
// accepted too.

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
	body   []byte
}

// get returns a header, matching its name case-insensitively.
func (f frame) get(name string) string {
	if v, ok := f.header[name]; ok {
		return v
	}
	for k, v := range f.header {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (f frame) contentType() string { return f.get("Content-Type") }

// readFrame reads one frame. Blank lines before a frame are skipped, as
// FreeSWITCH itself does.
func readFrame(r *bufio.Reader) (frame, error) {
	f := frame{header: map[string]string{}}
	total := 0
	for {
		line, err := r.ReadSlice('\n')
		total += len(line)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return f, fmt.Errorf("%w: header line longer than %d bytes", ErrProtocol, r.Size())
			}
			if errors.Is(err, io.EOF) && (len(f.header) > 0 || len(line) > 0) {
				return f, io.ErrUnexpectedEOF
			}
			return f, err
		}
		if total > maxHeaderBytes {
			return f, fmt.Errorf("%w: header block over %d bytes", ErrProtocol, maxHeaderBytes)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if len(f.header) == 0 {
				continue
			}
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return f, fmt.Errorf("%w: header line without colon: %.40q", ErrProtocol, line)
		}
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
func (e Event) Get(name string) string {
	if v, ok := e.Headers[name]; ok {
		return v
	}
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Subclass is the Event-Subclass of a CUSTOM event, e.g.
// "sofia::gateway_state".
func (e Event) Subclass() string { return e.Get("Event-Subclass") }

// parseEvent decodes a text/event-plain frame body: header lines with
// URL-encoded values, an empty line, and an optional body announced by its
// own Content-Length.
func parseEvent(b []byte) (Event, error) {
	inner, err := readFrame(bufio.NewReaderSize(bytes.NewReader(b), 4096))
	if err != nil && !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return Event{}, fmt.Errorf("event: %w", err)
	}
	if len(inner.header) == 0 {
		return Event{}, fmt.Errorf("%w: empty event", ErrProtocol)
	}
	ev := Event{Headers: make(map[string]string, len(inner.header)), Body: string(inner.body)}
	for k, v := range inner.header {
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
		ev.Headers[k] = v
	}
	return ev, nil
}

// writeCommand writes one command: the line and the blank line that ends it.
func writeCommand(w io.Writer, line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return ErrInvalidCommand
	}
	_, err := io.WriteString(w, line+"\n\n")
	return err
}

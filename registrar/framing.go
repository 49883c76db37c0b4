package registrar

import (
	"bytes"
	"io"
	"net"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// Message framing on the stream transports (TCP, TLS), ahead of sipgo's
// stream parser. On a stream the Content-Length header is what delimits a
// message (RFC 3261 §18.3, §20.14: mandatory there). A message without one,
// with several, or with a value that is not a length cannot be delimited:
// nothing after it can be read reliably, so it is answered 400 (when it is
// a request whose headers can be read) and the connection is closed, never
// left waiting for bytes that do not come. A request whose Request-URI
// has a scheme other than sip or sips is answered 416 here, as the UDP
// fast path does (sipgo's parser refuses it outright), and the connection
// goes on. sipgo receives whole messages, one per read (and the keep-alive
// CRLFs between them as reads of their own, as it expects them).

// maxStreamMessage bounds one message on a stream (sipgo's own limit,
// sip.ParseMaxMessageLength).
const maxStreamMessage = 65535

// framingListener wraps the accepted connections in framingConns.
type framingListener struct {
	net.Listener
	r         *Registrar
	transport string // "TCP" or "TLS"
}

func newFramingListener(ln net.Listener, r *Registrar, transport string) *framingListener {
	return &framingListener{Listener: ln, r: r, transport: transport}
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, r: l.r, transport: l.transport}, nil
}

// framingConn hands sipgo (its only reader) one framed message at a time.
// Its own answers are written to the connection beside sipgo's writes
// (net.Conn writes are safe for concurrent use).
type framingConn struct {
	net.Conn
	r         *Registrar
	transport string

	in      []byte // read, not yet framed
	out     []byte // framed, not yet handed to sipgo
	outBuf  []byte
	readErr error // of the connection, returned once in is used up
	closing bool  // after an unframable message: EOF, then sipgo closes
	// Of the message at the head of in: how far it is known to hold no
	// end of headers, and its whole length once known (0 before), so that
	// a message trickling in is not scanned again for every read.
	scanned, want int
}

func (c *framingConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.closing {
			return 0, io.EOF
		}
		if c.frame() {
			continue
		}
		if c.readErr != nil {
			return 0, c.readErr
		}
		if cap(c.in)-len(c.in) < 2048 {
			c.in = append(make([]byte, 0, 2*cap(c.in)+4096), c.in...)
		}
		n, err := c.Conn.Read(c.in[len(c.in):cap(c.in)])
		c.in = c.in[:len(c.in)+n]
		if err != nil {
			c.readErr = err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// frame moves the next complete unit (a message, or keep-alive CRLFs) from
// in to out, or answers and refuses an unframable message; false means
// more bytes are needed.
func (c *framingConn) frame() bool {
	in := c.in
	if len(in) == 0 {
		return false
	}
	if in[0] == '\r' || in[0] == '\n' {
		// Keep-alives (RFC 5626 §3.5.1) or CRLFs before a start line
		// (RFC 3261 §7.5): at most a double CRLF per read, which sipgo
		// answers as a ping.
		k := 0
		for k < len(in) && k < 4 && (in[k] == '\r' || in[k] == '\n') {
			k++
		}
		c.emit(k)
		return true
	}
	if c.want > 0 {
		if len(in) < c.want {
			return false
		}
		return c.deliver(c.want)
	}
	end, bare := -1, -1
	if from := max(c.scanned-3, 0); from < len(in) {
		if e, lf := headerEnd(in[from:]); e >= 0 {
			end = from + e
		} else if lf >= 0 {
			bare = from + lf
		}
	}
	if bare >= 0 {
		// sipgo ends the headers only at an empty CRLF line: it would
		// read on past this one, into the body and the next message.
		head := append(bytes.TrimRight(in[:bare:bare], "\r"), "\r\n\r\n"...)
		c.refuse(head, 400, "Bare LF Empty Line")
		return true
	}
	if end < 0 {
		c.scanned = len(in)
		if len(in) > maxStreamMessage {
			c.closing = true // no end of headers in sight: nothing to answer
		}
		return c.closing
	}
	n, count, ok := contentLength(in[:end])
	switch {
	case count == 0:
		c.refuse(in[:end], 400, "Missing Content-Length")
		return true
	case count > 1:
		c.refuse(in[:end], 400, "Multiple Content-Length")
		return true
	case !ok:
		c.refuse(in[:end], 400, "Invalid Content-Length")
		return true
	case end+n > maxStreamMessage:
		c.refuse(in[:end], 413, "Request Entity Too Large")
		return true
	case len(in) < end+n:
		c.want = end + n
		return false
	}
	return c.deliver(end + n)
}

// deliver hands the whole message of n bytes at the head of in on, or
// answers it itself (416).
func (c *framingConn) deliver(n int) bool {
	if c.unsupportedScheme(c.in[:n]) {
		c.consume(n)
		return true
	}
	c.emit(n)
	return true
}

// emit hands the first n bytes of in to sipgo.
func (c *framingConn) emit(n int) {
	c.outBuf = append(c.outBuf[:0], c.in[:n]...)
	c.out = c.outBuf
	c.consume(n)
}

func (c *framingConn) consume(n int) {
	c.in = append(c.in[:0], c.in[n:]...)
	c.scanned, c.want = 0, 0
}

// refuse answers the request whose header section is head with code, if
// it can be read as one (not an ACK, not a response), and closes.
func (c *framingConn) refuse(head []byte, code int, reason string) {
	c.closing = true
	c.in = nil
	req := c.request(head, true)
	if req == nil || req.Method == sip.ACK {
		return
	}
	c.answer(req, c.r.reply(req, code, reason))
}

// unsupportedScheme answers 416 to a request with a Request-URI scheme
// other than sip and sips (RFC 4475 novelsc) and reports whether it did.
func (c *framingConn) unsupportedScheme(msg []byte) bool {
	stand, ok := schemeStandIn(msg)
	if !ok {
		return false
	}
	req := c.request(stand, false)
	if req == nil || req.Method == sip.ACK {
		return false // sipgo refuses it as unparseable, as before
	}
	c.answer(req, c.r.reply(req, 416, "Unsupported URI Scheme"))
	return true
}

// request parses msg as a request received on c; without its
// Content-Length lines when noLength (only the headers are at hand).
func (c *framingConn) request(msg []byte, noLength bool) *sip.Request {
	if noLength {
		msg = withoutContentLength(msg)
	}
	parsed, err := newParser().ParseSIP(msg) // a rare path: no parser kept per connection
	if err != nil {
		return nil
	}
	req, ok := parsed.(*sip.Request)
	if !ok || !routable(req) {
		return nil
	}
	req.SetSource(c.RemoteAddr().String())
	req.SetTransport(c.transport)
	return req
}

func (c *framingConn) answer(req *sip.Request, res *sip.Response) {
	c.r.m.responses.WithLabelValues(methodLabel(req.Method), strconv.Itoa(res.StatusCode)).Inc()
	if _, err := c.Conn.Write([]byte(res.String())); err != nil {
		c.r.log.Debug("registrar: response not sent", "code", res.StatusCode, "err", err)
	}
}

// headerEnd is the length of the start line and headers with the empty
// line that ends them (an empty CRLF line, as sipgo's stream parser reads
// it), or -1 before it arrived; lf is where a bare-LF empty line ("\n\n")
// comes first, -1 if none does.
func headerEnd(b []byte) (end, lf int) {
	crlf := bytes.Index(b, []byte("\r\n\r\n"))
	lf = bytes.Index(b, []byte("\n\n"))
	if lf >= 0 && (crlf < 0 || lf < crlf) {
		return -1, lf
	}
	if crlf >= 0 {
		return crlf + 4, -1
	}
	return -1, -1
}

func isContentLength(name []byte) bool {
	return bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l"))
}

// contentLength reads the Content-Length headers of head (the start line,
// headers and empty line) without allocating: the value of the last, how
// many there are, and whether that value is a length (1*DIGIT, RFC 3261
// §20.14; counted up to just past maxStreamMessage, so that an overlong
// one reads as too large). A value may be folded onto the next line.
func contentLength(head []byte) (n, count int, ok bool) {
	i := bytes.IndexByte(head, '\r') + 2 // past the start line (head ends in CRLFCRLF)
	inCL, empty := false, false
	for i < len(head) {
		// A line ends at its CR, as sipgo reads it: a bare LF is part of
		// the line.
		line := head[i:]
		if j := bytes.IndexByte(line, '\r'); j >= 0 {
			line, i = line[:j], i+j+2
		} else {
			i = len(head)
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if v := bytes.TrimSpace(line); inCL && len(v) > 0 {
				if empty {
					n, ok = parseLength(v)
					empty = false
				} else {
					ok = false // digits on two lines: "1 2" is no length
				}
			}
			continue
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		inCL = found && isContentLength(bytes.TrimSpace(name))
		if inCL {
			count++
			value = bytes.TrimSpace(value)
			empty = len(value) == 0
			n, ok = parseLength(value)
		}
	}
	return n, count, ok
}

func parseLength(v []byte) (n int, ok bool) {
	if len(v) == 0 {
		return 0, false
	}
	for _, d := range v {
		if d < '0' || d > '9' {
			return 0, false
		}
		if n <= maxStreamMessage {
			n = n*10 + int(d-'0')
		}
	}
	return n, true
}

// withoutContentLength is head without its Content-Length lines (and
// their continuations), ending in the empty line.
func withoutContentLength(head []byte) []byte {
	var out bytes.Buffer
	lines := bytes.SplitAfter(head, []byte("\n"))
	skipping := false
	for i, l := range lines {
		t := bytes.TrimRight(l, "\r\n")
		if i > 0 && len(t) > 0 {
			if t[0] == ' ' || t[0] == '\t' {
				if skipping {
					continue
				}
			} else {
				n, _, _ := bytes.Cut(t, []byte(":"))
				skipping = isContentLength(bytes.TrimSpace(n))
				if skipping {
					continue
				}
			}
		}
		out.Write(l)
	}
	return out.Bytes()
}

// schemeStandIn: msg is a request whose Request-URI has a scheme other
// than sip or sips (RFC 3986 characters); it returns msg with a stand-in
// sip: URI, so that the rest can be parsed to answer it.
func schemeStandIn(msg []byte) ([]byte, bool) {
	eol := bytes.IndexByte(msg, '\n')
	if eol < 0 {
		return nil, false
	}
	line := bytes.TrimRight(msg[:eol], "\r")
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(method) == 0 || bytes.HasPrefix(method, []byte("SIP/")) {
		return nil, false
	}
	uri, version, ok := bytes.Cut(rest, []byte(" "))
	if !ok || !bytes.Equal(version, []byte("SIP/2.0")) {
		return nil, false
	}
	scheme, _, ok := bytes.Cut(uri, []byte(":"))
	if !ok || len(scheme) == 0 || bytes.EqualFold(scheme, []byte("sip")) || bytes.EqualFold(scheme, []byte("sips")) {
		return nil, false
	}
	for _, ch := range scheme {
		// RFC 3986 scheme characters only: anything else is not a URI.
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '+' || ch == '-' || ch == '.') {
			return nil, false
		}
	}
	stand := make([]byte, 0, len(msg))
	stand = append(stand, method...)
	stand = append(stand, " sip:unsupported.invalid SIP/2.0"...)
	stand = append(stand, msg[len(line):]...)
	return stand, true
}

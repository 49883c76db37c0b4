// Package registrartest runs a real registrar on loopback for tests and
// talks SIP to it over real UDP and TCP sockets: raw messages in, parsed
// responses out, with digest answers computed by github.com/icholy/digest.
package registrartest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/fsplane/fsplane/registrar"
)

// Start runs a registrar built from opt (Listen defaults to
// 127.0.0.1:0) until the test ends, and returns it with its UDP and TCP
// addresses (Addrs has the TLS one).
func Start(t testing.TB, opt registrar.Options) (r *registrar.Registrar, udp, tcp string) {
	t.Helper()
	if opt.Listen == "" {
		opt.Listen = "127.0.0.1:0"
	}
	if opt.NonceKey == nil {
		opt.NonceKey = []byte("registrartest nonce key, 32 byte")
	}
	r, err := registrar.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("registrar stopped with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("registrar did not stop")
		}
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addrs, err := r.Addrs(actx)
	if err != nil {
		select {
		case err := <-done:
			t.Fatalf("registrar did not start: %v", err)
		default:
		}
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, addr, _ := strings.Cut(a, " ")
		switch n {
		case "udp":
			udp = addr
		case "tcp":
			tcp = addr
		}
	}
	return r, udp, tcp
}

// Client is one SIP endpoint on one socket.
type Client struct {
	t         testing.TB
	conn      net.Conn
	rd        *bufio.Reader
	buf       []byte // one datagram
	Transport string // "UDP" or "TCP"
	Local     string // ip:port of the socket
	CallID    string
	CSeq      int
}

// Dial opens a socket to addr; network is "udp" or "tcp".
func Dial(t testing.TB, network, addr string) *Client {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Client{t: t, conn: conn, rd: bufio.NewReader(conn), Transport: strings.ToUpper(network),
		Local: conn.LocalAddr().String(), CallID: Token() + "@test", CSeq: 1}
}

// DialTLS opens a TLS connection to addr trusting conf (a test CA).
func DialTLS(t testing.TB, addr string, conf *tls.Config) *Client {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Client{t: t, conn: conn, rd: bufio.NewReader(conn), Transport: "TLS",
		Local: conn.LocalAddr().String(), CallID: Token() + "@test", CSeq: 1}
}

// Token is a random hex string (branches, tags, Call-IDs).
func Token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SendRaw writes msg as is.
func (c *Client) SendRaw(msg []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(msg); err != nil {
		c.t.Fatal(err)
	}
}

// Read returns the next final response (provisional ones are skipped), or
// nil when none arrives within wait.
func (c *Client) Read(wait time.Duration) *sip.Response {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		c.conn.SetReadDeadline(deadline)
		raw, err := c.readMessage()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return nil
			}
			if err == io.EOF {
				return nil
			}
			c.t.Fatalf("read: %v", err)
		}
		msg, err := sip.ParseMessage(raw)
		if err != nil {
			c.t.Fatalf("unparseable answer %q: %v", raw, err)
		}
		res, ok := msg.(*sip.Response)
		if !ok {
			continue // a request to us (proxied); tests read those with ReadRequest
		}
		if res.StatusCode >= 200 {
			return res
		}
	}
}

// ReadRequest returns the next request that arrives within wait, or nil.
func (c *Client) ReadRequest(wait time.Duration) *sip.Request {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(wait))
	for {
		raw, err := c.readMessage()
		if err != nil {
			return nil
		}
		msg, err := sip.ParseMessage(raw)
		if err != nil {
			c.t.Fatalf("unparseable message %q: %v", raw, err)
		}
		if req, ok := msg.(*sip.Request); ok {
			return req
		}
	}
}

func (c *Client) readMessage() ([]byte, error) {
	if c.Transport == "UDP" {
		if c.buf == nil {
			c.buf = make([]byte, 65535)
		}
		n, err := c.conn.Read(c.buf)
		return c.buf[:n], err
	}
	// Stream: headers up to the blank line, then Content-Length bytes.
	var head bytes.Buffer
	for {
		line, err := c.rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keep-alive CRLF
		}
		head.WriteString(line)
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	n := 0
	for _, l := range strings.Split(head.String(), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (strings.EqualFold(strings.TrimSpace(k), "Content-Length") || strings.TrimSpace(k) == "l") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.rd, body); err != nil {
		return nil, err
	}
	return append(head.Bytes(), body...), nil
}

// Reg describes one REGISTER.
type Reg struct {
	User, Domain string
	// FromUser defaults to User (set it for a third-party registration).
	FromUser string
	// Contacts are full header values ("<sip:1001@127.0.0.1:5062>;q=0.5",
	// "*"); default one contact at the client's socket.
	Contacts []string
	// Expires is the Expires header value; "" for none.
	Expires string
	// Extra header lines ("Require: foo").
	Extra []string
	// Authorization is a full header value; "" for none.
	Authorization string
}

// Build returns the REGISTER text for reg with the client's next CSeq.
func (c *Client) Build(reg Reg) string {
	from := reg.FromUser
	if from == "" {
		from = reg.User
	}
	contacts := reg.Contacts
	if contacts == nil {
		contacts = []string{fmt.Sprintf("<sip:%s@%s;transport=%s>", reg.User, c.Local, strings.ToLower(c.Transport))}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\n", reg.Domain)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n", c.Transport, c.Local, Token())
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", from, reg.Domain, Token())
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", reg.User, reg.Domain)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", c.CallID)
	fmt.Fprintf(&b, "CSeq: %d REGISTER\r\n", c.CSeq)
	c.CSeq++
	for _, ct := range contacts {
		fmt.Fprintf(&b, "Contact: %s\r\n", ct)
	}
	if reg.Expires != "" {
		fmt.Fprintf(&b, "Expires: %s\r\n", reg.Expires)
	}
	if reg.Authorization != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", reg.Authorization)
	}
	for _, x := range reg.Extra {
		b.WriteString(x + "\r\n")
	}
	b.WriteString("User-Agent: registrartest\r\nContent-Length: 0\r\n\r\n")
	return b.String()
}

// Do sends one REGISTER and returns the final answer.
func (c *Client) Do(reg Reg) *sip.Response {
	c.t.Helper()
	c.SendRaw([]byte(c.Build(reg)))
	res := c.Read(5 * time.Second)
	if res == nil {
		c.t.Fatal("no answer to REGISTER")
	}
	return res
}

// Challenge picks the challenge for algorithm ("MD5", "SHA-256") out of a
// 401.
func Challenge(t testing.TB, res *sip.Response, algorithm string) *digest.Challenge {
	t.Helper()
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatalf("bad challenge %q: %v", h.Value(), err)
		}
		if strings.EqualFold(ch.Algorithm, algorithm) {
			return ch
		}
	}
	t.Fatalf("no %s challenge in %d answer", algorithm, res.StatusCode)
	return nil
}

// Answer computes the Authorization value for ch with password.
func Answer(t testing.TB, ch *digest.Challenge, user, domain, password string) string {
	t.Helper()
	cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: "sip:" + domain, Username: user, Password: password, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// Register sends reg, answers the challenge with password using
// algorithm, and returns the final answer to the authenticated REGISTER.
func (c *Client) Register(reg Reg, password, algorithm string) *sip.Response {
	c.t.Helper()
	res := c.Do(reg)
	if res.StatusCode != 401 {
		return res
	}
	reg.Authorization = Answer(c.t, Challenge(c.t, res, algorithm), reg.User, reg.Domain, password)
	return c.Do(reg)
}

// Respond answers a request received with ReadRequest with code.
func (c *Client) Respond(req *sip.Request, code int, reason string) {
	c.t.Helper()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if pc, ok := c.conn.(*packetConn); ok {
		// To the top Via's sent-by (RFC 3261 §18.2.2), which need not be
		// where the socket writes by default.
		v := req.Via()
		to, err := net.ResolveUDPAddr("udp", net.JoinHostPort(v.Host, strconv.Itoa(v.Port)))
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := pc.WriteTo([]byte(res.String()), to); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	c.SendRaw([]byte(res.String()))
}

// Request sends a request of method to target (a SIP URI) with the
// client's own Via, and returns the final answer.
func (c *Client) Request(method, target, fromUser, domain string, extra ...string) *sip.Response {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, target)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n", c.Transport, c.Local, Token())
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", fromUser, domain, Token())
	fmt.Fprintf(&b, "To: <%s>\r\n", target)
	fmt.Fprintf(&b, "Call-ID: %s@test\r\n", Token())
	fmt.Fprintf(&b, "CSeq: 1 %s\r\n", method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", fromUser, c.Local)
	for _, x := range extra {
		b.WriteString(x + "\r\n")
	}
	body := ""
	if method == "MESSAGE" {
		body = "hello through fsplane"
		b.WriteString("Content-Type: text/plain\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	c.SendRaw([]byte(b.String()))
	res := c.Read(10 * time.Second)
	if res == nil {
		c.t.Fatalf("no answer to %s %s", method, target)
	}
	return res
}

// DialUnconnected is Dial over UDP with a socket that accepts datagrams
// from any address (a phone reached by another replica, or another
// proxy), not only from addr.
func DialUnconnected(t testing.TB, addr string) *Client {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := &packetConn{PacketConn: pc, raddr: ra}
	t.Cleanup(func() { pc.Close() })
	return &Client{t: t, conn: conn, rd: bufio.NewReader(conn), Transport: "UDP",
		Local: pc.LocalAddr().String(), CallID: Token() + "@test", CSeq: 1}
}

// packetConn is a net.Conn over an unconnected UDP socket: writes go to
// raddr, reads take a datagram from anyone.
type packetConn struct {
	net.PacketConn
	raddr net.Addr
}

func (c *packetConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFrom(b)
	return n, err
}

func (c *packetConn) Write(b []byte) (int, error) { return c.WriteTo(b, c.raddr) }

func (c *packetConn) RemoteAddr() net.Addr { return c.raddr }

// FromConn is a Client on an established connection (one a test accepted,
// as a phone accepts the proxy's); transport is "TCP" or "TLS".
func FromConn(t testing.TB, conn net.Conn, transport string) *Client {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	return &Client{t: t, conn: conn, rd: bufio.NewReader(conn), Transport: transport,
		Local: conn.LocalAddr().String(), CallID: Token() + "@test", CSeq: 1}
}

// Closed reports whether the peer closes the connection within wait
// (anything it still sends first is read and dropped).
func (c *Client) Closed(wait time.Duration) bool {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, c.rd)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true // EOF (io.Copy's nil) or a reset
}

// ReadBytes returns the next n bytes of a stream as they come (a
// keep-alive's pong), or what arrived within wait.
func (c *Client) ReadBytes(n int, wait time.Duration) []byte {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, n)
	got, _ := io.ReadFull(c.rd, b)
	return b[:got]
}

package registrar_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

// On TCP and TLS the registrar frames messages by Content-Length (RFC 3261
// §18.3): pipelined requests and a request trickling in byte by byte are
// answered each; keep-alive pings are still answered; a request without
// Content-Length or with one beyond the size limit is answered (400, 413)
// and the connection closed, never left waiting; an unsupported
// Request-URI scheme is answered 416 and the connection goes on; headers
// ended by a bare-LF empty line are answered 400 and the connection closed.
func TestStreamFraming(t *testing.T) {
	f, tlsAddr, pool := startTLS(t)
	dial := map[string]func() *registrartest.Client{
		"tcp": func() *registrartest.Client { return f.dial(t, "tcp") },
		"tls": func() *registrartest.Client {
			return registrartest.DialTLS(t, tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		},
	}
	reg := registrartest.Reg{User: "1001", Domain: domain}
	options := func(c *registrartest.Client, extra string) string {
		return "OPTIONS sip:" + domain + " SIP/2.0\r\nVia: SIP/2.0/" + c.Transport + " " + c.Local + ";branch=z9hG4bK" + registrartest.Token() +
			"\r\nMax-Forwards: 70\r\nFrom: <sip:1001@" + domain + ">;tag=1\r\nTo: <sip:" + domain + ">\r\nCall-ID: " + registrartest.Token() +
			"\r\nCSeq: 1 OPTIONS\r\n" + extra + "\r\n"
	}
	for _, network := range []string{"tcp", "tls"} {
		t.Run(network, func(t *testing.T) {
			c := dial[network]()
			c.SendRaw([]byte(c.Build(reg) + c.Build(reg)))
			for i := range 2 {
				if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 401 {
					t.Fatalf("pipelined REGISTER %d: %v", i+1, res)
				}
			}
			for _, b := range []byte(c.Build(reg)) {
				c.SendRaw([]byte{b})
			}
			if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 401 {
				t.Fatalf("REGISTER byte by byte: %v", res)
			}
			c.SendRaw([]byte("\r\n\r\n"))
			if pong := c.ReadBytes(2, 5*time.Second); string(pong) != "\r\n" {
				t.Fatalf("ping answered %q, want a CRLF", pong)
			}
			c.SendRaw([]byte(strings.Replace(options(c, "Content-Length: 0\r\n"), "OPTIONS sip:"+domain, "OPTIONS soap.beep://192.0.2.103:3002", 1)))
			if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 416 {
				t.Fatalf("soap.beep: Request-URI: %v, want 416", res)
			}
			c.SendRaw([]byte(options(c, "Content-Length: 0\r\n")))
			if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("OPTIONS after the 416 on the same connection: %v", res)
			}

			for _, tc := range []struct {
				header string
				code   int
				reason string
			}{
				{"", 400, "Missing Content-Length"},
				{"Content-Length: 99999999999999999999\r\n", 413, "Request Entity Too Large"},
				{"Content-Length: 0x10\r\n", 400, "Invalid Content-Length"},
				{"Content-Length: 0\r\nl: 0\r\n", 400, "Multiple Content-Length"},
			} {
				c := dial[network]()
				c.SendRaw([]byte(options(c, tc.header)))
				res := c.Read(5 * time.Second)
				if res == nil || res.StatusCode != tc.code || res.Reason != tc.reason {
					t.Fatalf("%q: answered %v, want %d %s", tc.header, res, tc.code, tc.reason)
				}
				if !c.Closed(5 * time.Second) {
					t.Fatalf("%q: the connection stays open", tc.header)
				}
			}
			// An empty line of a bare LF does not end the headers for
			// sipgo: it is answered, not framed as a message of its own.
			c = dial[network]()
			c.SendRaw([]byte(strings.TrimSuffix(options(c, "Content-Length: 8\r\n"), "\r\n") + "\nX-A: 1\r\n" + options(c, "Content-Length: 0\r\n")))
			if res := c.Read(5 * time.Second); res == nil || res.StatusCode != 400 || res.Reason != "Bare LF Empty Line" {
				t.Fatalf("bare-LF empty line: answered %v, want 400 Bare LF Empty Line", res)
			}
			if !c.Closed(5 * time.Second) {
				t.Fatalf("bare-LF empty line: the connection stays open")
			}
		})
	}
}

// BenchmarkRegisterDigestTCP is BenchmarkRegisterDigest over one TCP
// connection: the stream framing and sipgo's transactions included.
func BenchmarkRegisterDigestTCP(b *testing.B) {
	s := benchStore(b, 200)
	_, _, tcp := registrartest.Start(b, registrar.Options{Store: s, MaxBindings: 1 << 20})
	c := registrartest.Dial(b, "tcp", tcp)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		user := fmt.Sprintf("b%03d", i%200)
		res := c.Register(registrartest.Reg{User: user, Domain: domain, Expires: "3600"}, "bench-pw-123", "MD5")
		if res.StatusCode != 200 {
			b.Fatalf("%s: %d", user, res.StatusCode)
		}
	}
}

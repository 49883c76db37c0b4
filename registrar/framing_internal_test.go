package registrar

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/fsplane/fsplane/models/modelstest"
)

// memConn is a stream that reads data in two writes' worth of reads and
// then ends; what is written to it is kept.
type memConn struct {
	net.Conn
	parts   [][]byte
	written bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error) {
	for len(c.parts) > 0 && len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error) { return c.written.Write(p) }
func (c *memConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5099}
}

// FuzzStreamFraming feeds arbitrary bytes, in two writes split anywhere,
// through the stream framing and what it hands on through sipgo's stream
// parser (one per connection, as sipgo's TCP transport keeps it): it never
// panics and ends at the end of the input, and every unit it hands on is
// either keep-alive CRLFs or exactly one message to sipgo, never part of
// one (sipgo would wait for more and merge it with the next) nor several.
// A unit sipgo refuses ends the connection, as it does in sipgo.
// Run longer with: go test -run '^$' -fuzz FuzzStreamFraming -fuzztime 60s ./registrar/
func FuzzStreamFraming(f *testing.F) {
	files, _ := filepath.Glob("testdata/rfc4475/*/*.dat")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(len(b)/2))
	}
	f.Add([]byte("\r\n\r\nOPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabcOPTIONS sip:b SIP/2.0\r\nContent-Length:\r\n 0\r\n\r\n"), uint16(7))
	r, err := New(Options{Store: modelstest.Open(f, "sqlite", modelstest.Options{}), NonceKey: []byte("framing fuzz nonce key, 32 byte.")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		at := int(split) % (len(data) + 1)
		mc := &memConn{parts: [][]byte{bytes.Clone(data[:at]), bytes.Clone(data[at:])}}
		c := &framingConn{Conn: mc, r: r, transport: "TCP"}
		ps := newParser().NewSIPStream()
		defer ps.Close()
		buf := make([]byte, 2*maxStreamMessage)
		handed := 0
		for reads := 0; ; reads++ {
			if reads > len(data)+2 {
				t.Fatalf("more reads than input bytes")
			}
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			unit := buf[:n]
			handed += n
			if len(bytes.Trim(unit, "\r\n")) == 0 {
				if n > 4 {
					t.Fatalf("%d keep-alive bytes in one read", n)
				}
				continue
			}
			msgs := 0
			err = ps.ParseSIPStream(unit, func(sip.Message) { msgs++ })
			if errors.Is(err, sip.ErrParseSipPartial) || msgs > 1 || err == nil && msgs != 1 {
				t.Fatalf("handed on %q: sipgo parsed %d messages (%v)", unit, msgs, err)
			}
			if err != nil {
				break // sipgo closes the connection
			}
		}
		if handed > len(data) {
			t.Fatalf("handed on %d bytes of %d", handed, len(data))
		}
	})
}

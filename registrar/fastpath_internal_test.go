package registrar

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// BenchmarkFastPathRegister is the server's work for one authenticated
// REGISTER over UDP (parse, digest check, binding, 200 written), without
// a client in the process: the figure to compare with Kamailio's CPU per
// registration (half of a registration: the challenge is the other).
func BenchmarkFastPathRegister(b *testing.B) {
	s := modelstest.Open(b, "sqlite", modelstest.Options{})
	pw := "bench-pw-123"
	const users = 64
	for i := 0; i < users; i++ {
		if err := s.CreateExtension(context.Background(), &models.Extension{Domain: "example.com", UserID: fmt.Sprintf("u%02d", i),
			Password: &pw, Context: "default", Enabled: true}); err != nil {
			b.Fatal(err)
		}
	}
	r, err := New(Options{Store: s, NonceKey: []byte("fast path bench nonce key 32 byt"), MaxBindings: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	fp := newFastPath(r, pc)
	src := pc.LocalAddr() // answers go to ourselves and are not read
	nonce := r.newNonce("example.com", time.Now())
	props := sip.TransportReadProps{Transport: "UDP", LocalAddr: pc.LocalAddr(), RemoteAddr: src}
	msgs := make([][]byte, users)
	for i := range msgs {
		user := fmt.Sprintf("u%02d", i)
		cred, err := digest.Digest(&digest.Challenge{Realm: "example.com", Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}},
			digest.Options{Method: "REGISTER", URI: "sip:example.com", Username: user, Password: pw, Count: 1})
		if err != nil {
			b.Fatal(err)
		}
		// The same branch and CSeq each round: a retransmission, processed
		// again like a refresh.
		msgs[i] = []byte(fmt.Sprintf("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKb%d;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:%s@example.com>;tag=t%d\r\nTo: <sip:%s@example.com>\r\nCall-ID: bench%d\r\nCSeq: 2 REGISTER\r\n"+
			"Contact: <sip:%s@127.0.0.1:%d>\r\nExpires: 3600\r\nAuthorization: %s\r\nUser-Agent: bench\r\nContent-Length: 0\r\n\r\n",
			src, i, user, i, user, i, user, 7000+i, cred.String()))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fp.filter(props, msgs[i%len(msgs)])
	}
	b.StopTimer()
	if b.N >= len(msgs) && r.Count() != len(msgs) {
		b.Fatalf("%d bindings, want %d", r.Count(), len(msgs))
	}
}

// FuzzFastPathFilter: whatever a datagram holds, the UDP fast path never
// panics, and hands sipgo either nothing (it answered) or the datagram
// unchanged. Seeds: the RFC 4475 messages.
func FuzzFastPathFilter(f *testing.F) {
	files, _ := filepath.Glob("testdata/rfc4475/*/*.dat")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := modelstest.Open(f, "sqlite", modelstest.Options{})
	pw := "fuzz-pw-1234"
	if err := s.CreateExtension(context.Background(), &models.Extension{Domain: "example.com", UserID: "user", Password: &pw, Context: "default", Enabled: true}); err != nil {
		f.Fatal(err)
	}
	r, err := New(Options{Store: s, NonceKey: []byte("fast path fuzz nonce key 32 byte")})
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Reload(context.Background()); err != nil {
		f.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	fp := newFastPath(r, pc)
	props := sip.TransportReadProps{Transport: "UDP", LocalAddr: pc.LocalAddr(), RemoteAddr: pc.LocalAddr()}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(nil), data...)
		out, err := fp.filter(props, data)
		if err != nil {
			t.Fatal(err)
		}
		if out != nil && !bytes.Equal(out, in) {
			t.Fatal("the datagram was changed")
		}
	})
}

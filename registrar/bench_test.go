package registrar_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

// BenchmarkRegisterDigest: one registration (REGISTER, 401, REGISTER with
// MD5 digest, 200) per op over loopback UDP, users in turn, against a
// registrar on SQLite. bench/registrar/run.sh is the comparison with
// Kamailio; this isolates the registrar for profiling
// (-cpuprofile, -benchmem).
func BenchmarkRegisterDigest(b *testing.B) {
	s := benchStore(b, 200)
	_, udp, _ := registrartest.Start(b, registrar.Options{Store: s, MaxBindings: 1 << 20})
	c := registrartest.Dial(b, "udp", udp)
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

// BenchmarkRegisterExchange is the registrar's own cost of one full
// REGISTER exchange (challenge, then the authenticated REGISTER; as sipp
// does it in bench/registrar) through the real UDP listener, with the
// bindings flushed to SQLite as in production. The client side is kept
// to byte appends and one MD5 (no SIP parser, no allocations), so
// allocs/op and B/op are the server's, and ns/op is dominated by it.
// 10,000 users in turn, as in bench/registrar: nearly every registration
// dirties its own AOR for the next flush.
func BenchmarkRegisterExchange(b *testing.B) {
	const users = 10000
	s := bulkStore(b, users)
	_, udp, _ := registrartest.Start(b, registrar.Options{Store: s, MaxBindings: 1 << 20, Algorithms: []string{"MD5"}})
	raddr, err := net.ResolveUDPAddr("udp", udp)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	ha1 := make([]string, users)
	for i := range ha1 {
		sum := md5.Sum([]byte(fmt.Sprintf("b%05d:%s:bench-pw-123", i, domain)))
		ha1[i] = hex.EncodeToString(sum[:])
	}
	var (
		out  = make([]byte, 0, 2048)
		in   = make([]byte, 65535)
		hbuf = make([]byte, 0, 256)
		nbuf = make([]byte, 0, 64)
		sum  [md5.Size]byte
		resp [2 * md5.Size]byte
	)
	// The A2 hash is the same for every request: "REGISTER:sip:<domain>".
	a2sum := md5.Sum([]byte("REGISTER:sip:" + domain))
	a2 := hex.EncodeToString(a2sum[:])
	build := func(user string, i, cseq int, nonce, response []byte) []byte {
		out = out[:0]
		out = append(out, "REGISTER sip:"+domain+" SIP/2.0\r\nVia: SIP/2.0/UDP "...)
		out = append(out, local...)
		out = append(out, ";branch=z9hG4bK-bench-"...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, '-')
		out = strconv.AppendInt(out, int64(cseq), 10)
		out = append(out, ";rport\r\nFrom: <sip:"...)
		out = append(out, user...)
		out = append(out, "@"+domain+">;tag=bench\r\nTo: <sip:"...)
		out = append(out, user...)
		out = append(out, "@"+domain+">\r\nCall-ID: bench-"...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, "\r\nCSeq: "...)
		out = strconv.AppendInt(out, int64(cseq), 10)
		out = append(out, " REGISTER\r\nContact: <sip:"...)
		out = append(out, user...)
		out = append(out, '@')
		out = append(out, local...)
		out = append(out, ">\r\nExpires: 3600\r\nMax-Forwards: 70\r\n"...)
		if nonce != nil {
			out = append(out, "Authorization: Digest username=\""...)
			out = append(out, user...)
			out = append(out, "\", realm=\""+domain+"\", nonce=\""...)
			out = append(out, nonce...)
			out = append(out, "\", uri=\"sip:"+domain+"\", response=\""...)
			out = append(out, response...)
			out = append(out, "\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n"...)
		}
		out = append(out, "User-Agent: bench\r\nContent-Length: 0\r\n\r\n"...)
		return out
	}
	exchange := func(msg []byte) []byte {
		if _, err := conn.Write(msg); err != nil {
			b.Fatal(err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			b.Fatal(err)
		}
		n, err := conn.Read(in)
		if err != nil {
			b.Fatal(err)
		}
		return in[:n]
	}
	nonceKey := []byte(`nonce="`)
	users3 := make([]string, users)
	for i := range users3 {
		users3[i] = fmt.Sprintf("b%05d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := i % users
		user := users3[u]
		res := exchange(build(user, i, 1, nil, nil))
		if !bytes.HasPrefix(res, []byte("SIP/2.0 401 ")) {
			b.Fatalf("%s: want 401, got %q", user, res[:min(len(res), 40)])
		}
		at := bytes.Index(res, nonceKey)
		if at < 0 {
			b.Fatalf("no nonce in %q", res)
		}
		nonce := res[at+len(nonceKey):]
		nonce = nonce[:bytes.IndexByte(nonce, '"')]
		// response = MD5(HA1:nonce:nc:cnonce:qop:HA2), RFC 2617 §3.2.2.1.
		hbuf = append(hbuf[:0], ha1[u]...)
		hbuf = append(hbuf, ':')
		hbuf = append(hbuf, nonce...)
		hbuf = append(hbuf, ":00000001:0a4f113b:auth:"...)
		hbuf = append(hbuf, a2...)
		sum = md5.Sum(hbuf)
		hex.Encode(resp[:], sum[:])
		nbuf = append(nbuf[:0], nonce...) // in is read into again
		res = exchange(build(user, i, 2, nbuf, resp[:]))
		if !bytes.HasPrefix(res, []byte("SIP/2.0 200 ")) {
			b.Fatalf("%s: want 200, got %q", user, res[:min(len(res), 40)])
		}
	}
}

// bulkStore is a SQLite store with n extensions b00000… (password
// bench-pw-123), inserted in bulk: the audited one-by-one path would take
// longer than the benchmark.
func bulkStore(tb testing.TB, n int) *models.Store {
	tb.Helper()
	s := modelstest.Open(tb, "sqlite", modelstest.Options{})
	enc, err := s.Keys().Encrypt("bench-pw-123")
	if err != nil {
		tb.Fatal(err)
	}
	rows := make([]models.Extension, 0, n)
	for i := 0; i < n; i++ {
		rows = append(rows, models.Extension{Version: 1, Domain: domain, UserID: fmt.Sprintf("b%05d", i), PasswordEnc: enc,
			Context: "default", Enabled: true})
	}
	if err := s.DB().CreateInBatches(rows, 500).Error; err != nil {
		tb.Fatal(err)
	}
	return s
}

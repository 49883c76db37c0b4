// Package fedtest is what federation tests need: an authoritative DNS
// server on loopback, a private PKI writing PEM files, and a SIP-over-TLS
// listener answering OPTIONS (sipgo). Test code only.
package fedtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/miekg/dns"
)

// ZoneServer is an authoritative DNS server on loopback (UDP and TCP on
// one port) answering from records; an unknown name is NXDOMAIN.
type ZoneServer struct {
	Addr string
	mu   sync.Mutex
	rrs  []dns.RR
}

func NewZoneServer(t *testing.T, records ...string) *ZoneServer {
	t.Helper()
	z := &ZoneServer{}
	z.Add(t, records...)
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if i == 10 {
			t.Fatal(err)
		}
	}
	z.Addr = pc.LocalAddr().String()
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: ln, Handler: z}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return z
}

func (z *ZoneServer) Add(t *testing.T, records ...string) {
	t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		z.rrs = append(z.rrs, rr)
	}
}

func (z *ZoneServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	exists := false
	z.mu.Lock()
	for _, rr := range z.rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, q.Name) {
			continue
		}
		exists = true
		if h.Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	z.mu.Unlock()
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

// pki is a private root and what it issues, written as PEM files.
type PKI struct {
	t        *testing.T
	dir      string
	root     *x509.Certificate
	rootKey  crypto.Signer
	RootFile string
	Pool     *x509.CertPool
	serial   int64
}

func NewPKI(t *testing.T) *PKI {
	t.Helper()
	p := &PKI{t: t, dir: t.TempDir()}
	p.rootKey = NewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fsplane test root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, p.rootKey.Public(), p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.root, _ = x509.ParseCertificate(der)
	p.RootFile = p.Write("root.pem", PEMBlock("CERTIFICATE", der))
	p.Pool = x509.NewCertPool()
	p.Pool.AddCert(p.root)
	p.serial = 1
	return p
}

func NewKey(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func PEMBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func KeyPEM(t *testing.T, k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return PEMBlock("PRIVATE KEY", der)
}

func (p *PKI) Write(name string, data []byte) string {
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return f
}

// leaf is a certificate to issue.
type Leaf struct {
	Names      []string // SANs; none: CN only
	CN         string
	NotBefore  time.Time
	NotAfter   time.Time
	SelfSigned bool
}

// issue returns the DER of the certificate and its key.
func (p *PKI) Issue(l Leaf) ([]byte, crypto.Signer) {
	p.t.Helper()
	p.serial++
	k := NewKey(p.t)
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: l.CN},
		DNSNames:     l.Names,
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Both, as federation certificates serve mutual TLS.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parent, signer := p.root, p.rootKey
	if l.SelfSigned {
		parent, signer = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), signer)
	if err != nil {
		p.t.Fatal(err)
	}
	return der, k
}

// files issues l and writes name.crt and name.key.
func (p *PKI) Files(name string, l Leaf) (certFile, keyFile string) {
	der, k := p.Issue(l)
	return p.Write(name+".crt", PEMBlock("CERTIFICATE", der)), p.Write(name+".key", KeyPEM(p.t, k))
}

var quietSIP sync.Once

// SIPTLS starts a sipgo server answering OPTIONS with 200 over TLS on
// loopback with the given certificate, and returns its port.
func SIPTLS(t *testing.T, certFile, keyFile string) int {
	return SIPMTLS(t, certFile, keyFile, nil)
}

// SIPMTLS is SIPTLS requiring a client certificate from clientRoots (nil:
// none required), as federation peers do.
func SIPMTLS(t *testing.T, certFile, keyFile string, clientRoots *x509.CertPool) int {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// sipgo logs transport noise ("TCP ref went negative") to slog's
	// default; set once, before any sipgo goroutine reads it.
	quietSIP.Do(func() { sip.SetDefaultLogger(slog.New(slog.DiscardHandler)) })
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	cfg := &tls.Config{Certificates: []tls.Certificate{kp}}
	if clientRoots != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, clientRoots
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln) }()
	t.Cleanup(func() { ln.Close(); ua.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// ClosedPort is a loopback port with nothing listening.
func ClosedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

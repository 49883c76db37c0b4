package registrar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

// selfSigned is a certificate for 127.0.0.1 and the pool that trusts it.
// startTLS starts a registrar with a self-signed certificate and returns
// it, its TLS address and the pool that trusts it.
func startTLS(t *testing.T) (*fixture, string, *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	f := start(t, registrar.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := f.reg.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if hp, ok := strings.CutPrefix(a, "tls "); ok {
			return f, hp, pool
		}
	}
	t.Fatalf("no TLS listener in %v", addrs)
	return nil, "", nil
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registrar test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// With a certificate, the registrar also serves TLS: a registration over
// it is bound with transport tls, and a MESSAGE to that AOR comes back
// over the same TLS connection.
func TestRegisterOverTLS(t *testing.T) {
	f, tlsAddr, pool := startTLS(t)
	c := registrartest.DialTLS(t, tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	res := c.Register(registrartest.Reg{User: "1002", Domain: domain, Contacts: []string{"<sip:1002@" + c.Local + ";transport=tls>"}}, pw1002, "SHA-256")
	wantCode(t, res, 200)
	bs := f.reg.List()
	if len(bs) != 1 || bs[0].Transport != "tls" || bs[0].Received != c.Local {
		t.Fatalf("bindings %+v: want one over tls from %s", bs, c.Local)
	}
	got := make(chan string, 1)
	go func() {
		req := c.ReadRequest(10 * time.Second)
		if req == nil {
			got <- ""
			return
		}
		c.Respond(req, 200, "OK")
		got <- string(req.Method)
	}()
	alice := f.dial(t, "udp")
	wantCode(t, alice.Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 200)
	if m := <-got; m != "MESSAGE" {
		t.Fatalf("over the TLS connection came %q, want the MESSAGE", m)
	}
}

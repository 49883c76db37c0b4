package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/registrar/registrartest"
)

// serve runs the registrar when FSPLANE_REGISTRAR_LISTEN is set: an
// extension created through the API registers at once (the change feed
// refreshes the credentials), and the binding shows in the API, the metric
// and readiness.
func TestServeRunsRegistrar(t *testing.T) {
	env := map[string]string{
		"FSPLANE_DATA_DIR":         t.TempDir(),
		"FSPLANE_EXTERNAL_IPV4":    "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":    "2a01:4f8:140:829d::2",
		"FSPLANE_REGISTRAR_LISTEN": "127.0.0.1:0",
	}
	addr, stderr, _ := startServe(t, env)
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr
	var udp string
	udpRe := regexp.MustCompile(`udp (127\.0\.0\.1:\d+)`)
	waitFor(t, "the registrar to listen", func() bool {
		m := udpRe.FindStringSubmatch(stderr.String())
		if m != nil {
			udp = m[1]
		}
		return m != nil
	})
	code, body := do(t, http.MethodPost, base+"/api/v1/sip/extensions", token, "application/json",
		`{"domain":"example.com","user_id":"1001","password":"Serve-Reg-Pw-1001","context":"default"}`)
	if code != http.StatusCreated {
		t.Fatalf("create extension: %d %s", code, body)
	}
	c := registrartest.Dial(t, "udp", udp)
	reg := registrartest.Reg{User: "1001", Domain: "example.com", Contacts: []string{"<sip:1001@127.0.0.1:7001>"}}
	// The change event reloads the credentials in the registrar's own
	// goroutine: shortly after the API answered, not before.
	code = 0
	waitFor(t, "the registrar to know the new extension", func() bool {
		code = c.Register(reg, "Serve-Reg-Pw-1001", "SHA-256").StatusCode
		return code == 200
	})
	code, body = do(t, http.MethodGet, base+"/api/v1/sip/registrations", token, "", "")
	if code != http.StatusOK || !strings.Contains(body, `"registered_devices":1`) || !strings.Contains(body, "sip:1001@127.0.0.1:7001") {
		t.Fatalf("registrations: %d %s", code, body)
	}
	code, body = do(t, http.MethodGet, base+"/metrics", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, "fsplane_registrar_registered_devices 1") {
		t.Fatalf("/metrics lacks the registered devices gauge at 1: %d", code)
	}
	code, body = do(t, http.MethodGet, base+"/readyz", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"registrar":{"status":"ok"`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if strings.Contains(stderr.String(), "Serve-Reg-Pw-1001") {
		t.Fatal("the password reached the log")
	}
}

// With FSPLANE_REGISTRAR_TLS_CERT and _KEY, serve's registrar also takes
// registrations over TLS.
func TestServeRegistrarTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FSPLANE_DATA_DIR":           filepath.Join(dir, "data"),
		"FSPLANE_EXTERNAL_IPV4":      "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":      "2a01:4f8:140:829d::2",
		"FSPLANE_REGISTRAR_LISTEN":   "127.0.0.1:0",
		"FSPLANE_REGISTRAR_TLS_CERT": certFile,
		"FSPLANE_REGISTRAR_TLS_KEY":  keyFile,
	}
	addr, stderr, _ := startServe(t, env)
	token := tokenRe.FindString(stderr.String())
	code, body := do(t, http.MethodPost, "http://"+addr+"/api/v1/sip/extensions", token, "application/json",
		`{"domain":"example.com","user_id":"1001","password":"Serve-Tls-Pw-1001","context":"default"}`)
	if code != http.StatusCreated {
		t.Fatalf("create extension: %d %s", code, body)
	}
	var tlsAddr string
	tlsRe := regexp.MustCompile(`tls (127\.0\.0\.1:\d+)`)
	waitFor(t, "the registrar's TLS listener", func() bool {
		if m := tlsRe.FindStringSubmatch(stderr.String()); m != nil {
			tlsAddr = m[1]
		}
		return tlsAddr != ""
	})
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(der)
	pool.AddCert(leaf)
	c := registrartest.DialTLS(t, tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	reg := registrartest.Reg{User: "1001", Domain: "example.com", Contacts: []string{"<sip:1001@" + c.Local + ";transport=tls>"}}
	waitFor(t, "a registration over TLS", func() bool {
		return c.Register(reg, "Serve-Tls-Pw-1001", "SHA-256").StatusCode == 200
	})
}

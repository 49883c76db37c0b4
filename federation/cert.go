package federation

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Certificate is a parsed certificate file: the leaf, the chain after it,
// and the private key when one was found. PEM holds the files' bytes as
// FreeSWITCH will read them.
type Certificate struct {
	Leaf     *x509.Certificate
	Chain    []*x509.Certificate // intermediates, in file order
	CertPEM  []byte              // the CERTIFICATE blocks, leaf first
	KeyPEM   []byte              // the key block, nil when none was found
	KeyMatch error               // nil when the key matches the leaf (or there is no key)
}

// LoadCertificate reads certFile (leaf first, then the chain) and keyFile
// ("" when the key sits in certFile, as in FreeSWITCH's agent.pem).
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	raw, err := readPEMFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	keyRaw := raw
	if keyFile != "" {
		if keyRaw, err = readPEMFile(keyFile); err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
	}
	return ParseCertificate(raw, keyRaw)
}

// ParseCertificate parses PEM certificates (leaf first) and picks the
// first private key block out of keyPEM, which may be the same bytes.
func ParseCertificate(certPEM, keyPEM []byte) (*Certificate, error) {
	c := &Certificate{}
	var certs bytes.Buffer
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		x, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		if c.Leaf == nil {
			c.Leaf = x
		} else {
			c.Chain = append(c.Chain, x)
		}
		_ = pem.Encode(&certs, b)
	}
	if c.Leaf == nil {
		return nil, errors.New("certificate: no PEM CERTIFICATE block found")
	}
	c.CertPEM = certs.Bytes()
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			c.KeyPEM = pem.EncodeToMemory(b)
			break
		}
	}
	if c.KeyPEM != nil {
		if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
			c.KeyMatch = fmt.Errorf("the private key does not match the certificate (%v)", err)
		}
	}
	return c, nil
}

// Problem is one reason a certificate is unfit for federation, with the
// fix in one sentence.
type Problem struct {
	Detail string
	Fix    string
}

// Examine lists what makes c unfit for federation as fqdn: a name other
// than exactly fqdn (SAN, or CN when there is no SAN), a wildcard, expiry,
// a key that does not match, a chain that does not reach one of roots
// (nil: the system's). requireKey makes a missing key a problem.
func (c *Certificate) Examine(fqdn string, roots *x509.CertPool, now time.Time, requireKey bool) []Problem {
	var ps []Problem
	fqdn = normName(fqdn)
	leaf := c.Leaf
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	exact := false
	for _, n := range names {
		if strings.HasPrefix(n, "*.") {
			ps = append(ps, Problem{
				Detail: fmt.Sprintf("wildcard certificate (%s): federation needs a certificate issued exactly for %s", n, fqdn),
				Fix:    "Request a certificate for exactly " + fqdn + " (e.g. certbot certonly -d " + fqdn + "); wildcards are refused by federation peers.",
			})
		}
		if normName(n) == fqdn {
			exact = true
		}
	}
	if !exact {
		ps = append(ps, Problem{
			Detail: fmt.Sprintf("wrong name: issued for %s, not %s", describeNames(names), fqdn),
			Fix:    "Request a certificate whose subject alternative name is exactly " + fqdn + ".",
		})
	}
	switch {
	case now.After(leaf.NotAfter):
		ps = append(ps, Problem{
			Detail: "expired on " + leaf.NotAfter.UTC().Format(time.DateOnly),
			Fix:    "Renew the certificate (certbot renew); fsplane picks up the renewed files by itself.",
		})
	case now.Before(leaf.NotBefore):
		ps = append(ps, Problem{
			Detail: "not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339),
			Fix:    "Check this host's clock, or wait until the certificate becomes valid.",
		})
	}
	if c.KeyMatch != nil {
		ps = append(ps, Problem{Detail: c.KeyMatch.Error(), Fix: "Point the key setting at the key the certificate was issued for."})
	} else if c.KeyPEM == nil && requireKey {
		ps = append(ps, Problem{Detail: "no private key found", Fix: "Give the key file (--key), or a certificate file that holds the key."})
	}
	if selfSigned(leaf) {
		ps = append(ps, Problem{
			Detail: "self-signed certificate (" + leaf.Subject.String() + "); federation peers trust only certificates from a public CA",
			Fix:    "Use a certificate from a public CA such as Let's Encrypt for " + fqdn + ".",
		})
	} else if err := c.verify(roots, now); err != nil && !now.After(leaf.NotAfter) && !now.Before(leaf.NotBefore) {
		ps = append(ps, Problem{
			Detail: "does not chain to a trusted root: " + err.Error(),
			Fix:    "Put the intermediate certificates after the leaf in the certificate file (fullchain.pem), or trust the private CA with --ca-file.",
		})
	}
	return ps
}

func (c *Certificate) verify(roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, x := range c.Chain {
		inter.AddCert(x)
	}
	_, err := c.Leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// selfSigned: issued by itself and signed with its own key (CA or not:
// sofia's generated certificate is no CA).
func selfSigned(x *x509.Certificate) bool {
	return bytes.Equal(x.RawIssuer, x.RawSubject) && x.CheckSignature(x.SignatureAlgorithm, x.RawTBSCertificate, x.Signature) == nil
}

func describeNames(ns []string) string {
	if len(ns) == 0 {
		return "no name"
	}
	return strings.Join(ns, ", ")
}

// Roots is the system's trusted roots plus the PEM certificates of
// caFile ("" for none).
func Roots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	return addPEMFile(pool, caFile)
}

// DaysLeft is the whole days until the certificate expires (negative when
// expired).
func (c *Certificate) DaysLeft(now time.Time) int {
	return int(c.Leaf.NotAfter.Sub(now).Hours() / 24)
}

// maxPEMFile bounds a certificate, key or CA file: a chain of a few
// certificates is some KiB.
const maxPEMFile = 1 << 20

// readPEMFile reads a regular file of at most maxPEMFile bytes. The paths
// come from the API: a device (/dev/zero), a FIFO or a huge file must not
// hang or exhaust fsplane.
func readPEMFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if fi.Size() > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a certificate or key file", name, maxPEMFile)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a certificate or key file", name, maxPEMFile)
	}
	return raw, nil
}

func addPEMFile(pool *x509.CertPool, file string) (*x509.CertPool, error) {
	raw, err := readPEMFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("ca file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

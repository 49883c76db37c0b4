package federation

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The files sofia reads from a profile's tls-cert-dir. When either is
// missing, sofia generates a self-signed certificate and serves it without
// complaint, so TLS is rendered only once both are in place.
const (
	AgentFile  = "agent.pem"  // certificate + key
	CAFileName = "cafile.pem" // the chain up to the root
)

// ErrRefused wraps every certificate that is not put in place: the
// message lists why.
var ErrRefused = errors.New("federation: certificate refused")

// Prepare loads settings' certificate and key and examines them for the
// FQDN (the key is required: FreeSWITCH needs it). It returns the
// certificate and its verified chain, or ErrRefused naming every problem.
func Prepare(s Settings, roots *x509.CertPool, now time.Time) (*Certificate, []*x509.Certificate, error) {
	c, err := LoadCertificate(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if ps := c.Examine(s.FQDN, roots, now, true); len(ps) > 0 {
		ds := make([]string, len(ps))
		for i, p := range ps {
			ds[i] = p.Detail
		}
		return c, nil, fmt.Errorf("%w: %s", ErrRefused, strings.Join(ds, "; "))
	}
	chain, err := c.chain(roots, now)
	if err != nil {
		return c, nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return c, chain, nil
}

// chain is the verified chain after the leaf, root included.
func (c *Certificate) chain(roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	inter := x509.NewCertPool()
	for _, x := range c.Chain {
		inter.AddCert(x)
	}
	chains, err := c.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, err
	}
	return chains[0][1:], nil
}

// Install writes agent.pem (leaf and key) and cafile.pem (chain) into dir,
// each by rename so that sofia never reads half a file; cafile.pem first,
// so that agent.pem appearing means both are there.
func Install(dir string, c *Certificate, chain []*x509.Certificate) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("federation: tls dir: %w", err)
	}
	var ca bytes.Buffer
	for _, x := range chain {
		_ = pem.Encode(&ca, &pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})
	}
	agent := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw}), c.KeyPEM...)
	if err := writeAtomic(filepath.Join(dir, CAFileName), ca.Bytes(), 0o644); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, AgentFile), agent, 0o640)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("federation: write %s: %w", path, err)
	}
	return nil
}

// Installed returns the leaf of the agent.pem in dir when both files are
// in place, nil otherwise. /readyz, every profile read and every xml-curl
// miss ask, so the parsed leaf is kept until agent.pem's size, time or
// inode changes (Install replaces it by a rename).
func Installed(dir string) *x509.Certificate {
	if _, err := os.Stat(filepath.Join(dir, CAFileName)); err != nil {
		return nil
	}
	path := filepath.Join(dir, AgentFile)
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	installed.mu.Lock()
	defer installed.mu.Unlock()
	if e, ok := installed.m[path]; ok && os.SameFile(e.fi, fi) && e.fi.Size() == fi.Size() && e.fi.ModTime().Equal(fi.ModTime()) {
		return e.leaf
	}
	c, err := LoadCertificate(path, "")
	if err != nil {
		delete(installed.m, path)
		return nil
	}
	if installed.m == nil {
		installed.m = map[string]installedLeaf{}
	}
	installed.m[path] = installedLeaf{fi: fi, leaf: c.Leaf}
	return c.Leaf
}

type installedLeaf struct {
	fi   os.FileInfo
	leaf *x509.Certificate
}

// installed caches Installed's answers by agent.pem path.
var installed struct {
	mu sync.Mutex
	m  map[string]installedLeaf
}

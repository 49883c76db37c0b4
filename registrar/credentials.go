package registrar

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/fsplane/fsplane/models"
)

// credential holds a user's HA1 (hex of H(user:realm:password), the realm
// being the domain) for each algorithm. The password itself is not kept.
type credential struct {
	md5, sha256 string
}

func (c credential) ha1(alg string) string {
	if alg == "SHA-256" {
		return c.sha256
	}
	return c.md5
}

// credIndex is the in-memory credential index: user@domain → HA1s, and the
// set of served domains.
type credIndex struct {
	mu      sync.RWMutex
	users   map[string]credential
	domains map[string]int
}

func (ci *credIndex) lookup(user, domain string) (credential, bool) {
	ci.mu.RLock()
	defer ci.mu.RUnlock()
	c, ok := ci.users[user+"@"+domain]
	return c, ok
}

func (ci *credIndex) serves(domain string) bool {
	ci.mu.RLock()
	defer ci.mu.RUnlock()
	return ci.domains[domain] > 0
}

func (ci *credIndex) known(aor string) bool {
	ci.mu.RLock()
	defer ci.mu.RUnlock()
	_, ok := ci.users[aor]
	return ok
}

func hashHex(alg, s string) string {
	if alg == "SHA-256" {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// loadCredentials reads every enabled extension with a password. An
// extension whose password cannot be decrypted is left out and reported
// through skip (its name, never the secret).
func loadCredentials(ctx context.Context, s *models.Store, skip func(name string, err error)) (map[string]credential, map[string]int, error) {
	users := map[string]credential{}
	domains := map[string]int{}
	const page = 1000
	for off := 0; ; off += page {
		exts, _, err := s.ListExtensions(ctx, models.ExtensionFilter{Page: models.Page{Limit: page, Offset: off}})
		if err != nil {
			return nil, nil, fmt.Errorf("registrar: read extensions: %w", err)
		}
		for i := range exts {
			e := &exts[i]
			if !e.Enabled || e.PasswordEnc == "" {
				continue
			}
			name := e.UserID + "@" + e.Domain
			pw, err := s.Reveal(models.KindExtension, e.ID, name, e.PasswordEnc)
			if err != nil {
				skip(name, err)
				continue
			}
			if pw == "" {
				continue
			}
			domain := strings.ToLower(e.Domain)
			a1 := e.UserID + ":" + domain + ":" + pw
			users[e.UserID+"@"+domain] = credential{md5: hashHex("MD5", a1), sha256: hashHex("SHA-256", a1)}
			domains[domain]++
		}
		if len(exts) < page {
			return users, domains, nil
		}
	}
}

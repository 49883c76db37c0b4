// Package auth mints and checks fsplane's API tokens and their scopes.
//
// A token is "fsp_" followed by 43 characters of URL-safe base64 (32
// random bytes). Only its SHA-256 digest is stored: a 256-bit random secret
// needs no slow hash, and a digest lookup stays O(1) per request.
//
// Verifier is the one path from a bearer token to a Principal, used by the
// API, xml-curl and the console: it caches a verified token (by digest,
// never the token itself) for a bounded time, so a revoked token stops
// working within that bound and a database outage shorter than it does not
// stop a token that was in use.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Scopes a token may carry.
const (
	ScopeAdmin        = "admin"
	ScopeSIPRead      = "sip:read"
	ScopeSIPWrite     = "sip:write"
	ScopeSIPSecrets   = "sip:secrets"
	ScopeFirewallRead = "firewall:read"
	ScopeXMLCurl      = "xmlcurl"
)

// AllScopes lists every valid scope.
var AllScopes = []string{ScopeAdmin, ScopeSIPRead, ScopeSIPWrite, ScopeSIPSecrets, ScopeFirewallRead, ScopeXMLCurl}

// Prefix starts every token so that secret scanners can spot a leaked one.
const Prefix = "fsp_"

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Hash returns the hex SHA-256 digest under which a token is stored.
func Hash(token string) string {
	sum := Digest(token)
	return hex.EncodeToString(sum[:])
}

// Digest returns the SHA-256 of token without allocating for tokens of
// ordinary length (the hot path of every bearer-authenticated request).
func Digest(token string) [32]byte {
	var buf [128]byte
	if len(token) <= len(buf) {
		n := copy(buf[:], token)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(token))
}

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool { return slices.Contains(AllScopes, s) }

// ParseScopes splits a comma-separated list and checks every entry.
func ParseScopes(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !ValidScope(s) {
			return nil, fmt.Errorf("auth: unknown scope %q (valid: %s)", s, strings.Join(AllScopes, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("auth: no scope given (valid: %s)", strings.Join(AllScopes, ", "))
	}
	return out, nil
}

// Allows reports whether a token with the given scopes may act under need.
// admin implies every other scope.
func Allows(have []string, need string) bool {
	return slices.Contains(have, ScopeAdmin) || slices.Contains(have, need)
}

package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/fsplane/fsplane/models"
)

// ErrUnknownToken: no stored token has this digest, or it expired.
var ErrUnknownToken = errors.New("unknown or expired token")

// TokenStore is what a Verifier reads and writes; *models.Store implements
// it. TokenByHash answers an error wrapping models.ErrNotFound for an
// unknown or expired token and one wrapping models.ErrUnavailable when the
// database cannot be reached.
type TokenStore interface {
	TokenByHash(ctx context.Context, hash string) (*models.APIToken, error)
	TouchToken(ctx context.Context, id uint, at time.Time) error
}

// Principal is who a verified token speaks for.
type Principal struct {
	TokenID uint
	Name    string
	// Scopes is shared with the verifier's cache: read it, never modify it.
	Scopes []string
}

// Allows reports whether the principal may act under scope (admin implies
// every scope).
func (p Principal) Allows(scope string) bool { return Allows(p.Scopes, scope) }

// VerifierOptions configure NewVerifier.
type VerifierOptions struct {
	Store TokenStore
	// CacheTTL is how long a verified token is trusted without asking the
	// store (FSPLANE_TOKEN_CACHE_TTL): the bound on how long a revoked
	// token keeps working, and on how long a token in use survives a
	// database outage. 0 asks the store on every call.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Tuning that is not configuration.
const (
	// touchEvery bounds how often a token's last_used_at is written: a
	// write per request would serialise every call on SQLite.
	touchEvery = time.Minute
	// storeTimeout bounds one store call, so that a stuck database becomes
	// an error the caller answers (503) before its client gives up.
	storeTimeout = 2 * time.Second
	// maxCached bounds the cache; only tokens that verified get in, so
	// reaching it means far more live tokens than fsplane expects.
	maxCached = 4096
)

// Verifier turns a bearer token into a Principal. It is safe for
// concurrent use.
type Verifier struct {
	store TokenStore
	ttl   time.Duration
	now   func() time.Time

	mu    sync.RWMutex
	cache map[[32]byte]*cached // keyed by the token's SHA-256, never the token
}

type cached struct {
	p        Principal
	verified time.Time // when the store last confirmed the token
	expires  time.Time // the token's own expiry; zero for none
	touched  time.Time // last_used_at as last written or read
}

// NewVerifier returns a verifier over opt.Store.
func NewVerifier(opt VerifierOptions) *Verifier {
	v := &Verifier{store: opt.Store, ttl: max(opt.CacheTTL, 0), now: opt.Now, cache: map[[32]byte]*cached{}}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

// Verify returns the principal of token. Errors: ErrUnknownToken for a
// token that is unknown, revoked or expired; otherwise the store's error
// (models.ErrUnavailable when the database cannot be reached and the token
// was not verified within the cache TTL). A cached token costs no
// allocation and no database round trip; its last_used_at is still
// written, at most once a minute.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	return v.VerifyDigest(ctx, Digest(token))
}

// VerifyDigest is Verify for a caller that checked a token's text once and
// kept only its SHA-256 (Digest; a console session): same cache, same
// errors.
func (v *Verifier) VerifyDigest(ctx context.Context, d [32]byte) (Principal, error) {
	now := v.now()
	if v.ttl > 0 {
		v.mu.RLock()
		c := v.cache[d]
		var (
			fresh, touch bool
			p            Principal
		)
		if c != nil {
			fresh = now.Sub(c.verified) < v.ttl && (c.expires.IsZero() || now.Before(c.expires))
			touch = fresh && now.Sub(c.touched) > touchEvery
			p = c.p
		}
		v.mu.RUnlock()
		if fresh {
			if touch {
				v.touch(ctx, d, p.TokenID, now)
			}
			return p, nil
		}
	}
	return v.lookup(ctx, d, now)
}

// lookup asks the store and caches the answer.
func (v *Verifier) lookup(ctx context.Context, d [32]byte, now time.Time) (Principal, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	t, err := v.store.TokenByHash(ctx, hex.EncodeToString(d[:]))
	if errors.Is(err, models.ErrNotFound) {
		v.forget(d)
		return Principal{}, ErrUnknownToken
	}
	if err != nil {
		return Principal{}, err
	}
	c := &cached{
		p:        Principal{TokenID: t.ID, Name: t.Name, Scopes: t.Scopes},
		verified: now,
	}
	if t.ExpiresAt != nil {
		c.expires = *t.ExpiresAt
	}
	if t.LastUsedAt != nil {
		c.touched = *t.LastUsedAt
	}
	if now.Sub(c.touched) > touchEvery {
		// Best effort: a failed bookkeeping write must not refuse the call.
		_ = v.store.TouchToken(ctx, t.ID, now)
		c.touched = now
	}
	if v.ttl > 0 {
		v.mu.Lock()
		if len(v.cache) >= maxCached {
			v.pruneLocked(now)
		}
		v.cache[d] = c
		v.mu.Unlock()
	}
	return c.p, nil
}

// touch writes last_used_at for a cached token, once per touchEvery
// however many calls race here.
func (v *Verifier) touch(ctx context.Context, d [32]byte, id uint, now time.Time) {
	v.mu.Lock()
	c := v.cache[d]
	due := c != nil && now.Sub(c.touched) > touchEvery
	if due {
		// Set before writing: a database that is down is tried again a
		// minute later, not on every request.
		c.touched = now
	}
	v.mu.Unlock()
	if due {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		_ = v.store.TouchToken(ctx, id, now)
	}
}

// Revoked drops token id from the cache at once. Revocation through this
// process is then immediate; elsewhere (another replica, the database
// edited directly) it takes effect within the cache TTL.
func (v *Verifier) Revoked(id uint) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for d, c := range v.cache {
		if c.p.TokenID == id {
			delete(v.cache, d)
		}
	}
}

func (v *Verifier) forget(d [32]byte) {
	if v.ttl == 0 {
		return
	}
	v.mu.Lock()
	delete(v.cache, d)
	v.mu.Unlock()
}

// pruneLocked drops stale entries, and everything if none is stale: the
// cache is an optimisation, each dropped token is verified again.
func (v *Verifier) pruneLocked(now time.Time) {
	for d, c := range v.cache {
		if now.Sub(c.verified) >= v.ttl {
			delete(v.cache, d)
		}
	}
	if len(v.cache) >= maxCached {
		clear(v.cache)
	}
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p: a request made in-process on
// behalf of a principal its maker verified (the console's calls to the
// API: a console session keeps no token text to send) is authenticated as
// p. Nothing outside the process can set it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal WithPrincipal put in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

package auth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// tokens wraps a real store, counting touches and able to play a database
// that cannot be reached.
type tokens struct {
	*models.Store
	down    atomic.Bool
	lookups atomic.Int32
	touches atomic.Int32
}

func (s *tokens) TokenByHash(ctx context.Context, hash string) (*models.APIToken, error) {
	s.lookups.Add(1)
	if s.down.Load() {
		return nil, models.ErrUnavailable
	}
	return s.Store.TokenByHash(ctx, hash)
}

func (s *tokens) TouchToken(ctx context.Context, id uint, at time.Time) error {
	s.touches.Add(1)
	if s.down.Load() {
		return models.ErrUnavailable
	}
	return s.Store.TouchToken(ctx, id, at)
}

func mint(t testing.TB, s *models.Store, scopes ...string) (string, *models.APIToken) {
	t.Helper()
	text, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	row := &models.APIToken{Name: "t", Hash: auth.Hash(text), Scopes: scopes}
	if err := s.CreateToken(context.Background(), row); err != nil {
		t.Fatal(err)
	}
	return text, row
}

// A token revoked behind the verifier's back (another replica, the CLI)
// keeps working until the cache TTL since its last check, then stops.
func TestRevokedTokenStopsWithinTTL(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		clk := newClock()
		const ttl = 30 * time.Second
		v := auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: ttl, Now: clk.Now})
		text, row := mint(t, s, auth.ScopeXMLCurl)

		p, err := v.Verify(ctx, text)
		if err != nil || p.TokenID != row.ID || !p.Allows(auth.ScopeXMLCurl) || p.Allows(auth.ScopeSIPWrite) {
			t.Fatalf("verify: %+v, %v", p, err)
		}
		if err := s.DeleteToken(ctx, row.ID); err != nil {
			t.Fatal(err)
		}
		clk.Add(ttl - time.Second)
		if _, err := v.Verify(ctx, text); err != nil {
			t.Fatalf("within the TTL: %v (the cache should still vouch for it)", err)
		}
		clk.Add(time.Second)
		if _, err := v.Verify(ctx, text); !errors.Is(err, auth.ErrUnknownToken) {
			t.Fatalf("at the TTL: %v, want ErrUnknownToken", err)
		}
		clk.Add(time.Hour)
		if _, err := v.Verify(ctx, text); !errors.Is(err, auth.ErrUnknownToken) {
			t.Fatalf("after the TTL: %v, want ErrUnknownToken", err)
		}

		// Revoked through this process: at once.
		text2, row2 := mint(t, s, auth.ScopeAdmin)
		if _, err := v.Verify(ctx, text2); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteToken(ctx, row2.ID); err != nil {
			t.Fatal(err)
		}
		v.Revoked(row2.ID)
		if _, err := v.Verify(ctx, text2); !errors.Is(err, auth.ErrUnknownToken) {
			t.Fatalf("after Revoked: %v, want ErrUnknownToken", err)
		}

		// Without a cache: at once too.
		v0 := auth.NewVerifier(auth.VerifierOptions{Store: s, Now: clk.Now})
		text3, row3 := mint(t, s, auth.ScopeAdmin)
		if _, err := v0.Verify(ctx, text3); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteToken(ctx, row3.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := v0.Verify(ctx, text3); !errors.Is(err, auth.ErrUnknownToken) {
			t.Fatalf("TTL 0: %v, want ErrUnknownToken", err)
		}
	})
}

// While the database is down, a token verified within the TTL passes from
// the cache; one that was not gets the store's ErrUnavailable, never
// ErrUnknownToken (the token may well be valid) and never a pass.
func TestVerifierDuringOutage(t *testing.T) {
	s := &tokens{Store: modelstest.Open(t, "sqlite", modelstest.Options{})}
	ctx := context.Background()
	clk := newClock()
	v := auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: time.Minute, Now: clk.Now})
	known, _ := mint(t, s.Store, auth.ScopeXMLCurl)
	unseen, _ := mint(t, s.Store, auth.ScopeXMLCurl)
	if _, err := v.Verify(ctx, known); err != nil {
		t.Fatal(err)
	}
	s.down.Store(true)
	clk.Add(59 * time.Second)
	if p, err := v.Verify(ctx, known); err != nil || !p.Allows(auth.ScopeXMLCurl) {
		t.Fatalf("verified token during the outage: %+v, %v", p, err)
	}
	if _, err := v.Verify(ctx, unseen); !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("unseen token during the outage: %v, want ErrUnavailable", err)
	}
	if _, err := v.Verify(ctx, "fsp_madeup"); !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("made-up token during the outage: %v, want ErrUnavailable", err)
	}
	clk.Add(time.Second)
	if _, err := v.Verify(ctx, known); !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("verified token past the TTL during the outage: %v, want ErrUnavailable", err)
	}
	s.down.Store(false)
	for _, tok := range []string{known, unseen} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("after the outage: %v", err)
		}
	}
}

// last_used_at is written when a token is first seen and then at most once
// a minute, cached or not; cache hits ask the store nothing else.
func TestVerifierLastUsed(t *testing.T) {
	s := &tokens{Store: modelstest.Open(t, "sqlite", modelstest.Options{})}
	ctx := context.Background()
	clk := newClock()
	v := auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: 10 * time.Minute, Now: clk.Now})
	text, row := mint(t, s.Store, auth.ScopeAdmin)
	lastUsed := func() time.Time {
		t.Helper()
		list, err := s.Store.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range list {
			if tok.ID == row.ID && tok.LastUsedAt != nil {
				return tok.LastUsedAt.UTC()
			}
		}
		return time.Time{}
	}
	start := clk.Now()
	for range 5 {
		if _, err := v.Verify(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	if s.lookups.Load() != 1 || s.touches.Load() != 1 || !lastUsed().Equal(start) {
		t.Fatalf("first use: %d lookups, %d touches, last_used_at %v (want 1, 1, %v)",
			s.lookups.Load(), s.touches.Load(), lastUsed(), start)
	}
	clk.Add(59 * time.Second)
	if _, err := v.Verify(ctx, text); err != nil {
		t.Fatal(err)
	}
	if s.touches.Load() != 1 {
		t.Fatalf("touched again within a minute: %d", s.touches.Load())
	}
	clk.Add(2 * time.Second)
	for range 5 {
		if _, err := v.Verify(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	if want := start.Add(61 * time.Second); s.lookups.Load() != 1 || s.touches.Load() != 2 || !lastUsed().Equal(want) {
		t.Fatalf("a minute later: %d lookups, %d touches, last_used_at %v (want 1, 2, %v)",
			s.lookups.Load(), s.touches.Load(), lastUsed(), want)
	}
	// A touch that fails (database down) is not retried on every call.
	s.down.Store(true)
	clk.Add(2 * time.Minute)
	for range 5 {
		if _, err := v.Verify(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	if s.touches.Load() != 3 {
		t.Fatalf("failed touch retried per call: %d touches, want 3", s.touches.Load())
	}
}

// A cached token costs no allocation: xml-curl's warm path stays
// allocation-free with a bearer token.
func TestVerifyCachedAllocatesNothing(t *testing.T) {
	s := modelstest.Open(t, "sqlite", modelstest.Options{})
	v := auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: time.Minute})
	text, _ := mint(t, s, auth.ScopeXMLCurl)
	ctx := context.Background()
	if _, err := v.Verify(ctx, text); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(ctx, text); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per cached Verify", n)
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	s := modelstest.Open(b, "sqlite", modelstest.Options{})
	v := auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: time.Minute})
	text, _ := mint(b, s, auth.ScopeXMLCurl)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, text); err != nil {
			b.Fatal(err)
		}
	}
}

// VerifyDigest is Verify for a caller that kept only the digest: the same
// principal from the same cache entry, and the same refusal once the token
// is gone.
func TestVerifyDigestSharesVerify(t *testing.T) {
	s := &tokens{Store: modelstest.Open(t, "sqlite", modelstest.Options{})}
	ctx := context.Background()
	v := auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: time.Minute})
	text, row := mint(t, s.Store, auth.ScopeSIPRead)
	p, err := v.Verify(ctx, text)
	if err != nil {
		t.Fatal(err)
	}
	q, err := v.VerifyDigest(ctx, auth.Digest(text))
	if err != nil || q.TokenID != p.TokenID || q.Name != p.Name || !q.Allows(auth.ScopeSIPRead) || q.Allows(auth.ScopeSIPWrite) {
		t.Fatalf("VerifyDigest: %+v %v, Verify: %+v", q, err, p)
	}
	if n := s.lookups.Load(); n != 1 {
		t.Fatalf("%d store lookups, want 1 (one cache for both)", n)
	}
	if err := s.Store.DeleteToken(ctx, row.ID); err != nil {
		t.Fatal(err)
	}
	v.Revoked(row.ID)
	if _, err := v.VerifyDigest(ctx, auth.Digest(text)); !errors.Is(err, auth.ErrUnknownToken) {
		t.Fatalf("VerifyDigest of a revoked token: %v, want ErrUnknownToken", err)
	}
	if _, err := v.VerifyDigest(ctx, auth.Digest("fsp_madeup")); !errors.Is(err, auth.ErrUnknownToken) {
		t.Fatalf("VerifyDigest of an unknown digest: %v, want ErrUnknownToken", err)
	}
}

func TestPrincipalInContext(t *testing.T) {
	if _, ok := auth.PrincipalFrom(context.Background()); ok {
		t.Fatal("a bare context carries a principal")
	}
	p := auth.Principal{TokenID: 7, Name: "ops", Scopes: []string{auth.ScopeSIPRead}}
	got, ok := auth.PrincipalFrom(auth.WithPrincipal(context.Background(), p))
	if !ok || got.TokenID != 7 || got.Name != "ops" || !got.Allows(auth.ScopeSIPRead) {
		t.Fatalf("PrincipalFrom: %+v %v", got, ok)
	}
}

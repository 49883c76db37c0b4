package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestConsoleSessionLifecycle(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		tok := &models.APIToken{Name: "ops", Hash: strings.Repeat("a", 64), Scopes: models.StringList{"admin"}}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		mk := func(hash string) {
			t.Helper()
			err := s.CreateConsoleSession(ctx, &models.ConsoleSession{IDHash: hash, TokenHash: tok.Hash, TokenName: tok.Name, CSRF: "c-" + hash,
				CreatedAt: t0, ExpiresAt: t0.Add(12 * time.Hour), IdleUntil: t0.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
		}
		mk("h1")
		mk("h2")
		if err := s.CreateConsoleSession(ctx, &models.ConsoleSession{IDHash: "h1", TokenHash: tok.Hash, CreatedAt: t0,
			ExpiresAt: t0.Add(time.Hour), IdleUntil: t0.Add(time.Hour)}); !errors.Is(err, models.ErrDuplicate) {
			t.Fatalf("a second session with one id digest: %v, want ErrDuplicate", err)
		}

		// Read back from a second store on the same data: another replica.
		other := modelstest.Reopen(t, s, modelstest.Options{})
		got, err := other.ConsoleSessionByHash(ctx, "h1", t0.Add(59*time.Minute))
		if err != nil || got.TokenHash != tok.Hash || got.CSRF != "c-h1" || got.TokenName != "ops" || !got.IdleUntil.Equal(t0.Add(time.Hour)) {
			t.Fatalf("session from the other store: %+v %v", got, err)
		}
		// Touching moves the idle end on, never back.
		if err := other.TouchConsoleSession(ctx, "h1", t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchConsoleSession(ctx, "h1", t0.Add(90*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ConsoleSessionByHash(ctx, "h1", t0.Add(119*time.Minute)); err != nil || !got.IdleUntil.Equal(t0.Add(2*time.Hour)) {
			t.Fatalf("after touches: %+v %v", got, err)
		}
		// Idle end reached: gone, and its row with it.
		if _, err := s.ConsoleSessionByHash(ctx, "h1", t0.Add(2*time.Hour)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("idle session: %v, want ErrNotFound", err)
		}
		var n int64
		s.DB().Model(&models.ConsoleSession{}).Where("id_hash = ?", "h1").Count(&n)
		if n != 0 {
			t.Fatal("an ended session's row stayed")
		}
		// Absolute end: touching does not help.
		mk("h3")
		for h := time.Duration(0); h < 12; h++ {
			if err := s.TouchConsoleSession(ctx, "h3", t0.Add(h*time.Hour+time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ConsoleSessionByHash(ctx, "h3", t0.Add(12*time.Hour)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("session past its max age: %v, want ErrNotFound", err)
		}

		// Notices: a compare-and-swap.
		if ok, err := s.SwapConsoleNotices(ctx, "h2", "", `{"flash":["a"]}`); err != nil || !ok {
			t.Fatalf("first swap: %v %v", ok, err)
		}
		if ok, err := other.SwapConsoleNotices(ctx, "h2", "", `{"flash":["b"]}`); err != nil || ok {
			t.Fatalf("a swap from a stale value succeeded: %v %v", ok, err)
		}
		if v, err := other.ConsoleNotices(ctx, "h2"); err != nil || v != `{"flash":["a"]}` {
			t.Fatalf("notices %q %v", v, err)
		}

		// Logout on one replica ends it on the other.
		if err := other.DeleteConsoleSession(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsoleSessionByHash(ctx, "h2", t0); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("after logout: %v", err)
		}
		if err := s.DeleteConsoleSession(ctx, "h2"); err != nil {
			t.Fatalf("deleting a gone session: %v", err)
		}
		if ok, err := s.SwapConsoleNotices(ctx, "h2", `{"flash":["a"]}`, ""); err != nil || ok {
			t.Fatalf("notices of a gone session: %v %v", ok, err)
		}
	})
}

func TestSweepConsoleSessions(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		for _, r := range []struct {
			hash          string
			expires, idle time.Duration
		}{{"live", 12 * time.Hour, time.Hour}, {"idle", 12 * time.Hour, 10 * time.Minute}, {"old", 20 * time.Minute, time.Hour}} {
			err := s.CreateConsoleSession(ctx, &models.ConsoleSession{IDHash: r.hash, TokenHash: "x", CSRF: "x",
				CreatedAt: t0, ExpiresAt: t0.Add(r.expires), IdleUntil: t0.Add(r.idle)})
			if err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.DeleteExpiredConsoleSessions(ctx, t0.Add(30*time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("swept %d (%v), want 2", n, err)
		}
		var left []string
		s.DB().Model(&models.ConsoleSession{}).Pluck("id_hash", &left)
		if len(left) != 1 || left[0] != "live" {
			t.Fatalf("left %v, want [live]", left)
		}
	})
}

// Revoking a token ends every console session logged in with it, in the
// revocation's own transaction; other tokens' sessions stay.
func TestDeleteTokenEndsItsConsoleSessions(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		a := &models.APIToken{Name: "a", Hash: strings.Repeat("a", 64), Scopes: models.StringList{"admin"}}
		b := &models.APIToken{Name: "b", Hash: strings.Repeat("b", 64), Scopes: models.StringList{"admin"}}
		for _, tok := range []*models.APIToken{a, b} {
			if err := s.CreateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		for i, h := range []string{a.Hash, a.Hash, b.Hash} {
			err := s.CreateConsoleSession(ctx, &models.ConsoleSession{IDHash: string(rune('p' + i)), TokenHash: h, CSRF: "x",
				CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleUntil: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteToken(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		var left []string
		s.DB().Model(&models.ConsoleSession{}).Pluck("token_hash", &left)
		if len(left) != 1 || left[0] != b.Hash {
			t.Fatalf("sessions left by token %v, want only token b's", left)
		}
	})
}

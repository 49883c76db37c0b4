package models_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func ptr[T any](v T) *T { return &v }

type recorder struct {
	mu  sync.Mutex
	evs []models.ChangeEvent
}

func (r *recorder) add(ev models.ChangeEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *recorder) all() []models.ChangeEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]models.ChangeEvent(nil), r.evs...)
}

// plusnetRange gives the provider of plusnet() the source range that an
// IP-authenticated trunk needs (models' rule across rows).
func plusnetRange(t testing.TB, s *models.Store) {
	t.Helper()
	if err := s.CreateRange(context.Background(), &models.ProviderRange{Provider: "plusnet", CIDR: "92.197.176.0/24",
		Ports: models.StringList{"5060/udp"}}); err != nil {
		t.Fatal(err)
	}
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = nil
}

func plusnet() *models.Trunk {
	return &models.Trunk{
		Name: "plusnet", Provider: "plusnet", Profile: "external-ipv4",
		Proxy: "sip.plusnet.de", OutboundProxy: "92.197.176.16",
		Transport: "udp", ExpireSeconds: 3600, RetrySeconds: 30, Context: "public",
		Enabled: true, Numbers: models.StringList{"+493455667290"},
	}
}

func TestTrunkLifecycle(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		rec := &recorder{}
		s := modelstest.Open(t, backend, modelstest.Options{OnCommit: rec.add})
		ctx := models.WithActor(context.Background(), models.Actor{Name: "alice"})
		plusnetRange(t, s)
		rec.reset()

		tr := plusnet()
		if err := s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		if tr.ID == 0 || tr.Version != 1 {
			t.Fatalf("after create: id %d version %d", tr.ID, tr.Version)
		}
		dup := plusnet()
		if err := s.CreateTrunk(ctx, dup); !errors.Is(err, models.ErrDuplicate) {
			t.Fatalf("duplicate name: got %v, want ErrDuplicate", err)
		}

		// Two writers read version 1; the second write must fail.
		a, _ := s.GetTrunk(ctx, tr.ID)
		b, _ := s.GetTrunk(ctx, tr.ID)
		a.Description = "main line"
		if err := s.UpdateTrunk(ctx, a); err != nil {
			t.Fatal(err)
		}
		if a.Version != 2 {
			t.Fatalf("version after update = %d, want 2", a.Version)
		}
		b.Proxy = "sip2.plusnet.de"
		if err := s.UpdateTrunk(ctx, b); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("stale update: got %v, want ErrConflict", err)
		}
		got, _ := s.GetTrunk(ctx, tr.ID)
		if got.Proxy != "sip.plusnet.de" || got.Description != "main line" {
			t.Fatalf("stale write leaked: %+v", got)
		}

		// A deliberate false survives (no gorm default swallowing it).
		got.Enabled = false
		got.Profile = "internal"
		if err := s.UpdateTrunk(ctx, got); err != nil {
			t.Fatal(err)
		}
		again, _ := s.GetTrunk(ctx, tr.ID)
		if again.Enabled {
			t.Fatal("Enabled=false was not stored")
		}
		if err := s.DeleteTrunk(ctx, tr.ID, 1); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("delete with stale version: %v", err)
		}
		if err := s.DeleteTrunk(ctx, tr.ID, again.Version); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTrunk(ctx, tr.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}

		evs := rec.all()
		if len(evs) != 4 {
			t.Fatalf("got %d events, want 4: %+v", len(evs), evs)
		}
		if evs[0].Op != models.OpCreate || evs[0].NewProfile != "external-ipv4" {
			t.Errorf("create event: %+v", evs[0])
		}
		if !evs[1].Cosmetic || !slices.Equal(evs[1].Fields, []string{"description"}) {
			t.Errorf("description edit should be cosmetic: %+v", evs[1])
		}
		if evs[2].Cosmetic || evs[2].OldProfile != "external-ipv4" || evs[2].NewProfile != "internal" ||
			!evs[2].OldEnabled || evs[2].NewEnabled {
			t.Errorf("move+disable event: %+v", evs[2])
		}
		if evs[3].Op != models.OpDelete || evs[3].OldProfile != "internal" {
			t.Errorf("delete event: %+v", evs[3])
		}
		stored, err := s.ChangesSince(ctx, 0, 0)
		stored = onlyKind(stored, func(e models.ChangeEvent) string { return e.Kind }) // less the range's
		if err != nil || len(stored) != 4 || stored[3].ID != evs[3].ID {
			t.Fatalf("persisted change log: %v %+v", err, stored)
		}
		audit, err := s.ListAudit(ctx, 0, 10)
		audit = onlyKind(audit, func(e models.AuditEvent) string { return e.Kind })
		if err != nil || len(audit) != 4 || audit[0].Action != models.OpDelete || audit[0].Actor != "alice" {
			t.Fatalf("audit newest first by alice: %v %+v", err, audit)
		}
	})
}

func TestPasswordSealedAndKeptOnUpdate(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		tr := plusnet()
		tr.Name, tr.Register, tr.Username, tr.Password = "einsundeins", true, "4934556", ptr("s3cr3t-Pa55")
		if err := s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetTrunk(ctx, tr.ID)
		if got.PasswordEnc == "" || got.PasswordEnc == "s3cr3t-Pa55" {
			t.Fatalf("password not sealed: %q", got.PasswordEnc)
		}
		got.Description = "x" // Password nil: keep the sealed one
		if err := s.UpdateTrunk(ctx, got); err != nil {
			t.Fatal(err)
		}
		after, _ := s.GetTrunk(ctx, tr.ID)
		plain, err := s.Reveal(models.KindTrunk, after.ID, after.Name, after.PasswordEnc)
		if err != nil || plain != "s3cr3t-Pa55" {
			t.Fatalf("reveal after unrelated update: %q %v", plain, err)
		}
	})
}

func TestUpdateWithoutChangeIsNoChange(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		rec := &recorder{}
		s := modelstest.Open(t, backend, modelstest.Options{OnCommit: rec.add})
		ctx := context.Background()
		plusnetRange(t, s)
		rec.reset()
		tr := plusnet()
		if err := s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		same, _ := s.GetTrunk(ctx, tr.ID)
		tr = same
		same = &models.Trunk{}
		*same = *tr
		same.UpdatedAt = time.Time{}                      // as a handler builds it from a body
		same.Numbers = models.StringList{"+493455667290"} // equal value, new slice
		if err := s.UpdateTrunk(ctx, same); err != nil {
			t.Fatal(err)
		}
		if same.UpdatedAt.IsZero() || !same.UpdatedAt.Equal(tr.UpdatedAt) {
			t.Errorf("a no-op update must leave the stored timestamps: %v vs %v", same.UpdatedAt, tr.UpdatedAt)
		}
		if same.Version != 1 || len(rec.all()) != 1 {
			t.Fatalf("a no-op update bumped the version to %d or emitted events: %+v", same.Version, rec.all())
		}
		if audit, _ := s.ListAudit(ctx, 0, 10); len(onlyKind(audit, func(e models.AuditEvent) string { return e.Kind })) != 1 {
			t.Fatalf("a no-op update was audited: %+v", audit)
		}
		// A stale version is still refused, change or not.
		same.Version = 0
		if err := s.UpdateTrunk(ctx, same); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("stale no-op update: %v", err)
		}
	})
}

func TestTouchTokenAtMostOncePerMinute(t *testing.T) {
	s := modelstest.Open(t, "sqlite", modelstest.Options{})
	ctx := context.Background()
	tok := &models.APIToken{Name: "t", Hash: "00", Scopes: models.StringList{"sip:read"}}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		at   time.Time
		want time.Time
	}{
		{t0, t0},
		{t0.Add(30 * time.Second), t0}, // within the minute: no write
		{t0.Add(90 * time.Second), t0.Add(90 * time.Second)}, // later: recorded
	} {
		if err := s.TouchToken(ctx, tok.ID, step.at); err != nil {
			t.Fatal(err)
		}
		got, err := s.TokenByHash(ctx, "00")
		if err != nil || got.LastUsedAt == nil || !got.LastUsedAt.Equal(step.want) {
			t.Fatalf("after touch at %v: last_used_at %v (%v), want %v", step.at, got.LastUsedAt, err, step.want)
		}
	}
}

// onlyKind keeps the trunk rows of a change or audit log.
func onlyKind[E any](in []E, kind func(E) string) []E {
	var out []E
	for _, e := range in {
		if kind(e) == models.KindTrunk {
			out = append(out, e)
		}
	}
	return out
}

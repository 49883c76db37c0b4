package events_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// TestGapsDecidedByTheHorizon: on PostgreSQL a missing change ID is kept
// while the transaction that took it runs, taken when it commits, and
// forgotten as soon as it rolled back or never existed (the sequence
// values a crash skips) — without waiting for the grace, which here is an
// hour.
func TestGapsDecidedByTheHorizon(t *testing.T) {
	ctx := context.Background()
	s := modelstest.Open(t, "postgres", modelstest.Options{})
	write := func(name string) {
		t.Helper()
		if err := s.CreateRange(ctx, &models.ProviderRange{Provider: name, CIDR: "192.0.2.0/24", Ports: models.StringList{"5060/udp"}}); err != nil {
			t.Fatal(err)
		}
	}
	// inFlight takes a change ID in a transaction that stays open.
	inFlight := func() (id uint64, end func(commit bool)) {
		t.Helper()
		tx := s.DB().WithContext(ctx).Begin()
		ev := models.ChangeEvent{At: time.Now().UTC(), Kind: "range", Op: models.OpCreate, Name: "in-flight", Fields: models.StringList{}}
		if err := tx.Exec("SELECT pg_current_xact_id()").Error; err != nil {
			t.Fatal(err)
		}
		if err := tx.Create(&ev).Error; err != nil {
			t.Fatal(err)
		}
		return ev.ID, func(commit bool) {
			if commit {
				if err := tx.Commit().Error; err != nil {
					t.Fatal(err)
				}
			} else if err := tx.Rollback().Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	write("first")
	start, err := s.LastChangeID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := events.After(start)
	var applied []uint64
	apply := func(ev models.ChangeEvent) bool { applied = append(applied, ev.ID); return true }
	catchUp := func() {
		t.Helper()
		if _, err := g.CatchUp(ctx, s, time.Now, apply); err != nil {
			t.Fatal(err)
		}
	}
	// untilDecided catches up until nothing is missing: other tests'
	// transactions on the same server may hold the horizon back a while.
	untilDecided := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for catchUp(); len(g.Missing()) > 0; catchUp() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still missing %v", what, g.Missing())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Rolled back: kept while it runs, forgotten once it ended.
	rolled, end := inFlight()
	write("after-rolled")
	catchUp()
	if !slices.Equal(g.Missing(), []uint64{rolled}) {
		t.Fatalf("missing %v, want [%d] (its transaction runs)", g.Missing(), rolled)
	}
	if got := g.Settled(time.Now(), time.Hour); got != rolled-1 {
		t.Fatalf("settled %d while %d runs, want %d", got, rolled, rolled-1)
	}
	end(false)
	untilDecided("rolled back")
	if got := g.Settled(time.Now(), time.Hour); got != g.Max || slices.Contains(applied, rolled) {
		t.Fatalf("settled %d after the rollback, want %d; applied %v", got, g.Max, applied)
	}

	// Committed late: taken.
	late, end := inFlight()
	write("after-late")
	catchUp()
	end(true)
	untilDecided("committed late")
	if !slices.Contains(applied, late) {
		t.Fatalf("late commit %d never applied: %v", late, applied)
	}

	// A crash skips sequence values that no transaction ever had.
	if err := s.DB().Exec("SELECT setval(pg_get_serial_sequence('change_events', 'id'), ?)", g.Max+32).Error; err != nil {
		t.Fatal(err)
	}
	write("after-skip")
	untilDecided("skipped values")
	if got, want := g.Settled(time.Now(), time.Hour), g.Max; got != want || want != start+4+32+1 {
		t.Fatalf("settled %d, max %d, want %d", got, want, start+4+32+1)
	}
}

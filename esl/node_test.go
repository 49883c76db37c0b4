package esl

import (
	"context"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// On PostgreSQL a transaction can take change ID n and commit after n+1:
// the cursor must not move past n until it turns up (or is overdue, i.e.
// rolled back).
func TestCursorWaitsForMissingChangeIDs(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		clk := NewFakeClock(time.Now())
		m, err := New(Options{Store: s, Password: "ClueCon", Nodes: []string{"fs1:8021"}, Time: clk, GapGrace: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		n := m.nodes[0]
		commit := func(id uint64) {
			t.Helper()
			ev := models.ChangeEvent{ID: id, At: time.Now().UTC(), Kind: models.KindProviderRange, Op: models.OpCreate, Name: "plusnet"}
			if err := s.DB().Create(&ev).Error; err != nil {
				t.Fatal(err)
			}
		}
		applied := func() { n.plan = newPlan(); n.advance(ctx) } // as if FreeSWITCH confirmed everything
		cursor := func(want uint64) {
			t.Helper()
			id, _, err := s.ESLCursor(ctx, "fs1:8021")
			if err != nil || id != want || n.cur.durable != want {
				t.Fatalf("cursor %d (in memory %d), want %d: %v", id, n.cur.durable, want, err)
			}
		}

		commit(1)
		if err := n.loadCursor(ctx); err != nil {
			t.Fatal(err)
		}
		cursor(1)
		commit(2)
		// 3 is still in flight. On PostgreSQL it is a real transaction that
		// holds it (the snapshot horizon tells an ID in flight from one
		// that never comes); SQLite's writers commit in ID order, so there
		// it is just absent.
		lateCommit := func() { commit(3) }
		if backend == "postgres" {
			tx := s.DB().Begin()
			ev := models.ChangeEvent{ID: 3, At: time.Now().UTC(), Kind: models.KindProviderRange, Op: models.OpCreate, Name: "plusnet"}
			if err := tx.Exec("SELECT pg_current_xact_id()").Error; err != nil {
				t.Fatal(err)
			}
			if err := tx.Create(&ev).Error; err != nil {
				t.Fatal(err)
			}
			lateCommit = func() {
				if err := tx.Commit().Error; err != nil {
					t.Fatal(err)
				}
			}
		}
		commit(4)
		n.fold(ctx)
		if !n.plan.reloadACL || n.cur.gaps.Max != 4 || len(n.cur.gaps.Missing()) != 1 {
			t.Fatalf("after fold: maxSeen %d missing %v plan %+v", n.cur.gaps.Max, n.cur.gaps.Missing(), n.plan)
		}
		applied()
		cursor(2)

		lateCommit()
		n.fold(ctx)
		if !n.plan.reloadACL || len(n.cur.gaps.Missing()) != 0 {
			t.Fatalf("the late change was not folded: missing %v", n.cur.gaps.Missing())
		}
		applied()
		cursor(4)

		commit(6) // 5 rolled back: never turns up
		n.fold(ctx)
		applied()
		if backend == "postgres" {
			// No transaction holds 5: decided at once, no grace needed
			// (other tests' transactions on the server may hold the
			// horizon back a moment).
			deadline := time.Now().Add(30 * time.Second)
			for n.cur.durable != 6 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				n.fold(ctx)
				applied()
			}
			cursor(6)
			return
		}
		cursor(4)
		clk.Advance(2 * time.Minute)
		applied()
		cursor(6)
	})
}

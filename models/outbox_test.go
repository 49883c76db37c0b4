package models_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestESLCursorMovesOnlyForward(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()

		if id, ok, err := s.ESLCursor(ctx, "10.0.0.1:8021"); err != nil || ok || id != 0 {
			t.Fatalf("unknown node: id=%d ok=%v err=%v", id, ok, err)
		}
		steps := []struct {
			save, want uint64
		}{
			{0, 0}, {7, 7}, {3, 7}, {7, 7}, {12, 12},
		}
		for _, st := range steps {
			if err := s.SaveESLCursor(ctx, "10.0.0.1:8021", st.save); err != nil {
				t.Fatal(err)
			}
			id, ok, err := s.ESLCursor(ctx, "10.0.0.1:8021")
			if err != nil || !ok || id != st.want {
				t.Fatalf("after saving %d: id=%d ok=%v err=%v, want %d", st.save, id, ok, err, st.want)
			}
		}
		// Another node has its own cursor.
		if err := s.SaveESLCursor(ctx, "[::1]:8021", 2); err != nil {
			t.Fatal(err)
		}
		all, err := s.ESLCursors(ctx)
		if err != nil || len(all) != 2 || all[0].Node != "10.0.0.1:8021" && all[1].Node != "10.0.0.1:8021" {
			t.Fatalf("cursors: %+v %v", all, err)
		}
		for _, c := range all {
			want := map[string]uint64{"10.0.0.1:8021": 12, "[::1]:8021": 2}[c.Node]
			if c.ChangeID != want {
				t.Errorf("cursor %s = %d, want %d", c.Node, c.ChangeID, want)
			}
		}
	})
}

// Concurrent writers (two replicas) never move a cursor backwards: the
// result is the largest value written, or (when the first insert races) a
// value some writer wrote.
func TestESLCursorConcurrentWriters(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		if err := s.SaveESLCursor(ctx, "fs1:8021", 1); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.SaveESLCursor(ctx, "fs1:8021", uint64(i+1))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		id, _, err := s.ESLCursor(ctx, "fs1:8021")
		if err != nil || id != 40 {
			t.Fatalf("cursor after concurrent saves: %d %v, want 40", id, err)
		}
	})
}

func TestESLCursorTableComesWithItsMigration(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{NoMigrate: true})
		ctx := context.Background()
		if err := s.MigrateTo(ctx, models.MigrationChangeLog); err != nil {
			t.Fatal(err)
		}
		if s.DB().Migrator().HasTable("esl_cursors") {
			t.Fatal("esl_cursors exists before its migration")
		}
		if err := s.MigrateTo(ctx, models.MigrationESLOutbox); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.SchemaVersion(ctx); v != models.MigrationESLOutbox {
			t.Fatalf("schema version %q, want %q", v, models.MigrationESLOutbox)
		}
		for _, col := range []string{"node", "change_id", "updated_at"} {
			if !s.DB().Migrator().HasColumn(&models.ESLCursor{}, col) {
				t.Errorf("esl_cursors lacks %s", col)
			}
		}
	})
}

package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestBindingsReplaceReadSweep(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		var commits int
		s := modelstest.Open(t, backend, modelstest.Options{OnCommit: func(models.ChangeEvent) { commits++ }})
		ctx := context.Background()
		if v, _ := s.SchemaVersion(ctx); v < models.MigrationBindings { // IDs sort by number
			t.Fatalf("schema version %q, want %q or later", v, models.MigrationBindings)
		}
		now := time.Now().UTC().Truncate(time.Second)
		a := []models.Binding{
			{Contact: "sip:1001@10.0.0.1:5060", QMilli: 1000, Expires: now.Add(time.Hour), CallID: "c1", CSeq: 2, Received: "127.0.0.1:5062", Transport: "udp", UserAgent: "ua"},
			{Contact: "sip:1001@10.0.0.2:5060", QMilli: 500, Expires: now.Add(-time.Second), CallID: "c2", CSeq: 1, Received: "127.0.0.1:5063", Transport: "tcp"},
		}
		b := []models.Binding{{Contact: "sip:1002@10.0.0.3", QMilli: 1000, Expires: now.Add(time.Minute), CallID: "c3", CSeq: 7, Received: "127.0.0.1:5064", Transport: "udp"}}
		if err := s.ReplaceBindings(ctx, map[string][]models.Binding{"1001@example.com": a, "1002@example.com": b}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Bindings(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].AOR != "1001@example.com" || got[0].Contact != a[0].Contact || got[0].QMilli != 1000 ||
			got[0].CallID != "c1" || got[0].CSeq != 2 || got[0].Received != "127.0.0.1:5062" || got[0].Transport != "udp" ||
			!got[0].Expires.Equal(a[0].Expires) || got[1].AOR != "1002@example.com" {
			t.Fatalf("bindings after write: %+v", got)
		}
		of, err := s.BindingsOf(ctx, "1001@example.com", now)
		if err != nil || len(of) != 1 || of[0].Contact != a[0].Contact {
			t.Fatalf("BindingsOf: %+v %v: want the unexpired one", of, err)
		}
		// Replacing one AOR leaves the other alone; an empty set removes it.
		if err := s.ReplaceBindings(ctx, map[string][]models.Binding{"1002@example.com": nil}); err != nil {
			t.Fatal(err)
		}
		got, err = s.Bindings(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].AOR != "1001@example.com" {
			t.Fatalf("bindings after removal: %+v", got)
		}
		n, err := s.DeleteExpiredBindings(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("swept %d, want the one expired binding", n)
		}
		var rows int64
		s.DB().Model(&models.Binding{}).Count(&rows)
		if rows != 1 {
			t.Fatalf("%d rows left, want 1", rows)
		}
		// Registration churn is not an operator's change.
		var changes, audits int64
		s.DB().Model(&models.ChangeEvent{}).Count(&changes)
		s.DB().Table("audit_events").Count(&audits)
		if changes != 0 || audits != 0 || commits != 0 {
			t.Fatalf("binding writes left %d change events, %d audit rows, %d commit hooks", changes, audits, commits)
		}
	})
}

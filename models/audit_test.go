package models_test

import (
	"context"
	"slices"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestFindAudit(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		evs := []models.AuditEvent{
			{Action: models.OpCreate, Kind: models.KindTrunk, ObjectID: 1, Name: "plusnet"},
			{Action: models.OpUpdate, Kind: models.KindTrunk, ObjectID: 1, Name: "plusnet"},
			{Action: models.OpCreate, Kind: models.KindTrunk, ObjectID: 2, Name: "einsundeins"},
			{Action: models.OpCreate, Kind: models.KindExtension, ObjectID: 1, Name: "100@pbx.example"},
			{Action: models.ActionReadSecret, Kind: models.KindExtension, ObjectID: 1, Name: "100@pbx.example"},
			{Action: models.OpDelete, Kind: models.KindTrunk, ObjectID: 1, Name: "plusnet"},
			// % and _ are text here, not patterns.
			{Action: models.OpCreate, Kind: models.KindProfile, ObjectID: 3, Name: "a%b_c"},
		}
		for _, e := range evs {
			if err := s.Audit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(f models.AuditFilter) []uint {
			t.Helper()
			got, err := s.FindAudit(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []uint
			for _, e := range got {
				out = append(out, e.ID)
			}
			return out
		}
		all := ids(models.AuditFilter{})
		if len(all) != len(evs) {
			t.Fatalf("all: %v", all)
		}
		id := func(i int) uint { return all[len(all)-1-i] } // all is newest first
		for name, c := range map[string]struct {
			f    models.AuditFilter
			want []uint
		}{
			"kind":                {models.AuditFilter{Kind: models.KindTrunk}, []uint{id(5), id(2), id(1), id(0)}},
			"kind+action":         {models.AuditFilter{Kind: models.KindTrunk, Action: models.OpCreate}, []uint{id(2), id(0)}},
			"action":              {models.AuditFilter{Action: models.ActionReadSecret}, []uint{id(4)}},
			"one row":             {models.AuditFilter{Kind: models.KindTrunk, ObjectID: 1}, []uint{id(5), id(1), id(0)}},
			"name contains":       {models.AuditFilter{Name: "plus"}, []uint{id(5), id(1), id(0)}},
			"name is no pattern":  {models.AuditFilter{Name: "a%b"}, []uint{id(6)}},
			"pattern finds none":  {models.AuditFilter{Name: "a_b"}, nil},
			"case-sensitive name": {models.AuditFilter{Name: "PLUS"}, nil},
			"paged":               {models.AuditFilter{Kind: models.KindTrunk, Limit: 2}, []uint{id(5), id(2)}},
			"next page":           {models.AuditFilter{Kind: models.KindTrunk, Limit: 2, Before: id(2)}, []uint{id(1), id(0)}},
		} {
			if got := ids(c.f); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", name, got, c.want)
			}
		}
	})
}

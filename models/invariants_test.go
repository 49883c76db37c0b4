package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// TestIPTrunkNeedsRanges: the store itself keeps the rule that an
// IP-authenticated trunk's provider has a source range, whoever writes.
func TestIPTrunkNeedsRanges(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		tr := plusnet()
		var ie *models.InvariantError
		if err := s.CreateTrunk(ctx, tr); !errors.As(err, &ie) || ie.Field != "provider" {
			t.Fatalf("IP trunk without ranges: %v", err)
		}
		plusnetRange(t, s)
		if err := s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		ranges, err := s.ListRanges(ctx, "plusnet")
		if err != nil || len(ranges) != 1 {
			t.Fatalf("ranges %v %v", ranges, err)
		}
		if err := s.DeleteRange(ctx, ranges[0].ID, 0); !errors.Is(err, models.ErrInvariant) {
			t.Fatalf("deleting the last range of an IP trunk's provider: %v", err)
		}
		// A registering trunk needs no ranges: switching to it frees them.
		tr.Register, tr.Username, tr.Password = true, "u", ptr("p")
		if err := s.UpdateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRange(ctx, ranges[0].ID, 0); err != nil {
			t.Fatal(err)
		}
		tr.Register = false
		if err := s.UpdateTrunk(ctx, tr); !errors.As(err, &ie) || ie.Field != "provider" {
			t.Fatalf("back to IP authentication without ranges: %v", err)
		}
	})
}

// TestIPTrunkRangesUnderConcurrency races the writes that together would
// break the rule: the last range deleted while an IP trunk is created, and
// a provider's two ranges deleted at once under an IP trunk. Whatever the
// interleaving, never both succeed.
func TestIPTrunkRangesUnderConcurrency(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		race := func(a, b func() error) (errA, errB error) {
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Add(2)
			go func() { defer wg.Done(); <-start; errA = a() }()
			go func() { defer wg.Done(); <-start; errB = b() }()
			close(start)
			wg.Wait()
			return
		}
		for i := range 15 {
			prov := fmt.Sprintf("race%d", i)
			r := &models.ProviderRange{Provider: prov, CIDR: fmt.Sprintf("10.%d.0.0/16", i), Ports: models.StringList{"5060/udp"}}
			if err := s.CreateRange(ctx, r); err != nil {
				t.Fatal(err)
			}
			tr := &models.Trunk{Name: prov, Provider: prov, Profile: "internal", Proxy: "sip.example.com", Transport: "udp", Enabled: true}
			errDel, errCreate := race(
				func() error { return s.DeleteRange(ctx, r.ID, 0) },
				func() error { return s.CreateTrunk(ctx, tr) })
			if errDel == nil && errCreate == nil {
				t.Fatalf("round %d: the last range was deleted and an IP trunk created on it", i)
			}
			if errDel != nil && errCreate != nil {
				t.Fatalf("round %d: both refused: %v / %v", i, errDel, errCreate)
			}

			// Two ranges, an IP trunk, both ranges deleted at once.
			prov2 := prov + "b"
			r1 := &models.ProviderRange{Provider: prov2, CIDR: fmt.Sprintf("10.%d.0.0/16", 100+i), Ports: models.StringList{"5060/udp"}}
			r2 := &models.ProviderRange{Provider: prov2, CIDR: fmt.Sprintf("10.%d.0.0/16", 200+i), Ports: models.StringList{"5060/udp"}}
			for _, r := range []*models.ProviderRange{r1, r2} {
				if err := s.CreateRange(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CreateTrunk(ctx, &models.Trunk{Name: prov2, Provider: prov2, Profile: "internal", Proxy: "sip.example.com", Transport: "udp", Enabled: true}); err != nil {
				t.Fatal(err)
			}
			e1, e2 := race(
				func() error { return s.DeleteRange(ctx, r1.ID, 0) },
				func() error { return s.DeleteRange(ctx, r2.ID, 0) })
			if e1 == nil && e2 == nil {
				t.Fatalf("round %d: both ranges of an IP trunk's provider deleted", i)
			}
			left, err := s.ListRanges(ctx, prov2)
			if err != nil || len(left) == 0 {
				t.Fatalf("round %d: provider %s left with %d ranges (%v)", i, prov2, len(left), err)
			}
		}
	})
}

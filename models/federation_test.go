package models_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// TestPutFederation: one row, optimistic versions, a profile change event
// naming the TLS fields when the rendering may differ, none for no change.
func TestPutFederation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		var mu sync.Mutex
		var evs []models.ChangeEvent
		s := modelstest.Open(t, backend, modelstest.Options{OnCommit: func(ev models.ChangeEvent) {
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
		}})
		last := func() models.ChangeEvent {
			mu.Lock()
			defer mu.Unlock()
			return evs[len(evs)-1]
		}
		ctx := context.Background()
		if _, err := s.Federation(ctx); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("empty: %v", err)
		}
		f := &models.Federation{Enabled: true, Domain: "good.test", FQDN: "sip.good.test", CertFile: "/c.pem",
			Profile: "internal", Port: 5061, Mode: "open", Routes: "[]"}
		if err := s.PutFederation(ctx, f); err != nil {
			t.Fatal(err)
		}
		if f.Version != 1 {
			t.Errorf("version %d", f.Version)
		}
		if ev := last(); ev.Kind != models.KindProfile || ev.Name != "internal" || !slices.Contains(ev.Fields, "tls_cert_dir") {
			t.Errorf("create event %+v", ev)
		}
		got, err := s.Federation(ctx)
		if err != nil || got.FQDN != "sip.good.test" || got.Version != 1 || !got.Enabled {
			t.Fatalf("%+v %v", got, err)
		}
		n := len(evs)
		same := *got
		if err := s.PutFederation(ctx, &same); err != nil || len(evs) != n {
			t.Errorf("no change: err %v, %d new events", err, len(evs)-n)
		}
		got.Domain = "other.test"
		if err := s.PutFederation(ctx, got); err != nil || got.Version != 2 {
			t.Fatalf("update: %v, version %d", err, got.Version)
		}
		if ev := last(); slices.Contains(ev.Fields, "tls") || !slices.Contains(ev.Fields, "federation") {
			t.Errorf("a domain change is no binding change: %+v", ev)
		}
		from, _ := s.LastChangeID(ctx)
		got.Profile = "federation"
		if err := s.PutFederation(ctx, got); err != nil {
			t.Fatal(err)
		}
		evs2, _ := s.ChangesSince(ctx, from, 10)
		var profiles []string
		for _, ev := range evs2 {
			if ev.Kind == models.KindProfile && slices.Contains(ev.Fields, "tls_cert_dir") {
				profiles = append(profiles, ev.Name)
			}
		}
		if slices.Sort(profiles); !slices.Equal(profiles, []string{"federation", "internal"}) {
			t.Errorf("moving federation to another profile: binding changes of %q, want both", profiles)
		}
		stale := *got
		stale.Domain = "third.test"
		stale.Version = got.Version - 1
		if err := s.PutFederation(ctx, &stale); !errors.Is(err, models.ErrConflict) {
			t.Errorf("stale version: %v", err)
		}
		if err := s.CertificateRenewed(ctx, "internal", false); err != nil {
			t.Fatal(err)
		}
		if ev := last(); !slices.Equal(ev.Fields, models.StringList{"tls_cert"}) || ev.Name != "internal" {
			t.Errorf("renewal event %+v", ev)
		}
	})
}

// TestFederationRoutesGone: a route rendered before and changed, removed,
// or no longer rendered (disabled) gets a gateway delete in the change log.
func TestFederationRoutesGone(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		f := &models.Federation{Enabled: true, Domain: "good.test", FQDN: "sip.good.test", CertFile: "/c.pem", Profile: "internal",
			Port: 5061, Mode: "direct", Routes: `[{"domain":"a.example","fqdn":"sip.a.example","port":5061},{"domain":"b.example","fqdn":"sip.b.example","port":5061},{"domain":"c.example","fqdn":"sip.c.example","port":5061}]`}
		if err := s.PutFederation(ctx, f); err != nil {
			t.Fatal(err)
		}
		from, _ := s.LastChangeID(ctx)
		deletes := func() []string {
			evs, err := s.ChangesSince(ctx, from, 100)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, ev := range evs {
				if ev.Kind == models.KindTrunk && ev.Op == models.OpDelete && ev.OldProfile == "internal" && ev.OldEnabled {
					out = append(out, ev.Name)
				}
			}
			from, _ = s.LastChangeID(ctx)
			return out
		}
		// a kept, b moved to another port, c removed.
		f.Routes = `[{"domain":"a.example","fqdn":"sip.a.example","port":5061},{"domain":"b.example","fqdn":"sip.b.example","port":5062}]`
		if err := s.PutFederation(ctx, f); err != nil {
			t.Fatal(err)
		}
		if got := deletes(); !slices.Equal(got, []string{"federation-b.example", "federation-c.example"}) {
			t.Errorf("gateway deletes %q", got)
		}
		f.Enabled = false
		if err := s.PutFederation(ctx, f); err != nil {
			t.Fatal(err)
		}
		if got := deletes(); !slices.Equal(got, []string{"federation-a.example", "federation-b.example"}) {
			t.Errorf("after disabling: %q", got)
		}
	})
}

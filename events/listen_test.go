package events_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// TestListenWakesTheFollower: with polling out of the picture (an hour's
// interval), a change committed by replica A reaches replica B's
// subscribers through pg_notify alone, exactly once; a change in another
// schema on the same database is not delivered.
func TestListenWakesTheFollower(t *testing.T) {
	var busB events.Bus
	var seenB got
	busB.Subscribe(seenB.add)
	a := modelstest.Open(t, "postgres", modelstest.Options{})
	b := modelstest.Reopen(t, a, modelstest.Options{OnCommit: busB.Publish})
	other := modelstest.Open(t, "postgres", modelstest.Options{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{}, 1)
	listening := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = events.Listen(ctx, modelstest.URLOf(t, b), wake, func(err error) {
			if err == nil {
				once.Do(func() { close(listening) })
			}
		})
	}()
	go func() { defer wg.Done(); busB.Follow(ctx, b, 0, time.Hour, nil, wake) }()
	defer wg.Wait()
	defer cancel()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("never listening")
	}

	if err := other.CreateRange(ctx, &models.ProviderRange{Provider: "elsewhere", CIDR: "10.9.0.0/16", Ports: models.StringList{"5060/udp"}}); err != nil {
		t.Fatal(err)
	}
	r := &models.ProviderRange{Provider: "plusnet", CIDR: "92.197.176.0/24", Ports: models.StringList{"5060/udp"}}
	if err := a.CreateRange(ctx, r); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for len(seenB.snapshot()) == 0 {
		select {
		case <-deadline:
			t.Fatal("replica B never saw A's change: the notification did not wake its follower")
		case <-time.After(5 * time.Millisecond):
		}
	}
	ids := seenB.snapshot()
	evs, err := b.ChangesSince(ctx, 0, 10)
	if err != nil || len(evs) != 1 || len(ids) != 1 || ids[0] != evs[0].ID {
		t.Fatalf("B saw %v, the log holds %+v (%v)", ids, evs, err)
	}
}

// BenchmarkChangeAcrossReplicas measures a write on replica A until replica
// B's subscribers have it, woken by pg_notify (the poll is an hour).
func BenchmarkChangeAcrossReplicas(b *testing.B) {
	var busB events.Bus
	seen := make(chan uint64, 1024)
	busB.Subscribe(func(ev models.ChangeEvent) { seen <- ev.ID })
	sa := modelstest.Open(b, "postgres", modelstest.Options{})
	sb := modelstest.Reopen(b, sa, modelstest.Options{OnCommit: busB.Publish})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{}, 1)
	listening := make(chan struct{})
	var once sync.Once
	go func() {
		_ = events.Listen(ctx, modelstest.URLOf(b, sb), wake, func(err error) {
			if err == nil {
				once.Do(func() { close(listening) })
			}
		})
	}()
	go busB.Follow(ctx, sb, 0, time.Hour, nil, wake)
	<-listening
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		r := &models.ProviderRange{Provider: "plusnet", CIDR: "10." + itoa(i/250) + "." + itoa(i%250) + ".0/24", Ports: models.StringList{"5060/udp"}}
		start := time.Now()
		if err := sa.CreateRange(ctx, r); err != nil {
			b.Fatal(err)
		}
		<-seen
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

package events_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

type got struct {
	mu  sync.Mutex
	ids []uint64
}

func (g *got) add(ev models.ChangeEvent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ids = append(g.ids, ev.ID)
}

func (g *got) snapshot() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.ids...)
}

func TestPublishIsSynchronousAndOrdered(t *testing.T) {
	var b events.Bus
	var g got
	b.Subscribe(g.add)
	for i := uint64(1); i <= 3; i++ {
		b.Publish(models.ChangeEvent{ID: i})
		if n := len(g.snapshot()); n != int(i) {
			t.Fatalf("after Publish %d the subscriber has seen %d events", i, n)
		}
	}
	if ids := g.snapshot(); ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("order %v", ids)
	}
}

// Two replicas on one database: each one's subscribers see the other's
// writes exactly once, and their own exactly once.
func TestFollowAcrossReplicas(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		var busA, busB events.Bus
		var seenA, seenB got
		busA.Subscribe(seenA.add)
		busB.Subscribe(seenB.add)
		a := modelstest.Open(t, backend, modelstest.Options{OnCommit: busA.Publish})
		b := modelstest.Reopen(t, a, modelstest.Options{OnCommit: busB.Publish})

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		for _, f := range []struct {
			bus *events.Bus
			src events.Source
		}{{&busA, a}, {&busB, b}} {
			wg.Add(1)
			go func() { defer wg.Done(); f.bus.Follow(ctx, f.src, 0, 10*time.Millisecond, nil, nil) }()
		}

		if err := a.CreateProfile(ctx, &models.Profile{Name: "internal", BindIP: "::", SIPPort: 5060}); err != nil {
			t.Fatal(err)
		}
		if err := b.CreateProfile(ctx, &models.Profile{Name: "external-ipv4", BindIP: "192.0.2.1", SIPPort: 5060}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && (len(seenA.snapshot()) < 2 || len(seenB.snapshot()) < 2) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // several more polls: no duplicates may follow
		cancel()
		wg.Wait()
		for name, g := range map[string]*got{"A": &seenA, "B": &seenB} {
			ids := g.snapshot()
			if len(ids) != 2 || ids[0] == ids[1] {
				t.Errorf("replica %s saw %v, want both events once", name, ids)
			}
		}
	})
}

// flaky is a change log that fails while down is set.
type flaky struct {
	mu   sync.Mutex
	down bool
	evs  []models.ChangeEvent
}

func (f *flaky) set(down bool, evs ...models.ChangeEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	f.evs = append(f.evs, evs...)
}

var errAway = errors.New("database is away")

func (f *flaky) ChangesSince(_ context.Context, after uint64, _ int) ([]models.ChangeEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errAway
	}
	var out []models.ChangeEvent
	for _, ev := range f.evs {
		if ev.ID > after {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (f *flaky) ChangesIn(_ context.Context, ids []uint64) ([]models.ChangeEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errAway
	}
	var out []models.ChangeEvent
	for _, ev := range f.evs {
		if slices.Contains(ids, ev.ID) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// A failing change log is reported, not dropped; once it answers again the
// report says so and the events committed meanwhile are delivered.
func TestFollowReportsErrors(t *testing.T) {
	src := &flaky{down: true}
	var b events.Bus
	var g got
	b.Subscribe(g.add)
	reports := make(chan error, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Follow(ctx, src, 0, time.Millisecond, func(err error) { reports <- err }, nil)
	}()
	defer func() { cancel(); <-done }()

	next := func() error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Follow reported nothing")
			return nil
		}
	}
	err := next()
	if !errors.Is(err, errAway) {
		t.Fatalf("report while the source fails: %v, want it to wrap %v", err, errAway)
	}
	src.set(false, models.ChangeEvent{ID: 7})
	for err != nil {
		if err = next(); err != nil && !errors.Is(err, errAway) {
			t.Fatalf("unexpected report %v", err)
		}
	}
	if ids := g.snapshot(); len(ids) != 1 || ids[0] != 7 {
		t.Fatalf("after the source came back the subscriber saw %v, want [7]", ids)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// A change that commits after a later one (PostgreSQL: IDs are taken at
// insert, not at commit) is still delivered, once: Follow asks for the
// missing ID again (the one gap algorithm, Gaps).
func TestFollowDeliversLateCommits(t *testing.T) {
	src := &flaky{}
	src.set(false, models.ChangeEvent{ID: 1}, models.ChangeEvent{ID: 3})
	var b events.Bus
	var g got
	b.Subscribe(g.add)
	polled := make(chan struct{}, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Follow(ctx, src, 0, time.Millisecond, func(error) { polled <- struct{}{} }, nil)
	}()
	defer func() { cancel(); <-done }()
	waitPolls := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-polled:
			case <-time.After(10 * time.Second):
				t.Fatal("Follow stopped polling")
			}
		}
	}
	waitPolls(2)
	if ids := g.snapshot(); !slices.Equal(ids, []uint64{1, 3}) {
		t.Fatalf("first polls delivered %v", ids)
	}
	src.set(false, models.ChangeEvent{ID: 2}) // the late commit
	waitPolls(3)
	if ids := g.snapshot(); !slices.Equal(ids, []uint64{1, 3, 2}) {
		t.Fatalf("after the late commit: %v, want 1 3 2", ids)
	}
}

package events

import (
	"slices"
	"testing"
	"time"
)

func TestGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := After(10)
	for _, id := range []uint64{11, 14, 15} { // 12 and 13 in flight
		g.Take(id, t0)
	}
	if g.Max != 15 || !slices.Equal(g.Missing(), []uint64{12, 13}) {
		t.Fatalf("max %d missing %v", g.Max, g.Missing())
	}
	if s := g.Settled(t0.Add(time.Second), time.Minute); s != 11 {
		t.Fatalf("settled %d, want 11 (below the first missing ID)", s)
	}
	g.Take(12, t0.Add(2*time.Second)) // a late commit
	if s := g.Settled(t0.Add(3*time.Second), time.Minute); s != 12 || !slices.Equal(g.Missing(), []uint64{13}) {
		t.Fatalf("after the late 12: settled %d missing %v", s, g.Missing())
	}
	// 13 never comes (rolled back): forgotten once its grace is over.
	if s := g.Settled(t0.Add(time.Minute), time.Minute); s != 15 || len(g.Missing()) != 0 {
		t.Fatalf("after the grace: settled %d missing %v", s, g.Missing())
	}
	// A sequence jump is not transactions in flight.
	g.Take(15+MaxGap+1, t0)
	if len(g.Missing()) != 0 || g.Settled(t0, time.Minute) != 15+MaxGap+1 {
		t.Fatalf("a jump was taken for gaps: %v", g.Missing())
	}
	// Taking an ID twice changes nothing.
	g.Take(15, t0)
	if g.Max != 15+MaxGap+1 {
		t.Fatalf("max moved back to %d", g.Max)
	}
}

package events

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fsplane/fsplane/models"
)

// Gaps is one consumer's position in the change log, and the only gap
// algorithm in fsplane: every consumer that reads the log (Follow for the
// xml-curl cache and other in-process subscribers, each ESL node's cursor)
// keeps one.
//
// Change IDs come from a sequence. On PostgreSQL a transaction takes its ID
// when it inserts and may commit after a transaction that took a later
// one, so a reader can see ID 12 before 11: an ID below the newest seen
// that is not in the log yet is in flight (or was rolled back, or skipped
// by a crash, and never comes). Gaps remembers such IDs with the time it
// noticed them, so that the reader asks for them again (ChangesIn) and so
// that a durable cursor never moves past one until it turned up, or it is
// known never to come, or its grace passed. A jump of MaxGap IDs or more
// is a sequence jump, not transactions in flight.
//
// When the source can tell its transaction horizon (Horizon: PostgreSQL),
// a missing ID is decided without waiting for the grace: its transaction
// took an ID before a later one committed, so it had its transaction ID
// before the snapshot taken after that commit was read; once every
// transaction older than that snapshot's xmax has ended, the ID either is
// in the log or never will be. A crash of PostgreSQL, which skips up to 32
// sequence values, so no longer holds a durable cursor back for the grace.
//
// The zero value starts before the first change; it is not safe for
// concurrent use.
type Gaps struct {
	// Max is the newest ID taken.
	Max     uint64
	missing map[uint64]gap
}

// gap is one missing ID: when it was noticed, and the xmax of a snapshot
// taken after that (0 until one was taken).
type gap struct {
	since time.Time
	xmax  uint64
}

// Horizon is implemented by a Source whose IDs can be taken by
// transactions that commit out of order (PostgreSQL). TxHorizon returns
// the xmin and xmax of a fresh snapshot: every transaction below xmin has
// ended, every one that had started has an ID below xmax. ok is false when
// the source cannot tell (SQLite, whose writers commit in ID order).
type Horizon interface {
	TxHorizon(ctx context.Context) (xmin, xmax uint64, ok bool, err error)
}

// MaxGap bounds how many skipped IDs are taken for transactions in flight.
const MaxGap = 1000

// After returns Gaps positioned after id: nothing before it is missing.
func After(id uint64) *Gaps { return &Gaps{Max: id} }

// Take records that the consumer applied the change id (at now): a later
// ID notes the ones it skipped as missing, an earlier one fills its gap.
func (g *Gaps) Take(id uint64, now time.Time) {
	switch {
	case id <= g.Max:
		delete(g.missing, id)
		return
	case id > g.Max+1 && id-g.Max-1 < MaxGap:
		if g.missing == nil {
			g.missing = map[uint64]gap{}
		}
		for m := g.Max + 1; m < id; m++ {
			g.missing[m] = gap{since: now}
		}
	}
	g.Max = id
}

// Missing returns the IDs still missing, in order, to ask for again.
func (g *Gaps) Missing() []uint64 {
	out := make([]uint64, 0, len(g.missing))
	for id := range g.missing {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Settled forgets the IDs missing for grace or longer (rolled back, or
// never to come) and returns how far a durable cursor may move: up to Max,
// but below the lowest ID still missing.
func (g *Gaps) Settled(now time.Time, grace time.Duration) uint64 {
	t := g.Max
	for id, m := range g.missing {
		if now.Sub(m.since) >= grace {
			delete(g.missing, id)
			continue
		}
		if id-1 < t {
			t = id - 1
		}
	}
	return t
}

// pageSize is how many changes one read of the log takes.
const pageSize = 1000

// CatchUp reads what committed after g.Max, page by page, then the IDs g
// misses, and hands each change to apply in that order; each change apply
// takes is taken into g (at now()). When apply refuses a new change,
// CatchUp stops there (complete false): what follows must wait for it. A
// late change apply refuses stays missing. An error leaves the rest for
// the next call. Every reader of the change log catches up through here.
func (g *Gaps) CatchUp(ctx context.Context, src Source, now func() time.Time, apply func(models.ChangeEvent) bool) (complete bool, err error) {
	for {
		evs, err := src.ChangesSince(ctx, g.Max, pageSize)
		if err != nil {
			return false, fmt.Errorf("read the change log after %d: %w", g.Max, err)
		}
		for _, ev := range evs {
			if !apply(ev) {
				return false, nil
			}
			g.Take(ev.ID, now())
		}
		if len(evs) < pageSize {
			break
		}
	}
	if len(g.missing) == 0 {
		return true, nil
	}
	// The horizon before the read: an ID decided by it and not in the read
	// never comes.
	decided, err := g.decide(ctx, src)
	if err != nil {
		return false, err
	}
	evs, err := src.ChangesIn(ctx, g.Missing())
	if err != nil {
		return false, fmt.Errorf("read %d missing changes: %w", len(g.missing), err)
	}
	for _, ev := range evs {
		delete(decided, ev.ID) // it came: apply decides whether it is taken
		if apply(ev) {
			g.Take(ev.ID, now())
		}
	}
	for id := range decided {
		delete(g.missing, id)
	}
	return true, nil
}

// decide asks src for its transaction horizon (when it has one), stamps
// the missing IDs noticed since the last ask with its xmax, and returns
// those whose transactions have all ended.
func (g *Gaps) decide(ctx context.Context, src Source) (map[uint64]struct{}, error) {
	h, ok := src.(Horizon)
	if !ok {
		return nil, nil
	}
	xmin, xmax, ok, err := h.TxHorizon(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the transaction horizon: %w", err)
	}
	if !ok {
		return nil, nil
	}
	decided := map[uint64]struct{}{}
	for id, m := range g.missing {
		if m.xmax == 0 {
			m.xmax = xmax
			g.missing[id] = m
		}
		if xmin >= m.xmax {
			decided[id] = struct{}{}
		}
	}
	return decided, nil
}

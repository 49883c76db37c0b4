package events

import (
	"context"
	"fmt"
	"time"

	"github.com/fsplane/fsplane/models"
)

// Source is where committed changes are kept (the store's change log).
type Source interface {
	ChangesSince(ctx context.Context, after uint64, limit int) ([]models.ChangeEvent, error)
	ChangesIn(ctx context.Context, ids []uint64) ([]models.ChangeEvent, error)
}

// followGrace is how long Follow keeps asking for a missing change ID (see
// Gaps): longer than any write transaction runs.
const followGrace = time.Minute

// Follow publishes on b every change that another process (another
// fsplane replica on the same PostgreSQL) commits, polling src every
// interval until ctx ends. Events this bus published itself are not
// delivered twice. It starts after change ID after (serve passes the newest
// ID at start: what happened before is already in what consumers load).
//
// A failed poll does not stop Follow: the next tick tries again from the
// same place, so nothing is skipped. report, when not nil, receives every
// poll's outcome in the caller's terms: the error of a failed poll, nil
// after one that succeeded; serve shows it on /readyz and logs the
// transitions. report runs in Follow's goroutine and must not block.
//
// wake, when not nil, makes Follow read the log at once instead of at the
// next tick (Listen sends on it when another replica commits); the ticker
// stays as the safety net for a lost notification.
func (b *Bus) Follow(ctx context.Context, src Source, after uint64, interval time.Duration, report func(error), wake <-chan struct{}) {
	if report == nil {
		report = func(error) {}
	}
	g := After(after)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		if _, err := g.CatchUp(ctx, src, time.Now, func(ev models.ChangeEvent) bool { b.deliverOnce(ev); return true }); err != nil {
			if ctx.Err() != nil {
				return // stopping, not a failure
			}
			report(fmt.Errorf("events: %w", err))
			continue
		}
		g.Settled(time.Now(), followGrace)
		report(nil)
	}
}

func (b *Bus) deliverOnce(ev models.ChangeEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliverLocked(ev)
}

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
}

// window is how far behind the newest seen ID the follower looks again:
// on PostgreSQL a transaction may take its ID before a concurrent one and
// commit after it, so a lower ID can appear late.
const window = 512

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
	last := after
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		from := uint64(0)
		if last > window {
			from = last - window
		}
		evs, err := src.ChangesSince(ctx, from, 1000)
		if err != nil {
			if ctx.Err() != nil {
				return // stopping, not a failure
			}
			report(fmt.Errorf("events: read the change log after %d: %w", from, err))
			continue
		}
		for _, ev := range evs {
			if ev.ID > last {
				last = ev.ID
			}
			b.deliverOnce(ev)
		}
		report(nil)
	}
}

func (b *Bus) deliverOnce(ev models.ChangeEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliverLocked(ev)
}

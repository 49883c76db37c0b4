package events

import (
	"context"
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
func (b *Bus) Follow(ctx context.Context, src Source, after uint64, interval time.Duration) {
	last := after
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		from := uint64(0)
		if last > window {
			from = last - window
		}
		evs, err := src.ChangesSince(ctx, from, 1000)
		if err != nil {
			continue // the database is away; try again next tick
		}
		for _, ev := range evs {
			if ev.ID > last {
				last = ev.ID
			}
			b.deliverOnce(ev)
		}
	}
}

func (b *Bus) deliverOnce(ev models.ChangeEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliverLocked(ev)
}

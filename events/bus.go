// Package events fans committed change events out to the consumers inside
// this process (the xml-curl cache, the ESL planner).
//
// Delivery is synchronous, in commit order, in the writer's goroutine, after
// the transaction committed: when an API write returns, every subscriber has
// seen its event, so the next xml-curl request cannot be served stale.
// Subscribers must therefore be quick and must not block (hand work to a
// goroutine of their own), and must not call Subscribe from a handler.
//
// Several replicas: every event is also in the database (models
// ChangeEvent). Follow reads that log and delivers the events other
// processes committed, so a replica's xml-curl cache and ESL planner see
// every write, whichever replica took it; Listen wakes it at once through
// PostgreSQL's NOTIFY, a poll is the net. What a reader of the log has seen
// and what may still turn up late is one algorithm, Gaps, which Follow and
// every ESL node's cursor keep.
package events

import (
	"sync"

	"github.com/fsplane/fsplane/models"
)

// seenWindow is how many IDs below the newest the bus remembers as
// delivered, so that Follow reading back a locally published change does
// not deliver it twice. Forgetting one costs a second, harmless delivery
// (the subscribers invalidate and wake).
const seenWindow = 4096

// Handler consumes one event.
type Handler func(models.ChangeEvent)

// Bus is a synchronous in-process fan-out. The zero value is ready to use.
type Bus struct {
	mu   sync.Mutex // serialises Publish so handlers see commit order
	subs []Handler
	// seen holds recent event IDs, so an event published locally is not
	// delivered again when Follow reads it back from the change log.
	seen   map[uint64]struct{}
	newest uint64
}

// Subscribe adds h; it receives every event published after the call.
func (b *Bus) Subscribe(h Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, h)
}

// Publish hands ev to every subscriber in turn.
func (b *Bus) Publish(ev models.ChangeEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliverLocked(ev)
}

// deliverLocked hands ev to the subscribers unless an event with its ID was
// delivered already (by Publish or by Follow). b.mu must be held.
func (b *Bus) deliverLocked(ev models.ChangeEvent) {
	if ev.ID != 0 {
		if b.seen == nil {
			b.seen = map[uint64]struct{}{}
		}
		if _, dup := b.seen[ev.ID]; dup {
			return
		}
		b.seen[ev.ID] = struct{}{}
		if ev.ID > b.newest {
			b.newest = ev.ID
		}
		if len(b.seen) > 2*seenWindow {
			for id := range b.seen {
				if id+seenWindow < b.newest {
					delete(b.seen, id)
				}
			}
		}
	}
	for _, h := range b.subs {
		h(ev)
	}
}

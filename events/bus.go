// Package events fans committed change events out to the consumers inside
// this process (the xml-curl cache, the ESL planner).
//
// Delivery is synchronous, in commit order, in the writer's goroutine, after
// the transaction committed: when an API write returns, every subscriber has
// seen its event, so the next xml-curl request cannot be served stale.
// Subscribers must therefore be quick and must not block (hand work to a
// goroutine of their own). Events are also in the database (models
// ChangeEvent) for consumers that were not running, e.g. other replicas.
package events

import (
	"sync"

	"github.com/fsplane/fsplane/models"
)

// Handler consumes one event.
type Handler func(models.ChangeEvent)

// Bus is a synchronous in-process fan-out. The zero value is ready to use.
type Bus struct {
	mu   sync.Mutex // serialises Publish so handlers see commit order
	subs []Handler
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
	for _, h := range b.subs {
		h(ev)
	}
}

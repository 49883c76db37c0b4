package esl

import (
	"context"
	"sync"
	"time"
)

// FakeClock is a Clock for tests: time moves only by Advance, so a test
// never sleeps to let a window, a backoff or a wait pass.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	armed   map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever a timer is armed
}

// NewFakeClock starts at start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, armed: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the clock by d and fires every timer due by then.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.armed {
		if !t.at.After(c.now) {
			t.fireLocked()
		}
	}
}

// WaitTimer blocks until a timer set for exactly d is armed: the code
// under test is waiting on it.
func (c *FakeClock) WaitTimer(ctx context.Context, d time.Duration) error {
	for {
		c.mu.Lock()
		for t := range c.armed {
			if t.d == d {
				c.mu.Unlock()
				return nil
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type fakeTimer struct {
	c  *FakeClock
	ch chan time.Time
	at time.Time
	d  time.Duration
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// fireLocked delivers the tick; c.mu is held.
func (t *fakeTimer) fireLocked() {
	delete(t.c.armed, t)
	select {
	case t.ch <- t.c.now:
	default:
	}
}

// stopLocked disarms t and drops an undelivered tick, as time.Timer does
// since Go 1.23.
func (t *fakeTimer) stopLocked() bool {
	_, was := t.c.armed[t]
	delete(t.c.armed, t)
	select {
	case <-t.ch:
	default:
	}
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.stopLocked()
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	was := t.stopLocked()
	t.at, t.d = c.now.Add(d), d
	if d <= 0 {
		t.fireLocked()
		return was
	}
	c.armed[t] = struct{}{}
	close(c.changed)
	c.changed = make(chan struct{})
	return was
}

var _ Clock = (*FakeClock)(nil)

// SeenChangeID is the newest change the node at addr has folded into its
// plan: a test moves a FakeClock only after the node saw its changes.
func (m *Manager) SeenChangeID(addr string) uint64 {
	for _, n := range m.nodes {
		if n.addr == addr {
			return n.seen.Load()
		}
	}
	return 0
}

package esl

import "time"

// Clock is a Manager's time: Now for timestamps and schedules, NewTimer for
// every wait of a node's loop (the coalescing window, retries, the reconnect
// backoff and its probes, health checks, the wait for a
// sofia::gateway_delete). A test hands in a fake one and moves it by hand.
//
// Deadlines on socket I/O (DialTimeout, AuthTimeout, CommandTimeout,
// HealthTimeout) stay on real time: they bound what the network does.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is what Clock.NewTimer returns; it behaves as *time.Timer does
// since Go 1.23 (no stale tick after Stop or Reset).
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// RealClock is the system clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer is time.NewTimer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

var _ Clock = RealClock{}

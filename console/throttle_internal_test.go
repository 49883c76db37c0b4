package console

import (
	"testing"
	"time"
)

// With a clock that moves between the check and the verdict, as a real
// one does while the token is looked up, successes still cost nothing and
// failures are counted.
func TestThrottleWithAMovingClock(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	th := newLoginThrottle(func() time.Time { now = now.Add(time.Millisecond); return now })
	src := source("192.0.2.7:5000")
	for i := range 20 {
		if wait, _ := th.try(src); wait > 0 {
			t.Fatalf("success %d held back %v", i+1, wait)
		}
	}
	for i := range loginBurst {
		wait, failed := th.try(src)
		if wait > 0 {
			t.Fatalf("failure %d held back %v", i+1, wait)
		}
		failed()
	}
	if wait, _ := th.try(src); wait <= loginRefill-time.Second || wait > loginRefill {
		t.Fatalf("after %d failures: wait %v, want about %v", loginBurst, wait, loginRefill)
	}
}

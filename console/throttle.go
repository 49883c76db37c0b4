package console

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Login throttling: guessing API tokens through the login form is hopeless
// (256 random bits), but each guess costs a database lookup, and a client
// that keeps failing is a script, not an operator.
const (
	// loginBurst failed logins from one source are answered as usual...
	loginBurst = 5
	// ...then one more every loginRefill; until then a login from that
	// source is refused with 429 and Retry-After before its token is
	// looked at.
	loginRefill = 20 * time.Second
	// maxThrottled bounds the sources tracked. Past it, sources whose
	// allowance is whole again are forgotten; if that is not enough (a
	// flood from more addresses than this), all of them are.
	maxThrottled = 10000
)

// loginThrottle counts failed logins per source: the client's IPv4
// address, or its IPv6 /64 (what one host usually has to itself). Behind a
// reverse proxy every client is the proxy's address: the throttle then
// holds back everyone at once while one client keeps failing. Each replica
// counts on its own.
type loginThrottle struct {
	now func() time.Time

	mu sync.Mutex
	m  map[netip.Prefix]*rate.Limiter
}

func newLoginThrottle(now func() time.Time) *loginThrottle {
	return &loginThrottle{now: now, m: map[netip.Prefix]*rate.Limiter{}}
}

// source is the throttle's key for a request's RemoteAddr; an address
// that does not parse (not TCP) shares one key with all such.
func source(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// try asks src's allowance for one attempt. It returns how long src must
// wait when the allowance is spent, or a function to call when the attempt
// turns out to be a failure, which takes it from the allowance: an attempt
// costs nothing until it failed.
func (t *loginThrottle) try(src netip.Prefix) (wait time.Duration, failed func()) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.m[src]
	if l == nil {
		if len(t.m) >= maxThrottled {
			t.pruneLocked(now)
		}
		l = rate.NewLimiter(rate.Every(loginRefill), loginBurst)
		t.m[src] = l
	}
	if tokens := l.TokensAt(now); tokens < 1 {
		return time.Duration((1 - tokens) * float64(loginRefill)), nil
	}
	return 0, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		// Concurrent failures may find it spent already: one more
		// failure then changes nothing.
		l.AllowN(t.now(), 1)
	}
}

func (t *loginThrottle) pruneLocked(now time.Time) {
	for k, l := range t.m {
		if l.TokensAt(now) >= loginBurst {
			delete(t.m, k)
		}
	}
	if len(t.m) >= maxThrottled {
		clear(t.m)
	}
}

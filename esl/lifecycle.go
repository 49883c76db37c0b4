package esl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run is the node's loop: connect, bring up to date, follow changes, and
// reconnect, until ctx ends. Full attempts follow a capped, jittered
// backoff; while the node does not even accept TCP, probes find the moment
// it does (pause).
func (n *node) run(ctx context.Context) {
	o := n.m.opt
	dialBackoff := backoff{min: o.ReconnectMin, max: o.ReconnectMax}
	defer n.setState(StateDown)
	for ctx.Err() == nil {
		healthy, err := n.guarded(ctx)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			dialBackoff.reset()
		}
		n.setState(StateDown)
		if err != nil {
			n.setError(err)
			n.log.Warn("FreeSWITCH event socket down", "err", err)
		}
		n.pause(ctx, dialBackoff.next(), errors.Is(err, ErrUnreachable))
		n.setState(StateConnecting)
	}
}

// guarded runs one connection's life and turns a panic into an error, so a
// bug in handling one FreeSWITCH answer never takes fsplane down.
func (n *node) guarded(ctx context.Context) (healthy bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			n.m.met.panics.Inc()
			err = fmt.Errorf("esl: %s: %w: %v", n.addr, ErrPanic, r)
		}
	}()
	if !n.cur.loaded {
		if err := n.loadCursor(ctx); err != nil {
			return false, err
		}
	}
	n.fold(ctx)
	c, err := n.connect(ctx)
	n.m.met.connects.WithLabelValues(n.addr, connectResult(err)).Inc()
	if err != nil {
		return false, err
	}
	defer func() {
		c.Close()
		n.mu.Lock()
		n.c, n.fsStarted = nil, time.Time{} // FreeSWITCH may restart while away
		n.mu.Unlock()
	}()
	return n.session(ctx, c)
}

// pause waits d before the next attempt; changes committed meanwhile are
// folded into the plan, so Pending stays true while the node is away. When
// the node was not accepting connections (probe), a TCP connect every
// ProbeInterval ends the wait as soon as it does: reconnecting follows
// FreeSWITCH, not the backoff.
func (n *node) pause(ctx context.Context, d time.Duration, probe bool) {
	end := n.clk.NewTimer(d)
	defer end.Stop()
	var probeC <-chan time.Time
	var pt Timer
	every := n.m.opt.ProbeInterval
	if probe && every > 0 && every < d {
		pt = n.clk.NewTimer(every)
		defer pt.Stop()
		probeC = pt.C()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C():
			return
		case <-probeC:
			if n.probe(ctx) {
				return
			}
			pt.Reset(every)
		case <-n.wake:
			if n.cur.loaded {
				n.fold(ctx)
			}
		}
	}
}

// probe reports whether the node accepts a TCP connection now; the
// connection is closed at once (FreeSWITCH sees a client that left before
// authenticating).
func (n *node) probe(ctx context.Context) bool {
	o := n.m.opt
	pctx, cancel := context.WithTimeout(ctx, min(o.DialTimeout, o.ProbeInterval))
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(pctx, "tcp", n.addr)
	if err != nil {
		n.m.met.probes.WithLabelValues(n.addr, "closed").Inc()
		return false
	}
	_ = c.Close()
	n.m.met.probes.WithLabelValues(n.addr, "open").Inc()
	return true
}

func (n *node) connect(ctx context.Context) (*conn, error) {
	o := n.m.opt
	c, err := dial(ctx, n.addr, dialConfig{
		password: o.Password, dialTimeout: o.DialTimeout, authTimeout: o.AuthTimeout, onEvent: n.handleEvent,
	})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, o.CommandTimeout)
	defer cancel()
	reply, err := c.subscribe(cctx, "sofia::gateway_state", "sofia::gateway_delete", "sofia::gateway_add")
	if err == nil && !strings.HasPrefix(reply, "+OK") {
		err = &ReplyError{Command: "event plain CUSTOM …", Reply: reply, Kind: ErrCommandFailed}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("esl: subscribe to gateway events on %s: %w", n.addr, err)
	}
	// mod_xml_curl sends the switchname as "hostname": it is what trunk
	// Hostnames name.
	name, err := n.do(ctx, c, fixed(opSwitchname))
	if err != nil && !isReplyErr(err) {
		c.Close()
		return nil, err
	}
	// FreeSWITCH's uptime tells whether a profile binding changed while
	// it was away was read at its start (plan.resolveBindings).
	var fsStarted time.Time
	status, serr := n.do(ctx, c, fixed(opStatus))
	if serr != nil && !isReplyErr(serr) {
		c.Close()
		return nil, serr
	}
	if up, ok := parseUptime(status); serr == nil && ok {
		fsStarted = n.now().Add(-up)
	}
	if !fsStarted.IsZero() {
		// A FreeSWITCH started since read the replaced certificates.
		n.clearRestartNeeded("", fsStarted)
	}
	n.mu.Lock()
	n.c = c
	n.fsStarted = fsStarted
	if err == nil {
		n.switchname = strings.TrimSpace(name)
	}
	n.mu.Unlock()
	n.setState(StateConnected)
	n.log.Info("FreeSWITCH event socket connected", "switchname", strings.TrimSpace(name))
	return c, nil
}

// parseUptime reads the first line of `api status`: "UP 0 years, 0 days,
// 0 hours, 1 minute, 5 seconds, 12 milliseconds, 44 microseconds".
func parseUptime(reply string) (time.Duration, bool) {
	line, _, _ := strings.Cut(strings.TrimSpace(reply), "\n")
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "UP ")
	if !ok {
		return 0, false
	}
	units := map[string]time.Duration{
		"year": 365 * 24 * time.Hour, "day": 24 * time.Hour, "hour": time.Hour, "minute": time.Minute,
		"second": time.Second, "millisecond": time.Millisecond, "microsecond": time.Microsecond,
	}
	var total time.Duration
	for _, part := range strings.Split(rest, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return 0, false
		}
		v, err := strconv.Atoi(f[0])
		unit, ok := units[strings.TrimSuffix(f[1], "s")]
		if err != nil || v < 0 || !ok {
			return 0, false
		}
		total += time.Duration(v) * unit
	}
	return total, true
}

func connectResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	return "error"
}

// session brings the node up to date and follows changes until the
// connection ends; healthy reports whether the node was fully synced once.
// One timer serves the plan's schedule and the health check.
func (n *node) session(ctx context.Context, c commander) (healthy bool, err error) {
	n.needSync = true
	n.sched.immediate = true
	o := n.m.opt
	nextHealth := n.now().Add(o.HealthInterval)
	timer := n.clk.NewTimer(o.HealthInterval)
	defer timer.Stop()
	for {
		if n.needSync {
			if err := n.addSync(ctx); err != nil {
				n.setError(err)
			} else {
				n.needSync, n.sched.immediate = false, true
			}
		}
		n.takeLate()
		now := n.now()
		if n.due(now) {
			if err := n.execute(ctx, c); err != nil {
				return healthy, err
			}
			if n.plan.empty() && !n.needSync && !n.sched.failing() {
				healthy = true
				n.clearError()
			}
		}
		if n.plan.empty() {
			n.advance(ctx)
		}
		now = n.now()
		if !now.Before(nextHealth) {
			n.fold(ctx) // the change log is polled too, in case a wake-up was missed
			if err := n.checkHealth(ctx, c); err != nil {
				return healthy, err
			}
			nextHealth = n.now().Add(o.HealthInterval)
			continue
		}
		wait := nextHealth.Sub(now)
		if d, ok := n.nextDue(now); ok && d < wait {
			if d <= 0 {
				continue // due already (the clock moved while we worked)
			}
			wait = d
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return healthy, nil
		case <-c.Done():
			return healthy, c.Err()
		case <-n.wake:
			n.fold(ctx)
		case <-timer.C():
		}
	}
}

func (n *node) checkHealth(ctx context.Context, c commander) error {
	hctx, cancel := context.WithTimeout(ctx, n.m.opt.HealthTimeout)
	defer cancel()
	_, err := n.doCtx(hctx, c, fixed(opStatus))
	result := "ok"
	if err != nil {
		result = "failed"
		err = fmt.Errorf("esl: health check of %s: %w", n.addr, err)
	}
	n.m.met.healthChecks.WithLabelValues(n.addr, result).Inc()
	return err
}

// backoff is capped exponential backoff with jitter: each delay is drawn
// from [d/2, d], d doubling from min up to max.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.max
	if b.n < 32 {
		if x := b.min << b.n; x > 0 && x < b.max {
			d = x
		}
	}
	b.n++
	half := d / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.n = 0 }

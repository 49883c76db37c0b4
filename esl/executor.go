package esl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// commander is what running a plan needs of a connection; *conn is one,
// and a test can be another (no socket).
type commander interface {
	// API runs one api command; a transport error ends the connection.
	API(ctx context.Context, line string) (string, error)
	// Done is closed when the connection is failing; Err says why.
	Done() <-chan struct{}
	Err() error
}

var _ commander = (*conn)(nil)

// schedule decides when the plan runs: once changes have been quiet for
// window (at most cap after the first), at once for a sync or a late
// delete, and not before a retry that backoff set.
type schedule struct {
	window, cap         time.Duration
	firstFold, lastFold time.Time
	immediate           bool
	retryAt             time.Time
	retry               backoff
}

// folded notes a change that added to or renewed a step of the plan.
func (s *schedule) folded(now time.Time) {
	if s.firstFold.IsZero() {
		s.firstFold = now
	}
	s.lastFold = now
}

// failing reports whether the last run left refused steps (a retry is set).
func (s *schedule) failing() bool { return !s.retryAt.IsZero() }

// ready reports whether a runnable plan may run now.
func (s *schedule) ready(now time.Time) bool {
	if now.Before(s.retryAt) {
		return false
	}
	if s.immediate || !s.retryAt.IsZero() {
		return true
	}
	return now.Sub(s.lastFold) >= s.window || now.Sub(s.firstFold) >= s.cap
}

// at is when a runnable plan becomes ready.
func (s *schedule) at(now time.Time) time.Time {
	at := s.lastFold.Add(s.window)
	if capAt := s.firstFold.Add(s.cap); capAt.Before(at) {
		at = capAt
	}
	if s.immediate {
		at = now
	}
	if s.retryAt.After(at) {
		at = s.retryAt
	}
	return at
}

// finished records a run: failures set a retry with backoff, success
// clears it; a plan with nothing runnable left starts a new window with
// the next change.
func (s *schedule) finished(now time.Time, failed, runnable bool) {
	if failed {
		s.retryAt = now.Add(s.retry.next())
	} else {
		s.retry.reset()
		s.retryAt = time.Time{}
	}
	if !runnable {
		s.firstFold, s.lastFold = time.Time{}, time.Time{}
	}
}

// due says whether the plan should run now. Restarts waiting out a
// profile's first 10 seconds do not hold anything else back.
func (n *node) due(now time.Time) bool {
	return n.runnable(now) && n.sched.ready(now)
}

// runnable says whether the plan holds a step that may run now.
func (n *node) runnable(now time.Time) bool {
	if n.plan.size() > len(n.plan.restart) {
		return true
	}
	for pr := range n.plan.restart {
		if t, ok := n.started[pr]; !ok || !now.Before(t.Add(profileMinAge)) {
			return true
		}
	}
	return false
}

// nextDue is how long until the plan is due; ok is false for an empty one.
func (n *node) nextDue(now time.Time) (time.Duration, bool) {
	if n.plan.empty() {
		return 0, false
	}
	var at time.Time
	if !n.runnable(now) {
		for pr := range n.plan.restart {
			if t := n.started[pr].Add(profileMinAge); at.IsZero() || t.Before(at) {
				at = t
			}
		}
	} else {
		at = n.sched.at(now)
	}
	return at.Sub(now), true
}

// doCtx runs one command within ctx; a transport error has ended the
// connection, a *ReplyError has not.
func (n *node) doCtx(ctx context.Context, c commander, cmd command) (string, error) {
	start := time.Now()
	reply, err := c.API(ctx, cmd.line())
	n.m.met.cmdSeconds.WithLabelValues(string(cmd.op)).Observe(time.Since(start).Seconds())
	if err != nil {
		n.m.met.commands.WithLabelValues(n.addr, string(cmd.op), "error").Inc()
		return "", err
	}
	if err := cmd.check(reply); err != nil {
		n.m.met.commands.WithLabelValues(n.addr, string(cmd.op), "failed").Inc()
		return reply, err
	}
	n.m.met.commands.WithLabelValues(n.addr, string(cmd.op), "ok").Inc()
	return reply, nil
}

func (n *node) do(ctx context.Context, c commander, cmd command) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, n.m.opt.CommandTimeout)
	defer cancel()
	return n.doCtx(cctx, c, cmd)
}

func isReplyErr(err error) bool {
	var re *ReplyError
	return errors.As(err, &re)
}

// execution is one run of the plan on one connection.
type execution struct {
	n      *node
	c      commander
	p      *plan
	failed []error
	// killFailed holds the rescans back: re-adding a gateway FreeSWITCH
	// did not kill would fail ("Ignoring duplicate gateway").
	killFailed bool
}

// step runs one kind of command. A *ReplyError is collected (the step
// stays owed); any other error is a transport error and ends the run.
// stop ends the run early when later steps depend on this one.
type step func(ctx context.Context) (stop bool, err error)

// execute runs what the plan owes, in dependency order: mod_sofia, profiles,
// killgw, the wait for deleted registering gateways, rescans, restarts,
// cache flushes, reloadacl. A step FreeSWITCH refuses stays for a retry
// with backoff; a transport error ends the session (the plan survives it).
func (n *node) execute(ctx context.Context, c commander) error {
	p := n.plan
	if !p.oldest.IsZero() {
		n.m.met.applyDelay.Observe(n.now().Sub(p.oldest).Seconds())
		p.oldest = time.Time{}
	}
	n.sched.immediate = false
	x := &execution{n: n, c: c, p: p}
	for _, s := range []step{x.sofia, x.profiles, x.kills, x.rescans, x.reloadCerts, x.restarts, x.flushes, x.acl} {
		stop, err := s(ctx)
		if err != nil {
			return err
		}
		if stop {
			break
		}
	}
	n.finish(x.failed)
	return nil
}

// fail collects err when FreeSWITCH refused; anything else is returned.
func (x *execution) fail(err error) error {
	if !isReplyErr(err) {
		return err
	}
	x.failed = append(x.failed, err)
	return nil
}

func (x *execution) sofia(ctx context.Context) (bool, error) {
	if !x.p.loadSofia {
		return false, nil
	}
	if err := x.n.ensureSofia(ctx, x.c); err != nil {
		return true, x.fail(err)
	}
	x.p.loadSofia = false
	return false, nil
}

func (x *execution) profiles(ctx context.Context) (bool, error) {
	p, n := x.p, x.n
	if len(p.start) == 0 {
		return false, nil
	}
	reply, err := n.do(ctx, x.c, fixed(opXMLStatus))
	if err != nil && !isReplyErr(err) {
		return true, err
	}
	running := map[string]bool{}
	if err == nil {
		running, err = runningProfiles(reply)
	}
	if err != nil {
		if errors.Is(err, ErrNoSofia) {
			p.loadSofia = true
		}
		x.failed = append(x.failed, err)
		return true, nil
	}
	for _, pr := range sortedKeys(p.start) {
		if running[pr] {
			delete(p.start, pr)
			continue
		}
		cmd, _ := profileCmd(opStart, pr) // names were checked when planned
		if _, err := n.do(ctx, x.c, cmd); err != nil {
			if err := x.fail(err); err != nil {
				return true, err
			}
			continue
		}
		n.started[pr] = n.now()
		delete(p.start, pr)
	}
	return false, nil
}

// kills sends killgw for every gateway owed one, then waits (DeleteWait at
// most) for the sofia::gateway_delete of each registering one before the
// rescans re-add it.
func (x *execution) kills(ctx context.Context) (bool, error) {
	p, n := x.p, x.n
	type waiting struct {
		gateway string
		ch      chan struct{}
	}
	var waits []waiting
	for _, gw := range sortedKeys(p.kill) {
		k := p.kill[gw]
		var ch chan struct{}
		if k.wait && len(p.rescan) > 0 {
			ch = n.expectDelete(gw)
		}
		cmd, _ := killCmd(k.profile, gw)
		reply, err := n.do(ctx, x.c, cmd)
		switch {
		case err == nil && strings.HasPrefix(strings.TrimSpace(reply), "+OK"):
			if ch != nil {
				waits = append(waits, waiting{gw, ch})
			}
			delete(p.kill, gw)
			continue
		case err == nil, errors.Is(err, ErrProfileNotRunning):
			// No such gateway, or its profile is gone with it.
			delete(p.kill, gw)
		case !isReplyErr(err):
			n.cancelDelete(gw)
			return true, err
		default:
			x.killFailed = true
			x.failed = append(x.failed, err)
		}
		n.cancelDelete(gw)
	}
	if len(waits) == 0 {
		return false, nil
	}
	deadline := n.clk.NewTimer(n.m.opt.DeleteWait)
	for _, w := range waits {
		select {
		case <-w.ch:
			n.m.met.deleteWaits.WithLabelValues(n.addr, "event").Inc()
			continue
		case <-deadline.C():
		case <-ctx.Done():
		case <-x.c.Done():
		}
		break
	}
	deadline.Stop()
	// Whatever did not go in time: rescan now (the fallback) and once more
	// when its delete arrives.
	profiles := sortedKeys(p.rescan)
	n.mu.Lock()
	for _, w := range waits {
		select {
		case <-w.ch:
		default:
			n.m.met.deleteWaits.WithLabelValues(n.addr, "timeout").Inc()
			delete(n.waiters, w.gateway)
			n.late[w.gateway] = profiles
		}
	}
	n.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return true, err
	}
	select {
	case <-x.c.Done():
		return true, x.c.Err()
	default:
	}
	return false, nil
}

func (x *execution) rescans(ctx context.Context) (bool, error) {
	p := x.p
	if x.killFailed {
		return false, nil
	}
	for _, pr := range sortedKeys(p.rescan) {
		cmd, _ := profileCmd(opRescan, pr)
		if _, err := x.n.do(ctx, x.c, cmd); err != nil {
			switch {
			case !isReplyErr(err):
				return true, err
			case errors.Is(err, ErrProfileNotRunning):
				p.start[pr] = true
			case errors.Is(err, ErrNoSofia):
				p.loadSofia = true
			}
			x.failed = append(x.failed, err)
			continue
		}
		delete(p.rescan, pr)
	}
	return false, nil
}

// reloadCerts tells FreeSWITCH that certificate files were replaced:
// `reloadcert` once for all profiles; a FreeSWITCH without it (before
// 1.11.1) gets the profiles restarted when restarts are allowed, or else
// they are reported as needing a restart (NodeStatus.RestartNeeded).
func (x *execution) reloadCerts(ctx context.Context) (bool, error) {
	p, n := x.p, x.n
	if len(p.reloadCert) == 0 {
		return false, nil
	}
	reply, err := n.do(ctx, x.c, fixed(opReloadCert))
	switch {
	case err == nil:
		clear(p.reloadCert)
		return false, nil
	case !isReplyErr(err):
		return true, err
	case !strings.Contains(reply, "Command not found"):
		x.failed = append(x.failed, err)
		return false, nil
	}
	for _, pr := range sortedKeys(p.reloadCert) {
		if n.m.opt.AllowRestart {
			p.restart[pr] = true
			continue
		}
		n.markRestartNeeded(pr)
		n.log.Warn("operator action needed", "what", fmt.Sprintf(
			"profile %q: its TLS certificate was replaced, but this FreeSWITCH has no reloadcert; restart the profile (restarts are not allowed: FSPLANE_ESL_ALLOW_RESTART)", pr))
		n.m.met.notices.WithLabelValues(n.addr).Inc()
	}
	clear(p.reloadCert)
	return false, nil
}

func (x *execution) restarts(ctx context.Context) (bool, error) {
	p, n := x.p, x.n
	for _, pr := range sortedKeys(p.restart) {
		if t, ok := n.started[pr]; ok && n.now().Before(t.Add(profileMinAge)) {
			continue // too young: runnable and nextDue bring it back in time
		}
		cmd, _ := profileCmd(opRestart, pr)
		reply, err := n.do(ctx, x.c, cmd)
		switch {
		case err == nil:
			n.started[pr] = n.now()
			delete(p.restart, pr)
			n.clearRestartNeeded(pr, time.Time{})
		case !isReplyErr(err):
			return true, err
		case errors.Is(err, ErrTooEarly):
			// FreeSWITCH knows when it started the profile; fsplane did not.
			at := n.now().Add(time.Duration(waitSeconds(reply))*time.Second + 500*time.Millisecond)
			n.started[pr] = at.Add(-profileMinAge)
		case errors.Is(err, ErrProfileNotRunning):
			p.start[pr] = true // starting it reads the new bindings
			delete(p.restart, pr)
			x.failed = append(x.failed, err)
		default:
			x.failed = append(x.failed, err)
		}
	}
	return false, nil
}

func (x *execution) flushes(ctx context.Context) (bool, error) {
	p := x.p
	for _, k := range sortedUsers(p.flush) {
		cmd, err := flushCmd(k.user, k.domain)
		if err == nil {
			_, err = x.n.do(ctx, x.c, cmd)
		}
		if err != nil {
			if !isReplyErr(err) && !errors.Is(err, ErrInvalidValue) {
				return true, err
			}
			x.failed = append(x.failed, err)
			continue
		}
		delete(p.flush, k)
	}
	return false, nil
}

func (x *execution) acl(ctx context.Context) (bool, error) {
	if !x.p.reloadACL {
		return false, nil
	}
	if _, err := x.n.do(ctx, x.c, fixed(opReloadACL)); err != nil {
		return true, x.fail(err)
	}
	x.p.reloadACL = false
	return false, nil
}

// finish schedules what is left: a retry with backoff after failures;
// restarts deferred by the 10-second rule come back through runnable.
func (n *node) finish(failed []error) {
	now := n.now()
	n.sched.finished(now, len(failed) > 0, n.runnable(now))
	if len(failed) > 0 {
		err := errors.Join(failed...)
		n.setError(err)
		n.log.Warn("FreeSWITCH refused commands; retrying", "err", err, "retry_at", n.sched.retryAt)
	}
	n.setPending()
}

func (n *node) ensureSofia(ctx context.Context, c commander) error {
	reply, err := n.do(ctx, c, fixed(opModuleExists))
	if err != nil {
		return err
	}
	if strings.TrimSpace(reply) == "true" {
		return nil
	}
	n.log.Warn("mod_sofia is not loaded; loading it")
	_, err = n.do(ctx, c, fixed(opLoadSofia))
	return err
}

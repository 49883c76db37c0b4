package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsplane/fsplane/models"
)

// node is one FreeSWITCH event socket and the loop that keeps it connected
// and up to date. Fields under mu are shared with event delivery, Nodes and
// GatewayStatus; the rest belong to the loop goroutine.
type node struct {
	m    *Manager
	addr string
	log  *slog.Logger
	wake chan struct{} // a change was committed, or a late delete arrived

	mu         sync.Mutex
	st         NodeStatus
	c          *conn
	switchname string
	gws        map[string]gwState
	waiters    map[string]chan struct{} // gateway → closed by its sofia::gateway_delete
	late       map[string][]string      // gateway given up on → profiles to rescan when it goes
	lateRescan map[string]bool

	// Loop-owned.
	durable   uint64               // persisted cursor: everything up to it reached the node
	maxSeen   uint64               // newest change folded into the plan
	missing   map[uint64]time.Time // IDs below maxSeen not seen yet (in-flight or rolled back)
	loaded    bool                 // cursor read from the store
	plan      *plan
	needSync  bool
	immediate bool // run the plan without waiting for the coalescing window
	firstFold time.Time
	lastFold  time.Time
	retryAt   time.Time
	retry     backoff
	started   map[string]time.Time // profile → when it (re)started, as far as fsplane knows
}

func newNode(m *Manager, addr string) *node {
	n := &node{
		m: m, addr: addr, log: m.log.With("node", addr), wake: make(chan struct{}, 1),
		gws: map[string]gwState{}, waiters: map[string]chan struct{}{}, late: map[string][]string{},
		lateRescan: map[string]bool{}, missing: map[uint64]time.Time{}, plan: newPlan(),
		retry: backoff{min: m.opt.BackoffMin, max: m.opt.BackoffMax}, started: map[string]time.Time{},
	}
	n.st = NodeStatus{Node: addr, State: StateConnecting, Since: m.now()}
	m.met.up.WithLabelValues(addr).Set(0)
	return n
}

func (n *node) now() time.Time { return n.m.now() }

func (n *node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *node) status() NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.st
	st.Switchname = n.switchname
	return st
}

func (n *node) setState(state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st.State != state {
		n.st.State, n.st.Since = state, n.now()
	}
	up := 0.0
	if state == StateConnected {
		up = 1
	}
	n.m.met.up.WithLabelValues(n.addr).Set(up)
}

// setError records the most recent problem; it stays, with its time, until
// another replaces it (State and Pending say whether the node is fine now).
func (n *node) setError(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.st.LastError = err.Error()
	n.st.LastErrorAt = n.now()
}

func (n *node) setPending() {
	size := n.plan.size()
	n.mu.Lock()
	n.st.Pending = size
	n.st.AppliedChangeID = n.durable
	n.mu.Unlock()
	n.m.met.pending.WithLabelValues(n.addr).Set(float64(size))
	n.m.met.applied.WithLabelValues(n.addr).Set(float64(n.durable))
}

// run is the node's loop: connect, bring up to date, follow changes, and
// reconnect with capped, jittered backoff, until ctx ends.
func (n *node) run(ctx context.Context) {
	dialBackoff := backoff{min: n.m.opt.BackoffMin, max: n.m.opt.BackoffMax}
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
		n.pause(ctx, dialBackoff.next())
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
	if !n.loaded {
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
		n.c = nil
		n.mu.Unlock()
	}()
	return n.session(ctx, c)
}

// pause sleeps d; changes committed meanwhile are folded into the plan, so
// Pending stays true while the node is away.
func (n *node) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-n.wake:
			if n.loaded {
				n.fold(ctx)
			}
		}
	}
}

func (n *node) loadCursor(ctx context.Context) error {
	id, ok, err := n.m.store.ESLCursor(ctx, n.addr)
	if err != nil {
		return err
	}
	if !ok {
		// A node fsplane never brought up to date: the full sync on connect
		// covers the past; follow from the newest change.
		if id, err = n.m.store.LastChangeID(ctx); err != nil {
			return fmt.Errorf("esl: newest change ID: %w", err)
		}
		if err := n.m.store.SaveESLCursor(ctx, n.addr, id); err != nil {
			return err
		}
	}
	n.durable, n.maxSeen, n.loaded = id, id, true
	n.setPending()
	return nil
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
	n.mu.Lock()
	n.c = c
	if err == nil {
		n.switchname = strings.TrimSpace(name)
	}
	n.mu.Unlock()
	n.setState(StateConnected)
	n.log.Info("FreeSWITCH event socket connected", "switchname", strings.TrimSpace(name))
	return c, nil
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
func (n *node) session(ctx context.Context, c *conn) (healthy bool, err error) {
	n.needSync, n.immediate = true, true
	health := time.NewTicker(n.m.opt.HealthInterval)
	defer health.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if n.needSync {
			if err := n.addSync(ctx); err != nil {
				n.setError(err)
			} else {
				n.needSync, n.immediate = false, true
			}
		}
		n.takeLate()
		if n.due(n.now()) {
			if err := n.execute(ctx, c); err != nil {
				return healthy, err
			}
			if n.plan.empty() && !n.needSync {
				healthy = true
			}
		}
		if n.plan.empty() {
			n.advance(ctx)
		}
		var timerC <-chan time.Time
		if d, ok := n.nextDue(n.now()); ok {
			timer.Reset(d)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return healthy, nil
		case <-c.Done():
			return healthy, c.Err()
		case <-n.wake:
			n.fold(ctx)
		case <-timerC:
		case <-health.C:
			n.fold(ctx) // the change log is polled too, in case a wake-up was missed
			if err := n.checkHealth(ctx, c); err != nil {
				return healthy, err
			}
		}
	}
}

func (n *node) checkHealth(ctx context.Context, c *conn) error {
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

// fold reads the changes committed after what the plan holds and folds
// them in. Errors leave the remaining changes for the next try.
func (n *node) fold(ctx context.Context) {
	for {
		evs, err := n.m.store.ChangesSince(ctx, n.maxSeen, 1000)
		if err != nil {
			n.setError(fmt.Errorf("esl: read change log: %w", err))
			return
		}
		for _, ev := range evs {
			if ev.ID > n.maxSeen+1 {
				n.noteGap(n.maxSeen+1, ev.ID-1)
			}
			if !n.foldOne(ctx, ev) {
				return
			}
			n.maxSeen = ev.ID
		}
		if len(evs) < 1000 {
			break
		}
	}
	if len(n.missing) > 0 {
		ids := make([]uint64, 0, len(n.missing))
		for id := range n.missing {
			ids = append(ids, id)
		}
		evs, err := n.m.store.ChangesIn(ctx, ids)
		if err != nil {
			n.setError(fmt.Errorf("esl: read change log: %w", err))
			return
		}
		for _, ev := range evs {
			if n.foldOne(ctx, ev) {
				delete(n.missing, ev.ID)
			}
		}
	}
	n.setPending()
}

// noteGap remembers change IDs that were skipped: on PostgreSQL a
// transaction can take an ID and commit after a later one.
func (n *node) noteGap(from, to uint64) {
	if to-from >= 1000 {
		return // not in-flight transactions: a sequence jump
	}
	now := n.now()
	for id := from; id <= to; id++ {
		n.missing[id] = now
	}
}

func (n *node) foldOne(ctx context.Context, ev models.ChangeEvent) bool {
	n.mu.Lock()
	sw := n.switchname
	n.mu.Unlock()
	before := n.plan.touches
	err := n.plan.add(ev, planEnv{
		switchname: sw, allowRestart: n.m.opt.AllowRestart,
		trunkHosts: func(id uint) ([]string, bool, error) {
			t, err := n.m.store.GetTrunk(ctx, id)
			if errors.Is(err, models.ErrNotFound) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			return t.Hostnames, true, nil
		},
	})
	if err != nil {
		n.setError(err)
		return false
	}
	n.report()
	if n.plan.touches > before {
		// Also when the step was owed already: a burst keeps the window
		// open until it is over.
		now := n.now()
		if n.firstFold.IsZero() {
			n.firstFold = now
		}
		n.lastFold = now
	}
	return true
}

// report logs and counts what planning refused or left to the operator.
func (n *node) report() {
	for _, err := range n.plan.refused {
		n.m.met.refused.WithLabelValues(n.addr).Inc()
		n.log.Error("change not applied: value cannot go on an ESL command line", "err", err)
		n.setError(err)
	}
	for _, s := range n.plan.notices {
		n.m.met.notices.WithLabelValues(n.addr).Inc()
		n.log.Warn("operator action needed", "what", s)
	}
	n.plan.refused, n.plan.notices = nil, nil
}

func (n *node) addSync(ctx context.Context) error {
	profiles, err := n.m.store.ListProfiles(ctx)
	if err != nil {
		return fmt.Errorf("esl: list profiles for sync: %w", err)
	}
	trunks, err := n.m.store.EnabledTrunks(ctx, "")
	if err != nil {
		return fmt.Errorf("esl: list trunks for sync: %w", err)
	}
	n.mu.Lock()
	sw := n.switchname
	n.mu.Unlock()
	n.plan.addSync(profiles, trunks, sw)
	n.report()
	n.setPending()
	return nil
}

func (n *node) takeLate() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p := range n.lateRescan {
		n.plan.rescan[p] = true
		n.immediate = true
	}
	clear(n.lateRescan)
}

// due says whether the plan should run now: after the coalescing window
// (or its cap), at once for a sync or a late delete, and not before a
// scheduled retry. Restarts waiting out a profile's first 10 seconds do not
// hold anything else back.
func (n *node) due(now time.Time) bool {
	if !n.runnable(now) || now.Before(n.retryAt) {
		return false
	}
	if n.immediate || !n.retryAt.IsZero() {
		return true
	}
	o := n.m.opt
	return now.Sub(n.lastFold) >= o.CoalesceWindow || now.Sub(n.firstFold) >= o.CoalesceMax
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
		at = n.lastFold.Add(n.m.opt.CoalesceWindow)
		if capAt := n.firstFold.Add(n.m.opt.CoalesceMax); capAt.Before(at) {
			at = capAt
		}
		if n.immediate {
			at = now
		}
		if n.retryAt.After(at) {
			at = n.retryAt
		}
	}
	return max(at.Sub(now), time.Millisecond), true
}

// advance moves the cursor up to the newest change that has reached the
// node, stopping below any ID still missing (unless it is overdue).
func (n *node) advance(ctx context.Context) {
	now := n.now()
	for id, since := range n.missing {
		if now.Sub(since) >= n.m.opt.GapGrace {
			delete(n.missing, id)
		}
	}
	target := n.maxSeen
	for id := range n.missing {
		if id-1 < target {
			target = id - 1
		}
	}
	if target <= n.durable {
		return
	}
	if err := n.m.store.SaveESLCursor(ctx, n.addr, target); err != nil {
		n.setError(err)
		return
	}
	n.durable = target
	n.setPending()
}

// doCtx runs one command within ctx; a transport error has ended the
// connection, a *ReplyError has not.
func (n *node) doCtx(ctx context.Context, c *conn, cmd command) (string, error) {
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

func (n *node) do(ctx context.Context, c *conn, cmd command) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, n.m.opt.CommandTimeout)
	defer cancel()
	return n.doCtx(cctx, c, cmd)
}

func isReplyErr(err error) bool {
	var re *ReplyError
	return errors.As(err, &re)
}

// execute runs what the plan owes, in dependency order: mod_sofia, profiles,
// killgw, the wait for deleted registering gateways, rescans, restarts,
// cache flushes, reloadacl. A step FreeSWITCH refuses stays for a retry
// with backoff; a transport error ends the session (the plan survives it).
func (n *node) execute(ctx context.Context, c *conn) error {
	p := n.plan
	now := n.now()
	if !p.oldest.IsZero() {
		n.m.met.applyDelay.Observe(now.Sub(p.oldest).Seconds())
		p.oldest = time.Time{}
	}
	n.immediate = false
	var failed []error
	fail := func(err error) { failed = append(failed, err) }

	if p.loadSofia {
		if err := n.ensureSofia(ctx, c); err != nil {
			if !isReplyErr(err) {
				return err
			}
			fail(err)
			return n.finish(failed)
		}
		p.loadSofia = false
	}

	if len(p.start) > 0 {
		reply, err := n.do(ctx, c, fixed(opXMLStatus))
		if err != nil && !isReplyErr(err) {
			return err
		}
		running := map[string]bool{}
		if err == nil {
			running, err = runningProfiles(reply)
		}
		if err != nil {
			if errors.Is(err, ErrNoSofia) {
				p.loadSofia = true
			}
			fail(err)
			return n.finish(failed)
		}
		for _, pr := range sortedKeys(p.start) {
			if running[pr] {
				delete(p.start, pr)
				continue
			}
			cmd, _ := profileCmd(opStart, pr) // names were checked when planned
			if _, err := n.do(ctx, c, cmd); err != nil {
				if !isReplyErr(err) {
					return err
				}
				fail(err)
				continue
			}
			n.started[pr] = n.now()
			delete(p.start, pr)
		}
	}

	type waiting struct {
		gateway string
		ch      chan struct{}
	}
	var waits []waiting
	killFailed := false
	for _, gw := range sortedKeys(p.kill) {
		k := p.kill[gw]
		var ch chan struct{}
		if k.wait && len(p.rescan) > 0 {
			ch = n.expectDelete(gw)
		}
		cmd, _ := killCmd(k.profile, gw)
		reply, err := n.do(ctx, c, cmd)
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
			return err
		default:
			killFailed = true
			fail(err)
		}
		n.cancelDelete(gw)
	}

	if len(waits) > 0 {
		deadline := time.NewTimer(n.m.opt.DeleteWait)
		for _, w := range waits {
			select {
			case <-w.ch:
				n.m.met.deleteWaits.WithLabelValues(n.addr, "event").Inc()
				continue
			case <-deadline.C:
			case <-ctx.Done():
			case <-c.Done():
			}
			break
		}
		deadline.Stop()
		// Whatever did not go in time: rescan now (the fallback) and once
		// more when its delete arrives.
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
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-c.Done():
			return c.Err()
		default:
		}
	}

	if !killFailed {
		for _, pr := range sortedKeys(p.rescan) {
			cmd, _ := profileCmd(opRescan, pr)
			if _, err := n.do(ctx, c, cmd); err != nil {
				switch {
				case !isReplyErr(err):
					return err
				case errors.Is(err, ErrProfileNotRunning):
					p.start[pr] = true
				case errors.Is(err, ErrNoSofia):
					p.loadSofia = true
				}
				fail(err)
				continue
			}
			delete(p.rescan, pr)
		}
	}

	for _, pr := range sortedKeys(p.restart) {
		if t, ok := n.started[pr]; ok && n.now().Before(t.Add(profileMinAge)) {
			continue // too young: runnable and nextDue bring it back in time
		}
		cmd, _ := profileCmd(opRestart, pr)
		reply, err := n.do(ctx, c, cmd)
		switch {
		case err == nil:
			n.started[pr] = n.now()
			delete(p.restart, pr)
		case !isReplyErr(err):
			return err
		case errors.Is(err, ErrTooEarly):
			// FreeSWITCH knows when it started the profile; fsplane did not.
			at := n.now().Add(time.Duration(waitSeconds(reply))*time.Second + 500*time.Millisecond)
			n.started[pr] = at.Add(-profileMinAge)
		case errors.Is(err, ErrProfileNotRunning):
			p.start[pr] = true // starting it reads the new bindings
			delete(p.restart, pr)
			fail(err)
		default:
			fail(err)
		}
	}

	for _, k := range sortedUsers(p.flush) {
		cmd, err := flushCmd(k.user, k.domain)
		if err == nil {
			_, err = n.do(ctx, c, cmd)
		}
		if err != nil {
			if !isReplyErr(err) && !errors.Is(err, ErrInvalidValue) {
				return err
			}
			fail(err)
			continue
		}
		delete(p.flush, k)
	}
	if p.reloadACL {
		if _, err := n.do(ctx, c, fixed(opReloadACL)); err != nil {
			if !isReplyErr(err) {
				return err
			}
			fail(err)
		} else {
			p.reloadACL = false
		}
	}

	return n.finish(failed)
}

// finish schedules what is left: a retry with backoff after failures;
// restarts deferred by the 10-second rule come back through runnable.
func (n *node) finish(failed []error) error {
	now := n.now()
	if len(failed) > 0 {
		err := errors.Join(failed...)
		n.retryAt = now.Add(n.retry.next())
		n.setError(err)
		n.log.Warn("FreeSWITCH refused commands; retrying", "err", err, "retry_at", n.retryAt)
	} else {
		n.retry.reset()
		n.retryAt = time.Time{}
	}
	if !n.runnable(now) {
		// Empty, or only waiting restarts: the next change starts a new
		// coalescing window.
		n.firstFold, n.lastFold = time.Time{}, time.Time{}
	}
	n.setPending()
	return nil
}

func (n *node) ensureSofia(ctx context.Context, c *conn) error {
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

// expectDelete returns a channel closed when gateway's
// sofia::gateway_delete arrives; register before sending killgw.
func (n *node) expectDelete(gateway string) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := make(chan struct{})
	n.waiters[gateway] = ch
	delete(n.late, gateway)
	return ch
}

func (n *node) cancelDelete(gateway string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.waiters, gateway)
}

// handleEvent runs on the connection's event dispatcher, in FreeSWITCH's
// order; it must not block.
func (n *node) handleEvent(ev Event) {
	sub := ev.Subclass()
	n.m.met.events.WithLabelValues(n.addr, sub).Inc()
	gw := ev.Get("Gateway")
	if gw == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch sub {
	case "sofia::gateway_state":
		g := n.gws[gw]
		g.state, g.ping, g.at, g.fromEvent = ev.Get("State"), ev.Get("Ping-Status"), n.now(), true
		n.gws[gw] = g
	case "sofia::gateway_delete":
		delete(n.gws, gw)
		if ch, ok := n.waiters[gw]; ok {
			close(ch)
			delete(n.waiters, gw)
		}
		if profiles, ok := n.late[gw]; ok {
			delete(n.late, gw)
			for _, p := range profiles {
				n.lateRescan[p] = true
			}
			select {
			case n.wake <- struct{}{}:
			default:
			}
		}
	}
}

// gatewayStatus answers for one node; ok is false when the trunk is not
// meant for it.
func (n *node) gatewayStatus(ctx context.Context, t models.Trunk, cmd command) (GatewayStatus, bool) {
	n.mu.Lock()
	c, sw := n.c, n.switchname
	n.mu.Unlock()
	if sw != "" && !belongs(t.Hostnames, sw) {
		return GatewayStatus{}, false
	}
	gs := GatewayStatus{Node: n.addr, Gateway: t.Name, Register: t.Register}
	fromCache := func(detail string) GatewayStatus {
		n.mu.Lock()
		g, ok := n.gws[t.Name]
		n.mu.Unlock()
		if ok {
			gs.State, gs.Status, gs.Profile, gs.ObservedAt, gs.Uptime = g.state, g.ping, g.profile, g.at, g.uptime
			source := "the last query"
			if g.fromEvent {
				source = "the last sofia::gateway_state event"
			}
			gs.Detail = detail + "; last known state, from " + source
		} else {
			gs.State, gs.ObservedAt, gs.Detail = GatewayUnknown, n.now(), detail
		}
		gs.Healthy = healthy(t, gs.State, gs.Status)
		return gs
	}
	if c == nil {
		return fromCache("node not connected"), true
	}
	// The caller going away must not abort the command mid-flight: that
	// would drop the node's connection (and resync it).
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.m.opt.HealthTimeout)
	defer cancel()
	reply, err := n.doCtx(qctx, c, cmd)
	if err != nil {
		return fromCache("query failed: " + err.Error()), true
	}
	gs.ObservedAt = n.now()
	if strings.HasPrefix(strings.TrimSpace(reply), "Invalid Gateway") {
		gs.State, gs.Detail = GatewayAbsent, "gateway not loaded on this node"
		gs.Healthy = healthy(t, gs.State, "")
		return gs, true
	}
	g, err := parseGateway(reply)
	if err != nil {
		return fromCache(err.Error()), true
	}
	gs.Profile, gs.State, gs.Status, gs.Uptime = g.Profile, g.State, g.Status, g.UptimeUsec/1e6
	if g.Retry != "" {
		gs.Detail = "retry in " + g.Retry
	}
	gs.Healthy = healthy(t, gs.State, gs.Status)
	n.mu.Lock()
	n.gws[t.Name] = gwState{profile: g.Profile, state: g.State, ping: g.Status, uptime: gs.Uptime, at: gs.ObservedAt}
	n.mu.Unlock()
	return gs, true
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedUsers(m map[userKey]bool) []userKey {
	out := make([]userKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b userKey) int {
		return strings.Compare(a.user+"@"+a.domain, b.user+"@"+b.domain)
	})
	return out
}

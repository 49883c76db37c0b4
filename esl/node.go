package esl

import (
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// node is one FreeSWITCH event socket and the loop that keeps it connected
// and up to date. Its parts live in their own files: the connection's life
// (lifecycle.go), the change log and the cursor (cursor.go), running the
// plan (executor.go), FreeSWITCH's events (events.go) and gateway status
// (gwstatus.go). Fields under mu are shared with event delivery, Nodes and
// GatewayStatus; the rest belong to the loop goroutine.
type node struct {
	m    *Manager
	addr string
	log  *slog.Logger
	clk  Clock
	wake chan struct{} // a change was committed, or a late delete arrived

	mu         sync.Mutex
	st         NodeStatus
	stickyErr  bool      // LastError is a refused value: a healthy node does not clear it
	c          commander // nil while not connected
	switchname string
	fsStarted  time.Time // when FreeSWITCH started, learned at connect; zero when unknown
	gws        map[string]gwState
	waiters    map[string]chan struct{} // gateway → closed by its sofia::gateway_delete
	late       map[string][]string      // gateway given up on → profiles to rescan when it goes
	lateRescan map[string]bool
	// restartNeeded: profile → when fsplane found it must restart to read
	// replaced certificate files (NodeStatus.RestartNeeded).
	restartNeeded map[string]time.Time

	seen atomic.Uint64 // cur.gaps.Max, readable from outside the loop

	// Loop-owned.
	cur      cursor
	plan     *plan
	needSync bool
	sched    schedule
	started  map[string]time.Time // profile → when it (re)started, as far as fsplane knows
}

func newNode(m *Manager, addr string) *node {
	n := &node{
		m: m, addr: addr, log: m.log.With("node", addr), clk: m.opt.Time, wake: make(chan struct{}, 1),
		gws: map[string]gwState{}, waiters: map[string]chan struct{}{}, late: map[string][]string{},
		lateRescan: map[string]bool{}, restartNeeded: map[string]time.Time{},
	}
	n.newTerm()
	n.st = NodeStatus{Node: addr, State: StateStandby, Since: m.now()}
	m.met.up.WithLabelValues(addr).Set(0)
	return n
}

// newTerm forgets what the loop knew from a previous Run: the cursor is
// read from the database again (another replica may have led meanwhile),
// and the plan, its schedule and the waits for gateway deletes start
// empty; the connect's sync covers what FreeSWITCH may have lost.
func (n *node) newTerm() {
	o := n.m.opt
	n.cur = cursor{}
	n.plan = newPlan()
	n.needSync = false
	n.sched = schedule{window: o.CoalesceWindow, cap: o.CoalesceMax, retry: backoff{min: o.BackoffMin, max: o.BackoffMax}}
	n.started = map[string]time.Time{}
	n.mu.Lock()
	clear(n.waiters)
	clear(n.late)
	clear(n.lateRescan)
	n.st.State, n.st.Since = StateConnecting, n.now()
	n.mu.Unlock()
	select {
	case <-n.wake:
	default:
	}
}

func (n *node) now() time.Time { return n.clk.Now() }

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
	st.RestartNeeded = sortedKeys(n.restartNeeded)
	return st
}

func (n *node) markRestartNeeded(profile string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.restartNeeded[profile] = n.now()
}

// clearRestartNeeded forgets profile (every profile for ""), provided it
// was marked before restartedAt (zero: whenever).
func (n *node) clearRestartNeeded(profile string, restartedAt time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for pr, at := range n.restartNeeded {
		if (profile == "" || pr == profile) && (restartedAt.IsZero() || at.Before(restartedAt)) {
			delete(n.restartNeeded, pr)
		}
	}
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

// standby ends a term: the node is not driven by this replica, and owes
// nothing here (the leader's plan is its own).
func (n *node) standby() {
	n.setState(StateStandby)
	n.mu.Lock()
	n.st.Pending = 0
	n.mu.Unlock()
	n.m.met.pending.WithLabelValues(n.addr).Set(0)
}

// setError records the current problem: a connection or a command that
// failed. It stays until the node is healthy again (clearError) or another
// replaces it.
func (n *node) setError(err error) { n.recordError(err, false) }

// setRefusal records a value that can never go on a command line: no retry
// heals it, so only another error replaces it.
func (n *node) setRefusal(err error) { n.recordError(err, true) }

func (n *node) recordError(err error, sticky bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.st.LastError = err.Error()
	n.st.LastErrorAt = n.now()
	n.stickyErr = sticky
}

// clearError is called when the node is connected, synced and owes
// nothing: the last problem is over, and is shown as PreviousError.
func (n *node) clearError() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st.LastError == "" || n.stickyErr {
		return
	}
	n.st.PreviousError, n.st.PreviousErrorAt = n.st.LastError, n.st.LastErrorAt
	n.st.LastError, n.st.LastErrorAt = "", time.Time{}
}

func (n *node) setPending() {
	size := n.plan.size()
	n.mu.Lock()
	n.st.Pending = size
	n.st.AppliedChangeID = n.cur.durable
	n.mu.Unlock()
	n.seen.Store(n.cur.gaps.Max)
	n.m.met.pending.WithLabelValues(n.addr).Set(float64(size))
	n.m.met.applied.WithLabelValues(n.addr).Set(float64(n.cur.durable))
}

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

package esl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fsplane/fsplane/models"
)

// cursor is a node's progress through the change log.
type cursor struct {
	durable uint64               // persisted: everything up to it reached the node
	maxSeen uint64               // newest change folded into the plan
	missing map[uint64]time.Time // IDs below maxSeen not seen yet (in flight or rolled back) → when noticed
	loaded  bool                 // durable read from the store
}

// noteGap remembers change IDs that were skipped: on PostgreSQL a
// transaction can take an ID and commit after a later one.
func (c *cursor) noteGap(from, to uint64, now time.Time) {
	if to-from >= 1000 {
		return // not in-flight transactions: a sequence jump
	}
	for id := from; id <= to; id++ {
		c.missing[id] = now
	}
}

// target is how far the cursor may move once everything folded in reached
// the node: up to maxSeen, but below any ID still missing, unless it has
// been missing for grace (then it was rolled back, and is forgotten).
func (c *cursor) target(now time.Time, grace time.Duration) uint64 {
	for id, since := range c.missing {
		if now.Sub(since) >= grace {
			delete(c.missing, id)
		}
	}
	t := c.maxSeen
	for id := range c.missing {
		if id-1 < t {
			t = id - 1
		}
	}
	return t
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
	n.cur.durable, n.cur.maxSeen, n.cur.loaded = id, id, true
	n.setPending()
	return nil
}

// fold reads the changes committed after what the plan holds and folds
// them in. Errors leave the remaining changes for the next try.
func (n *node) fold(ctx context.Context) {
	for {
		evs, err := n.m.store.ChangesSince(ctx, n.cur.maxSeen, 1000)
		if err != nil {
			n.setError(fmt.Errorf("esl: read change log: %w", err))
			return
		}
		for _, ev := range evs {
			if ev.ID > n.cur.maxSeen+1 {
				n.cur.noteGap(n.cur.maxSeen+1, ev.ID-1, n.now())
			}
			if !n.foldOne(ctx, ev) {
				return
			}
			n.cur.maxSeen = ev.ID
		}
		if len(evs) < 1000 {
			break
		}
	}
	if len(n.cur.missing) > 0 {
		ids := make([]uint64, 0, len(n.cur.missing))
		for id := range n.cur.missing {
			ids = append(ids, id)
		}
		evs, err := n.m.store.ChangesIn(ctx, ids)
		if err != nil {
			n.setError(fmt.Errorf("esl: read change log: %w", err))
			return
		}
		for _, ev := range evs {
			if n.foldOne(ctx, ev) {
				delete(n.cur.missing, ev.ID)
			}
		}
	}
	n.setPending()
}

func (n *node) env(ctx context.Context) planEnv {
	n.mu.Lock()
	sw, started, connected := n.switchname, n.fsStarted, n.c != nil
	n.mu.Unlock()
	return planEnv{
		switchname: sw, allowRestart: n.m.opt.AllowRestart,
		fsStarted: started, deferBindings: !connected,
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
	}
}

func (n *node) foldOne(ctx context.Context, ev models.ChangeEvent) bool {
	before := n.plan.touches
	if err := n.plan.add(ev, n.env(ctx)); err != nil {
		n.setError(err)
		return false
	}
	n.report()
	if n.plan.touches > before {
		// Also when the step was owed already: a burst keeps the window
		// open until it is over.
		n.sched.folded(n.now())
	}
	return true
}

// report logs and counts what planning refused or left to the operator.
func (n *node) report() {
	for _, err := range n.plan.refused {
		n.m.met.refused.WithLabelValues(n.addr).Inc()
		n.log.Error("change not applied: value cannot go on an ESL command line", "err", err)
		n.setRefusal(err)
	}
	for _, s := range n.plan.notices {
		n.m.met.notices.WithLabelValues(n.addr).Inc()
		n.log.Warn("operator action needed", "what", s)
	}
	n.plan.refused, n.plan.notices = nil, nil
}

// addSync plans bringing a freshly connected node up to date, and decides
// the profile binding changes made while it was away.
func (n *node) addSync(ctx context.Context) error {
	profiles, err := n.m.store.ListProfiles(ctx)
	if err != nil {
		return fmt.Errorf("esl: list profiles for sync: %w", err)
	}
	trunks, err := n.m.store.EnabledTrunks(ctx, "")
	if err != nil {
		return fmt.Errorf("esl: list trunks for sync: %w", err)
	}
	env := n.env(ctx)
	n.plan.addSync(profiles, trunks, env.switchname)
	n.plan.resolveBindings(env.fsStarted, env.allowRestart)
	n.report()
	n.setPending()
	return nil
}

// advance moves the cursor up to the newest change that has reached the
// node, stopping below any ID still missing (unless it is overdue).
func (n *node) advance(ctx context.Context) {
	target := n.cur.target(n.now(), n.m.opt.GapGrace)
	if target <= n.cur.durable {
		return
	}
	if err := n.m.store.SaveESLCursor(ctx, n.addr, target); err != nil {
		n.setError(err)
		return
	}
	n.cur.durable = target
	n.setPending()
}

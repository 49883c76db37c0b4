package esl

import (
	"context"
	"errors"
	"fmt"

	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
)

// cursor is a node's progress through the change log.
type cursor struct {
	durable uint64      // persisted: everything up to it reached the node
	gaps    events.Gaps // folded into the plan: gaps.Max is the newest change, gaps its missing IDs
	loaded  bool        // durable read from the store
}

// loadCursor reads the node's durable cursor and starts folding after it.
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
	n.cur.durable, n.cur.gaps, n.cur.loaded = id, *events.After(id), true
	n.setPending()
	return nil
}

// fold reads the changes committed after what the plan holds and folds
// them in. Errors leave the remaining changes for the next try.
func (n *node) fold(ctx context.Context) {
	complete, err := n.cur.gaps.CatchUp(ctx, n.m.store, n.now, func(ev models.ChangeEvent) bool { return n.foldOne(ctx, ev) })
	if err != nil {
		n.setError(fmt.Errorf("esl: %w", err))
		return
	}
	if complete {
		n.setPending()
	}
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
	target := n.cur.gaps.Settled(n.now(), n.m.opt.GapGrace)
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

package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/fsplane/fsplane/models"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fsplane/fsplane/api"
)

// policy is what serve does when a component fails.
type policy int

const (
	// endProcess: the failure stops every other component and serve
	// returns it, so fsplane exits non-zero and its supervisor (systemd,
	// the container runtime) starts it again whole.
	endProcess policy = iota
	// restart: the component is started again after a backoff; the rest
	// of fsplane keeps serving.
	restart
)

func (p policy) String() string {
	if p == restart {
		return "restart"
	}
	return "end process"
}

// errReturned is the failure of a component that returned while it was
// meant to run: a return without an error is a failure too.
var errReturned = errors.New("stopped unexpectedly")

// component is one long-running part of serve (the HTTP server, the ESL
// manager, the change follower, …) with its state as /readyz shows it.
type component struct {
	name   string
	policy policy
	log    *slog.Logger

	gauge *prometheus.GaugeVec // fsplane_component_status, nil in tests without metrics

	mu     sync.Mutex
	status string // ok, degraded (running, reporting an error), down (failed)
	err    error
	since  time.Time
}

// report is how a running component states its health: nil is ok, an
// error is degraded (it runs, but something it needs fails). Transitions
// are logged; repeats are not.
func (c *component) report(err error) {
	if err == nil {
		c.set("ok", nil)
		return
	}
	c.set("degraded", err)
}

func (c *component) set(status string, err error) {
	c.mu.Lock()
	changed := c.status != status
	c.status, c.err = status, err
	if changed {
		c.since = time.Now()
	}
	c.mu.Unlock()
	c.export(status)
	if !changed {
		return
	}
	switch status {
	case "ok":
		c.log.Info("component running")
	case "degraded":
		c.log.Warn("component degraded", "err", err)
	}
}

// statuses are the values of fsplane_component_status's status label.
var statuses = []string{"ok", "degraded", "down"}

// export sets the component's one-hot status gauge.
func (c *component) export(status string) {
	if c.gauge == nil {
		return
	}
	for _, st := range statuses {
		v := 0.0
		if st == status {
			v = 1
		}
		c.gauge.WithLabelValues(c.name, st).Set(v)
	}
}

// check is the component's /readyz entry.
func (c *component) check(context.Context) api.CheckResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := api.CheckResult{Status: c.status}
	if c.err != nil {
		// /readyz is public: a driver's error names hosts, users and
		// databases; the log has it whole.
		msg := c.err.Error()
		if errors.Is(c.err, models.ErrUnavailable) {
			msg = models.ErrUnavailable.Error()
		}
		r.Detail = fmt.Sprintf("%s (since %s)", msg, c.since.UTC().Format(time.RFC3339))
	}
	return r
}

// runGroup runs serve's components in one errgroup: a component that
// fails is logged, shown as down on /readyz, and restarted or made to end
// the process according to its policy. The first failure of an endProcess
// component cancels the group's context, which stops the others; wait
// returns that failure.
type runGroup struct {
	log *slog.Logger
	g   *errgroup.Group
	ctx context.Context // cancelled by the first fatal failure
	// Restart backoff: minBackoff doubling up to maxBackoff; back to
	// minBackoff after a run that lasted resetAfter.
	minBackoff, maxBackoff, resetAfter time.Duration

	mu         sync.Mutex
	components []*component
	gauge      *prometheus.GaugeVec
}

// register exports every component's status, added before or after, as
// fsplane_component_status{component,status} (1 for the current one).
func (rg *runGroup) register(reg prometheus.Registerer) {
	g := promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "fsplane", Name: "component_status",
		Help: "1 for each serve component's current status (ok, degraded, down), 0 for the others; a replica that cannot read the change feed shows here and on /readyz.",
	}, []string{"component", "status"})
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rg.gauge = g
	for _, c := range rg.components {
		c.gauge = g
		c.mu.Lock()
		st := c.status
		c.mu.Unlock()
		c.export(st)
	}
}

func newRunGroup(ctx context.Context, log *slog.Logger) *runGroup {
	g, gctx := errgroup.WithContext(ctx)
	return &runGroup{log: log, g: g, ctx: gctx, minBackoff: time.Second, maxBackoff: 30 * time.Second, resetAfter: time.Minute}
}

// Context ends when the group stops: the parent's end or a fatal failure.
func (rg *runGroup) Context() context.Context { return rg.ctx }

// add declares a component, before it starts, so that its check can be
// handed to the API.
func (rg *runGroup) add(name string, p policy) *component {
	c := &component{name: name, policy: p, log: rg.log.With("component", name), status: "ok", since: time.Now()}
	rg.mu.Lock()
	rg.components = append(rg.components, c)
	c.gauge = rg.gauge
	rg.mu.Unlock()
	c.export("ok")
	return c
}

// start runs c with run(ctx) until ctx ends. ctx is normally the group's
// Context or one derived from it; serve passes the ESL manager and the
// follower a context that outlives the group's so that they stop only once
// the HTTP server has drained. A panic in run (not in goroutines run
// starts) is a failure like an error.
func (rg *runGroup) start(ctx context.Context, c *component, run func(ctx context.Context) error) {
	log := c.log
	rg.g.Go(func() error {
		backoff := rg.minBackoff
		for {
			began := time.Now()
			err := guard(ctx, log, run)
			if ctx.Err() != nil {
				return nil // stopping: whatever it returned
			}
			if err == nil {
				err = errReturned
			}
			c.set("down", err)
			if c.policy == endProcess {
				log.Error("component failed; stopping fsplane", "err", err, "policy", c.policy)
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if time.Since(began) >= rg.resetAfter {
				backoff = rg.minBackoff
			}
			log.Error("component failed; restarting", "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			backoff = min(2*backoff, rg.maxBackoff)
			c.set("ok", nil)
		}
	})
}

// guard runs run, turning a panic into an error; the stack goes to the log
// only (/readyz shows the error and is public).
func guard(ctx context.Context, log *slog.Logger, run func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("component panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return run(ctx)
}

// wait blocks until every component has returned and gives the first
// fatal failure, or nil.
func (rg *runGroup) wait() error { return rg.g.Wait() }

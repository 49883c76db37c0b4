package esl_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// world is a store with the runbook's data, wired to a bus as serve does.
type world struct {
	t     testing.TB
	store *models.Store
	bus   *events.Bus
	ctx   context.Context
}

func newWorld(t testing.TB, backend string) *world {
	t.Helper()
	bus := &events.Bus{}
	s := modelstest.Open(t, backend, modelstest.Options{OnCommit: bus.Publish})
	w := &world{t: t, store: s, bus: bus, ctx: models.WithActor(context.Background(), models.Actor{Name: "test"})}
	for _, p := range []*models.Profile{
		{Name: "external-ipv4", Family: models.FamilyIPv4, BindIP: "46.4.96.105", SIPPort: 5060, Context: "public", AuthCalls: true},
		{Name: "internal", Family: models.FamilyDual, BindIP: "::", SIPPort: 5060, ExtSIPIP: "2a01:4f8:140:829d::2", Context: "public", AuthCalls: true},
	} {
		if err := s.CreateProfile(w.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// Plusnet authenticates by IP: its trunk needs the provider's ranges.
	if err := s.CreateRange(w.ctx, &models.ProviderRange{Provider: "plusnet", CIDR: "92.197.176.0/24",
		Ports: models.StringList{"5060/udp"}}); err != nil {
		t.Fatal(err)
	}
	w.trunk(plusnet())
	w.trunk(einsundeins())
	return w
}

func plusnet() *models.Trunk {
	return &models.Trunk{
		Name: "plusnet", Provider: "plusnet", Profile: "external-ipv4",
		Proxy: "sip.plusnet.de", OutboundProxy: "92.197.176.16", Register: false,
		Transport: "udp", ExpireSeconds: 3600, RetrySeconds: 30, Context: "public",
		Enabled: true, Numbers: models.StringList{"+493455667290"},
	}
}

func einsundeins() *models.Trunk {
	pw := "geheim"
	return &models.Trunk{
		Name: "einsundeins", Provider: "1und1", Profile: "internal",
		Proxy: "sip.1und1.de", OutboundProxy: "[2001:8d8:104:100:212:227:124:129]", Register: true,
		Realm: "sip.1und1.de", Username: "4934556", Password: &pw,
		Transport: "udp", ExpireSeconds: 3600, RetrySeconds: 30, Context: "public",
		Enabled: true, Numbers: models.StringList{"+493455664337", "+493455630488"},
	}
}

func (w *world) trunk(t *models.Trunk) *models.Trunk {
	w.t.Helper()
	if err := w.store.CreateTrunk(w.ctx, t); err != nil {
		w.t.Fatal(err)
	}
	return t
}

// edit reads a trunk by name, changes it and writes it back.
func (w *world) edit(name string, f func(*models.Trunk)) {
	w.t.Helper()
	tr, err := w.store.TrunkByName(w.ctx, name)
	if err != nil {
		w.t.Fatal(err)
	}
	f(tr)
	if err := w.store.UpdateTrunk(w.ctx, tr); err != nil {
		w.t.Fatal(err)
	}
}

var rangeSeq atomic.Int64

// barrier commits a provider range (→ reloadacl): when its reloadacl has
// reached the node, everything committed before it was handled too.
func (w *world) barrier() {
	w.t.Helper()
	n := rangeSeq.Add(1)
	r := &models.ProviderRange{Provider: "plusnet", CIDR: fmt.Sprintf("92.197.%d.0/24", n%250), Ports: models.StringList{"5060/udp"}}
	if err := w.store.CreateRange(w.ctx, r); err != nil {
		w.t.Fatal(err)
	}
}

// fast are tuned timeouts so the tests run in seconds.
func fast(w *world, nodes ...string) esl.Options {
	return esl.Options{
		Nodes: nodes, Password: "ClueCon", Store: w.store,
		DialTimeout: time.Second, AuthTimeout: time.Second, CommandTimeout: 3 * time.Second,
		HealthInterval: 100 * time.Millisecond, HealthTimeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		CoalesceWindow: 20 * time.Millisecond, CoalesceMax: 500 * time.Millisecond,
		DeleteWait: 3 * time.Second,
	}
}

// run starts a Manager subscribed to the world's bus; stop ends it and
// waits for Run to return.
func (w *world) run(opt esl.Options) (m *esl.Manager, stop func()) {
	w.t.Helper()
	m, err := esl.New(opt)
	if err != nil {
		w.t.Fatal(err)
	}
	w.bus.Subscribe(m.OnChange)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				w.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			w.t.Error("Run did not return after its context ended")
		}
	}
	w.t.Cleanup(stop)
	return m, stop
}

// waitFor polls cond until it holds; the limit is generous and only stops
// a broken test from running forever.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCmd waits until srv has received line at least n times.
func waitCmd(t testing.TB, srv *esltest.Server, line string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Wait(ctx, func(s *esltest.Server) bool { return s.Count(line) >= n }); err != nil {
		t.Fatalf("waiting for %d × %q: %v; server saw %q", n, line, err, srv.Commands())
	}
}

// synced waits for a node's first sync to finish (its reloadacl).
func synced(t testing.TB, srv *esltest.Server) {
	t.Helper()
	waitCmd(t, srv, "api reloadacl", 1)
}

func nodeStatus(m *esl.Manager, addr string) esl.NodeStatus {
	for _, n := range m.Nodes() {
		if n.Node == addr {
			return n
		}
	}
	return esl.NodeStatus{}
}

// only returns the commands of cmds that match one of the prefixes.
func only(cmds []string, prefixes ...string) []string {
	var out []string
	for _, c := range cmds {
		for _, p := range prefixes {
			if strings.HasPrefix(c, p) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func indexOf(cmds []string, line string) int { return slices.Index(cmds, line) }

// counter reads a counter from reg; labels must match exactly.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				if m.GetCounter() != nil {
					total += m.GetCounter().GetValue()
				}
				if m.GetGauge() != nil {
					total += m.GetGauge().GetValue()
				}
			}
		}
	}
	return total
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// faked is fast with a FakeClock: the coalescing window, retries, the
// reconnect backoff and the gateway-delete wait pass only when the test
// moves the clock.
func faked(w *world, nodes ...string) (esl.Options, *esl.FakeClock) {
	opt := fast(w, nodes...)
	clk := esl.NewFakeClock(time.Now())
	opt.Time = clk
	return opt, clk
}

// settle waits until the node at addr has folded every committed change
// into its plan, then moves clk past the coalescing window, so the plan
// runs.
func (w *world) settle(m *esl.Manager, clk *esl.FakeClock, addr string, window time.Duration) {
	w.t.Helper()
	last, err := w.store.LastChangeID(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	waitFor(w.t, "changes folded", func() bool { return m.SeenChangeID(addr) >= last })
	clk.Advance(window)
}

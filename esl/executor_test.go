package esl

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
)

// fakeFS is a commander without a socket: it answers each api command as
// FreeSWITCH does when all is well, or with a reply the test set.
type fakeFS struct {
	mu      sync.Mutex
	lines   []string
	replies map[string]string
	sent    chan string
	done    chan struct{}
}

func newFakeFS() *fakeFS {
	return &fakeFS{replies: map[string]string{}, sent: make(chan string, 100), done: make(chan struct{})}
}

func (f *fakeFS) API(_ context.Context, line string) (string, error) {
	f.mu.Lock()
	f.lines = append(f.lines, line)
	reply, ok := f.replies[line]
	f.mu.Unlock()
	f.sent <- line
	if ok {
		return reply, nil
	}
	switch w := strings.Fields(line); {
	case strings.HasSuffix(line, " rescan"):
		return "Reload XML [Success]\n+OK scan complete\n", nil
	case strings.Contains(line, " killgw "):
		return "+OK\n", nil
	case strings.HasSuffix(line, " restart"):
		return "Reload XML [Success]\nrestarting: " + w[2] + "\n", nil
	case line == "reloadacl":
		return "+OK acl reloaded\n", nil
	}
	return "-ERR unexpected command\n", nil
}

func (f *fakeFS) Done() <-chan struct{} { return f.done }
func (f *fakeFS) Err() error            { return ErrClosed }

func (f *fakeFS) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

// expect waits for the next command and checks it.
func (f *fakeFS) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-f.sent:
		if got != want {
			t.Fatalf("sent %q, want %q (all: %q)", got, want, f.commands())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%q never sent (all: %q)", want, f.commands())
	}
}

// testNode is a node of a Manager that is never run: its plan, schedule
// and executor are driven by hand.
func testNode(t *testing.T, opt Options) (*node, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	opt.Store, opt.Password, opt.Nodes, opt.Time = &models.Store{}, "ClueCon", []string{"fs1:8021"}, clk
	m, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return m.nodes[0], clk
}

func gatewayDelete(name string) Event {
	return Event{Headers: map[string]string{"Event-Subclass": "sofia::gateway_delete", "Gateway": name}}
}

// The rescan that re-adds a registering gateway waits for its delete; the
// clock never moves, so only the event can let it go.
func TestExecuteWaitsForGatewayDelete(t *testing.T) {
	n, clk := testNode(t, Options{DeleteWait: 8 * time.Second})
	fs := newFakeFS()
	n.plan.kill["einsundeins"] = killStep{profile: "internal", wait: true}
	n.plan.rescan["internal"] = true
	done := make(chan error, 1)
	go func() { done <- n.execute(context.Background(), fs) }()
	fs.expect(t, "sofia profile internal killgw einsundeins")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.WaitTimer(ctx, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := fs.commands(); len(got) != 1 {
		t.Fatalf("rescan before the delete: %q", got)
	}
	n.handleEvent(gatewayDelete("einsundeins"))
	fs.expect(t, "sofia profile internal rescan")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !n.plan.empty() || len(n.late) != 0 {
		t.Fatalf("plan %+v, late %v", n.plan, n.late)
	}
}

// No delete within DeleteWait: the rescan goes anyway, and once more, at
// once, when the delete finally arrives.
func TestExecuteDeleteWaitTimesOut(t *testing.T) {
	n, clk := testNode(t, Options{DeleteWait: 8 * time.Second})
	fs := newFakeFS()
	n.plan.kill["einsundeins"] = killStep{profile: "internal", wait: true}
	n.plan.rescan["internal"] = true
	done := make(chan error, 1)
	go func() { done <- n.execute(context.Background(), fs) }()
	fs.expect(t, "sofia profile internal killgw einsundeins")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.WaitTimer(ctx, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(8 * time.Second)
	fs.expect(t, "sofia profile internal rescan")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := n.late["einsundeins"]; len(got) != 1 || got[0] != "internal" {
		t.Fatalf("late %v", n.late)
	}
	n.handleEvent(gatewayDelete("einsundeins"))
	n.takeLate()
	if !n.plan.rescan["internal"] || !n.due(clk.Now()) {
		t.Fatalf("late delete: rescan owed %v, due %v", n.plan.rescan, n.due(clk.Now()))
	}
}

// A refused step stays owed, is reported, and comes back after the
// backoff, not before.
func TestExecuteRefusalRetriesAfterBackoff(t *testing.T) {
	n, clk := testNode(t, Options{BackoffMin: time.Second, BackoffMax: time.Minute})
	fs := newFakeFS()
	fs.replies["reloadacl"] = "-Error [Cannot Open log directory or XML Root!]\n"
	n.plan.reloadACL = true
	n.plan.rescan["internal"] = true
	if err := n.execute(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if !n.plan.reloadACL || n.plan.rescan["internal"] || !strings.Contains(n.status().LastError, "reloadacl") {
		t.Fatalf("plan %+v status %+v", n.plan, n.status())
	}
	now := clk.Now()
	wait, ok := n.nextDue(now)
	if !ok || wait < 500*time.Millisecond || wait > time.Second || n.due(now) || n.due(now.Add(wait-time.Millisecond)) {
		t.Fatalf("retry in %v (ok %v)", wait, ok)
	}
	clk.Advance(wait)
	if !n.due(clk.Now()) {
		t.Fatal("not due after the backoff")
	}
	delete(fs.replies, "reloadacl")
	if err := n.execute(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if !n.plan.empty() || n.sched.failing() {
		t.Fatalf("plan %+v, retry at %v", n.plan, n.sched.retryAt)
	}
}

// A restart waits out the profile's first 10 seconds without holding back
// the rest of the plan.
func TestExecuteRestartWaitsForProfileAge(t *testing.T) {
	n, clk := testNode(t, Options{AllowRestart: true})
	fs := newFakeFS()
	n.started["internal"] = clk.Now()
	n.plan.restart["internal"] = true
	n.plan.reloadACL = true
	n.sched.immediate = true
	if !n.due(clk.Now()) {
		t.Fatal("the reloadacl is not held back by the restart")
	}
	if err := n.execute(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if got := fs.commands(); strings.Join(got, "|") != "reloadacl" {
		t.Fatalf("sent %q", got)
	}
	wait, ok := n.nextDue(clk.Now())
	if !ok || wait != profileMinAge || n.due(clk.Now()) {
		t.Fatalf("restart due in %v (ok %v)", wait, ok)
	}
	clk.Advance(wait)
	if err := n.execute(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if got := fs.commands(); strings.Join(got, "|") != "reloadacl|sofia profile internal restart" || !n.plan.empty() {
		t.Fatalf("sent %q, plan %+v", got, n.plan)
	}
}

// A transport error ends the run and keeps what is owed.
func TestExecuteTransportErrorKeepsPlan(t *testing.T) {
	n, _ := testNode(t, Options{})
	n.plan.rescan["internal"] = true
	n.plan.reloadACL = true
	err := n.execute(context.Background(), brokenFS{})
	if err == nil || !n.plan.rescan["internal"] || !n.plan.reloadACL {
		t.Fatalf("%v, plan %+v", err, n.plan)
	}
}

type brokenFS struct{}

func (brokenFS) API(context.Context, string) (string, error) { return "", ErrClosed }
func (brokenFS) Done() <-chan struct{}                       { return nil }
func (brokenFS) Err() error                                  { return ErrClosed }

// The coalescing window: quiet for window, or cap after the first change.
func TestScheduleCoalesces(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	s := schedule{window: 25 * time.Millisecond, cap: time.Second}
	s.folded(ms(0))
	s.folded(ms(20))
	if s.ready(ms(44)) || !s.ready(ms(45)) || !s.at(ms(30)).Equal(ms(45)) {
		t.Fatalf("quiet window: ready(44) %v ready(45) %v at %v", s.ready(ms(44)), s.ready(ms(45)), s.at(ms(30)))
	}
	for i := 40; i < 1200; i += 10 { // a steady stream never goes quiet
		s.folded(ms(i))
	}
	if !s.ready(ms(1000)) || s.ready(ms(999)) || !s.at(ms(1190)).Equal(ms(1000)) {
		t.Fatalf("cap: ready(999) %v ready(1000) %v", s.ready(ms(999)), s.ready(ms(1000)))
	}
	s.finished(ms(1200), false, false)
	s.folded(ms(2000))
	if s.ready(ms(2000)) || !s.ready(ms(2025)) {
		t.Fatal("a new change after a run starts a new window")
	}
}

func TestParseUptime(t *testing.T) {
	up, ok := parseUptime("UP 0 years, 1 day, 2 hours, 1 minute, 5 seconds, 12 milliseconds, 44 microseconds\nFreeSWITCH (Version 1.10.12-release 64bit) is ready\n")
	want := 24*time.Hour + 2*time.Hour + time.Minute + 5*time.Second + 12*time.Millisecond + 44*time.Microsecond
	if !ok || up != want {
		t.Fatalf("%v %v, want %v", up, ok, want)
	}
	for _, bad := range []string{"", "-ERR status Command not found!", "UP soon", "UP 1 fortnight"} {
		if _, ok := parseUptime(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A binding changed while the node was away: a FreeSWITCH that started
// after the change runs the new binding (no restart, no notice); one that
// ran before must restart the profile, or an operator must.
func TestBindingChangeWhileAway(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ev := models.ChangeEvent{ID: 1, At: at, Kind: models.KindProfile, Op: models.OpUpdate, Name: "internal",
		Fields: models.StringList{"sip_port"}}
	for _, c := range []struct {
		name         string
		fsStarted    time.Time
		allowRestart bool
		want         wantPlan
	}{
		{"FreeSWITCH started after the change", at.Add(time.Second), false, wantPlan{}},
		{"FreeSWITCH started after the change, restarts allowed", at.Add(time.Second), true, wantPlan{}},
		{"FreeSWITCH ran before", at.Add(-time.Hour), false, wantPlan{notices: 1}},
		{"FreeSWITCH ran before, restarts allowed", at.Add(-time.Hour), true, wantPlan{restart: []string{"internal"}}},
		{"start unknown", time.Time{}, false, wantPlan{notices: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPlan()
			if err := p.add(ev, planEnv{deferBindings: true, allowRestart: c.allowRestart}); err != nil {
				t.Fatal(err)
			}
			wantPlan{}.check(t, p) // nothing decided while away
			p.resolveBindings(c.fsStarted, c.allowRestart)
			c.want.check(t, p)
			if len(p.bindings) != 0 {
				t.Fatalf("bindings left: %v", p.bindings)
			}
		})
	}
	// Connected: a FreeSWITCH that started after the change (fsplane was
	// down when it was made) needs nothing; otherwise it is told at once.
	p := newPlan()
	if err := p.add(ev, planEnv{fsStarted: at.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	wantPlan{}.check(t, p)
	if err := p.add(ev, planEnv{fsStarted: at.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	wantPlan{notices: 1}.check(t, p)
}

package leader_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/fsplane/fsplane/leader"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/models/pgtest"
)

// schemaURL is a fresh PostgreSQL schema of the test's own.
func schemaURL(t *testing.T) string { return schemaURLB(t) }

func schemaURLB(tb testing.TB) string {
	tb.Helper()
	s := modelstest.Open(tb, "postgres", modelstest.Options{NoMigrate: true})
	return modelstest.URLOf(tb, s)
}

// replica is one elector running a task that records its terms.
type replica struct {
	el     *leader.Elector
	terms  atomic.Int32 // tasks started
	ended  atomic.Int32 // tasks whose context ended
	done   chan error
	cancel context.CancelFunc
}

// running counts tasks running at once across replicas of one test.
type running struct {
	now, max atomic.Int32
}

func (r *running) enter() {
	n := r.now.Add(1)
	for {
		m := r.max.Load()
		if n <= m || r.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func start(t *testing.T, url, id string, run *running) *replica {
	t.Helper()
	el, err := leader.New(leader.Options{DatabaseURL: url, Task: "esl", ID: id,
		Interval: 100 * time.Millisecond, CheckTimeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{el: el, done: make(chan error, 1), cancel: cancel}
	go func() {
		r.done <- el.Run(ctx, func(ctx context.Context) error {
			r.terms.Add(1)
			run.enter()
			<-ctx.Done()
			run.now.Add(-1)
			r.ended.Add(1)
			return nil
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *replica) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("%s: Run: %v", r.el.Status().Replica, err)
		}
		r.done <- nil // a second stop finds it returned
	case <-time.After(10 * time.Second):
		t.Errorf("%s: Run did not return", r.el.Status().Replica)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two replicas on one schema: exactly one leads, the other knows which.
// Ending the leader's session (pg_terminate_backend) steps it down and the
// other takes over; a replica on another schema leads all along.
func TestOneLeaderAndFailover(t *testing.T) {
	t.Parallel()
	url := schemaURL(t)
	var run running
	a := start(t, url, "replica-a", &run)
	b := start(t, url, "replica-b", &run)
	var otherRun running
	other := start(t, schemaURL(t), "replica-other", &otherRun)

	leaderOf := func() (lead, follow *replica) {
		sa, sb := a.el.Status(), b.el.Status()
		switch {
		case sa.Leading && !sb.Leading:
			return a, b
		case sb.Leading && !sa.Leading:
			return b, a
		}
		return nil, nil
	}
	waitFor(t, "one leader, named by the other", func() bool {
		l, f := leaderOf()
		return l != nil && f.el.Status().Leader == l.el.Status().Replica
	})
	waitFor(t, "the replica on another schema to lead", func() bool { return other.el.Status().Leading })
	l, f := leaderOf()
	if l.terms.Load() != 1 || f.terms.Load() != 0 {
		t.Fatalf("terms: leader %d, follower %d; want 1 and 0", l.terms.Load(), f.terms.Load())
	}

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var killed int
	if err := db.QueryRow("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
		"fsplane "+l.el.Status().Replica).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate the leader's session: %d sessions, %v", killed, err)
	}
	waitFor(t, "the old leader to step down", func() bool { return l.ended.Load() == 1 && !l.el.Status().Leading })
	waitFor(t, "the other replica to lead", func() bool { return f.el.Status().Leading && f.terms.Load() == 1 })
	waitFor(t, "the old leader to follow the new one", func() bool {
		return l.el.Status().Leader == f.el.Status().Replica
	})
	if got := run.max.Load(); got != 1 {
		t.Fatalf("%d tasks ran at once on one schema", got)
	}
	waitFor(t, "the replica on another schema to lead still", func() bool { return other.el.Status().Leading })

	// A leader that shuts down releases at once.
	f.stop(t)
	waitFor(t, "the first leader to lead again", func() bool { return l.el.Status().Leading && l.terms.Load() == 2 })
	if got := run.max.Load(); got != 1 {
		t.Fatalf("%d tasks ran at once on one schema", got)
	}
}

// PostgreSQL restarted under the replicas: the leader steps down while it
// is away, both say they cannot take part, and once it is back one of them
// leads again.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a PostgreSQL cluster")
	}
	srv := pgtest.Start(t)
	var run running
	a := start(t, srv.URL(), "replica-a", &run)
	b := start(t, srv.URL(), "replica-b", &run)
	waitFor(t, "a leader", func() bool { return a.el.Status().Leading || b.el.Status().Leading })

	srv.Stop(t)
	waitFor(t, "the leader to step down, both to report the outage", func() bool {
		sa, sb := a.el.Status(), b.el.Status()
		return !sa.Leading && !sb.Leading && sa.Err != "" && sb.Err != "" && a.ended.Load()+b.ended.Load() == 1
	})
	srv.Start(t)
	waitFor(t, "a leader again", func() bool {
		sa, sb := a.el.Status(), b.el.Status()
		return (sa.Leading || sb.Leading) && sa.Err == "" && sb.Err == "" && a.terms.Load()+b.terms.Load() == 2
	})
	if got := run.max.Load(); got != 1 {
		t.Fatalf("%d tasks ran at once", got)
	}
}

// A task that returns by itself while leading ends Run with
// ErrTaskReturned, and the lock is free for the next replica.
func TestTaskReturnedReleases(t *testing.T) {
	t.Parallel()
	url := schemaURL(t)
	boom := errors.New("boom")
	el, err := leader.New(leader.Options{DatabaseURL: url, Task: "esl", ID: "quitter", Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = el.Run(context.Background(), func(context.Context) error { return boom })
	if !errors.Is(err, leader.ErrTaskReturned) || !errors.Is(err, boom) {
		t.Fatalf("Run = %v; want ErrTaskReturned wrapping the task's error", err)
	}
	if el.Status().Leading {
		t.Fatal("still leading after Run returned")
	}
	var run running
	next := start(t, url, "next", &run)
	waitFor(t, "the next replica to lead", func() bool { return next.el.Status().Leading })
}

// Without PostgreSQL the one process leads at once.
func TestAloneLeads(t *testing.T) {
	el, err := leader.New(leader.Options{Task: "esl", ID: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	var seen leader.Status
	err = el.Run(ctx, func(ctx context.Context) error {
		once.Do(func() { seen = el.Status(); cancel() })
		<-ctx.Done()
		return nil
	})
	if err != nil || !seen.Leading || seen.Leader != "solo" || seen.Replica != "solo" {
		t.Fatalf("Run = %v, status while running %+v", err, seen)
	}
	if el.Status().Leading {
		t.Fatal("still leading after Run returned")
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []leader.Options{
		{ID: "x"},
		{Task: "esl"},
		{Task: "esl", ID: "has space"},
		{Task: "esl", ID: "x", DatabaseURL: "postgres://[::1"},
	} {
		if _, err := leader.New(o); !errors.Is(err, leader.ErrConfig) {
			t.Errorf("New(%+v) = %v; want ErrConfig", o, err)
		}
	}
}

package leader

import (
	"context"
	"errors"
	"fmt"
	"github.com/fsplane/fsplane/models"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure an Elector.
type Options struct {
	// DatabaseURL is the PostgreSQL URL or DSN the replicas share; ""
	// means this process is alone (SQLite) and leads at once.
	DatabaseURL string
	// Task names what is led ("esl"); it is part of the lock key.
	Task string
	// ID is this replica's identity, shown to the others (at most 50
	// characters, printable ASCII).
	ID string
	// Interval is how often a follower tries to take the lock and the
	// leader checks it still holds it (default 1s).
	Interval time.Duration
	// CheckTimeout bounds one check or attempt (default Interval). A
	// check that times out steps the leader down: too short a bound turns
	// a slow database into needless failovers.
	CheckTimeout time.Duration
	// Settle is how long a replica that took the lock waits before it
	// starts the task (default Interval + CheckTimeout; negative: none).
	Settle time.Duration
	// ConnectTimeout bounds opening the dedicated connection (default 5s).
	ConnectTimeout time.Duration
	// Logger receives leadership changes; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Status is an Elector's view of the leadership.
type Status struct {
	// Replica is this replica's ID.
	Replica string `json:"replica"`
	// Leading: this replica holds the lock and runs the task.
	Leading bool `json:"leading"`
	// Leader is the ID of the replica holding the lock, "" when unknown
	// (nobody holds it, or the database cannot be asked).
	Leader string `json:"leader,omitempty"`
	// Since is when Leading or Leader last changed.
	Since time.Time `json:"since"`
	// Err is why this replica cannot take part in the election now (its
	// database connection fails); "" when it can.
	Err string `json:"error,omitempty"`
}

// Elector takes part in one task's election. Run it once.
type Elector struct {
	opt Options
	log *slog.Logger
	met *metrics

	mu sync.Mutex
	st Status
}

// appNamePrefix marks fsplane's election sessions in pg_stat_activity.
const appNamePrefix = "fsplane "

// New validates opt and builds an Elector.
func New(opt Options) (*Elector, error) {
	if opt.Task == "" {
		return nil, fmt.Errorf("%w: no task name", ErrConfig)
	}
	if opt.ID == "" || len(opt.ID) > 50 || strings.ContainsFunc(opt.ID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return nil, fmt.Errorf("%w: replica ID %q: want 1-50 printable ASCII characters without spaces", ErrConfig, opt.ID)
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.CheckTimeout <= 0 {
		opt.CheckTimeout = opt.Interval
	}
	if opt.Settle == 0 {
		opt.Settle = opt.Interval + opt.CheckTimeout
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.DatabaseURL != "" {
		if _, err := pgx.ParseConfig(opt.DatabaseURL); err != nil {
			return nil, fmt.Errorf("%w: database URL does not parse", ErrConfig)
		}
	}
	e := &Elector{opt: opt, log: opt.Logger.With("task", opt.Task, "replica", opt.ID),
		met: newMetrics(opt.Registerer, opt.Task, opt.ID)}
	e.st = Status{Replica: opt.ID, Since: time.Now()}
	return e, nil
}

// Status returns the current view; safe for concurrent use.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

func (e *Elector) set(leading bool, leader string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st.Leading != leading || e.st.Leader != leader {
		e.st.Since = time.Now()
	}
	e.st.Leading, e.st.Leader = leading, leader
	e.st.Err = ""
	if err != nil {
		e.st.Err = err.Error()
	}
	v := 0.0
	if leading {
		v = 1
	}
	e.met.leading.Set(v)
}

// Run takes part in the election until ctx ends: whenever this replica
// leads, task runs with a context that ends when the leadership is lost or
// ctx ends, and Run waits for it to return before going on. Run returns
// nil when ctx ends, or ErrTaskReturned when task returned by itself while
// leading (the lock is released first).
func (e *Elector) Run(ctx context.Context, task func(ctx context.Context) error) error {
	if e.opt.DatabaseURL == "" {
		e.set(true, e.opt.ID, nil)
		e.met.elections.WithLabelValues("acquired").Inc()
		err := task(ctx)
		e.set(false, "", nil)
		if ctx.Err() != nil {
			return nil
		}
		return taskReturned(err)
	}
	var c *session
	// An outage is logged when it starts and when it ends, not every
	// Interval.
	failing := false
	fail := func(msg string, err error) {
		e.set(false, "", err)
		if !failing {
			e.log.Warn(msg, "err", err)
		}
		failing = true
	}
	defer func() {
		if c != nil {
			c.close()
		}
		e.set(false, "", nil)
	}()
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = e.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fail("cannot reach PostgreSQL for the leader election", err)
				if !sleep(ctx, e.opt.Interval) {
					return nil
				}
				continue
			}
		}
		got, err := c.tryLock(ctx, e.opt.CheckTimeout)
		if err != nil {
			c.close()
			c = nil
			if ctx.Err() != nil {
				return nil
			}
			fail("leader election: lock attempt failed", err)
			if !sleep(ctx, e.opt.Interval) {
				return nil
			}
			continue
		}
		if failing {
			e.log.Info("PostgreSQL answers the leader election again")
			failing = false
		}
		if !got {
			holder, err := c.holder(ctx, e.opt.CheckTimeout)
			if err != nil && ctx.Err() == nil {
				// The lock attempt worked: only the name is unknown.
				e.log.Debug("leader election: cannot read the leader's ID", "err", err)
			}
			e.set(false, holder, nil)
			if !sleep(ctx, e.opt.Interval) {
				return nil
			}
			continue
		}
		err = e.lead(ctx, c, task)
		c.close() // ends the session: the lock goes with it
		c = nil
		if errors.Is(err, ErrTaskReturned) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		// Lost: let another replica take it before trying again.
		if !sleep(ctx, e.opt.Interval) {
			return nil
		}
	}
	return nil
}

// lead holds the lock on c: it settles, runs task, and checks the lock
// every Interval until ctx ends, the check fails (ErrLost) or the task
// returns (ErrTaskReturned).
func (e *Elector) lead(ctx context.Context, c *session, task func(ctx context.Context) error) error {
	e.log.Info("took the leader lock; settling before leading", "settle", e.opt.Settle)
	tick := time.NewTicker(e.opt.Interval)
	defer tick.Stop()
	if e.opt.Settle > 0 {
		settled := time.NewTimer(e.opt.Settle)
		defer settled.Stop()
	settle:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-settled.C:
				break settle
			case <-tick.C:
				if err := c.check(ctx, e.opt.CheckTimeout); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					e.log.Warn("lost the leader lock while settling", "err", err)
					e.set(false, "", err)
					return fmt.Errorf("%w: %w", ErrLost, err)
				}
			}
		}
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- task(tctx) }()
	e.set(true, e.opt.ID, nil)
	e.met.elections.WithLabelValues("acquired").Inc()
	e.log.Info("leading")
	for {
		select {
		case <-ctx.Done():
			<-done
			e.set(false, "", nil)
			e.met.elections.WithLabelValues("released").Inc()
			e.log.Info("stopped leading: shutting down")
			return nil
		case err := <-done:
			e.set(false, "", err)
			e.met.elections.WithLabelValues("released").Inc()
			if ctx.Err() != nil {
				return nil
			}
			return taskReturned(err)
		case <-tick.C:
			err := c.check(ctx, e.opt.CheckTimeout)
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				continue // shutting down: the Done case ends it
			}
			// Step down at once: the status says so before the task has
			// wound down.
			cancel()
			e.set(false, "", err)
			e.met.elections.WithLabelValues("lost").Inc()
			e.log.Warn("lost the leader lock; stepping down", "err", err)
			<-done
			return fmt.Errorf("%w: %w", ErrLost, err)
		}
	}
}

func taskReturned(err error) error {
	if err == nil {
		return ErrTaskReturned
	}
	return fmt.Errorf("%w: %w", ErrTaskReturned, err)
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session is the dedicated connection and the lock's key on it.
type session struct {
	conn   *pgx.Conn
	k1, k2 int32
}

func (e *Elector) connect(ctx context.Context) (*session, error) {
	cfg, err := pgx.ParseConfig(e.opt.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: database URL does not parse", ErrConfig)
	}
	cfg.RuntimeParams["application_name"] = appNamePrefix + e.opt.ID
	cctx, cancel := context.WithTimeout(ctx, e.opt.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("leader: connect to PostgreSQL: %w", models.RedactPassword(err, cfg.Password))
	}
	s := &session{conn: conn}
	// The two-int4 form of the lock: a key space of its own (objsubid 2),
	// apart from the migration lock's bigint key.
	if err := conn.QueryRow(cctx, "SELECT hashtext('fsplane leader'), hashtext($1 || ' ' || current_schema())",
		e.opt.Task).Scan(&s.k1, &s.k2); err != nil {
		s.close()
		return nil, fmt.Errorf("leader: lock key: %w", err)
	}
	return s, nil
}

func (s *session) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.conn.Close(ctx)
}

func (s *session) tryLock(ctx context.Context, timeout time.Duration) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var got bool
	if err := s.conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1, $2)", s.k1, s.k2).Scan(&got); err != nil {
		return false, fmt.Errorf("leader: pg_try_advisory_lock: %w", err)
	}
	return got, nil
}

// lockWhere selects the granted lock in pg_locks, where the two int4 keys
// show as classid and objid (oids, so compared as unsigned).
const lockWhere = ` WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
 AND l.classid::int8 = $1 AND l.objid::int8 = $2`

// check reports an error unless this session holds the lock.
func (s *session) check(ctx context.Context, timeout time.Duration) error {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var held bool
	err := s.conn.QueryRow(qctx, "SELECT EXISTS (SELECT 1 FROM pg_locks l"+lockWhere+" AND l.pid = pg_backend_pid())",
		int64(uint32(s.k1)), int64(uint32(s.k2))).Scan(&held)
	if err != nil {
		return fmt.Errorf("leader: check the lock: %w", err)
	}
	if !held {
		return errors.New("leader: this session no longer holds the lock")
	}
	return nil
}

// holder returns the ID of the replica whose session holds the lock; ""
// when nobody does.
func (s *session) holder(ctx context.Context, timeout time.Duration) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var name string
	err := s.conn.QueryRow(qctx, "SELECT coalesce((SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"+
		lockWhere+" LIMIT 1), '')",
		int64(uint32(s.k1)), int64(uint32(s.k2))).Scan(&name)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(name, appNamePrefix), nil
}

package models

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgconn"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fsplane/fsplane/secrets"
)

// Config selects and tunes the database.
type Config struct {
	// DatabaseURL, when set, is a PostgreSQL URL or DSN.
	DatabaseURL string
	// SQLitePath is the embedded database file, used when DatabaseURL is "".
	SQLitePath string
	// Keys seals and opens SIP passwords.
	Keys *secrets.Keyring
	// OnCommit, when set, receives every change event after its
	// transaction committed, in commit order.
	OnCommit func(ChangeEvent)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is fsplane's persistence. It is safe for concurrent use.
type Store struct {
	db       *gorm.DB
	keys     *secrets.Keyring
	onCommit func(ChangeEvent)
	now      func() time.Time
	dialect  string
	schemas  sync.Map // gorm's parsed schemas, for checkSizes
}

// Open connects to the configured database. It does not migrate: call
// Migrate (serve does it at start).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Keys == nil {
		return nil, errors.New("models: no Fernet keyring")
	}
	gcfg := &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
		NowFunc:        func() time.Time { return time.Now().UTC() },
	}
	if cfg.Now != nil {
		now := cfg.Now
		gcfg.NowFunc = func() time.Time { return now().UTC() }
	}
	var (
		db      *gorm.DB
		err     error
		dialect string
	)
	if cfg.DatabaseURL != "" {
		dialect = "postgres"
		db, err = gorm.Open(postgres.Open(cfg.DatabaseURL), gcfg)
		if err != nil {
			return nil, fmt.Errorf("models: connect to PostgreSQL: %w", redactErr(err, cfg.DatabaseURL))
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// database/sql keeps 2 idle connections by default: concurrent cold
		// xml-curl lookups then open and close one per request (measured:
		// p99 35 ms at 4 connections, 14 ms with 16 idle).
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(16)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		dialect = "sqlite"
		if cfg.SQLitePath == "" {
			return nil, errors.New("models: neither DATABASE_URL nor an SQLite path is set")
		}
		if err := os.MkdirAll(filepath.Dir(cfg.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("models: create data directory: %w", err)
		}
		// Sealed secrets and token digests live in this file: create it
		// private; SQLite gives its -wal and -shm files the same mode.
		f, err := os.OpenFile(cfg.SQLitePath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("models: create SQLite file: %w", err)
		}
		f.Close()
		// WAL lets readers run beside the writer; busy_timeout waits out a
		// writer of another process instead of failing at once.
		dsn := "file:" + cfg.SQLitePath + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)"
		db, err = gorm.Open(sqlite.Open(dsn), gcfg)
		if err != nil {
			return nil, fmt.Errorf("models: open SQLite %s: %w", cfg.SQLitePath, err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// One connection serialises writers in-process, which SQLite needs
		// anyway; it also makes read-modify-write transactions safe.
		sqlDB.SetMaxOpenConns(1)
	}
	if err := markUnavailableCallbacks(db); err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		return nil, fmt.Errorf("models: reach %s database: %w", dialect, redactErr(err, cfg.DatabaseURL))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, keys: cfg.Keys, onCommit: cfg.OnCommit, now: now, dialect: dialect}, nil
}

// redactErr keeps a database URL's password out of an error message.
func redactErr(err error, dsn string) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	pw, _ := u.User.Password()
	return RedactPassword(err, pw)
}

// RedactPassword keeps a database password out of an error message (the
// drivers quote connection strings in their errors).
func RedactPassword(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}

// Close releases the database.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Keys returns the ring that seals passwords, for renderers that decrypt.
func (s *Store) Keys() *secrets.Keyring { return s.keys }

// DB exposes the gorm handle for tests and migrations tooling.
func (s *Store) DB() *gorm.DB { return s.db }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return markUnavailable(sqlDB.PingContext(ctx))
}

// Actor is who makes a change, carried in the context.
type Actor struct {
	Name     string
	RemoteIP string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or "system".
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Name: "system"}
}

// mapErr turns driver errors into the package's sentinels.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case unreachable(err):
		// Transactions begin and commit outside gorm's callbacks.
		return markUnavailable(err)
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return ErrDuplicate
	case lostRace(err):
		// Two writers locked each other (the rules across rows take
		// locks): the database aborted this one; a retry will succeed or
		// be refused for a reason.
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// lostRace reports a PostgreSQL deadlock or serialization failure.
func lostRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

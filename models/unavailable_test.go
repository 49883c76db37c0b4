package models

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fsplane/fsplane/secrets"
)

// sqliteErr has the shape of glebarez/go-sqlite's *Error, whose fields
// cannot be set from outside.
type sqliteErr int

func (e sqliteErr) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e sqliteErr) Code() int     { return int(e) }

// connClosed has the shape of pgconn's unexported connLockError ("conn
// closed"): pgx's error for a pooled connection the server already closed,
// before anything was sent (seen as a 500 on a write during an outage).
type connClosed struct{}

func (connClosed) Error() string     { return "conn closed" }
func (connClosed) SafeToRetry() bool { return true }

func TestMarkUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("query: %w", refused), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"deadline", context.DeadlineExceeded, true},
		{"conn closed", fmt.Errorf("extension 1001: %w", connClosed{}), true},
		{"database closed", errDBClosed, true},
		{"sqlite busy", fmt.Errorf("exec: %w", sqliteErr(5)), true},
		{"sqlite busy snapshot", sqliteErr(517), true},
		{"sqlite locked", sqliteErr(6), true},
		{"sqlite constraint", sqliteErr(19), false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"cancelled by the client", context.Canceled, false},
		{"not found", ErrNotFound, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := markUnavailable(c.err)
			if errors.Is(got, ErrUnavailable) != c.want {
				t.Fatalf("errors.Is(%v, ErrUnavailable) = %v, want %v", got, !c.want, c.want)
			}
			if !errors.Is(got, c.err) {
				t.Fatalf("the driver's error is lost: %v", got)
			}
			if c.want && markUnavailable(got) != got {
				t.Fatal("marked twice")
			}
		})
	}
	if errDBClosed == nil || errDBClosed.Error() != "sql: database is closed" {
		t.Fatalf("errDBClosed = %v", errDBClosed)
	}
}

// A store whose pool is closed answers ErrUnavailable from every kind of
// method: a read, a list, a write (transaction) and Ping.
func TestClosedStoreIsUnavailable(t *testing.T) {
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.Parse(k)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{SQLitePath: filepath.Join(t.TempDir(), "f.db"), Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, errGet := s.GetTrunk(ctx, 1)
	_, _, errList := s.ListTrunks(ctx, TrunkFilter{})
	errWrite := s.CreateProfile(ctx, &Profile{Name: "p"})
	for name, err := range map[string]error{
		"get": errGet, "list": errList, "write": errWrite, "ping": s.Ping(ctx),
	} {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
	}
}

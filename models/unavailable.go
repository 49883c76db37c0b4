package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// unavailableError marks a driver error as ErrUnavailable while keeping
// the driver's error reachable for errors.As.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// markUnavailable wraps err in ErrUnavailable when it says the database
// cannot be reached; any other error is returned as is.
func markUnavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !unreachable(err) {
		return err
	}
	return &unavailableError{err: err}
}

// SQLite primary result codes that mean "not now" rather than "wrong".
const (
	sqliteBusy     = 5  // locked by another connection beyond busy_timeout
	sqliteLocked   = 6  // a table is locked
	sqliteCantOpen = 14 // the file cannot be opened
)

// unreachable reports whether err is the driver saying the database
// cannot be reached, by error type and code, not by message.
func unreachable(err error) bool {
	var (
		ce *pgconn.ConnectError
		pe *pgconn.PgError
		ne net.Error
		se interface{ Code() int } // glebarez/go-sqlite's *Error
	)
	switch {
	case errors.As(err, &ce):
		return true // dial, TLS or startup failed, including a connect timeout
	case errors.As(err, &pe):
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down, crashed or not yet accepting connections; 53300:
		// too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "53300"
	case errors.As(err, &ne):
		return true // a live connection broke or timed out
	case errors.As(err, &se):
		switch se.Code() & 0xff { // extended codes carry the primary one in the low byte
		case sqliteBusy, sqliteLocked, sqliteCantOpen:
			return true
		}
		return false
	}
	// pgconn.SafeToRetry: nothing reached the server, as when the pool
	// hands out a connection the server already closed ("conn closed").
	return pgconn.SafeToRetry(err) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errDBClosed)
}

// errDBClosed is database/sql's unexported "sql: database is closed",
// taken from a closed pool so that it is matched by identity, not text.
var errDBClosed = func() error {
	db := sql.OpenDB(closedConnector{})
	_ = db.Close()
	return db.Ping()
}()

type closedConnector struct{}

func (closedConnector) Connect(context.Context) (driver.Conn, error) { return nil, driver.ErrBadConn }
func (closedConnector) Driver() driver.Driver                        { return nil }

// markUnavailableCallbacks marks every statement's error (gorm's create,
// query, update, delete, row and raw processors), so that no store method
// can hand an unmarked connection failure to its caller.
func markUnavailableCallbacks(db *gorm.DB) error {
	mark := func(tx *gorm.DB) {
		if tx.Error != nil {
			tx.Error = markUnavailable(tx.Error)
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().After("*").Register("fsplane:unavailable", mark),
		cb.Query().After("*").Register("fsplane:unavailable", mark),
		cb.Update().After("*").Register("fsplane:unavailable", mark),
		cb.Delete().After("*").Register("fsplane:unavailable", mark),
		cb.Row().After("*").Register("fsplane:unavailable", mark),
		cb.Raw().After("*").Register("fsplane:unavailable", mark),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

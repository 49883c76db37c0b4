package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/fsplane/fsplane/models"
)

// Listen wakes a follower as soon as another replica commits a change on
// PostgreSQL: the store sends pg_notify on models.ChangeChannel inside each
// writing transaction (delivered at commit), and Listen, on a connection
// of its own (not the store's pool, which recycles connections and would
// drop the LISTEN), turns each notification for its schema into a
// non-blocking send on wake. The change log stays the source of truth: a
// lost notification costs the follower's polling interval, never a change.
//
// Listen reconnects by itself and runs until ctx ends; report receives nil
// once listening (and after each reconnect, when wake also fires once, to
// catch up on what the gap missed) and the error of a lost connection.
func Listen(ctx context.Context, databaseURL string, wake chan<- struct{}, report func(error)) error {
	poke := func() {
		select {
		case wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	return ListenChannel(ctx, databaseURL, models.ChangeChannel,
		func(string) { poke() },
		poke, report)
}

// ListenChannel listens on a PostgreSQL NOTIFY channel whose payloads are
// "schema:rest" (as models sends them) on a connection of its own, and
// calls notify with rest for each notification of its own schema (a
// payload without the prefix is passed whole). connected runs once
// listening, after each reconnect too: notifications sent while the
// connection was down are lost, the caller catches up there. report
// receives nil once listening and the error of a lost connection.
// ListenChannel reconnects by itself and runs until ctx ends; the
// callbacks run on its goroutine and should not block.
func ListenChannel(ctx context.Context, databaseURL, channel string, notify func(rest string), connected func(), report func(error)) error {
	if report == nil {
		report = func(error) {}
	}
	var schema string
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			c, err := pgx.Connect(ctx, databaseURL)
			if err != nil {
				return nil, err
			}
			if err := c.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
				_ = c.Close(ctx)
				return nil, err
			}
			return c, nil
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				// Every failure here is the database connection's: marked
				// unavailable, /readyz shows no driver text (hosts, users).
				report(fmt.Errorf("%w: events: listen on %s: %w", models.ErrUnavailable, channel, err))
			}
		},
		ReconnectDelay: time.Second,
	}
	l.Handle(channel, listenHandler{
		backlog: func() { report(nil); connected() },
		notify: func(payload string) {
			// Other schemas on the same database (tests, other
			// installations) are not ours.
			s, rest, ok := strings.Cut(payload, ":")
			switch {
			case !ok:
				notify(payload)
			case s == schema:
				notify(rest)
			}
		},
	})
	err := l.Listen(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type listenHandler struct {
	backlog func()
	notify  func(payload string)
}

func (h listenHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	h.notify(n.Payload)
	return nil
}

// HandleBacklog runs after every (re)connect, once LISTEN is in place.
func (h listenHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.backlog()
	return nil
}

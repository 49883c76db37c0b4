package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// conn is one authenticated inbound event socket connection. Commands are
// serialised (one in flight), so a reply always belongs to the command that
// is waiting; a command that misses its deadline closes the connection,
// because its late reply would otherwise be taken for the next command's.
type conn struct {
	addr    string
	nc      net.Conn
	br      *bufio.Reader
	onEvent func(Event)

	cmdMu   sync.Mutex // one command at a time
	replies chan frame // capacity 1: the reply to the command in flight

	closeOnce sync.Once
	done      chan struct{}
	errMu     sync.Mutex
	err       error // why the connection ended
}

type dialConfig struct {
	password    string
	dialTimeout time.Duration
	authTimeout time.Duration
	onEvent     func(Event)
}

// dial connects to addr, waits for the auth/request greeting and
// authenticates, all within cfg's deadlines and ctx. It never blocks longer:
// a server that accepts and stays silent, or an ACL rejection, ends in an
// error.
func dial(ctx context.Context, addr string, cfg dialConfig) (*conn, error) {
	d := net.Dialer{Timeout: cfg.dialTimeout, KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("esl: connect %s: %w", addr, ErrTimeout)
		}
		return nil, fmt.Errorf("esl: connect %s: %w", addr, err)
	}
	c := &conn{
		addr: addr, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), onEvent: cfg.onEvent,
		replies: make(chan frame, 1), done: make(chan struct{}),
	}
	if err := c.handshake(ctx, cfg); err != nil {
		nc.Close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

func (c *conn) handshake(ctx context.Context, cfg dialConfig) error {
	deadline := time.Now().Add(cfg.authTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	// A cancelled ctx interrupts a blocked read at once.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	fail := func(stage string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("esl: %s %s: %w", stage, c.addr, ctx.Err())
		}
		if isTimeout(err) {
			return fmt.Errorf("esl: %s %s: no answer within %v: %w", stage, c.addr, cfg.authTimeout, ErrTimeout)
		}
		return fmt.Errorf("esl: %s %s: %w", stage, c.addr, err)
	}
	f, err := readFrame(c.br)
	if err != nil {
		return fail("greeting from", err)
	}
	switch ct := f.contentType(); ct {
	case ctAuthRequest:
	case ctRejection:
		return fmt.Errorf("esl: %s: %w: %q", c.addr, ErrRejected, strings.TrimSpace(string(f.body)))
	case ctDisconnect:
		return fmt.Errorf("esl: %s disconnected before authentication: %w", c.addr, ErrClosed)
	default:
		return fmt.Errorf("esl: greeting from %s: %w: content type %q", c.addr, ErrProtocol, ct)
	}
	if strings.ContainsAny(cfg.password, "\r\n") {
		return fmt.Errorf("esl: password: %w", ErrInvalidCommand)
	}
	if err := writeCommand(c.nc, "auth "+cfg.password); err != nil {
		return fail("authenticate to", err)
	}
	f, err = readFrame(c.br)
	if err != nil {
		return fail("authentication reply from", err)
	}
	if f.contentType() != ctReply {
		return fmt.Errorf("esl: authentication reply from %s: %w: content type %q", c.addr, ErrProtocol, f.contentType())
	}
	if reply := f.get("Reply-Text"); !strings.HasPrefix(reply, "+OK") {
		// The reply text is FreeSWITCH's ("-ERR invalid"); the password
		// itself is never part of an error.
		return fmt.Errorf("esl: %s: %w (%s)", c.addr, ErrAuth, reply)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return nil
}

// readLoop delivers replies to the waiting command and events to onEvent,
// in the order FreeSWITCH sent them, until the connection ends.
func (c *conn) readLoop() {
	defer func() {
		if r := recover(); r != nil {
			c.fail(fmt.Errorf("esl: reader of %s: %w: %v", c.addr, ErrPanic, r))
		}
	}()
	for {
		f, err := readFrame(c.br)
		if err != nil {
			c.fail(fmt.Errorf("esl: read from %s: %w", c.addr, err))
			return
		}
		switch f.contentType() {
		case ctReply, ctAPIResponse:
			select {
			case c.replies <- f:
			default:
				// A reply nobody asked for: the stream is out of step.
				c.fail(fmt.Errorf("esl: %s: %w: unexpected reply", c.addr, ErrProtocol))
				return
			}
		case ctEventPlain:
			ev, err := parseEvent(f.body)
			if err != nil {
				continue // one unreadable event does not end the session
			}
			if c.onEvent != nil {
				c.onEvent(ev)
			}
		case ctDisconnect:
			c.fail(fmt.Errorf("esl: %s: %w: disconnect notice %q", c.addr, ErrClosed, strings.TrimSpace(string(f.body))))
			return
		case ctRejection:
			c.fail(fmt.Errorf("esl: %s: %w", c.addr, ErrRejected))
			return
		default:
			// log/data and other frames fsplane never asks for.
		}
	}
}

// fail ends the connection, keeping the first reason.
func (c *conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.done)
		_ = c.nc.Close()
	})
}

// Close ends the connection.
func (c *conn) Close() { c.fail(fmt.Errorf("esl: %s: %w", c.addr, ErrClosed)) }

// Done is closed when the connection has ended.
func (c *conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended (nil while it is up).
func (c *conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// API runs "api <cmd>" and returns FreeSWITCH's api/response body.
func (c *conn) API(ctx context.Context, cmd string) (string, error) {
	f, err := c.send(ctx, "api "+cmd)
	if err != nil {
		return "", err
	}
	if f.contentType() != ctAPIResponse {
		err := fmt.Errorf("esl: %s: %w: %q answered with %q", c.addr, ErrProtocol, cmd, f.contentType())
		c.fail(err)
		return "", err
	}
	return string(f.body), nil
}

// Command runs a non-api command and returns its Reply-Text.
func (c *conn) Command(ctx context.Context, line string) (string, error) {
	f, err := c.send(ctx, line)
	if err != nil {
		return "", err
	}
	if f.contentType() != ctReply {
		err := fmt.Errorf("esl: %s: %w: %q answered with %q", c.addr, ErrProtocol, line, f.contentType())
		c.fail(err)
		return "", err
	}
	return f.get("Reply-Text"), nil
}

// send writes one command and waits for its reply, within ctx's deadline
// (or defaultCommandTimeout when ctx has none).
func (c *conn) send(ctx context.Context, line string) (frame, error) {
	if strings.ContainsAny(line, "\r\n") {
		return frame{}, fmt.Errorf("esl: %.60q: %w", line, ErrInvalidCommand)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCommandTimeout)
		defer cancel()
	}
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	select {
	case <-c.done:
		return frame{}, c.closedErr()
	default:
	}
	if err := ctx.Err(); err != nil {
		// Spent waiting for another command: nothing was written, the
		// connection is still in step.
		if errors.Is(err, context.DeadlineExceeded) {
			err = ErrTimeout
		}
		return frame{}, fmt.Errorf("esl: %q on %s: %w", verb(line), c.addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = c.nc.SetWriteDeadline(deadline)
	if err := writeCommand(c.nc, line); err != nil {
		err = fmt.Errorf("esl: write %q to %s: %w", verb(line), c.addr, err)
		c.fail(err)
		return frame{}, err
	}
	select {
	case f := <-c.replies:
		return f, nil
	case <-c.done:
		return frame{}, c.closedErr()
	case <-ctx.Done():
		cause := ctx.Err()
		if errors.Is(cause, context.DeadlineExceeded) {
			cause = ErrTimeout
		}
		err := fmt.Errorf("esl: %q on %s: %w", verb(line), c.addr, cause)
		// The reply may still come and would be taken for the next
		// command's: this connection is done.
		c.fail(err)
		return frame{}, err
	}
}

func (c *conn) closedErr() error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("%w (%w)", ErrClosed, err)
	}
	return ErrClosed
}

// verb shortens a command line for errors and metrics.
func verb(line string) string {
	if len(line) > 80 {
		return line[:80]
	}
	return line
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

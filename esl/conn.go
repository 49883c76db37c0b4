package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/percipia/eslgo"
	eslcmd "github.com/percipia/eslgo/command"
)

// eslgoExitTimeout bounds the "exit" eslgo sends after FreeSWITCH refused
// its password (inbound.go:61, its only use here: fsplane never calls
// ExitAndClose). The relay ending eslgo's context cuts it shorter still.
const eslgoExitTimeout = time.Second

// dialGiveUp bounds teardown's wait for eslgo's Dial to return.
const dialGiveUp = 2 * time.Second

// conn is one authenticated inbound event socket connection, spoken through
// github.com/percipia/eslgo v1.5.0 with a relay in front of it (see the
// package doc, "Connections"). Commands are serialised (one in flight), so a
// reply always belongs to the command that is waiting; a command that misses
// its deadline closes the connection, because its late reply would otherwise
// be taken for the next command's.
type conn struct {
	addr    string
	onEvent func(Event)
	up      net.Conn      // to FreeSWITCH, dialled by fsplane
	br      *bufio.Reader // up's reader; the greeting came through it
	events  *sequencer

	// ctx is eslgo's Options.Context: ending it ends eslgo's goroutines and
	// bounds everything eslgo waits for. Only teardown cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	dialDone chan struct{} // closed when eslgo's Dial has returned (or never ran)
	cmdMu    sync.Mutex    // one command at a time
	wg       sync.WaitGroup

	mu         sync.Mutex
	es         *eslgo.Conn
	dialErr    error
	relay      net.Conn // fsplane's end of the socket eslgo dialled
	eslgoStuck bool     // eslgo never got its greeting: its Dial never returns
	authReply  string   // FreeSWITCH's answer to eslgo's auth
	authSeen   bool
	owed       int                // replies eslgo waits for: the auth's, then the command's
	cur        context.CancelFunc // aborts the command in flight
	answered   bool               // its reply has gone to eslgo
	err        error              // why the connection ended

	failOnce sync.Once
	done     chan struct{} // closed when the connection is failing
	gone     chan struct{} // closed when teardown finished: nothing of it is left
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
	if strings.ContainsAny(cfg.password, "\r\n") {
		// eslgo would write it as is: "auth <password>" (command/auth.go).
		return nil, fmt.Errorf("esl: password: %w", ErrInvalidCommand)
	}
	// eslgo's Dial would net.Dial without a timeout (inbound.go:48).
	d := net.Dialer{Timeout: cfg.dialTimeout, KeepAlive: 15 * time.Second}
	up, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("esl: connect %s: %w: %w", addr, ErrUnreachable, ErrTimeout)
		}
		return nil, fmt.Errorf("esl: connect %s: %w: %w", addr, ErrUnreachable, err)
	}
	deadline := time.Now().Add(cfg.authTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	br := bufio.NewReaderSize(up, 64<<10)
	greeting, err := readGreeting(ctx, addr, up, br, deadline, cfg.authTimeout)
	if err != nil {
		up.Close()
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		addr: addr, onEvent: cfg.onEvent, up: up, br: br, events: newSequencer(),
		ctx: cctx, cancel: cancel, dialDone: make(chan struct{}),
		done: make(chan struct{}), gone: make(chan struct{}),
	}
	if err := c.handshake(ctx, greeting, deadline, cfg); err != nil {
		c.fail(err)
		<-c.gone
		return nil, err
	}
	return c, nil
}

// readGreeting reads FreeSWITCH's first frame itself, within the deadline:
// eslgo waits for it on a bare channel receive (inbound.go:55) that no
// deadline reaches, and has no channel at all for text/rude-rejection
// (connection.go:345 ends its receive loop, connection.go:310, and Dial
// waits forever). It returns the greeting's bytes for the relay to replay.
func readGreeting(ctx context.Context, addr string, up net.Conn, br *bufio.Reader, deadline time.Time, authTimeout time.Duration) ([]byte, error) {
	_ = up.SetDeadline(deadline)
	// A cancelled ctx interrupts a blocked read at once.
	stop := context.AfterFunc(ctx, func() { _ = up.SetDeadline(time.Unix(1, 0)) })
	f, err := readFrame(br)
	if !stop() || ctx.Err() != nil {
		return nil, fmt.Errorf("esl: greeting from %s: %w", addr, ctx.Err())
	}
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("esl: greeting from %s: no answer within %v: %w", addr, authTimeout, ErrTimeout)
		}
		return nil, fmt.Errorf("esl: greeting from %s: %w", addr, err)
	}
	switch ct := f.contentType(); ct {
	case ctAuthRequest:
	case ctRejection:
		return nil, fmt.Errorf("esl: %s: %w: %q", addr, ErrRejected, strings.TrimSpace(string(f.body)))
	case ctDisconnect:
		return nil, fmt.Errorf("esl: %s disconnected before authentication: %w", addr, ErrClosed)
	default:
		return nil, fmt.Errorf("esl: greeting from %s: %w: content type %q", addr, ErrProtocol, ct)
	}
	_ = up.SetDeadline(time.Time{})
	return f.raw(), nil
}

// handshake lets eslgo dial the relay and authenticate through it. The
// relay listens on a unix socket in a fresh 0700 directory, so the one
// connection it accepts is eslgo's: no other user can take its place, which
// on a loopback TCP port anyone could, leaving eslgo waiting for a greeting
// forever (inbound.go:55) and that someone with a socket to FreeSWITCH.
func (c *conn) handshake(ctx context.Context, greeting []byte, deadline time.Time, cfg dialConfig) error {
	dir, err := os.MkdirTemp("", "fsplane-esl-")
	if err != nil {
		close(c.dialDone)
		return fmt.Errorf("esl: relay for %s: %w", c.addr, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		close(c.dialDone)
		return fmt.Errorf("esl: relay for %s: %w", c.addr, err)
	}
	defer ln.Close()

	c.mu.Lock()
	c.owed = 1 // the answer to eslgo's auth
	c.mu.Unlock()
	opts := eslgo.InboundOptions{
		// Logger nil: eslgo's messages would go to the standard logger;
		// everything it reports reaches fsplane as an error anyway.
		Options:     eslgo.Options{Context: c.ctx, Logger: nil, ExitTimeout: eslgoExitTimeout},
		Network:     "unix",
		Password:    cfg.password,
		AuthTimeout: max(time.Until(deadline), time.Millisecond),
	}
	go c.dialESLGo(opts, path)
	// eslgo dials at once; should it fail before connecting, Accept must
	// not wait for it.
	go func() { <-c.dialDone; ln.Close() }()
	rc, err := ln.Accept()
	ln.Close()
	if err != nil {
		<-c.dialDone
		c.mu.Lock()
		derr := c.dialErr
		c.mu.Unlock()
		return fmt.Errorf("esl: relay for %s: eslgo did not connect: %w", c.addr, errors.Join(derr, err))
	}
	c.mu.Lock()
	c.relay = rc
	c.mu.Unlock()
	if _, err := rc.Write(greeting); err != nil {
		c.mu.Lock()
		c.eslgoStuck = true
		c.mu.Unlock()
		return fmt.Errorf("esl: relay for %s: replay greeting: %w", c.addr, err)
	}
	c.wg.Add(3)
	go c.down()
	go c.upward()
	go c.dispatch()

	// eslgo's auth is bounded by AuthTimeout (inbound.go:56); this is the
	// caller's ctx and a backstop.
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-c.dialDone:
	case <-ctx.Done():
		return fmt.Errorf("esl: authenticate to %s: %w", c.addr, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("esl: authenticate to %s: no answer within %v: %w", c.addr, cfg.authTimeout, ErrTimeout)
	}
	c.mu.Lock()
	es, err, reply := c.es, c.dialErr, c.authReply
	c.mu.Unlock()
	switch {
	case reply != "" && !strings.HasPrefix(reply, "+OK"):
		// The reply text is FreeSWITCH's ("-ERR invalid"); the password
		// itself is never part of an error.
		return fmt.Errorf("esl: %s: %w (%s)", c.addr, ErrAuth, reply)
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("esl: authenticate to %s: %w", c.addr, ctx.Err())
	case c.Err() != nil:
		return fmt.Errorf("esl: authenticate to %s: %w", c.addr, c.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("esl: authenticate to %s: no answer within %v: %w", c.addr, cfg.authTimeout, ErrTimeout)
	default:
		return fmt.Errorf("esl: authenticate to %s: %w", c.addr, err)
	}
	es.RegisterEventListener(eslgo.EventListenAll, c.onESLEvent)
	if err := c.Err(); err != nil {
		return err
	}
	return nil
}

// dialESLGo runs eslgo's Dial, whose panics must not escape.
func (c *conn) dialESLGo(opts eslgo.InboundOptions, path string) {
	defer close(c.dialDone)
	defer func() {
		if r := recover(); r != nil {
			c.mu.Lock()
			c.dialErr = fmt.Errorf("%w: eslgo Dial: %v", ErrPanic, r)
			c.mu.Unlock()
		}
	}()
	es, err := opts.Dial(path)
	c.mu.Lock()
	c.es, c.dialErr = es, err
	c.mu.Unlock()
}

// down relays FreeSWITCH's frames to eslgo, one whole frame at a time, and
// keeps from eslgo what it mishandles: a disconnect notice or rejection ends
// the connection here (eslgo would Close itself from its disconnect loop,
// inbound.go:80, behind the back of a command in flight); an auth/request
// after the greeting would make eslgo's authLoop (inbound.go:90) send a
// command of its own; a content type it has no channel for would end its
// receive loop silently (connection.go:345, connection.go:310); and an event
// it could not parse (event.go:39) it drops. Every event forwarded is
// announced to the sequencer first, which restores the wire order that
// eslgo's listener goroutines (connection.go:211) lose.
func (c *conn) down() {
	defer c.wg.Done()
	defer c.recoverInto("relay from FreeSWITCH")
	for {
		f, err := readFrame(c.br)
		if err != nil {
			c.fail(fmt.Errorf("esl: read from %s: %w", c.addr, err))
			return
		}
		switch f.contentType() {
		case ctReply, ctAPIResponse:
			if !c.replyOwed(f) {
				// A reply nobody asked for: the stream is out of step.
				c.fail(fmt.Errorf("esl: %s: %w: unexpected reply", c.addr, ErrProtocol))
				return
			}
		case ctEventPlain:
			seq, ok := eventSequence(f.body)
			if !ok {
				continue // one unreadable event does not end the session
			}
			if !c.events.expect(seq, c.done) {
				return
			}
		case ctDisconnect:
			c.fail(fmt.Errorf("esl: %s: %w: disconnect notice %q", c.addr, ErrClosed, strings.TrimSpace(string(f.body))))
			return
		case ctRejection:
			c.fail(fmt.Errorf("esl: %s: %w", c.addr, ErrRejected))
			return
		default:
			continue // auth/request again, log/data, json or xml events: not asked for
		}
		if _, err := f.buffers().WriteTo(c.relay); err != nil {
			c.fail(fmt.Errorf("esl: relay to eslgo for %s: %w", c.addr, err))
			return
		}
	}
}

// replyOwed counts a reply against what eslgo waits for; the first one
// answers its auth.
func (c *conn) replyOwed(f frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owed == 0 {
		return false
	}
	c.owed--
	if !c.authSeen {
		c.authSeen, c.authReply = true, f.get("Reply-Text")
	}
	c.answered = true
	return true
}

// upward relays eslgo's commands to FreeSWITCH. It ends when eslgo closes
// its socket, which it only does on its own after a refused password.
func (c *conn) upward() {
	defer c.wg.Done()
	_, err := io.Copy(c.up, c.relay)
	if err == nil {
		err = io.EOF
	}
	c.fail(fmt.Errorf("esl: %s: %w: eslgo's side ended: %v", c.addr, ErrClosed, err))
}

// onESLEvent is eslgo's listener, called on a goroutine of its own per
// event (connection.go:211). It must not block: it hands the event to the
// sequencer.
func (c *conn) onESLEvent(ev *eslgo.Event) {
	defer c.recoverInto("event listener")
	seq, err := strconv.ParseUint(ev.Headers.Get("Event-Sequence"), 10, 64)
	if err != nil {
		return // down forwards only events that have one
	}
	c.events.arrive(seq, eventFrom(ev))
}

// dispatch calls onEvent for each event in the order FreeSWITCH sent them,
// until the connection ends.
func (c *conn) dispatch() {
	defer c.wg.Done()
	defer c.recoverInto("event handler")
	for {
		ev, ok := c.events.next(c.done)
		if !ok {
			return
		}
		if c.onEvent != nil {
			c.onEvent(ev)
		}
	}
}

// recoverInto turns a panic on one of the connection's goroutines into the
// connection's end.
func (c *conn) recoverInto(where string) {
	if r := recover(); r != nil {
		c.fail(fmt.Errorf("esl: %s of %s: %w: %v", where, c.addr, ErrPanic, r))
	}
}

// fail ends the connection, keeping the first reason. It only starts the
// end: teardown finishes it in the right order.
func (c *conn) fail(err error) {
	c.failOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		close(c.done)
		c.mu.Unlock()
		// FreeSWITCH's side first: nothing more reaches eslgo, and down ends.
		_ = c.up.Close()
		go c.teardown()
	})
}

// teardown ends eslgo without calling its Close, which is unsafe after a
// successful Dial: Close empties eslgo's channel map under a lock
// (connection.go:190-201) that its disconnect and auth loops do not take
// to read it (inbound.go:79, inbound.go:93), a data race, and its receive
// loop's EOF branch sends on a channel from that map without the lock
// either (connection.go:295-308, issue #46: a send on a closed channel, a
// panic on eslgo's goroutine that nothing can recover). So:
//
//  1. The command in flight finishes: with its reply if that already went
//     to eslgo, otherwise cancelled (FreeSWITCH's side is closed).
//  2. eslgo's context ends. Its event, auth and disconnect loops return
//     (connection.go:273, inbound.go:85, inbound.go:105), a hand-off its
//     receive loop was blocked in gives up (connection.go:337), and a Dial
//     still authenticating returns (its auth and exit contexts derive from
//     it). A disconnect loop blocked in its select is claimed by the
//     context's close, so it can no longer take a message and Close.
//  3. Only then the relay closes: eslgo's receive loop reads EOF, finds
//     nobody to tell (its non-blocking send falls to default) and returns.
//
// Nothing writes eslgo's map after Dial, so nothing races. eslgo's own
// socket, whose only closer is Close, is released when the garbage
// collector finalises it; its peer (the relay) is closed by then, so it
// holds one file descriptor and no connection.
func (c *conn) teardown() {
	defer close(c.gone)
	c.mu.Lock()
	if c.cur != nil && !c.answered {
		c.cur()
	}
	c.mu.Unlock()
	c.cmdMu.Lock()
	c.cmdMu.Unlock()
	c.cancel()
	c.mu.Lock()
	stuck := c.eslgoStuck
	c.mu.Unlock()
	if !stuck {
		select {
		case <-c.dialDone:
		case <-time.After(dialGiveUp):
			// eslgo's Dial waits for the greeting on a bare channel
			// (inbound.go:55): when its context ended (step 2) before its
			// receive loop handed the replayed greeting over, it never
			// returns. Leave that one goroutine rather than hang here
			// (seen as a 30 s hang when a test stopped a reconnect).
		}
	}
	c.mu.Lock()
	relay := c.relay
	c.es = nil
	c.mu.Unlock()
	if relay != nil {
		_ = relay.Close()
	}
	c.wg.Wait()
}

// Close ends the connection and returns once everything it used (sockets,
// eslgo's goroutines, the relay) is gone. Not to be called from onEvent.
func (c *conn) Close() {
	c.fail(fmt.Errorf("esl: %s: %w", c.addr, ErrClosed))
	<-c.gone
}

// Done is closed when the connection has ended.
func (c *conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended (nil while it is up).
func (c *conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// API runs "api <cmd>" and returns FreeSWITCH's api/response body.
func (c *conn) API(ctx context.Context, cmd string) (string, error) {
	r, err := c.send(ctx, apiCommand(cmd))
	if err != nil {
		return "", err
	}
	if ct := r.Headers.Get("Content-Type"); ct != ctAPIResponse {
		err := fmt.Errorf("esl: %s: %w: %q answered with %q", c.addr, ErrProtocol, cmd, ct)
		c.fail(err)
		return "", err
	}
	return string(r.Body), nil
}

// Command runs a non-api command and returns its Reply-Text.
func (c *conn) Command(ctx context.Context, line string) (string, error) {
	return c.reply(ctx, rawCommand(line))
}

// subscribe asks for the CUSTOM events of the given subclasses in plain
// format: "event plain CUSTOM a::b c::d".
func (c *conn) subscribe(ctx context.Context, subclasses ...string) (string, error) {
	return c.reply(ctx, eslcmd.Event{Format: "plain", Listen: append([]string{"CUSTOM"}, subclasses...)})
}

func (c *conn) reply(ctx context.Context, cmd eslcmd.Command) (string, error) {
	r, err := c.send(ctx, cmd)
	if err != nil {
		return "", err
	}
	if ct := r.Headers.Get("Content-Type"); ct != ctReply {
		err := fmt.Errorf("esl: %s: %w: %q answered with %q", c.addr, ErrProtocol, cmd.BuildMessage(), ct)
		c.fail(err)
		return "", err
	}
	// The raw header: eslgo's GetReply would URL-decode it and turn a
	// stray "%" into an empty reply (response.go:93).
	return r.Headers.Get("Reply-Text"), nil
}

// rawCommand is a command line eslgo writes as given (eslcmd.Command is
// its way to send anything).
type rawCommand string

func (r rawCommand) BuildMessage() string { return string(r) }

// apiCommand is "api <cmd>". command.API writes "api name args", and
// "api status " (a trailing space) when there are no arguments.
func apiCommand(cmd string) eslcmd.Command {
	name, args, _ := strings.Cut(cmd, " ")
	if args == "" {
		return rawCommand("api " + cmd)
	}
	return eslcmd.API{Command: name, Arguments: args}
}

// send has eslgo write one command and waits for its reply, within ctx's
// deadline (or defaultCommandTimeout when ctx has none). eslgo's SendCommand
// takes whichever reply comes next (connection.go:156-171), so commands are
// serialised here, and a command that misses its deadline ends the
// connection: its late reply would be the next command's.
func (c *conn) send(ctx context.Context, cmd eslcmd.Command) (*eslgo.RawResponse, error) {
	line := cmd.BuildMessage()
	if strings.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("esl: %.60q: %w", line, ErrInvalidCommand)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCommandTimeout)
		defer cancel()
	}
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	if err := ctx.Err(); err != nil {
		// Spent waiting for another command: nothing was written, the
		// connection is still in step.
		if errors.Is(err, context.DeadlineExceeded) {
			err = ErrTimeout
		}
		return nil, fmt.Errorf("esl: %q on %s: %w", verb(line), c.addr, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return nil, c.closedErr()
	default:
	}
	c.cur, c.answered = cancel, false
	c.owed++
	c.mu.Unlock()

	r, err := c.sendESL(sctx, cmd)

	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
	if err == nil {
		return r, nil
	}
	select {
	case <-c.done:
		return nil, c.closedErr()
	default:
	}
	cause := err
	if ctx.Err() != nil {
		cause = ctx.Err()
		if errors.Is(cause, context.DeadlineExceeded) {
			cause = ErrTimeout
		}
	}
	err = fmt.Errorf("esl: %q on %s: %w", verb(line), c.addr, cause)
	// The reply may still come and would be taken for the next command's:
	// this connection is done.
	c.fail(err)
	return nil, err
}

// sendESL calls eslgo's SendCommand, whose panics must not escape.
func (c *conn) sendESL(ctx context.Context, cmd eslcmd.Command) (r *eslgo.RawResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: eslgo SendCommand: %v", ErrPanic, p)
		}
	}()
	r, err = c.es.SendCommand(ctx, cmd)
	if err == nil && r == nil {
		err = ErrClosed
	}
	return r, err
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

package esl

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl/esltest"
)

// connected starts an esltest server and returns a live connection to it.
func connected(t *testing.T) (*esltest.Server, *conn) {
	t.Helper()
	srv := esltest.Start(t, esltest.Options{})
	c, err := testDial(t, srv.Addr(), "ClueCon", nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func testDial(t *testing.T, addr, password string, onEvent func(Event)) (*conn, error) {
	t.Helper()
	// The test's own deadline is far beyond the dial's: a hang would show
	// as this context's error, not as the dial's.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dial(ctx, addr, dialConfig{password: password, dialTimeout: time.Second, authTimeout: 500 * time.Millisecond, onEvent: onEvent})
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("dial hung until the test's deadline")
	}
	if c != nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

func TestDialAuthenticatesAndRunsCommands(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{Password: "s3cret", Profiles: []string{"internal"}})
	c, err := testDial(t, srv.Addr(), "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := c.API(ctx, "sofia profile internal rescan")
	if err != nil || reply != "Reload XML [Success]\n+OK scan complete\n" {
		t.Fatalf("%q %v", reply, err)
	}
	r, err := c.Command(ctx, "event plain CUSTOM sofia::gateway_state")
	if err != nil || r != "+OK event listener enabled plain" {
		t.Fatalf("%q %v", r, err)
	}
	if got := srv.Commands(); len(got) != 2 || got[0] != "api sofia profile internal rescan" {
		t.Fatalf("server saw %q", got)
	}
}

func TestDialWrongPassword(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{Password: "s3cret"})
	_, err := testDial(t, srv.Addr(), "guess", nil)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("%v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "guess") {
		t.Fatalf("the password leaks into %q", err)
	}
}

func TestDialACLRejectionDoesNotHang(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{})
	srv.SetRejectACL(true)
	_, err := testDial(t, srv.Addr(), "ClueCon", nil)
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "Access Denied") {
		t.Fatalf("%v, want ErrRejected", err)
	}
}

func TestDialSilentServerTimesOut(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{})
	srv.Hang()
	_, err := testDial(t, srv.Addr(), "ClueCon", nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("%v, want ErrTimeout", err)
	}
}

func TestDialCancelledContext(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{})
	srv.Hang()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := dial(ctx, srv.Addr(), dialConfig{password: "ClueCon", dialTimeout: time.Second, authTimeout: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := testDial(t, addr, "ClueCon", nil); err == nil || connectResult(err) != "refused" {
		t.Fatalf("%v (%s)", err, connectResult(err))
	}
}

// A command that misses its deadline ends the connection: its late reply
// must never be read as the next command's.
func TestCommandTimeoutDropsConnection(t *testing.T) {
	srv, c := connected(t)
	srv.Hang()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.API(ctx, "status"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("%v, want ErrTimeout", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after a timed-out command")
	}
	if _, err := c.API(context.Background(), "status"); !errors.Is(err, ErrClosed) {
		t.Fatalf("%v, want ErrClosed", err)
	}
}

// Nothing with a line break is ever written: the server sees no command.
func TestCommandWithLineBreakNeverWritten(t *testing.T) {
	srv, c := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, line := range []string{"status\n\napi fsctl shutdown", "status\r\napi fsctl shutdown", "sofia profile x\rrescan"} {
		if _, err := c.API(ctx, line); !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("%q: %v", line, err)
		}
	}
	if _, err := c.API(ctx, "status"); err != nil {
		t.Fatalf("connection unusable after refusals: %v", err)
	}
	if got := srv.Commands(); len(got) != 1 || got[0] != "api status" {
		t.Fatalf("server saw %q", got)
	}
}

func TestDisconnectNoticeEndsConnection(t *testing.T) {
	_, c := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := c.Command(ctx, "exit"); err != nil || r != "+OK bye" {
		t.Fatalf("%q %v", r, err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("still open after the disconnect notice")
	}
	if !errors.Is(c.Err(), ErrClosed) || !strings.Contains(c.Err().Error(), "Disconnected, goodbye") {
		t.Fatalf("%v", c.Err())
	}
}

// Events arrive in the order FreeSWITCH sent them, and a panic in their
// handling ends only this connection.
func TestEventsInOrderAndPanicsRecovered(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{Profiles: []string{"internal"},
		Gateways: []esltest.Gateway{{Name: "einsundeins", Profile: "internal", Register: true}}})
	var mu sync.Mutex
	var states []string
	c, err := testDial(t, srv.Addr(), "ClueCon", func(ev Event) {
		if ev.Get("State") == "PANIC" {
			panic("handler bug")
		}
		mu.Lock()
		states = append(states, ev.Get("State"))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Command(ctx, "event plain CUSTOM sofia::gateway_state"); err != nil {
		t.Fatal(err)
	}
	want := []string{"TRYING", "REGISTER", "FAILED", "FAIL_WAIT", "TRYING", "REGED"}
	for _, s := range want {
		srv.SetGatewayState("einsundeins", s, "UP")
	}
	srv.SetGatewayState("einsundeins", "PANIC", "UP")
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection survived a panicking event handler")
	}
	if !errors.Is(c.Err(), ErrPanic) {
		t.Fatalf("%v, want ErrPanic", c.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(states, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", states, want)
	}
}

// FreeSWITCH dying while a command waits ends the command with ErrClosed at
// once, not at its deadline (which would be ErrTimeout).
func TestServerDeathMidCommand(t *testing.T) {
	srv, c := connected(t)
	srv.Hang()
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.API(ctx, "status")
		got <- err
	}()
	waitInFlight(t, c)
	srv.Kill()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("%v, want ErrClosed", err)
	}
	<-c.Done()
	if _, err := c.API(context.Background(), "status"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after death: %v, want ErrClosed", err)
	}
}

// waitInFlight waits until c has a command written and unanswered (a hung
// esltest records nothing).
func waitInFlight(t *testing.T, c *conn) {
	t.Helper()
	for range 2000 {
		c.mu.Lock()
		busy := c.cur != nil && !c.answered
		c.mu.Unlock()
		if busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no command in flight")
}

// Every way a connection can end leaves nothing behind: no goroutine of
// eslgo, of the relay or of the sequencer, and no socket (eslgo's own is
// released by the garbage collector; see teardown).
func TestNoLeakAcrossReconnects(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{Profiles: []string{"internal"},
		Gateways: []esltest.Gateway{{Name: "plusnet", Profile: "internal"}}})
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	cycle := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cfg := dialConfig{password: "ClueCon", dialTimeout: time.Second, authTimeout: 2 * time.Second, onEvent: func(Event) {}}
		switch i % 5 {
		case 3:
			cfg.password = "wrong"
		case 4:
			srv.SetRejectACL(true)
			defer srv.SetRejectACL(false)
		}
		c, err := dial(ctx, srv.Addr(), cfg)
		if i%5 >= 3 {
			if err == nil {
				c.Close()
				t.Fatalf("cycle %d: dial succeeded", i)
			}
			return
		}
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, err := c.subscribe(ctx, "sofia::gateway_state"); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		srv.SetGatewayState("plusnet", "TRYING", "UP")
		switch i % 5 {
		case 0: // closed by fsplane
			if _, err := c.API(ctx, "status"); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
		case 1: // FreeSWITCH dies, a command in flight
			srv.Hang()
			go func() { _, _ = c.API(ctx, "status") }()
			waitInFlight(t, c)
			srv.Kill()
			<-c.Done()
			srv.Unhang()
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
		case 2: // FreeSWITCH says goodbye
			if _, err := c.Command(ctx, "exit"); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
			<-c.Done()
		}
		srv.ResetTranscript()
		c.Close()
	}
	cycle(0) // warm up: lazily opened descriptors, the first goroutines
	runtime.GC()
	baseFDs := fds()
	for i := range 50 {
		cycle(i)
	}
	ours := func() []string {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "percipia/eslgo") || strings.Contains(g, "esl.(*conn)") || strings.Contains(g, "esl.(*sequencer)") {
				left = append(left, g)
			}
		}
		return left
	}
	// Goroutines end just after Close returns (eslgo's on its context), and
	// finalisers run on their own goroutine: give both a moment.
	var left []string
	var nfds int
	for range 100 {
		runtime.GC()
		if left, nfds = ours(), fds(); len(left) == 0 && nfds <= baseFDs {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutines left, e.g.\n%s", len(left), left[0])
	}
	if nfds > baseFDs {
		t.Fatalf("%d file descriptors open, %d before 50 connections", nfds, baseFDs)
	}
}

// A long burst keeps its order, although eslgo hands each event to its
// listener on a goroutine of its own.
func TestManyEventsInOrder(t *testing.T) {
	srv := esltest.Start(t, esltest.Options{Profiles: []string{"internal"},
		Gateways: []esltest.Gateway{{Name: "einsundeins", Profile: "internal", Register: true}}})
	var mu sync.Mutex
	var got []string
	c, err := testDial(t, srv.Addr(), "ClueCon", func(ev Event) {
		mu.Lock()
		got = append(got, ev.Get("State"))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.subscribe(ctx, "sofia::gateway_state"); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 2000 {
		s := "S" + strconv.Itoa(i)
		want = append(want, s)
		srv.SetGatewayState("einsundeins", s, "UP")
	}
	// A command answered after the last event: every event went through
	// the relay before its reply.
	if _, err := c.API(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s, want %s (order lost)", i, got[i], want[i])
		}
	}
}

// rawServer is a FreeSWITCH event socket written by hand, for frames
// esltest never sends: it greets, accepts any auth, and answers each
// command with what answer writes.
func rawServer(t *testing.T, answer func(cmd string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				_, _ = io.WriteString(nc, "Content-Type: auth/request\n\n")
				for {
					var lines []string
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if l = strings.TrimRight(l, "\r\n"); l == "" {
							if len(lines) > 0 {
								break
							}
							continue
						}
						lines = append(lines, l)
					}
					if strings.HasPrefix(lines[0], "auth ") {
						_, _ = io.WriteString(nc, "Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
						continue
					}
					if _, err := io.WriteString(nc, answer(lines[0])); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func apiFrame(body string) string {
	return "Content-Type: api/response\nContent-Length: " + strconv.Itoa(len(body)) + "\n\n" + body
}

func eventFrame(body string) string {
	return "Content-Type: text/event-plain\nContent-Length: " + strconv.Itoa(len(body)) + "\n\n" + body
}

// Frames that would end eslgo's receive loop silently (a content type it
// has no channel for), make it answer an auth request of its own, or panic
// it (a negative Content-Length in an event: event.go:52) never reach it;
// the session goes on, and the events that are fine arrive.
func TestRelayKeepsFromESLGoWhatItMishandles(t *testing.T) {
	addr := rawServer(t, func(cmd string) string {
		if cmd != "api status" {
			return apiFrame("-ERR unexpected\n")
		}
		return "Content-Type: log/data\nContent-Length: 5\n\nhello" +
			"Content-Type: auth/request\n\n" +
			"Content-Type: text/event-json\nContent-Length: 2\n\n{}" +
			eventFrame("Event-Name: CUSTOM\nEvent-Sequence: 1\nContent-Length: -1\n\n") +
			eventFrame("Event-Name: CUSTOM\nState: NOSEQ\n\n") +
			eventFrame("Event-Name: CUSTOM\nState: REGED\nEvent-Sequence: 2\n\n") +
			apiFrame("UP 0 years, 0 days\n")
	})
	events := make(chan Event, 10)
	c, err := testDial(t, addr, "ClueCon", func(ev Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 3 {
		if r, err := c.API(ctx, "status"); err != nil || r != "UP 0 years, 0 days\n" {
			t.Fatalf("%q %v", r, err)
		}
	}
	for range 3 {
		select {
		case ev := <-events:
			if ev.Get("State") != "REGED" {
				t.Fatalf("event %v", ev.Headers)
			}
		case <-ctx.Done():
			t.Fatal("event lost")
		}
	}
	select {
	case <-c.Done():
		t.Fatalf("connection ended: %v", c.Err())
	default:
	}
}

// A reply nobody asked for, or a frame eslgo would panic on (a negative
// Content-Length: response.go:52), ends the connection with ErrProtocol;
// fsplane goes on.
func TestRelayRefusesBrokenStream(t *testing.T) {
	for name, answer := range map[string]string{
		"second reply":    apiFrame("+OK\n") + apiFrame("+OK again\n"),
		"negative length": "Content-Type: api/response\nContent-Length: -1\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			addr := rawServer(t, func(string) string { return answer })
			c, err := testDial(t, addr, "ClueCon", nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _ = c.API(ctx, "status")
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("connection survived a broken stream")
			}
			if !errors.Is(c.Err(), ErrProtocol) {
				t.Fatalf("%v, want ErrProtocol", c.Err())
			}
		})
	}
}

// BenchmarkAPIRoundTrip is one api command and its reply over a live
// connection: what the relay in front of eslgo costs per command.
func BenchmarkAPIRoundTrip(b *testing.B) {
	srv := esltest.Start(b, esltest.Options{})
	ctx := context.Background()
	c, err := dial(ctx, srv.Addr(), dialConfig{password: "ClueCon", dialTimeout: time.Second, authTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.API(ctx, "status"); err != nil {
			b.Fatal(err)
		}
	}
}

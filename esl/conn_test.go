package esl

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl/esltest"
)

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
	srv := esltest.Start(t, esltest.Options{})
	c, err := testDial(t, srv.Addr(), "ClueCon", nil)
	if err != nil {
		t.Fatal(err)
	}
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
	srv := esltest.Start(t, esltest.Options{})
	c, err := testDial(t, srv.Addr(), "ClueCon", nil)
	if err != nil {
		t.Fatal(err)
	}
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
	srv := esltest.Start(t, esltest.Options{})
	c, err := testDial(t, srv.Addr(), "ClueCon", nil)
	if err != nil {
		t.Fatal(err)
	}
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

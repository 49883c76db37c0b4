package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models/modelstest"
)

func testGroup(t *testing.T, ctx context.Context) (*runGroup, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	rg := newRunGroup(ctx, slog.New(slog.NewTextHandler(logs, nil)))
	rg.minBackoff, rg.maxBackoff, rg.resetAfter = time.Millisecond, 4*time.Millisecond, time.Hour
	return rg, logs
}

// waitFor polls cond; the deadline only bounds a broken run.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A component whose failure ends the process: the others are stopped, the
// failure is logged, shown as down, and returned.
func TestRunGroupFatalFailureStopsTheOthers(t *testing.T) {
	rg, logs := testGroup(t, context.Background())
	bad := rg.add("bad", endProcess)
	other := rg.add("other", endProcess)
	boom := errors.New("listener closed under us")
	fail := make(chan struct{})
	var otherStopped atomic.Bool
	rg.start(rg.Context(), bad, func(ctx context.Context) error { <-fail; return boom })
	rg.start(rg.Context(), other, func(ctx context.Context) error {
		<-ctx.Done()
		otherStopped.Store(true)
		return nil
	})
	if r := bad.check(context.Background()); r.Status != "ok" {
		t.Fatalf("running component: %+v", r)
	}
	close(fail)
	err := rg.wait()
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "bad") {
		t.Fatalf("wait = %v, want the failure naming the component", err)
	}
	if !otherStopped.Load() {
		t.Fatal("the other component was not stopped")
	}
	if r := bad.check(context.Background()); r.Status != "down" || !strings.Contains(r.Detail, boom.Error()) {
		t.Fatalf("failed component's check: %+v", r)
	}
	if r := other.check(context.Background()); r.Status != "ok" {
		t.Fatalf("a component stopped because of another one is not itself down: %+v", r)
	}
	if l := logs.String(); !strings.Contains(l, "component=bad") || !strings.Contains(l, "stopping fsplane") || !strings.Contains(l, boom.Error()) {
		t.Fatalf("the failure is not logged:\n%s", l)
	}
}

// A restarted component: each failure (an error, a plain return, a panic)
// is logged and shown until the next run; the process keeps going.
func TestRunGroupRestartsWithBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rg, logs := testGroup(t, ctx)
	c := rg.add("follower", restart)
	var runs atomic.Int32
	release := make(chan struct{})
	rg.start(rg.Context(), c, func(ctx context.Context) error {
		switch runs.Add(1) {
		case 1:
			return errors.New("first failure")
		case 2:
			return nil // returning at all is a failure
		case 3:
			panic("third failure")
		case 4:
			<-release // the check shows the last failure until told otherwise
			c.report(errors.New("database unreachable"))
		}
		<-ctx.Done()
		return ctx.Err()
	})
	waitFor(t, "the fourth run", func() bool { return runs.Load() == 4 })
	// After a restart the component is running again.
	if r := c.check(ctx); r.Status != "ok" {
		t.Fatalf("restarted component: %+v", r)
	}
	close(release)
	// The status changes before its log line is written: wait for both.
	waitFor(t, "the degraded report", func() bool {
		return c.check(ctx).Status == "degraded" && strings.Contains(logs.String(), "component degraded")
	})
	if r := c.check(ctx); !strings.Contains(r.Detail, "database unreachable") {
		t.Fatalf("degraded without the error: %+v", r)
	}
	l := logs.String()
	for _, want := range []string{"first failure", errReturned.Error(), "panic: third failure", "component degraded"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	if n := strings.Count(l, "component failed; restarting"); n != 3 {
		t.Errorf("%d restarts logged, want 3:\n%s", n, l)
	}
	cancel()
	if err := rg.wait(); err != nil {
		t.Fatalf("a restarted component's failures must not end the group: %v", err)
	}
}

// SIGTERM: fsplane stops accepting, lets the request in flight finish, keeps
// FreeSWITCH's connection until then, closes it, and exits 0.
func TestServeSIGTERMDrainsThenStopsESL(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{})
	env := map[string]string{
		"FSPLANE_DATA_DIR":         t.TempDir(),
		"FSPLANE_EXTERNAL_IPV4":    "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":    "2a01:4f8:140:829d::2",
		"FSPLANE_ESL_NODES":        fs.Addr(),
		"FSPLANE_XMLCURL_USER":     "freeswitch",
		"FSPLANE_XMLCURL_PASSWORD": "xml-pass",
	}
	addr, stderr, stop := startServe(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fs.Wait(ctx, func(s *esltest.Server) bool { return s.Conns() == 1 && s.Count("api reloadacl") >= 1 }); err != nil {
		t.Fatalf("fsplane did not connect and sync: %v", err)
	}

	// A request in flight: headers sent, the handler reading the body (the
	// 100 Continue says it has started), half of the body still to come.
	body := "hostname=fs1&section=configuration&tag_name=configuration&key_name=name&key_value=sofia.conf&Event-Name=REQUEST_PARAMS"
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/sip/xml-curl HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		addr, base64.StdEncoding.EncodeToString([]byte("freeswitch:xml-pass")), len(body))
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("no 100 Continue: %q %v", line, err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "\r\n" {
		t.Fatalf("100 Continue not followed by its blank line: %q %v", line, err)
	}
	if _, err := io.WriteString(conn, body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// No new connections...
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// ...while FreeSWITCH stays connected until the drain is over.
	if n := fs.Conns(); n != 1 {
		t.Fatalf("ESL connections while draining: %d, want 1", n)
	}
	if _, err := io.WriteString(conn, body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request in flight was cut off: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), `<configuration name="sofia.conf"`) {
		t.Fatalf("the request in flight: %d %s", resp.StatusCode, answer)
	}
	if err := fs.Wait(ctx, func(s *esltest.Server) bool { return s.Conns() == 0 }); err != nil {
		t.Fatal("the ESL connection was not closed")
	}
	waitFor(t, "serve to stop", func() bool { return strings.Contains(stderr.String(), "fsplane stopped") })
	if rc := stop(); rc != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0:\n%s", rc, stderr.String())
	}
}

// The change follower (PostgreSQL) keeps polling while the change log
// cannot be read: /readyz shows it degraded with the error, and ok again
// once the log answers.
func TestServeFollowerReportsDegraded(t *testing.T) {
	s := modelstest.Open(t, "postgres", modelstest.Options{NoMigrate: true})
	env := map[string]string{"FSPLANE_DATA_DIR": t.TempDir(), "DATABASE_URL": modelstest.URLOf(t, s)}
	addr, stderr, _ := startServe(t, env)
	follower := func() (int, string, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Checks map[string]struct{ Status, Detail string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		f, ok := out.Checks["follower"]
		if !ok {
			t.Fatalf("/readyz has no follower check: %+v", out)
		}
		return resp.StatusCode, f.Status, f.Detail
	}
	if code, st, _ := follower(); code != http.StatusOK || st != "ok" {
		t.Fatalf("follower at start: %d %s", code, st)
	}
	if err := s.DB().Exec("ALTER TABLE change_events RENAME TO change_events_away").Error; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the follower to report degraded", func() bool { _, st, _ := follower(); return st == "degraded" })
	code, _, detail := follower()
	if code != http.StatusOK || !strings.Contains(detail, "change_events") {
		t.Fatalf("degraded follower: %d %q (degraded keeps fsplane ready; the detail names the error)", code, detail)
	}
	if !strings.Contains(stderr.String(), "component degraded") {
		t.Fatalf("the follower's failure is not logged:\n%s", stderr.String())
	}
	metric := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if m := metric(); !strings.Contains(m, `fsplane_component_status{component="follower",status="degraded"} 1`) {
		t.Fatalf("the metric does not show the degraded follower:\n%s", m)
	}
	if err := s.DB().Exec("ALTER TABLE change_events_away RENAME TO change_events").Error; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the follower to recover", func() bool { _, st, _ := follower(); return st == "ok" })
	if m := metric(); !strings.Contains(m, `fsplane_component_status{component="follower",status="ok"} 1`) {
		t.Fatalf("the metric does not show the follower recovered")
	}
}

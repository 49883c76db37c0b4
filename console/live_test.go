package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/console"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
)

func TestTrunksPageShowsGatewayStates(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{Profiles: []string{"external-ipv4", "internal"}})
	fs.DefineGateway(esltest.Gateway{Name: "plusnet", Profile: "external-ipv4"})
	fs.DefineGateway(esltest.Gateway{Name: "1und1", Profile: "internal", Register: true})
	ev := newEnv(t, envOptions{eslNode: fs.Addr()})
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks")
	b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	b.post("/ui/trunks", url.Values{"preset": {"1und1"}, "name": {"1und1"}, "numbers": {"+4934556643378"},
		"username": {"4934556643378"}, "password": {"your-sip-password"}}).want(t, http.StatusSeeOther)
	// Wait for the manager's rescan to load both.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, a := fs.Gateway("plusnet")
		_, c := fs.Gateway("1und1")
		if a && c {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateways were never loaded on the node")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fs.SetGatewayState("1und1", "FAIL_WAIT", "DOWN")
	p := b.get("/ui/trunks").want(t, http.StatusOK)
	cell := func(trunk string) string {
		m := regexp.MustCompile(`<span class="gw ([a-z]+)" data-gw-trunk="` + trunk + `"[^>]*>.*?<span class="state">([^<]*)</span>`).FindStringSubmatch(p.Body)
		if m == nil {
			t.Fatalf("no gateway cell for %s:\n%s", trunk, p.Body)
		}
		return m[1] + " " + m[2]
	}
	if got := cell("plusnet"); got != "ok NOREG (IP auth)" {
		t.Errorf("plusnet: %q, want healthy NOREG (IP auth)", got)
	}
	if got := cell("1und1"); got != "bad FAIL_WAIT" {
		t.Errorf("1und1: %q, want bad FAIL_WAIT", got)
	}
	if p := b.get("/ui/nodes"); !strings.Contains(p.Body, fs.Addr()) || !strings.Contains(p.Body, "connected") ||
		!strings.Contains(p.Body, "<td>this replica</td>") {
		t.Errorf("the nodes page does not show the node and who drives it:\n%s", p.Body)
	}
}

// sse reads a live-update stream event by event.
type sse struct {
	res *http.Response
	r   *bufio.Reader
	// skipped are the data of the events next passed over, in order.
	skipped []string
}

func (b *browser) events(t *testing.T) *sse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.ev.srv.URL+"/ui/events", nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	res, err := b.c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/ui/events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &sse{res: res, r: bufio.NewReader(res.Body)}
}

// next returns the next event whose name is name and whose data contains
// want; it fails the test after the deadline.
func (s *sse) next(t *testing.T, name, want string) string {
	t.Helper()
	type ev struct{ name, data string }
	got := make(chan ev, 1)
	var skipped []string
	go func() {
		var cur ev
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				close(got)
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				cur.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			case line == "":
				if cur.name == name && strings.Contains(cur.data, want) {
					got <- cur
					return
				}
				if cur.name != "" {
					skipped = append(skipped, cur.name+" "+cur.data)
				}
				cur = ev{}
			}
		}
	}()
	select {
	case e, ok := <-got:
		if !ok {
			t.Fatalf("the stream ended before a %s event with %q", name, want)
		}
		s.skipped = skipped // the reader is done: no race
		return e.data
	case <-time.After(5 * time.Second):
		s.res.Body.Close()
		t.Fatalf("no %s event with %q", name, want)
	}
	return ""
}

func TestLiveEvents(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{Profiles: []string{"external-ipv4", "internal"}})
	fs.DefineGateway(esltest.Gateway{Name: "1und1", Profile: "internal", Register: true})
	ev := newEnv(t, envOptions{eslNode: fs.Addr(), gatewayPoll: 50 * time.Millisecond})
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks")
	stream := b.events(t)

	b.post("/ui/trunks", url.Values{"preset": {"1und1"}, "name": {"1und1"}, "numbers": {"+4934556643378"},
		"username": {"4934556643378"}, "password": {"your-sip-password"}}).want(t, http.StatusSeeOther)
	stream.next(t, "change", `"name":"1und1"`)
	stream.next(t, "gateway", `"state":"REGED"`)
	fs.SetGatewayState("1und1", "FAIL_WAIT", "DOWN")
	d := stream.next(t, "gateway", `"state":"FAIL_WAIT"`)
	if !strings.Contains(d, `"class":"bad"`) || !strings.Contains(d, `"trunk":"1und1"`) {
		t.Errorf("gateway event %s", d)
	}
	// A stream that starts later hears the states known now, unchanged
	// since: a page rendered just before a change is not left behind.
	late := b.events(t)
	late.next(t, "gateway", `"state":"FAIL_WAIT"`)

	// FreeSWITCH going away is news for the nodes page.
	fs.Kill()
	late.next(t, "change", `"kind":"node"`)
	if err := fs.Restart(); err != nil {
		t.Fatal(err)
	}

	// Token changes are admin-only, as in the API: a sip:read stream does
	// not hear of them, an admin stream does.
	ro := ev.browser()
	ro.login(ev.tokens["sip:read"])
	roStream := ro.events(t)
	// (The store records no change event for tokens today; the bus may
	// carry one, as xml-curl's cache expects.)
	ev.ui.OnChange(models.ChangeEvent{ID: 1 << 40, Kind: models.KindToken, Op: models.OpDelete, Name: "new-token-name"})
	stream.next(t, "change", `"name":"new-token-name"`)
	b.get("/ui/trunks")
	b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	roStream.next(t, "change", `"name":"plusnet"`)
	for _, d := range roStream.skipped {
		if strings.Contains(d, "new-token-name") {
			t.Errorf("the sip:read stream heard of the token change: %s", d)
		}
	}

	// Logging out ends the stream with a logout event.
	b.post("/ui/logout", url.Values{}).toLogin(t)
	stream.next(t, "logout", "{}")
}

// FreeSWITCH's gateway events reach the browser without a poll: with an
// hour between polls, a state change still arrives (pushed through
// esl.Manager.OnGatewayState).
func TestGatewayEventsArePushed(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{Profiles: []string{"external-ipv4", "internal"}})
	fs.DefineGateway(esltest.Gateway{Name: "1und1", Profile: "internal", Register: true})
	ev := newEnv(t, envOptions{eslNode: fs.Addr(), gatewayPoll: time.Hour})
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks")
	b.post("/ui/trunks", url.Values{"preset": {"1und1"}, "name": {"1und1"}, "numbers": {"+4934556643378"},
		"username": {"4934556643378"}, "password": {"your-sip-password"}}).want(t, http.StatusSeeOther)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := fs.Gateway("1und1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway was never loaded on the node")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stream := b.events(t) // its first (and, here, only) poll runs now
	stream.next(t, "gateway", `"trunk":"1und1"`)
	fs.SetGatewayState("1und1", "FAIL_WAIT", "DOWN")
	if d := stream.next(t, "gateway", `"state":"FAIL_WAIT"`); !strings.Contains(d, `"class":"bad"`) {
		t.Errorf("gateway event %s", d)
	}
	fs.SetGatewayState("1und1", "REGED", "UP")
	stream.next(t, "gateway", `"state":"REGED"`)
}

// One session cannot open live-update streams without end: beyond its
// share the stream is refused (429), and a closed one frees its place.
func TestStreamsPerSessionBounded(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks")
	for range console.MaxStreamsPerSession {
		b.events(t)
	}
	req, _ := http.NewRequest(http.MethodGet, ev.srv.URL+"/ui/events", nil)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("stream over the session's share: %d, want 429", res.StatusCode)
	}
}

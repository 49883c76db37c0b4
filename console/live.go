package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/models"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// listener is one browser's live-update stream.
type listener struct {
	session string
	// admin: the token may see every kind of change (token changes are
	// admin-only in the API too).
	admin bool
	ch    chan sseEvent
	// lost is set when ch was full and an event was dropped: the stream
	// then tells the page to reload its live parts.
	mu   sync.Mutex
	lost bool
	done chan struct{}
	once sync.Once
}

func (l *listener) end() { l.once.Do(func() { close(l.done) }) }

// hub fans changes and gateway states out to the listeners, and polls the
// gateway states while anyone listens.
type hub struct {
	c *Console

	mu       sync.Mutex
	subs     map[*listener]struct{}
	closed   bool
	stopPoll context.CancelFunc
	pollers  sync.WaitGroup    // a stopped poller may outlive its successor's start
	last     map[string]gwCell // trunk\x00node → as last sent
	nodes    string            // the nodes' states as last seen
	kick     chan string       // gateways FreeSWITCH reported a state for
}

func newHub(c *Console) *hub {
	h := &hub{c: c, subs: map[*listener]struct{}{}, kick: make(chan string, 256)}
	// FreeSWITCH's gateway events are pushed at once; the poll stays as
	// the net (and for the first states of a new stream).
	if src, ok := c.opt.ESL.(interface{ OnGatewayState(func(esl.GatewayEvent)) }); ok {
		src.OnGatewayState(func(ev esl.GatewayEvent) {
			select {
			case h.kick <- ev.Gateway:
			default: // full: the next poll sends it
			}
		})
	}
	return h
}

// maxStreamsPerSession bounds one session's open live-update streams (a
// browser needs one per tab): each holds a goroutine and a connection.
const maxStreamsPerSession = 16

// add registers a stream for session; nil when the session has its share.
func (h *hub) add(session string, admin bool) *listener {
	l := &listener{session: session, admin: admin, ch: make(chan sseEvent, 64), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		l.end()
		return l
	}
	n := 0
	for o := range h.subs {
		if o.session == session {
			n++
		}
	}
	if n >= maxStreamsPerSession {
		return nil
	}
	h.subs[l] = struct{}{}
	if len(h.subs) == 1 && h.c.opt.ESL != nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.stopPoll, h.last, h.nodes = cancel, map[string]gwCell{}, ""
		h.pollers.Add(1)
		go h.poll(ctx)
	}
	// The states known now: one may have changed between the page's
	// rendering and this stream's start.
	for _, g := range h.last {
		b, _ := json.Marshal(g)
		select {
		case l.ch <- sseEvent{name: "gateway", data: b}:
		default:
			l.mu.Lock()
			l.lost = true // the page reloads its live parts instead
			l.mu.Unlock()
		}
	}
	return l
}

func (h *hub) remove(l *listener) {
	h.mu.Lock()
	delete(h.subs, l)
	var stop context.CancelFunc
	if len(h.subs) == 0 && h.stopPoll != nil {
		stop, h.stopPoll = h.stopPoll, nil
	}
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// broadcast hands ev to every listener (only to admins when adminOnly).
func (h *hub) broadcast(ev sseEvent, adminOnly bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.subs {
		if adminOnly && !l.admin {
			continue
		}
		select {
		case l.ch <- ev:
		default:
			l.mu.Lock()
			l.lost = true
			l.mu.Unlock()
		}
	}
}

// change is the events.Bus subscriber's work: quick, never blocking.
func (h *hub) change(ev models.ChangeEvent) {
	b, _ := json.Marshal(struct {
		Kind string `json:"kind"`
		Op   string `json:"op"`
		Name string `json:"name"`
	}{ev.Kind, ev.Op, ev.Name})
	h.broadcast(sseEvent{name: "change", data: b}, ev.Kind == models.KindToken)
}

// endSession ends the streams of a session that logged out.
func (h *hub) endSession(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.subs {
		if l.session == id {
			l.end()
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for l := range h.subs {
		l.end()
	}
	stop := h.stopPoll
	h.stopPoll = nil
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
	h.pollers.Wait()
}

// poll reads every trunk's gateway state each GatewayPoll and sends the
// ones that changed (all of them on the first round: a page rendered just
// before the stream opened may already be behind).
func (h *hub) poll(ctx context.Context) {
	defer h.pollers.Done()
	t := time.NewTicker(h.c.opt.GatewayPoll)
	defer t.Stop()
	h.pollOnce(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.pollOnce(ctx)
		case name := <-h.kick:
			h.pollTrunk(ctx, name)
		}
	}
}

// pollTrunk sends the state of one trunk's gateways, on its event.
func (h *hub) pollTrunk(ctx context.Context, name string) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t, err := h.c.opt.Store.TrunkByName(qctx, name)
	if err != nil {
		return // not a trunk of ours (or gone): nothing to show
	}
	h.sendStates(qctx, *t)
}

func (h *hub) pollOnce(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// A node connecting, failing or owing commands is news for the nodes
	// page: a "change" of kind "node" makes pages reload their live parts.
	var ns strings.Builder
	for _, n := range h.c.opt.ESL.Nodes() {
		fmt.Fprintf(&ns, "%s %s %d %s %d\n", n.Node, n.State, n.Pending, n.LastError, n.AppliedChangeID)
	}
	h.mu.Lock()
	nodesChanged := h.nodes != "" && h.nodes != ns.String()
	h.nodes = ns.String()
	h.mu.Unlock()
	if nodesChanged {
		h.broadcast(sseEvent{name: "change", data: []byte(`{"kind":"node"}`)}, false)
	}
	trunks, _, err := h.c.opt.Store.ListTrunks(qctx, models.TrunkFilter{Page: models.Page{Limit: 1000}})
	if err != nil {
		if ctx.Err() == nil {
			h.c.log.Debug("console: gateway poll: trunks unreadable", "err", err)
		}
		return
	}
	for _, t := range trunks {
		if ctx.Err() != nil {
			return // stopped: what it would send is no one's news
		}
		h.sendStates(qctx, t)
	}
}

// sendStates broadcasts t's gateway states that changed since last sent.
func (h *hub) sendStates(qctx context.Context, t models.Trunk) {
	gws, _ := h.c.opt.ESL.GatewayStatus(qctx, t)
	for _, gs := range gws {
		g := cellOf(gs)
		key := t.Name + "\x00" + gs.Node
		h.mu.Lock()
		old, seen := h.last[key]
		// The detail of a waiting gateway counts down ("retry in
		// 25s"): only the state, the calls and the last REGISTER reply
		// are news.
		changed := !seen || old.State != g.State || old.Class != g.Class || old.Calls != g.Calls || old.Register != g.Register
		if changed {
			h.last[key] = g
		}
		h.mu.Unlock()
		if changed {
			b, _ := json.Marshal(g)
			h.broadcast(sseEvent{name: "gateway", data: b}, false)
		}
	}
}

// sseHeartbeat is how often an idle stream is checked (session still
// live, token still valid) and kept open through proxies.
const sseHeartbeat = 15 * time.Second

func (c *Console) events(w http.ResponseWriter, r *request) {
	rc := http.NewResponseController(w)
	l := c.hub.add(r.s.id, r.p.Allows(auth.ScopeAdmin))
	if l == nil {
		c.met.refused.WithLabelValues("streams").Inc()
		http.Error(w, "too many live-update streams for this session", http.StatusTooManyRequests)
		return
	}
	defer c.hub.remove(l)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	c.met.streams.Inc()
	defer c.met.streams.Dec()

	write := func(format string, args ...any) bool {
		// The server's WriteTimeout would cut a stream that lasts; each
		// write gets its own deadline instead.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 3000\n: fsplane live updates\n\n") {
		return
	}
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-l.done:
			write("event: logout\ndata: {}\n\n")
			return
		case ev := <-l.ch:
			l.mu.Lock()
			lost := l.lost
			l.lost = false
			l.mu.Unlock()
			if lost && !write("event: change\ndata: {\"kind\":\"*\"}\n\n") {
				return
			}
			if !write("event: %s\ndata: %s\n\n", ev.name, ev.data) {
				return
			}
		case <-beat.C:
			if !c.stillLive(r.Context(), r.s) {
				write("event: logout\ndata: {}\n\n")
				return
			}
			if !write(": beat\n\n") {
				return
			}
		}
	}
}

package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/models"
)

// defaultCommandTimeout bounds a command whose context carries no deadline.
const defaultCommandTimeout = 15 * time.Second

// profileMinAge is how long FreeSWITCH refuses to restart a profile after
// it started (mod_sofia.c cmd_profile: "must be up for at least 10
// seconds"), plus a margin for its whole-second arithmetic.
const profileMinAge = 10*time.Second + 500*time.Millisecond

// Options configure a Manager. Zero durations take the defaults noted.
type Options struct {
	// Nodes are the FreeSWITCH event sockets, host:port.
	Nodes []string
	// Password is the event socket password (never logged).
	Password string
	// Store holds the change log, the per-node cursors, and the trunks,
	// profiles and ranges a full sync reads.
	Store *models.Store
	// Logger receives connection and command logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// AllowRestart lets a profile binding change restart the profile
	// (`sofia profile P restart`), never within its first 10 seconds.
	AllowRestart bool
	// Time is the clock for Now and for every timer of the node loops;
	// nil means the system clock.
	Time Clock

	// DialTimeout bounds the TCP connect (default 3s).
	DialTimeout time.Duration
	// AuthTimeout bounds the greeting and authentication (default 5s).
	AuthTimeout time.Duration
	// CommandTimeout bounds each command (default 15s: a rescan fetches
	// from xml-curl while FreeSWITCH waits).
	CommandTimeout time.Duration
	// HealthInterval is how often an idle connection is checked with
	// `api status`, and the change log polled (default 10s).
	HealthInterval time.Duration
	// HealthTimeout bounds that check (default 3s).
	HealthTimeout time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential backoff of
	// retried commands (defaults 500ms and 30s), and of reconnects unless
	// ReconnectMin and ReconnectMax are set.
	BackoffMin, BackoffMax time.Duration
	// ReconnectMin and ReconnectMax bound the jittered exponential backoff
	// between full connection attempts (dial, authentication, sync);
	// defaults BackoffMin and BackoffMax.
	ReconnectMin, ReconnectMax time.Duration
	// ProbeInterval: while a node does not accept connections and the
	// next attempt is further away than this, a bare TCP connect probes it
	// at this interval; once it accepts, fsplane connects at once (default
	// 1s; negative: no probes, the backoff alone decides). A node that
	// accepts but refuses (password, ACL) or hangs is not probed: the
	// backoff keeps it from being hammered.
	ProbeInterval time.Duration
	// CoalesceWindow is how long the changes must be quiet before their
	// commands go out (default 25ms); CoalesceMax caps the wait during a
	// steady stream of changes (default 1s).
	CoalesceWindow, CoalesceMax time.Duration
	// DeleteWait is how long a rescan waits for the sofia::gateway_delete
	// of a registering gateway it replaces (default 8s).
	DeleteWait time.Duration
	// GapGrace is how long a missing change ID may still turn up (a
	// PostgreSQL transaction that took its ID earlier and commits later)
	// before the cursor moves past it (default 60s); PostgreSQL's snapshot
	// horizon usually decides it much sooner.
	GapGrace time.Duration
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, 3*time.Second)
	def(&o.AuthTimeout, 5*time.Second)
	def(&o.CommandTimeout, defaultCommandTimeout)
	def(&o.HealthInterval, 10*time.Second)
	def(&o.HealthTimeout, 3*time.Second)
	def(&o.BackoffMin, 500*time.Millisecond)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.ReconnectMin, o.BackoffMin)
	def(&o.ReconnectMax, max(o.BackoffMax, o.ReconnectMin))
	if o.ProbeInterval == 0 {
		o.ProbeInterval = time.Second
	}
	def(&o.CoalesceWindow, 25*time.Millisecond)
	def(&o.CoalesceMax, time.Second)
	def(&o.DeleteWait, 8*time.Second)
	def(&o.GapGrace, 60*time.Second)
	if o.Time == nil {
		o.Time = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	if o.Store == nil {
		return fmt.Errorf("%w: no store", ErrConfig)
	}
	if o.Password == "" {
		return fmt.Errorf("%w: empty event socket password", ErrConfig)
	}
	if strings.ContainsAny(o.Password, "\r\n") {
		// A newline would end the auth command and start another.
		return fmt.Errorf("%w: event socket password contains a line break", ErrConfig)
	}
	seen := map[string]bool{}
	for _, n := range o.Nodes {
		host, port, err := net.SplitHostPort(n)
		if err != nil || host == "" {
			return fmt.Errorf("%w: node %q: want host:port", ErrConfig, n)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%w: node %q: port must be 1-65535", ErrConfig, n)
		}
		if seen[n] {
			return fmt.Errorf("%w: node %q listed twice", ErrConfig, n)
		}
		seen[n] = true
	}
	if o.BackoffMax < o.BackoffMin {
		return fmt.Errorf("%w: BackoffMax %v below BackoffMin %v", ErrConfig, o.BackoffMax, o.BackoffMin)
	}
	if o.ReconnectMax < o.ReconnectMin {
		return fmt.Errorf("%w: ReconnectMax %v below ReconnectMin %v", ErrConfig, o.ReconnectMax, o.ReconnectMin)
	}
	return nil
}

// Manager keeps every configured FreeSWITCH node connected and up to date.
type Manager struct {
	opt   Options
	store *models.Store
	log   *slog.Logger
	met   *metrics
	nodes []*node

	runMu   sync.Mutex
	running bool

	gwMu   sync.RWMutex
	gwSubs []func(GatewayEvent)
}

// GatewayEvent is a gateway state a FreeSWITCH node reported
// (sofia::gateway_state).
type GatewayEvent struct {
	Node    string // the node's address
	Gateway string // the gateway (trunk) name
	State   string // REGED, NOREG, TRYING, FAIL_WAIT, …
	// Status and Phrase are the REGISTER reply that caused the change,
	// when the event carries one (0 and "" otherwise).
	Status int
	Phrase string
}

// OnGatewayState adds f, called for every gateway state a node reports,
// in the node's event order. f runs in the node's event handling: it must
// return at once (hand the event to a goroutine or a channel) and must not
// call the Manager.
func (m *Manager) OnGatewayState(f func(GatewayEvent)) {
	m.gwMu.Lock()
	defer m.gwMu.Unlock()
	m.gwSubs = append(m.gwSubs, f)
}

func (m *Manager) gatewayState(ev GatewayEvent) {
	m.gwMu.RLock()
	defer m.gwMu.RUnlock()
	for _, f := range m.gwSubs {
		f(ev)
	}
}

// New validates opt and builds a Manager; Run starts it.
func New(opt Options) (*Manager, error) {
	opt.defaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	m := &Manager{opt: opt, store: opt.Store, log: opt.Logger, met: newMetrics(opt.Registerer)}
	for _, addr := range opt.Nodes {
		m.nodes = append(m.nodes, newNode(m, addr))
	}
	return m, nil
}

func (m *Manager) now() time.Time { return m.opt.Time.Now() }

// Run keeps every node's connection loop going until ctx ends, then closes
// the connections, shows the nodes as standby and returns nil.
//
// Each Run is a term (of a replica that leads, see the leader package):
// Run may be called again once the previous one returned, and then starts
// from what the database says, as a replica that never led would: each
// node's cursor is read again (another replica may have moved it), plans,
// backoffs and waits of the previous term are dropped, and every node is
// synced on connect. Calls may not overlap.
func (m *Manager) Run(ctx context.Context) error {
	m.runMu.Lock()
	if m.running {
		m.runMu.Unlock()
		return errors.New("esl: Run called while running")
	}
	m.running = true
	m.runMu.Unlock()
	defer func() {
		m.runMu.Lock()
		m.running = false
		m.runMu.Unlock()
	}()

	var wg sync.WaitGroup
	for _, n := range m.nodes {
		n.newTerm()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.run(ctx)
			n.standby()
		}()
	}
	wg.Wait()
	<-ctx.Done() // with no nodes configured, Run still lasts as long as ctx
	return nil
}

// OnChange is the events.Bus subscriber. The change is already in the
// change log (written in the write's own transaction); OnChange only wakes
// the node loops, which read it from there. It never blocks.
func (m *Manager) OnChange(ev models.ChangeEvent) {
	for _, n := range m.nodes {
		n.poke()
	}
}

// Nodes returns every node's state, in configuration order.
func (m *Manager) Nodes() []NodeStatus {
	out := make([]NodeStatus, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, n.status())
	}
	return out
}

// GatewayStatus asks every node the trunk belongs to (see Trunk.Hostnames)
// for its gateway: `sofia xmlstatus gateway NAME` when connected, else the
// last sofia::gateway_state event seen. One entry per node; a node that
// cannot answer says so in Detail.
func (m *Manager) GatewayStatus(ctx context.Context, t models.Trunk) ([]GatewayStatus, error) {
	cmd, err := gatewayStatusCmd(t.Name)
	if err != nil {
		return nil, err
	}
	out := make([]GatewayStatus, 0, len(m.nodes))
	for _, n := range m.nodes {
		if gs, ok := n.gatewayStatus(ctx, t, cmd); ok {
			out = append(out, gs)
		}
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	return out, nil
}

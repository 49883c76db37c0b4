package registrar

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/models"
)

// Options configure a Registrar. Zero durations and limits take the
// defaults noted.
type Options struct {
	Store  *models.Store
	Logger *slog.Logger
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time

	// Listen is host:port for UDP and TCP (default 127.0.0.1:5070).
	Listen string
	// TLSListen is host:port for TLS; used only with TLSConfig (default:
	// Listen's host, port + 1).
	TLSListen string
	TLSConfig *tls.Config

	// Expiry policy in seconds (defaults 3600, 60, 7200).
	DefaultExpires, MinExpires, MaxExpires int
	// MaxContacts per AOR (default 10) and MaxBindings in all (default
	// 100000); beyond them a REGISTER gets 503 with Retry-After.
	MaxContacts, MaxBindings int
	// RetryAfter is the Retry-After of those 503s in seconds (default 60).
	RetryAfter int

	// NonceKey signs the nonces; replicas that share it accept each
	// other's nonces. Required (serve derives it from the Fernet key).
	NonceKey []byte
	// Algorithms are the digest algorithms offered and accepted, most
	// preferred first: "SHA-256" and/or "MD5" (default DefaultAlgorithms).
	// Some MD5-only clients (sipp) answer only the first challenge and
	// give up on SHA-256: put MD5 first for them.
	Algorithms []string
	// NonceTTL is how long a nonce is accepted (default 5 min).
	NonceTTL time.Duration

	// FlushInterval batches binding writes (default 200 ms); SweepInterval
	// removes expired bindings (default 30 s).
	FlushInterval, SweepInterval time.Duration
	// RefreshWriteDelay is how long the write of a re-registration that
	// only extends a binding's expiry may wait (default 30 s; negative:
	// written with the next batch like every other change). It is
	// written sooner when the stored expiry comes within the delay, and at
	// shutdown. New, moved and removed contacts are always written with
	// the next batch. A crash loses at most this much of an expiry.
	RefreshWriteDelay time.Duration
	// UserAgent is the Server/User-Agent header (default "fsplane").
	UserAgent string
	// TimerC is how long a forwarded INVITE may ring before the proxy
	// cancels it (RFC 3261 §16.6 step 11; default 181 s, over 3 minutes).
	TimerC time.Duration

	// ReplicaID names this process in its announcements of binding writes
	// (default: random), so that it ignores its own.
	ReplicaID string
	// Subscribe, when set, delivers other replicas' announcements of
	// binding writes (several replicas on one PostgreSQL): it calls notify
	// with each payload (models.BindingsChannel, after "schema:") and
	// connected whenever it (re)starts listening, and runs until ctx ends.
	// serve wires events.ListenChannel. Without it (SQLite, one process)
	// the index is read from the database only at start.
	Subscribe func(ctx context.Context, notify func(payload string), connected func()) error

	// Trusted are the source networks whose requests the proxy forwards
	// without credentials: the FreeSWITCH hosts that reach fallback-
	// registered phones. Everyone else authenticates as a user of the
	// served domains (407 Proxy-Authenticate) before anything is
	// forwarded or an AOR is looked up. nil means loopback only;
	// NoTrustedNetworks trusts nobody.
	Trusted []netip.Prefix
}

// hostPort is a listen address, split.
type hostPort struct {
	host string
	port int
}

// NoTrustedNetworks, as Options.Trusted, makes every sender authenticate.
var NoTrustedNetworks = []netip.Prefix{}

// defaultTrusted: fsplane usually shares its host with FreeSWITCH.
var defaultTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Registrar is the registrar, location service and proxy.
type Registrar struct {
	opt      Options
	store    *models.Store
	log      *slog.Logger
	now      func() time.Time
	nonceKey []byte
	m        *metrics
	creds    credIndex
	loc      *location
	ncs      nonceCounts // nonce counts seen, against replays
	macs     sync.Pool   // keyed nonce HMACs (nonce.go)

	reload chan struct{}

	// Bindings of other replicas to read back (OnBindings), in flushLoop.
	pendMu   sync.Mutex
	pending  map[string]struct{}
	pendAll  bool
	refreshC chan struct{}
	flushNow chan chan error
	// unregisterWait bounds how long Unregister waits for its write.
	unregisterWait time.Duration
	running        atomic.Bool // flushLoop runs

	mu        sync.Mutex
	addrs     []string   // bound addresses, "udp 127.0.0.1:5070", …
	self      []hostPort // the same, parsed; UDP first
	ready     chan struct{}
	readyOnce sync.Once
	cli       *sipgo.Client
}

// DeriveNonceKey derives the nonce key from a shared secret (the first
// Fernet key), so every replica derives the same one.
func DeriveNonceKey(secret string) []byte {
	sum := sha256.Sum256([]byte("fsplane registrar nonce\x00" + secret))
	return sum[:]
}

// New checks opt and builds a Registrar; Run serves it.
func New(opt Options) (*Registrar, error) {
	if opt.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	}
	if len(opt.NonceKey) < 16 {
		return nil, fmt.Errorf("%w: nonce key shorter than 16 bytes", ErrConfig)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Listen == "" {
		opt.Listen = "127.0.0.1:5070"
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opt.DefaultExpires, 3600)
	def(&opt.MinExpires, 60)
	def(&opt.MaxExpires, 7200)
	def(&opt.MaxContacts, 10)
	def(&opt.MaxBindings, 100000)
	def(&opt.RetryAfter, 60)
	if opt.NonceTTL <= 0 {
		opt.NonceTTL = 5 * time.Minute
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = 200 * time.Millisecond
	}
	if opt.SweepInterval <= 0 {
		opt.SweepInterval = 30 * time.Second
	}
	if opt.RefreshWriteDelay == 0 {
		opt.RefreshWriteDelay = 30 * time.Second
	}
	if opt.UserAgent == "" {
		opt.UserAgent = "fsplane"
	}
	if opt.Trusted == nil {
		opt.Trusted = defaultTrusted
	}
	if opt.ReplicaID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opt.ReplicaID = hex.EncodeToString(b[:])
	}
	if opt.TimerC <= 0 {
		opt.TimerC = 181 * time.Second
	}
	if opt.MinExpires < 0 || opt.MinExpires > opt.MaxExpires || opt.DefaultExpires < opt.MinExpires || opt.DefaultExpires > opt.MaxExpires {
		return nil, fmt.Errorf("%w: expiry policy needs 0 <= min (%d) <= default (%d) <= max (%d)", ErrConfig,
			opt.MinExpires, opt.DefaultExpires, opt.MaxExpires)
	}
	if len(opt.Algorithms) == 0 {
		opt.Algorithms = DefaultAlgorithms
	}
	for i, a := range opt.Algorithms {
		if a != "MD5" && a != "SHA-256" || slices.Contains(opt.Algorithms[:i], a) {
			return nil, fmt.Errorf("%w: digest algorithms %q: want MD5 and/or SHA-256, each once", ErrConfig, opt.Algorithms)
		}
	}
	if opt.MaxContacts < 1 || opt.MaxBindings < 1 {
		return nil, fmt.Errorf("%w: max contacts and max bindings must be positive", ErrConfig)
	}
	if opt.TLSConfig != nil && opt.TLSListen == "" {
		host, port, err := net.SplitHostPort(opt.Listen)
		if err != nil {
			return nil, fmt.Errorf("%w: listen %q: %v", ErrConfig, opt.Listen, err)
		}
		p, _ := strconv.Atoi(port)
		if p == 0 {
			opt.TLSListen = net.JoinHostPort(host, "0")
		} else {
			opt.TLSListen = net.JoinHostPort(host, strconv.Itoa(p+1))
		}
	}
	r := &Registrar{opt: opt, store: opt.Store, log: opt.Logger, now: opt.Now, nonceKey: opt.NonceKey,
		loc: newLocation(opt.Now, max(opt.RefreshWriteDelay, 0)), unregisterWait: 5 * time.Second, reload: make(chan struct{}, 1), ready: make(chan struct{}),
		pending: map[string]struct{}{}, refreshC: make(chan struct{}, 1), flushNow: make(chan chan error)}
	r.m = newMetrics(opt.Registerer, func() float64 { return float64(r.loc.count()) })
	return r, nil
}

// OnChange is an events.Bus subscriber: a change to an extension reloads
// the credential index (in the registrar's own goroutine; never blocks).
func (r *Registrar) OnChange(ev models.ChangeEvent) {
	if ev.Kind != models.KindExtension {
		return
	}
	select {
	case r.reload <- struct{}{}:
	default: // a reload is pending already and will see this change
	}
}

// Reload reads the credential index from the database now.
func (r *Registrar) Reload(ctx context.Context) error {
	users, domains, err := loadCredentials(ctx, r.store, func(name string, err error) {
		r.log.Warn("registrar: extension left out: its password cannot be decrypted", "extension", name, "err", err)
	})
	if err != nil {
		return err
	}
	r.creds.mu.Lock()
	r.creds.users, r.creds.domains = users, domains
	r.creds.mu.Unlock()
	return nil
}

// Addrs returns the bound addresses ("udp 127.0.0.1:5070", "tcp …",
// "tls …") once Run listens; it waits for that or ctx.
func (r *Registrar) Addrs(ctx context.Context) ([]string, error) {
	select {
	case <-r.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...), nil
}

// Count is the number of registered devices (unexpired bindings).
func (r *Registrar) Count() int { return r.loc.count() }

// List returns every unexpired binding.
func (r *Registrar) List() []Binding { return r.loc.list(r.now()) }

// Unregister removes one binding (by AOR and contact as listed). While
// the registrar runs, the removal is written to the database (and
// announced to the other replicas) before Unregister returns; when it was
// not written (the write failed, or did not end within 5 s) it returns
// ErrNotWritten: the binding is gone here, and the write is retried with
// the next flushes.
func (r *Registrar) Unregister(aor, contact string) error {
	if !r.loc.remove(aor, contact, r.now()) {
		return ErrNotFound
	}
	if !r.running.Load() {
		return nil // written by the next Run, first thing
	}
	done := make(chan error, 1)
	timeout := time.NewTimer(r.unregisterWait)
	defer timeout.Stop()
	select {
	case r.flushNow <- done:
	case <-timeout.C:
		return fmt.Errorf("%w: the flush loop did not take it", ErrNotWritten) // it is stopping, or stuck in a write
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotWritten, err)
		}
		return nil
	case <-timeout.C:
		return fmt.Errorf("%w: the write did not end within %v", ErrNotWritten, r.unregisterWait)
	}
}

// Run loads credentials and bindings, listens and serves until ctx ends;
// the bindings changed last are written before it returns.
func (r *Registrar) Run(ctx context.Context) error {
	if err := r.Reload(ctx); err != nil {
		return err
	}
	// After a failure: what the last run could not write goes first, so
	// reading back the table loses nothing.
	if err := r.flush(ctx); err != nil {
		return err
	}
	rows, err := r.store.Bindings(ctx, r.now())
	if err != nil {
		return err
	}
	r.loc.restore(rows)

	udp, tcpLn, err := listenPair(r.opt.Listen)
	if err != nil {
		return err
	}
	idle := time.Duration(r.opt.MaxExpires)*time.Second + time.Minute
	tcp := newFramingListener(newLimitListener(tcpLn, maxStreamConns, maxStreamConnsPerSource, idle, r.m.streamRefused.Inc), r, "TCP")
	// The UDP socket is read by the demux (udp.go), which answers
	// REGISTERs on the fast path and hands sipgo the rest.
	demux := newUDPDemux(udp, newFastPath(r, udp).filter, r.log, r.m.udpDropped.Inc)
	ua, err := r.newUA()
	if err != nil {
		udp.Close()
		tcp.Close()
		return fmt.Errorf("registrar: %w", err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(&redactHandler{h: r.log.Handler()})))
	if err != nil {
		udp.Close()
		tcp.Close()
		return fmt.Errorf("registrar: %w", err)
	}
	r.routes(srv)

	addrs := []string{"udp " + udp.LocalAddr().String(), "tcp " + tcp.Addr().String()}
	var tlsLn net.Listener
	if r.opt.TLSConfig != nil {
		raw, err := net.Listen("tcp", r.opt.TLSListen)
		if err != nil {
			udp.Close()
			tcp.Close()
			return fmt.Errorf("registrar: listen tls %s: %w", r.opt.TLSListen, err)
		}
		// The handshake is the first read: limitListener bounds it.
		// Framing reads the decrypted stream.
		tlsLn = newFramingListener(tls.NewListener(newLimitListener(raw, maxStreamConns, maxStreamConnsPerSource, idle, r.m.streamRefused.Inc), r.opt.TLSConfig), r, "TLS")
		addrs = append(addrs, "tls "+tlsLn.Addr().String())
	}
	// The proxy's client: its Via and Record-Route name the UDP address.
	uh, up, _ := net.SplitHostPort(udp.LocalAddr().String())
	upn, _ := strconv.Atoi(up)
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(slog.New(&redactHandler{h: r.log.Handler()})),
		sipgo.WithClientHostname(uh), sipgo.WithClientPort(upn))
	if err != nil {
		udp.Close()
		tcp.Close()
		if tlsLn != nil {
			tlsLn.Close()
		}
		return fmt.Errorf("registrar: %w", err)
	}
	self := make([]hostPort, 0, len(addrs))
	for _, a := range addrs {
		_, hp, _ := strings.Cut(a, " ")
		h, p, _ := net.SplitHostPort(hp)
		n, _ := strconv.Atoi(p)
		self = append(self, hostPort{h, n})
	}
	r.mu.Lock()
	r.addrs = addrs
	r.self = self
	r.cli = cli
	r.mu.Unlock()
	r.readyOnce.Do(func() { close(r.ready) }) // Run may be started again after a failure
	r.log.Info("registrar listening", "addrs", addrs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	serve := func(f func() error) {
		go func() { errc <- f() }()
	}
	demux.start()
	serve(func() error { return srv.ServeUDP(demux) })
	serve(func() error { return srv.ServeTCP(tcp) })
	n := 2
	if tlsLn != nil {
		serve(func() error { return srv.ServeTLS(tlsLn) })
		n++
	}
	flushed := make(chan struct{})
	r.running.Store(true)
	// The flush loop ends after the readers: its final flush must see
	// every REGISTER they answered 200.
	flushCtx, stopFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFlush()
	go func() { defer close(flushed); defer r.running.Store(false); r.flushLoop(flushCtx) }()
	subscribed := make(chan struct{})
	if r.opt.Subscribe != nil {
		go func() {
			defer close(subscribed)
			if err := r.opt.Subscribe(ctx, r.OnBindings, r.RefreshAll); err != nil && ctx.Err() == nil {
				r.log.Warn("registrar: listening for other replicas' bindings stopped", "err", err)
			}
		}()
	} else {
		close(subscribed)
	}
	go r.reloadLoop(ctx)

	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		n--
		if first == nil {
			first = errors.New("registrar: a listener stopped")
		}
	}
	cancel()
	demux.Close()
	tcp.Close()
	if tlsLn != nil {
		tlsLn.Close()
	}
	for ; n > 0; n-- {
		<-errc
	}
	demux.readers.Wait()
	stopFlush()
	<-flushed
	<-subscribed
	return first
}

// listenPair opens UDP and TCP on one address. With port 0 (tests) the
// port UDP got may be taken for TCP: another one is tried.
func listenPair(addr string) (*net.UDPConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("registrar: listen udp %s: %w", addr, err)
		}
		udp, err := net.ListenUDP("udp", a)
		if err != nil {
			return nil, nil, fmt.Errorf("registrar: listen udp %s: %w", addr, err)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" || attempt == 20 {
			return nil, nil, fmt.Errorf("registrar: listen tcp %s: %w", udp.LocalAddr(), err)
		}
	}
}

func (r *Registrar) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.reload:
			if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("registrar: reloading credentials failed; keeping the previous ones", "err", err)
				// Try again shortly: the change is not lost.
				time.AfterFunc(time.Second, func() { r.OnChange(models.ChangeEvent{Kind: models.KindExtension}) })
			}
		}
	}
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/console"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/leader"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/providers"
	"github.com/fsplane/fsplane/xmlcurl"
)

func (a *app) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the platform API, the xml-curl backend and the ESL client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.serve(ctx, a.ready)
		},
	}
}

// serve runs until ctx ends. ready, when set, receives the bound address.
//
// Order: everything is built, then every listener is opened, and only then
// is anything started that makes FreeSWITCH call us back: the ESL
// manager's first `load mod_sofia` or `sofia profile … start` makes
// FreeSWITCH fetch sofia.conf over xml-curl at once, and that fetch must
// find the port open.
//
// The components run in one group (components.go); what a failure does:
//   - http (platform API and xml-curl, one server): a failure of the
//     server ends the process with a non-zero status. Without it fsplane
//     has no purpose; its supervisor restarts it whole.
//   - esl (the ESL manager): node connections retry by themselves (their
//     state is the "freeswitch" check); the manager returning early is a
//     bug and ends the process. It runs only while this replica leads
//     (package leader; the "leader" check says who does): on PostgreSQL
//     the replicas elect one, on SQLite this process leads.
//   - follower (PostgreSQL only: other replicas' changes): a failed poll
//     is retried every second and reported as degraded on /readyz until
//     the change log answers again; a follower that returns is restarted
//     with backoff.
//   - stun (only with FSPLANE_STUN_PRIMARY; stun.go): its sockets are
//     bound before start-up completes; a failure is restarted with backoff.
//
// Shutdown (SIGTERM, SIGINT or ctx ending): the HTTP server stops
// accepting and drains the requests in flight (at most shutdownDrain),
// then the ESL manager and the follower stop, and serve returns nil.
func (a *app) serve(ctx context.Context, ready chan<- string) error {
	kr, keyCreated, err := a.keyring(true)
	if err != nil {
		return err
	}
	s, bus, err := a.openStoreWithBus(ctx, kr)
	if err != nil {
		return err
	}
	defer s.Close()
	// A wrong or missing key must stop us here, naming the row, rather
	// than serve FreeSWITCH an empty password later.
	if err := s.VerifySecrets(ctx); err != nil {
		return fmt.Errorf("the Fernet keys in use cannot open every stored SIP password; "+
			"check %s / FSPLANE_FERNET_KEYS:\n%w", a.cfg.FernetKeyFile, err)
	}
	if keyCreated {
		fmt.Fprintf(a.stderr, "fsplane: created Fernet key file %s (mode 0600); back it up: without it the SIP passwords cannot be read\n", a.cfg.FernetKeyFile)
	}
	if err := a.firstStart(ctx, s); err != nil {
		return err
	}
	// Default profiles and the presets' provider ranges, only where none
	// exist yet: an operator's edits are never overwritten.
	if err := providers.Seed(ctx, s, providers.SeedOptions{
		ExternalIPv4: a.cfg.ExternalIPv4, ExternalIPv6: a.cfg.ExternalIPv6, Logger: a.log,
	}); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// One token check for the API and xml-curl: one cache, one revocation
	// bound (FSPLANE_TOKEN_CACHE_TTL), one last_used_at.
	verifier := auth.NewVerifier(auth.VerifierOptions{Store: s, CacheTTL: a.cfg.TokenCacheTTL})
	fed := a.federationService(s, reg)
	xc := xmlcurl.New(xmlcurl.Options{
		Store: s, Logger: a.log.With("component", "xmlcurl"), Registerer: reg,
		Cacheable: a.cfg.XMLCurlCacheable, BasicUser: a.cfg.XMLCurlUser, BasicPassword: a.cfg.XMLCurlPassword,
		Networks: a.cfg.XMLCurlNetworks, Verifier: verifier,
		PlaintextPasswords: a.cfg.XMLCurlPlaintextPasswords, CacheMaxAge: a.cfg.XMLCurlCacheMaxAge,
		FederationTLS:      federationTLS(fed),
		FallbackDialString: a.registrarFallback(),
	})
	bus.Subscribe(xc.OnChange)
	checks := map[string]api.Check{
		"xmlcurl": func(context.Context) api.CheckResult {
			st, detail := xc.Health()
			return api.CheckResult{Status: st, Detail: detail}
		},
		"federation": func(ctx context.Context) api.CheckResult {
			st, detail := fed.Readiness(ctx)
			return api.CheckResult{Status: st, Detail: detail}
		},
	}

	rg := newRunGroup(ctx, a.log)
	rg.register(reg)
	httpC := rg.add("http", endProcess)
	checks[httpC.name] = httpC.check

	// Rows that cannot be rendered (written past the API) are found at
	// start, not when FreeSWITCH first asks for them.
	auditC := rg.add("audit", restart)
	checks[auditC.name] = auditC.check
	// Renewed federation certificates are put in place by themselves.
	fedC := rg.add("federation-certificates", restart)
	fedChanged := make(chan struct{}, 1)
	bus.Subscribe(func(ev models.ChangeEvent) { federationChanged(ev, fedChanged) })

	var followC, listenC *component
	var lastChange uint64
	if s.Dialect() == "postgres" {
		// Other replicas on the same database: see their writes too.
		if lastChange, err = s.LastChangeID(ctx); err != nil {
			return err
		}
		followC = rg.add("follower", restart)
		checks[followC.name] = followC.check
		listenC = rg.add("listener", restart)
		checks[listenC.name] = listenC.check
	}

	var eslView api.ESL
	var m *esl.Manager
	var el *leader.Elector
	replica := replicaID()
	var eslC *component
	if len(a.cfg.ESLNodes) > 0 {
		m, err = esl.New(esl.Options{
			Nodes: a.cfg.ESLNodes, Password: a.cfg.ESLPassword, Store: s,
			Logger: a.log.With("component", "esl"), Registerer: reg, AllowRestart: a.cfg.ESLAllowRestart,
			ReconnectMin: a.cfg.ESLReconnectMin, ReconnectMax: a.cfg.ESLReconnectMax, ProbeInterval: a.cfg.ESLProbeInterval,
		})
		if err != nil {
			return err
		}
		bus.Subscribe(m.OnChange)
		// One replica drives FreeSWITCH (SQLite: this one, always).
		if el, err = leader.New(leader.Options{
			DatabaseURL: a.cfg.DatabaseURL, Task: "esl", ID: replica,
			Logger: a.log.With("component", "leader"), Registerer: reg,
		}); err != nil {
			return err
		}
		led := ledESL{Manager: m, el: el}
		eslView = led
		fed.UseESL(m.Nodes)
		eslC = rg.add("esl", endProcess)
		checks[eslC.name] = eslC.check
		checks["freeswitch"] = func(context.Context) api.CheckResult { return eslReadiness(led.Nodes()) }
		checks["leader"] = leaderCheck(el)
	}

	startSTUN, err := a.stunComponent(rg, reg, checks)
	if err != nil {
		return err
	}
	lastProbe, startProbe := a.publicAddressComponent(rg, s, checks)

	sipReg, regC, err := a.registrar(s, kr, reg, rg, replica)
	if err != nil {
		return err
	}
	var regView api.Registrations
	if sipReg != nil {
		bus.Subscribe(sipReg.OnChange)
		regView = sipReg
		checks[regC.name] = regC.check
	}

	apiHandler := api.New(api.Options{
		Store: s, Logger: a.log.With("component", "api"), XMLCurl: xc, Checks: checks, Registerer: reg,
		ESL: eslView, Verifier: verifier, Render: xc, Federation: fed, STUNProbe: lastProbe, Registrations: regView,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// FreeSWITCH's hot path skips echo's routing and the API middleware:
	// xml-curl authenticates and measures itself (measured: the warm
	// sip_auth rate goes from 0.64-0.80 to 0.81 of a bare net/http server).
	mux.Handle("POST "+xmlcurl.Path, xc)
	mux.Handle("/", apiHandler)
	// The operator console: its writes are requests to apiHandler.
	var consoleESL console.ESL
	if eslView != nil {
		consoleESL = eslView // the replica-aware view; its Manager pushes gateway events
	}
	ui, err := console.New(console.Options{API: apiHandler, Verifier: verifier, Store: s, ESL: consoleESL,
		Logger: a.log.With("component", "console"), Registerer: reg})
	if err != nil {
		return err
	}
	bus.Subscribe(ui.OnChange)
	mux.Handle(console.Path, ui)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(ui.Close) // live-update streams would hold the drain

	// Every listener first: from here on FreeSWITCH's fetches are accepted
	// (the kernel queues them until Serve takes them).
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}

	// The ESL manager and the follower outlive the group's context: they
	// stop once the HTTP server has drained, so that writes still in flight
	// at shutdown reach FreeSWITCH.
	backCtx, stopBack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBack()
	rg.start(rg.Context(), httpC, func(ctx context.Context) error {
		defer stopBack()
		return a.serveHTTP(ctx, srv, ln)
	})
	where := "SQLite " + a.cfg.SQLitePath()
	if s.Dialect() == "postgres" {
		where = "PostgreSQL"
	}
	a.log.Info("fsplane serving", "addr", ln.Addr().String(), "database", where, "version", version, "replica", replica)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	rg.start(backCtx, fedC, func(ctx context.Context) error { return fed.Watch(ctx, fedChanged) })
	rg.start(backCtx, auditC, func(ctx context.Context) error {
		// Until the audit has read every row once: degraded, retried (a
		// database outage is the database check's to report as down).
		for {
			err := xc.Audit(ctx)
			auditC.report(err)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
		}
		<-ctx.Done()
		return nil
	})

	// Then what makes FreeSWITCH call us.
	if followC != nil {
		// Another replica's commit wakes the follower at once; the
		// one-second poll stays as the net under a lost notification.
		wake := make(chan struct{}, 1)
		rg.start(backCtx, listenC, func(ctx context.Context) error {
			return events.Listen(ctx, a.cfg.DatabaseURL, wake, listenC.report)
		})
		rg.start(backCtx, followC, func(ctx context.Context) error {
			bus.Follow(ctx, s, lastChange, time.Second, followC.report, wake)
			return nil
		})
	}
	if m != nil {
		// The manager runs only while this replica leads.
		rg.start(backCtx, eslC, func(ctx context.Context) error { return el.Run(ctx, m.Run) })
	}
	startSTUN()
	startProbe()
	if sipReg != nil {
		rg.start(rg.Context(), regC, sipReg.Run)
	}
	if err := rg.wait(); err != nil {
		return fmt.Errorf("stopped because a component failed: %w", err)
	}
	a.log.Info("fsplane stopped")
	return nil
}

// shutdownDrain bounds how long requests in flight may take to finish once
// shutdown begins; what is still running then is cut off.
const shutdownDrain = 10 * time.Second

// serveHTTP serves ln until ctx ends, then stops accepting and drains.
func (a *app) serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err // never http.ErrServerClosed: Shutdown is only called below
	case <-ctx.Done():
	}
	a.log.Info("shutting down: no new connections, draining requests in flight", "within", shutdownDrain)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownDrain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn("requests still running after the drain time were cut off", "err", err)
		_ = srv.Close()
	}
	<-errc
	return nil
}

// firstStart creates the admin token when there is no token at all, and
// prints it once.
func (a *app) firstStart(ctx context.Context, s *models.Store) error {
	n, err := s.CountTokens(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	text, err := createToken(ctx, s, "admin (first start)", []string{auth.ScopeAdmin}, 0)
	if err != nil {
		return err
	}
	where := a.cfg.SQLitePath()
	if a.cfg.DatabaseURL != "" {
		where = "PostgreSQL (DATABASE_URL)"
	}
	fmt.Fprintf(a.stderr, "fsplane: first start\n  database:   %s\n  Fernet keys: %s\n  admin token (shown once, store it now):\n\n    %s\n\n",
		where, a.keySource(), text)
	return nil
}

func (a *app) keySource() string {
	if len(a.cfg.FernetKeys) > 0 {
		return "FSPLANE_FERNET_KEYS"
	}
	return a.cfg.FernetKeyFile
}

// eslReadiness folds the nodes into one readiness answer: degraded while
// any node this replica drives is not connected or has commands pending,
// never down; a replica on standby (another leads) is not degraded for it. A
// FreeSWITCH that is starting needs xml-curl from us before its event
// socket answers; a readiness probe that took fsplane out of a load
// balancer then would deadlock the start (the runbook's start-up race).
func eslReadiness(nodes []esl.NodeStatus) api.CheckResult {
	var problems []string
	for _, n := range nodes {
		switch {
		case n.State == esl.StateStandby:
			// Another replica drives it (the "leader" check says which).
		case n.State != esl.StateConnected:
			problems = append(problems, fmt.Sprintf("%s: %s", n.Node, n.State))
		case n.Pending > 0:
			problems = append(problems, fmt.Sprintf("%s: %d commands pending", n.Node, n.Pending))
		}
		if len(n.RestartNeeded) > 0 {
			problems = append(problems, fmt.Sprintf("%s: restart needed for profiles %s (replaced TLS certificate, no reloadcert)", n.Node, strings.Join(n.RestartNeeded, ", ")))
		}
	}
	if len(problems) > 0 {
		return api.CheckResult{Status: "degraded", Detail: strings.Join(problems, "; ")}
	}
	return api.CheckResult{Status: "ok"}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/events"
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
func (a *app) serve(ctx context.Context, ready chan<- string) error {
	kr, keyCreated, err := a.keyring(true)
	if err != nil {
		return err
	}
	bus := &events.Bus{}
	a.onCommit = bus.Publish
	s, err := a.openStore(ctx, kr)
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

	xc := xmlcurl.New(xmlcurl.Options{
		Store: s, Logger: a.log.With("component", "xmlcurl"), Registerer: reg,
		Cacheable: a.cfg.XMLCurlCacheable, BasicUser: a.cfg.XMLCurlUser, BasicPassword: a.cfg.XMLCurlPassword,
		Networks: a.cfg.XMLCurlNetworks, TokenScopes: tokenScopes(s),
	})
	bus.Subscribe(xc.OnChange)
	checks := map[string]api.Check{
		"xmlcurl": func(context.Context) api.CheckResult {
			st, detail := xc.Health()
			return api.CheckResult{Status: st, Detail: detail}
		},
	}

	var bg sync.WaitGroup
	defer bg.Wait()
	bgctx, stopBG := context.WithCancel(ctx)
	defer stopBG()
	if s.Dialect() == "postgres" {
		// Other replicas on the same database: see their writes too.
		last, err := s.LastChangeID(ctx)
		if err != nil {
			return err
		}
		bg.Add(1)
		go func() { defer bg.Done(); bus.Follow(bgctx, s, last, time.Second) }()
	}

	var eslView api.ESL
	if len(a.cfg.ESLNodes) > 0 {
		m, err := esl.New(esl.Options{
			Nodes: a.cfg.ESLNodes, Password: a.cfg.ESLPassword, Store: s,
			Logger: a.log.With("component", "esl"), Registerer: reg, AllowRestart: a.cfg.ESLAllowRestart,
			ReconnectMin: a.cfg.ESLReconnectMin, ReconnectMax: a.cfg.ESLReconnectMax, ProbeInterval: a.cfg.ESLProbeInterval,
		})
		if err != nil {
			return err
		}
		bus.Subscribe(m.OnChange)
		bg.Add(1)
		go func() { defer bg.Done(); _ = m.Run(bgctx) }()
		eslView = m
		checks["freeswitch"] = func(context.Context) api.CheckResult { return eslReadiness(m.Nodes()) }
	}

	apiHandler := api.New(api.Options{
		Store: s, Logger: a.log.With("component", "api"), XMLCurl: xc, Checks: checks, Registerer: reg,
		ESL: eslView,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// FreeSWITCH's hot path skips echo's routing and the API middleware:
	// xml-curl authenticates and measures itself (measured: the warm
	// sip_auth rate goes from 0.64-0.80 to 0.81 of a bare net/http server).
	mux.Handle("POST "+xmlcurl.Path, xc)
	mux.Handle("/", apiHandler)
	var handler http.Handler = mux

	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	where := "SQLite " + a.cfg.SQLitePath()
	if s.Dialect() == "postgres" {
		where = "PostgreSQL"
	}
	a.log.Info("fsplane serving", "addr", ln.Addr().String(), "database", where, "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
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

// tokenScopes lets xml-curl accept bearer tokens: the digest is looked up
// like the API does.
func tokenScopes(s *models.Store) func(context.Context, string) ([]string, error) {
	return func(ctx context.Context, token string) ([]string, error) {
		t, err := s.TokenByHash(ctx, auth.Hash(token))
		if err != nil {
			return nil, err
		}
		return t.Scopes, nil
	}
}

// eslReadiness folds the nodes into one readiness answer: degraded while
// any node is not connected or has commands pending, never down. A
// FreeSWITCH that is starting needs xml-curl from us before its event
// socket answers; a readiness probe that took fsplane out of a load
// balancer then would deadlock the start (the runbook's start-up race).
func eslReadiness(nodes []esl.NodeStatus) api.CheckResult {
	var problems []string
	for _, n := range nodes {
		switch {
		case n.State != esl.StateConnected:
			problems = append(problems, fmt.Sprintf("%s: %s", n.Node, n.State))
		case n.Pending > 0:
			problems = append(problems, fmt.Sprintf("%s: %d commands pending", n.Node, n.Pending))
		}
	}
	if len(problems) > 0 {
		return api.CheckResult{Status: "degraded", Detail: strings.Join(problems, "; ")}
	}
	return api.CheckResult{Status: "ok"}
}

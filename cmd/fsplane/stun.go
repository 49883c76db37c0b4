package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/config"
	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/stun"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.stunCmd() })
	// `stun serve`'s flags override their settings like the persistent
	// flags do (app.load).
	flagEnv["primary"] = config.EnvSTUNPrimary
	flagEnv["secondary"] = config.EnvSTUNSecondary
	flagEnv["primary-advertised"] = config.EnvSTUNPrimaryAdvertised
	flagEnv["secondary-advertised"] = config.EnvSTUNSecondaryAdvertised
	flagEnv["rate-limit"] = config.EnvSTUNRateLimit
}

func (a *app) stunCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "stun",
		Short: "The STUN responder (RFC 8489/5780/3489) and a NAT-type probe",
	}
	c.AddCommand(a.stunServeCmd(), a.stunProbeCmd())
	return c
}

func (a *app) stunServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the STUN responder alone",
		Long: `Run the STUN responder alone until SIGINT or SIGTERM.

--primary A1:P1 and --secondary A2:P2 give RFC 3489's four addresses
(A1:P2 and A2:P1 follow); without --secondary only A1:P1 answers and
CHANGE-REQUEST gets 420. TCP is served on the primary too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !a.cfg.STUN.Primary.IsValid() {
				return fmt.Errorf("--primary (or %s) is required, e.g. --primary 127.0.0.1:3478 --secondary 127.0.0.2:3479", config.EnvSTUNPrimary)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := stun.New(stun.Options{Config: a.cfg.STUN, Software: "fsplane " + version, Logger: a.log.With("component", "stun")})
			if err != nil {
				return err
			}
			if err := s.Listen(); err != nil {
				return err
			}
			if a.ready != nil {
				a.ready <- s.Addresses().A1P1.String()
			}
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.String("primary", "", "A1:P1, e.g. 127.0.0.1:3478 (env "+config.EnvSTUNPrimary+")")
	f.String("secondary", "", "A2:P2, e.g. 127.0.0.2:3479 (env "+config.EnvSTUNSecondary+")")
	f.String("primary-advertised", "", "A1 as told to clients, behind a 1:1 NAT (env "+config.EnvSTUNPrimaryAdvertised+")")
	f.String("secondary-advertised", "", "A2 as told to clients, behind a 1:1 NAT (env "+config.EnvSTUNSecondaryAdvertised+")")
	f.String("rate-limit", "", fmt.Sprintf("requests per second per source address, 0 for none (env %s, default %d)", config.EnvSTUNRateLimit, config.DefaultSTUNRateLimit))
	return cmd
}

func (a *app) stunProbeCmd() *cobra.Command {
	var server string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Find this host's public address and NAT type with a STUN server",
		Long: `Run the RFC 3489 section 10.1 tests and the RFC 5780 mapping and filtering
tests against --server (which must advertise a second address for the NAT
tests), and print the public address, the NAT type and the behaviours.

NAT types: open, full-cone, restricted-cone, port-restricted-cone,
symmetric, symmetric-udp-firewall, blocked, unknown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return errors.New("--server HOST:PORT is required")
			}
			res, err := stun.Probe(cmd.Context(), stun.ProbeOptions{Server: server, Timeout: timeout})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				return enc.Encode(res)
			}
			fmt.Fprintf(a.stdout, "NAT type:       %s (%s)\n", res.NATType.Title(), res.NATType)
			fmt.Fprintf(a.stdout, "Public address: %s\n", orNone(res.PublicAddress))
			fmt.Fprintf(a.stdout, "Local address:  %s\n", res.LocalAddress)
			fmt.Fprintf(a.stdout, "Mapping:        %s\n", res.Mapping)
			fmt.Fprintf(a.stdout, "Filtering:      %s\n", res.Filtering)
			if res.Detail != "" {
				fmt.Fprintf(a.stdout, "Note:           %s\n", res.Detail)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "STUN server HOST:PORT (its primary address)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long each test waits for an answer")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// stunComponent builds serve's STUN responder when FSPLANE_STUN_PRIMARY
// is set and binds its sockets (a port in use stops start-up); start runs
// it in the group. A failed responder is restarted: SIP and the API do
// not depend on it.
func (a *app) stunComponent(rg *runGroup, reg prometheus.Registerer, checks map[string]api.Check) (start func(), err error) {
	if !a.cfg.STUN.Primary.IsValid() {
		return func() {}, nil
	}
	s, err := stun.New(stun.Options{Config: a.cfg.STUN, Software: "fsplane " + version, Logger: a.log.With("component", "stun"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	if err := s.Listen(); err != nil {
		return nil, err
	}
	c := rg.add("stun", restart)
	checks[c.name] = c.check
	return func() { rg.start(rg.Context(), c, func(ctx context.Context) error { return s.Run(ctx) }) }, nil
}

// publicAddress probes FSPLANE_STUN_PROBE_SERVER every interval, keeps
// the last result for GET /api/v1/stun/probe, and sets ext_sip_ip and
// ext_rtp_ip of each profile with use_public_address to the public
// address of its family through the store's normal write path, so the
// change reaches FreeSWITCH like an API write. Dual-stack profiles are
// left alone (one ext IP cannot hold both families).
type publicAddress struct {
	server   string
	interval time.Duration
	timeout  time.Duration
	store    *models.Store
	log      *slog.Logger

	mu   sync.Mutex
	last *api.STUNProbeOut
}

// Last is the newest probe, nil before the first.
func (p *publicAddress) Last() *api.STUNProbeOut {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *publicAddress) run(ctx context.Context, report func(error)) error {
	for {
		report(p.once(ctx))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.interval):
		}
	}
}

// once probes and applies; its error (the profiles could not be read or
// written) degrades the component until the next round.
func (p *publicAddress) once(ctx context.Context) error {
	host, port, _ := net.SplitHostPort(p.server) // checked at load
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	out := &api.STUNProbeOut{CheckedAt: time.Now().UTC()}
	var v4, v6 *stun.ProbeResult
	if err != nil {
		out.ProbeResult = stun.ProbeResult{NATType: stun.NATUnknown, Title: stun.NATUnknown.Title(), Mapping: stun.BehaviorUnknown,
			Filtering: stun.BehaviorUnknown, Server: p.server, Detail: "cannot resolve the STUN server: " + err.Error()}
	}
	for _, a := range addrs {
		a = a.Unmap()
		if (a.Is4() && v4 != nil) || (a.Is6() && v6 != nil) {
			continue
		}
		res, err := stun.Probe(ctx, stun.ProbeOptions{Server: net.JoinHostPort(a.String(), port), Timeout: p.timeout})
		if err != nil {
			res.Detail = err.Error()
		}
		res.Server = p.server
		if a.Is4() {
			v4 = &res
		} else {
			v6 = &res
		}
	}
	switch {
	case v4 != nil:
		out.ProbeResult, out.IPv6 = *v4, v6
	case v6 != nil:
		out.ProbeResult = *v6
	}
	p.mu.Lock()
	p.last = out
	p.mu.Unlock()

	public := map[string]string{}
	for fam, r := range map[string]*stun.ProbeResult{models.FamilyIPv4: v4, models.FamilyIPv6: v6} {
		if r == nil || r.PublicAddress == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(r.PublicAddress); err == nil {
			public[fam] = ap.Addr().String()
		}
	}
	profiles, err := p.store.ListProfiles(ctx)
	if err != nil {
		return fmt.Errorf("public address: list profiles: %w", err)
	}
	var errs []error
	for i := range profiles {
		pr := &profiles[i]
		ip, ok := public[pr.Family]
		if !pr.UsePublicAddress || !ok || (pr.ExtSIPIP == ip && pr.ExtRTPIP == ip) {
			continue
		}
		was := pr.ExtSIPIP
		pr.ExtSIPIP, pr.ExtRTPIP = ip, ip
		if err := p.store.UpdateProfile(ctx, pr); err != nil {
			// A concurrent write wins; the next round tries again.
			errs = append(errs, fmt.Errorf("public address: profile %q: %w", pr.Name, err))
			continue
		}
		p.log.Info("profile follows the public address", "profile", pr.Name, "from", was, "to", ip)
	}
	if err := p.followFederation(ctx, v4, v6); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// followFederation puts the probed public address (IPv4 when found, else
// IPv6) and the NAT type into the federation settings when they ask for it
// (use_public_address), through the settings' versioned write: the
// federation checklist's a-record check and the rendered ext-sip-ip follow.
func (p *publicAddress) followFederation(ctx context.Context, v4, v6 *stun.ProbeResult) error {
	set, version, configured, err := federation.Load(ctx, p.store)
	if err != nil {
		return fmt.Errorf("public address: federation settings: %w", err)
	}
	if !configured || !set.UsePublicAddress {
		return nil
	}
	r := v4
	if r == nil || r.PublicAddress == "" {
		r = v6
	}
	if r == nil || r.PublicAddress == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(r.PublicAddress)
	if err != nil {
		return nil
	}
	ip, nat := ap.Addr().String(), string(r.NATType)
	if set.PublicAddress == ip && set.NATType == nat {
		return nil
	}
	was := set.PublicAddress
	set.PublicAddress, set.NATType = ip, nat
	if err := p.store.PutFederation(ctx, set.ToModel(version)); err != nil {
		return fmt.Errorf("public address: federation: %w", err)
	}
	p.log.Info("federation follows the public address", "from", was, "to", ip, "nat_type", nat)
	return nil
}

// publicAddressComponent adds the prober to serve when
// FSPLANE_STUN_PROBE_SERVER is set; Last is nil otherwise.
func (a *app) publicAddressComponent(rg *runGroup, s *models.Store, checks map[string]api.Check) (last func() *api.STUNProbeOut, start func()) {
	if a.cfg.STUNProbeServer == "" {
		return nil, func() {}
	}
	p := &publicAddress{server: a.cfg.STUNProbeServer, interval: a.cfg.STUNProbeInterval, timeout: min(3*time.Second, a.cfg.STUNProbeInterval),
		store: s, log: a.log.With("component", "public-address")}
	c := rg.add("public-address", restart)
	checks[c.name] = c.check
	return p.Last, func() { rg.start(rg.Context(), c, func(ctx context.Context) error { return p.run(ctx, c.report) }) }
}

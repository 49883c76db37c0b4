package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/config"
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

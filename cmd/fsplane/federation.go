package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/xmlcurl"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.federationCmd() })
}

func (a *app) federationCmd() *cobra.Command {
	fed := &cobra.Command{
		Use:   "federation",
		Short: "SIP federation over TLS: the admin's checklist, and the stored settings",
	}
	fed.AddCommand(a.federationCheckCmd())
	return fed
}

// federationFlags are the one-off overrides of `federation check`.
type federationFlags struct {
	json                                      bool
	domain, fqdn, cert, key, publicIP, caFile string
	resolver                                  string
	port                                      int
}

func (a *app) federationCheckCmd() *cobra.Command {
	var f federationFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run the federation checklist: DNS, certificate, reachability, binding",
		Long: `Run the six checks of the federation checklist on the stored
configuration, or on the flags for a one-off check without configuring
anything (flags override stored settings):

  fqdn-in-domain  the FQDN ends with the federation domain
  a-record        A/AAAA of FQDN. (absolute, no search suffix) is the public address
  srv-record      _sipfederationtls._tcp.<domain> targets FQDN:5061 (skipped in direct mode)
  certificate     issued exactly for the FQDN, no wildcard, trusted chain, key matches, not expired
  reachable       TCP to FQDN:5061, TLS presents that certificate, SIP OPTIONS answered
  bound           federation is enabled and bound to an address of this host

Each line is pass, warn, fail or skip, with the fix in one sentence. The exit
status is 0 only when nothing fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.federationCheck(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.json, "json", false, `print {"checks":[{"id","status","detail","fix"}]}`)
	fl.StringVar(&f.domain, "domain", "", "federation domain")
	fl.StringVar(&f.fqdn, "fqdn", "", "public FQDN of this server")
	fl.StringVar(&f.cert, "cert", "", "certificate PEM file (leaf first, then the chain)")
	fl.StringVar(&f.key, "key", "", "private key PEM file (when not in --cert)")
	fl.StringVar(&f.publicIP, "public-ip", "", "public address the A record must name")
	fl.StringVar(&f.resolver, "resolver", "", "DNS server HOST:PORT (default: the system's)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM roots of a private CA, trusted besides the system's")
	fl.IntVar(&f.port, "port", 0, "federation port (default 5061)")
	return cmd
}

func (a *app) federationCheck(cmd *cobra.Command, f federationFlags) error {
	ctx := cmd.Context()
	fl := cmd.Flags()
	oneOff := false
	for _, n := range []string{"domain", "fqdn", "cert", "key", "public-ip", "port"} {
		oneOff = oneOff || fl.Changed(n)
	}
	s, stored, err := a.storedFederation(ctx)
	if err != nil && !oneOff {
		return fmt.Errorf("no stored federation settings (%w); give --domain, --fqdn and --cert for a one-off check", err)
	}
	over := func(name string, dst *string, v string) {
		if fl.Changed(name) {
			*dst = v
		}
	}
	over("domain", &s.Domain, f.domain)
	over("fqdn", &s.FQDN, f.fqdn)
	over("cert", &s.CertFile, f.cert)
	over("key", &s.KeyFile, f.key)
	over("public-ip", &s.PublicAddress, f.publicIP)
	over("ca-file", &s.CAFile, f.caFile)
	if fl.Changed("port") {
		s.Port = f.port
	}
	if fl.Changed("cert") && !fl.Changed("key") {
		s.KeyFile = "" // the key is then looked for in --cert
	}
	c, err := a.federationChecker(f.resolver, s.CAFile)
	if err != nil {
		return err
	}
	c.OneOff = !stored
	rep := c.Run(ctx, s)
	if err := writeReport(a.stdout, rep, f.json); err != nil {
		return err
	}
	if rep.Failed() {
		n := 0
		for _, ch := range rep.Checks {
			if ch.Status == federation.Fail {
				n++
			}
		}
		return fmt.Errorf("federation check: %d of %d checks failed", n, len(rep.Checks))
	}
	return nil
}

// federationChecker builds a Checker from the resolver (flag, else
// setting, else the system's) and the private CA file.
func (a *app) federationChecker(resolver, caFile string) (*federation.Checker, error) {
	c := &federation.Checker{ExpiryWarnDays: a.cfg.FederationExpiryWarnDays}
	if resolver == "" {
		resolver = a.cfg.FederationResolver
	}
	if resolver != "" {
		c.Resolver = federation.Resolver{Server: resolver}
	} else {
		r, search, err := federation.SystemResolver()
		if err != nil {
			return nil, fmt.Errorf("%w (give --resolver HOST:PORT)", err)
		}
		c.Resolver, c.Search = r, search
	}
	roots, err := federation.Roots(caFile)
	if err != nil {
		return nil, err
	}
	c.Roots = roots
	return c, nil
}

// storedFederation loads the stored settings; stored is false when none
// are configured (a one-off check then has no binding to check).
func (a *app) storedFederation(ctx context.Context) (federation.Settings, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := a.store(ctx, false)
	if err != nil {
		return federation.Settings{}, false, err
	}
	defer st.Close()
	return loadFederation(ctx, st)
}

func writeReport(w io.Writer, rep federation.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "%-4s  %-14s  %s\n", strings.ToUpper(c.Status), c.ID, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "      %-14s  fix: %s\n", "", c.Fix)
		}
	}
	return nil
}

func loadFederation(ctx context.Context, st *models.Store) (federation.Settings, bool, error) {
	s, _, configured, err := federation.Load(ctx, st)
	return s, configured && s.Domain != "", err
}

// federationService is federation inside serve.
func (a *app) federationService(s *models.Store, reg prometheus.Registerer) *federation.Service {
	return federation.NewService(federation.ServiceOptions{
		Store: s, TLSDir: a.cfg.FederationTLSDir, Resolver: a.cfg.FederationResolver,
		ExpiryWarnDays: a.cfg.FederationExpiryWarnDays, Logger: a.log.With("component", "federation"), Registerer: reg,
	})
}

// federationTLS adapts the service to xml-curl.
func federationTLS(fed *federation.Service) func(context.Context) (xmlcurl.TLSSide, bool, error) {
	return func(ctx context.Context) (xmlcurl.TLSSide, bool, error) {
		profile, port, dir, ok, err := fed.TLS(ctx)
		return xmlcurl.TLSSide{Profile: profile, Port: port, CertDir: dir}, ok, err
	}
}

// federationChanged wakes the certificate watcher when the federation
// settings changed (their directories to watch may have).
func federationChanged(ev models.ChangeEvent, wake chan<- struct{}) {
	if ev.Kind != "federation" && !ev.HasField("federation") {
		return
	}
	select {
	case wake <- struct{}{}:
	default:
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
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
	fed.AddCommand(a.federationCheckCmd(), a.federationShowCmd(), a.federationSetCmd())
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
	if err := f.validate(fl); err != nil {
		return err
	}
	oneOff := false
	for _, n := range []string{"domain", "fqdn", "cert", "key", "public-ip", "port"} {
		oneOff = oneOff || fl.Changed(n)
	}
	s, profileIP, stored, err := a.storedFederation(ctx)
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
	c.OneOff, c.ProfileIP = !stored, profileIP
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
	if resolver == "" {
		resolver = a.cfg.FederationResolver
	}
	svc := federation.NewService(federation.ServiceOptions{Resolver: resolver, ExpiryWarnDays: a.cfg.FederationExpiryWarnDays})
	return svc.Checker(caFile)
}

// storedFederation loads the stored settings and the sip-ip of their
// profile; stored is false when none are configured (a one-off check then
// has no binding to check).
func (a *app) storedFederation(ctx context.Context) (set federation.Settings, profileIP string, stored bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := a.store(ctx, false)
	if err != nil {
		return set, "", false, err
	}
	defer st.Close()
	if set, stored, err = loadFederation(ctx, st); err != nil {
		return set, "", false, err
	}
	if set.Profile != "" {
		if p, err := st.ProfileByName(ctx, set.Profile); err == nil {
			profileIP = p.BindIP
		}
	}
	return set, profileIP, stored, nil
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
		side, ok, err := fed.TLS(ctx)
		out := xmlcurl.TLSSide{Profile: side.Profile, Port: side.Port, CertDir: side.Dir, ExtSIPIP: side.ExtSIPIP, Domain: side.Domain}
		for _, r := range side.Routes {
			out.Routes = append(out.Routes, xmlcurl.FederationRoute{Domain: r.Domain, FQDN: r.FQDN, Port: r.Port})
		}
		return out, ok, err
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

// validate refuses flag values no check could use.
func (f federationFlags) validate(fl *pflag.FlagSet) error {
	var errs []error
	for name, v := range map[string]string{"domain": f.domain, "fqdn": f.fqdn} {
		if fl.Changed(name) {
			if err := names.DNSName(v); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", name, err))
			}
		}
	}
	if fl.Changed("public-ip") {
		if _, err := names.ParseAddr(f.publicIP); err != nil {
			errs = append(errs, fmt.Errorf("--public-ip: %w", err))
		}
	}
	if fl.Changed("port") && (f.port < 1 || f.port > 65535) {
		errs = append(errs, fmt.Errorf("--port: %d out of range 1-65535", f.port))
	}
	if f.resolver != "" {
		if h, p, err := net.SplitHostPort(f.resolver); err != nil || h == "" {
			errs = append(errs, fmt.Errorf("--resolver: %q is not HOST:PORT (e.g. 127.0.0.53:53)", f.resolver))
		} else if _, err := names.ParsePort(p); err != nil {
			errs = append(errs, fmt.Errorf("--resolver: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (a *app) federationShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the stored federation settings and warnings as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.store(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			svc := a.federationService(st, nil)
			set, version, _, err := svc.Settings(ctx)
			if err != nil {
				return err
			}
			ws, err := svc.Warnings(ctx)
			if err != nil {
				return err
			}
			if ws == nil {
				ws = []string{}
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Version int64 `json:"version"`
				federation.Settings
				TLSCertDir string   `json:"tls_cert_dir"`
				Warnings   []string `json:"warnings"`
			}{version, set, svc.TLSDir(), ws})
		},
	}
}

func (a *app) federationSetCmd() *cobra.Command {
	var (
		set    federation.Settings
		routes []string
	)
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Change the stored federation settings (as PUT /api/v1/federation)",
		Long: `Change the given settings and keep the others. An enabled federation's
certificate is checked (exactly the FQDN, no wildcard, trusted chain, key
matches, not expired) and put in place as agent.pem and cafile.pem in
FSPLANE_FEDERATION_TLS_DIR before the settings are stored; a running
fsplane serve then renders TLS on the profile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.store(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			svc := a.federationService(st, nil)
			cur, version, _, err := svc.Settings(ctx)
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			for name, apply := range map[string]func(){
				"enabled": func() { cur.Enabled = set.Enabled }, "domain": func() { cur.Domain = set.Domain },
				"fqdn": func() { cur.FQDN = set.FQDN }, "cert": func() { cur.CertFile = set.CertFile },
				"key": func() { cur.KeyFile = set.KeyFile }, "ca-file": func() { cur.CAFile = set.CAFile },
				"profile": func() { cur.Profile = set.Profile }, "bind-address": func() { cur.BindAddress = set.BindAddress },
				"port": func() { cur.Port = set.Port }, "mode": func() { cur.Mode = set.Mode },
				"use-public-address": func() { cur.UsePublicAddress = set.UsePublicAddress },
				"public-address":     func() { cur.PublicAddress = set.PublicAddress },
				"nat-type":           func() { cur.NATType = set.NATType },
			} {
				if fl.Changed(name) {
					apply()
				}
			}
			if fl.Changed("route") {
				cur.Routes = []federation.Route{}
				for _, r := range routes {
					rt, err := parseRoute(r)
					if err != nil {
						return fmt.Errorf("--route: %w", err)
					}
					cur.Routes = append(cur.Routes, rt)
				}
			}
			cur.Defaults()
			if err := cur.Validate(); err != nil {
				return err
			}
			if cur.Profile != "" {
				if _, err := st.ProfileByName(ctx, cur.Profile); errors.Is(err, models.ErrNotFound) {
					return fmt.Errorf("profile: no profile named %q", cur.Profile)
				} else if err != nil {
					return err
				}
			}
			if err := svc.Apply(cur); err != nil {
				return err
			}
			ctx = models.WithActor(ctx, models.Actor{Name: "cli"})
			if err := st.PutFederation(ctx, cur.ToModel(version)); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "federation settings stored")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&set.Enabled, "enabled", false, "federation on or off")
	fl.StringVar(&set.Domain, "domain", "", "federation domain")
	fl.StringVar(&set.FQDN, "fqdn", "", "public FQDN of this server")
	fl.StringVar(&set.CertFile, "cert", "", "certificate PEM file, e.g. /etc/letsencrypt/live/FQDN/fullchain.pem")
	fl.StringVar(&set.KeyFile, "key", "", "private key PEM file (when not in --cert)")
	fl.StringVar(&set.CAFile, "ca-file", "", "PEM roots of a private CA, trusted besides the system's")
	fl.StringVar(&set.Profile, "profile", "", "the sofia profile that carries the TLS side")
	fl.StringVar(&set.BindAddress, "bind-address", "", "address peers reach through the firewall")
	fl.IntVar(&set.Port, "port", federation.DefaultPort, "federation TLS port")
	fl.StringVar(&set.Mode, "mode", federation.ModeOpen, "open (SRV published) or direct (explicit routes)")
	fl.StringArrayVar(&routes, "route", nil, "direct mode: DOMAIN=FQDN[:PORT], repeatable; replaces every route")
	fl.BoolVar(&set.UsePublicAddress, "use-public-address", false, "behind NAT: the A record names the public address")
	fl.StringVar(&set.PublicAddress, "public-address", "", "public address (from the STUN probe, or typed in)")
	fl.StringVar(&set.NATType, "nat-type", "", "NAT type from the STUN probe")
	return cmd
}

// parseRoute reads DOMAIN=FQDN[:PORT].
func parseRoute(s string) (federation.Route, error) {
	d, target, ok := strings.Cut(s, "=")
	if !ok {
		return federation.Route{}, fmt.Errorf("%q is not DOMAIN=FQDN[:PORT]", s)
	}
	h, err := names.ParseHost(target, true)
	if err != nil {
		return federation.Route{}, err
	}
	if h.Name == "" {
		return federation.Route{}, fmt.Errorf("%q: the route's target must be a name (its certificate names it)", target)
	}
	return federation.Route{Domain: d, FQDN: h.Name, Port: h.Port}, nil
}

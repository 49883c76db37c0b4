package federation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/models"
)

// ServiceOptions configure a Service.
type ServiceOptions struct {
	Store *models.Store
	// TLSDir is the federation profile's tls-cert-dir, which the service
	// fills with agent.pem and cafile.pem.
	TLSDir string
	// Resolver is the DNS server HOST:PORT of the check; "" the system's.
	Resolver string
	// ExpiryWarnDays (DefaultExpiryWarnDays when 0).
	ExpiryWarnDays int
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	Now            func() time.Time
	// Roots replaces the system's trusted roots (tests); a stored CA file
	// is added to them.
	Roots func() *x509.CertPool
	// Debounce is how long Watch waits after the last change in a watched
	// directory before looking (renewers replace several files); 1s when 0.
	Debounce time.Duration
	// Poll is how often Watch compares the files anyway, a net under
	// missed notifications; 1h when 0.
	Poll time.Duration
}

// Service is federation inside `fsplane serve`: it runs the check on the
// stored settings, puts certificates in place, tells xml-curl the TLS side
// of the federation profile and reports on /readyz.
type Service struct {
	opt     ServiceOptions
	metrics *metrics

	// installMu serialises putting files in place (Apply from the API,
	// Sync from the watcher): agent.pem and cafile.pem from one source.
	installMu sync.Mutex

	mu         sync.Mutex
	refused    string // why the last replacement was refused, "" when none
	refusedDER []byte // the refused leaf, so a poll does not count it again
	nodes      func() []esl.NodeStatus
}

// UseESL lets Warnings name the FreeSWITCH nodes that must restart a
// profile to read a replaced certificate (no reloadcert, restarts not
// allowed).
func (s *Service) UseESL(nodes func() []esl.NodeStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = nodes
}

// NewService builds a Service.
func NewService(opt ServiceOptions) *Service {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.ExpiryWarnDays == 0 {
		opt.ExpiryWarnDays = DefaultExpiryWarnDays
	}
	if opt.Debounce == 0 {
		opt.Debounce = time.Second
	}
	if opt.Poll == 0 {
		opt.Poll = time.Hour
	}
	return &Service{opt: opt, metrics: newMetrics(opt.Registerer)}
}

// TLSDir is the directory agent.pem and cafile.pem are put in.
func (s *Service) TLSDir() string { return s.opt.TLSDir }

// Settings returns the stored settings, their version, and whether any
// were ever stored.
func (s *Service) Settings(ctx context.Context) (Settings, int64, bool, error) {
	return Load(ctx, s.opt.Store)
}

func (s *Service) roots(caFile string) (*x509.CertPool, error) {
	if s.opt.Roots == nil {
		return Roots(caFile)
	}
	pool := s.opt.Roots()
	if caFile == "" {
		return pool, nil
	}
	return addPEMFile(pool.Clone(), caFile)
}

// Checker is a Checker for settings with this CA file.
func (s *Service) Checker(caFile string) (*Checker, error) {
	c := &Checker{ExpiryWarnDays: s.opt.ExpiryWarnDays, Now: s.opt.Now}
	if s.opt.Resolver != "" {
		c.Resolver = Resolver{Server: s.opt.Resolver}
		// The host's search suffixes still explain a name that only
		// resolves with one appended.
		if _, search, err := SystemResolver(); err == nil {
			c.Search = search
		}
	} else {
		r, search, err := SystemResolver()
		if err != nil {
			return nil, err
		}
		c.Resolver, c.Search = r, search
	}
	roots, err := s.roots(caFile)
	if err != nil {
		return nil, err
	}
	c.Roots = roots
	return c, nil
}

// Check runs the checklist on the stored settings.
func (s *Service) Check(ctx context.Context) (Report, error) {
	set, _, configured, err := s.Settings(ctx)
	if err != nil {
		return Report{}, err
	}
	c, err := s.Checker(set.CAFile)
	if err != nil {
		return Report{}, err
	}
	c.OneOff = !configured
	if c.ProfileIP, err = s.profileIP(ctx, set.Profile); err != nil {
		return Report{}, err
	}
	return c.Run(ctx, set), nil
}

// profileIP is the stored sip-ip of profile, "" when there is none.
func (s *Service) profileIP(ctx context.Context, profile string) (string, error) {
	if profile == "" {
		return "", nil
	}
	p, err := s.opt.Store.ProfileByName(ctx, profile)
	if errors.Is(err, models.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return p.BindIP, nil
}

// Apply checks the certificate of enabled settings and puts it in place,
// before the settings are stored (TLS is rendered only once the files are
// there). Disabled settings need no certificate yet.
func (s *Service) Apply(set Settings) error {
	if !set.Enabled {
		return nil
	}
	roots, err := s.roots(set.CAFile)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	c, chain, err := Prepare(set, roots, s.opt.Now())
	if err != nil {
		return err
	}
	s.installMu.Lock()
	defer s.installMu.Unlock()
	if err := Install(s.opt.TLSDir, c, chain); err != nil {
		return err
	}
	s.metrics.expiry.Set(float64(c.Leaf.NotAfter.Unix()))
	return nil
}

// TLSSide is what xml-curl renders on the federation profile.
type TLSSide struct {
	Profile string
	Port    int
	Dir     string // tls-cert-dir
	// ExtSIPIP is the public address when use_public_address is set.
	ExtSIPIP string
	Domain   string
	// Routes are rendered as gateways in direct mode.
	Routes []Route
}

// TLS is the TLS side of the federation profile for xml-curl: ok only
// when federation is enabled and agent.pem and cafile.pem are in place.
func (s *Service) TLS(ctx context.Context) (side TLSSide, ok bool, err error) {
	set, _, configured, err := s.Settings(ctx)
	if err != nil || !configured || !set.Enabled || set.Profile == "" {
		return side, false, err
	}
	if Installed(s.opt.TLSDir) == nil {
		return side, false, nil
	}
	side = TLSSide{Profile: set.Profile, Port: set.Port, Dir: s.opt.TLSDir, Domain: set.Domain}
	if set.Mode == ModeDirect {
		side.Routes = set.Routes
	}
	if set.UsePublicAddress {
		side.ExtSIPIP = set.PublicAddress
	}
	return side, true, nil
}

// Warnings are what /readyz, the API and the console show: a TLS profile
// without a configured certificate (sofia serves a self-signed one), a
// certificate expiring soon, a refused renewal, a restart still needed.
func (s *Service) Warnings(ctx context.Context) ([]string, error) {
	set, _, configured, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	profiles, err := s.opt.Store.ListProfiles(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	leaf := Installed(s.opt.TLSDir)
	for _, w := range profileWarnings(set, configured, leaf != nil, profiles) {
		out = append(out, w)
	}
	if configured && set.Enabled {
		switch {
		case leaf == nil:
			out = append(out, "federation is enabled but no certificate is in place in "+s.opt.TLSDir+", so TLS is not rendered on profile "+set.Profile)
		default:
			days := int(leaf.NotAfter.Sub(s.opt.Now()).Hours() / 24)
			s.metrics.expiry.Set(float64(leaf.NotAfter.Unix()))
			if days < s.opt.ExpiryWarnDays {
				out = append(out, fmt.Sprintf("the federation certificate expires in %d days (%s)", days, leaf.NotAfter.UTC().Format(time.DateOnly)))
			}
		}
	}
	s.mu.Lock()
	if s.refused != "" {
		out = append(out, s.refused)
	}
	nodes := s.nodes
	s.mu.Unlock()
	if nodes != nil {
		for _, n := range nodes() {
			for _, p := range n.RestartNeeded {
				out = append(out, fmt.Sprintf("FreeSWITCH %s reads the renewed certificate only after `sofia profile %s restart` (no reloadcert; restarts are not allowed)", n.Node, p))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// ProfileWarnings are the warnings about sofia profiles alone, by profile
// name: TLS without a configured certificate (the API shows them on the
// profile).
func (s *Service) ProfileWarnings(ctx context.Context) (map[string]string, error) {
	set, _, configured, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	profiles, err := s.opt.Store.ListProfiles(ctx)
	if err != nil {
		return nil, err
	}
	return profileWarnings(set, configured, Installed(s.opt.TLSDir) != nil, profiles), nil
}

// profileWarnings: a TLS profile with no tls-cert-dir of its own, unless it
// is the enabled federation's, whose certificate is in place.
func profileWarnings(set Settings, configured, installed bool, profiles []models.Profile) map[string]string {
	fedProfile := ""
	if configured && set.Enabled && installed {
		fedProfile = set.Profile
	}
	out := map[string]string{}
	for _, p := range profiles {
		if p.TLS && p.TLSCertDir == "" && p.Name != fedProfile {
			out[p.Name] = fmt.Sprintf("profile %q has TLS without a configured certificate: FreeSWITCH serves a self-signed one from its own certificate directory", p.Name)
		}
	}
	return out
}

// Readiness folds Warnings into a /readyz answer: degraded, never down (a
// certificate problem must not take the control plane out of service).
// /readyz is public and the warnings name files and directories on this
// host, so it gives their number; GET /api/v1/federation and the console
// give them whole.
func (s *Service) Readiness(ctx context.Context) (status, detail string) {
	ws, err := s.Warnings(ctx)
	if err != nil {
		return "degraded", "federation settings could not be read"
	}
	switch len(ws) {
	case 0:
		return "ok", ""
	case 1:
		return "degraded", "1 federation warning (GET /api/v1/federation)"
	}
	return "degraded", fmt.Sprintf("%d federation warnings (GET /api/v1/federation)", len(ws))
}

package federation

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// Modes of federation: open publishes an SRV record any peer may find;
// direct has no SRV record and explicit routes per peer domain.
const (
	ModeOpen   = "open"
	ModeDirect = "direct"
)

// DefaultPort is the federation port: Microsoft's federation (and the
// admin's checklist) always uses 5061/tcp.
const DefaultPort = 5061

// SRVPrefix is the service and protocol of the federation SRV record.
const SRVPrefix = "_sipfederationtls._tcp."

// Route is a direct-federation route: a peer's domain and the FQDN:port of
// its federation server.
type Route struct {
	Domain string `json:"domain"`
	FQDN   string `json:"fqdn"`
	Port   int    `json:"port"`
}

// Settings describe one federation. Names are stored lower case without a
// trailing dot (Normalize).
type Settings struct {
	Enabled  bool   `json:"enabled"`
	Domain   string `json:"domain"`
	FQDN     string `json:"fqdn"`
	CertFile string `json:"cert_file"` // PEM: leaf first, then the chain; may hold the key
	KeyFile  string `json:"key_file"`  // PEM; "" when CertFile holds the key
	CAFile   string `json:"ca_file"`   // PEM roots of a private CA, added to the system's
	Profile  string `json:"profile"`   // the sofia profile that carries the TLS side
	// BindAddress is the local address the profile listens on for
	// federation; Port its TLS port (DefaultPort when 0).
	BindAddress string  `json:"bind_address"`
	Port        int     `json:"port"`
	Mode        string  `json:"mode"`
	Routes      []Route `json:"routes"`
	// UsePublicAddress: the host sits behind NAT; PublicAddress (from the
	// STUN probe or typed in) is what the A record must name.
	UsePublicAddress bool   `json:"use_public_address"`
	PublicAddress    string `json:"public_address"`
	NATType          string `json:"nat_type"`
}

// normName is a DNS name in the form stored and compared: lower case, no
// trailing dot.
func normName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// Defaults fills what was left out: port 5061, mode open, routes' ports.
func (s *Settings) Defaults() {
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.Mode == "" {
		s.Mode = ModeOpen
	}
	if s.Routes == nil {
		s.Routes = []Route{}
	}
	for i := range s.Routes {
		if s.Routes[i].Port == 0 {
			s.Routes[i].Port = DefaultPort
		}
	}
}

// Normalize is Defaults, and names compared as DNS compares them: lower
// case, without the trailing dot of an absolute name. The check uses it
// on what it is handed; stored settings must already be in this form
// (FieldErrors refuses others).
func (s *Settings) Normalize() {
	s.Defaults()
	s.Domain = normName(s.Domain)
	s.FQDN = normName(s.FQDN)
	for i := range s.Routes {
		s.Routes[i].Domain = normName(s.Routes[i].Domain)
		s.Routes[i].FQDN = normName(s.Routes[i].FQDN)
	}
}

// Validate refuses settings that cannot be stored: every problem is
// reported, each naming its field. An empty domain, FQDN or certificate
// is allowed while federation is disabled (a draft).
func (s *Settings) Validate() error {
	fields := s.FieldErrors()
	if len(fields) == 0 {
		return nil
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + ": " + fields[k]
	}
	return invalidf("%s", strings.Join(keys, "; "))
}

// FieldErrors maps each invalid field (by its JSON name) to why.
func (s *Settings) FieldErrors() map[string]string {
	out := map[string]string{}
	var errs []string
	add := func(field string, err error) { errs = append(errs, field+": "+err.Error()) }
	// name checks a DNS name; missing, when set, is why it may not be empty.
	name := func(field, v, missing string) {
		if v == "" {
			if missing != "" {
				errs = append(errs, field+": "+missing)
			}
			return
		}
		if err := names.DNSName(v); err != nil {
			add(field, err)
		} else if n := normName(v); n != v {
			errs = append(errs, fmt.Sprintf("%s: %q is not in normal form: write %s", field, v, n))
		}
	}
	enabledNeeds := ""
	if s.Enabled {
		enabledNeeds = "required when federation is enabled"
	}
	name("domain", s.Domain, enabledNeeds)
	name("fqdn", s.FQDN, enabledNeeds)
	if s.Enabled && s.CertFile == "" {
		errs = append(errs, "cert_file: required when federation is enabled")
	}
	for field, p := range map[string]string{"cert_file": s.CertFile, "key_file": s.KeyFile, "ca_file": s.CAFile} {
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, field+": must be an absolute path")
		} else if err := names.Chars(p); err != nil {
			add(field, err)
		}
	}
	if s.Profile != "" {
		if err := names.Profile(s.Profile); err != nil {
			add("profile", err)
		}
	} else if s.Enabled {
		errs = append(errs, "profile: required when federation is enabled")
	}
	if s.BindAddress != "" {
		if _, err := parseBind(s.BindAddress); err != nil {
			add("bind_address", err)
		}
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, "port: out of range 1-65535")
	}
	switch s.Mode {
	case ModeOpen, ModeDirect:
	default:
		errs = append(errs, `mode: must be "open" or "direct"`)
	}
	if s.Mode == ModeOpen && len(s.Routes) > 0 {
		errs = append(errs, "routes: only in direct mode")
	}
	seen := map[string]bool{}
	for i, r := range s.Routes {
		f := "routes[" + strconv.Itoa(i) + "]"
		name(f+".domain", r.Domain, "required")
		// The route becomes gateway federation-<domain>: it must be a
		// gateway name, or it would be refused at render time.
		if r.Domain != "" {
			if err := names.Gateway(models.FederationRouteGateway(r.Domain)); err != nil {
				add(f+".domain", err)
			}
		}
		if seen[r.Domain] {
			errs = append(errs, f+".domain: "+r.Domain+" has two routes")
		}
		seen[r.Domain] = true
		name(f+".fqdn", r.FQDN, "required")
		if r.Port < 1 || r.Port > 65535 {
			errs = append(errs, f+".port: out of range 1-65535")
		}
	}
	if s.PublicAddress != "" {
		if _, err := names.ParseAddr(s.PublicAddress); err != nil {
			add("public_address", err)
		}
	}
	if s.UsePublicAddress && s.PublicAddress == "" {
		errs = append(errs, "public_address: required with use_public_address (from the STUN probe or typed in)")
	}
	if s.NATType != "" {
		if err := names.Text(s.NATType, 64); err != nil {
			add("nat_type", err)
		}
	}
	for _, e := range errs {
		f, msg, _ := strings.Cut(e, ": ")
		if _, ok := out[f]; !ok {
			out[f] = msg
		}
	}
	return out
}

// parseBind reads a bind address: an IP address, no port, no name.
func parseBind(s string) (netip.Addr, error) {
	h, err := names.ParseHost(s, false)
	if err != nil {
		return netip.Addr{}, err
	}
	if !h.Addr.IsValid() {
		return netip.Addr{}, invalidf("%q is not an IP address", s)
	}
	return h.Addr, nil
}

package federation

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/fsplane/fsplane/names"
)

// Statuses of a check.
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
	Skip = "skip"
)

// Check ids, in the order Run reports them.
const (
	IDFQDNInDomain = "fqdn-in-domain"
	IDARecord      = "a-record"
	IDSRVRecord    = "srv-record"
	IDCertificate  = "certificate"
	IDReachable    = "reachable"
	IDBound        = "bound"
)

// Check is one line of the checklist.
type Check struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"` // one sentence; "" when nothing is to be done
}

// Report is the whole checklist.
type Report struct {
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == Fail })
}

// Get returns the check with id (zero Check when absent).
func (r Report) Get(id string) Check {
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	return Check{}
}

// DefaultExpiryWarnDays: a certificate expiring sooner is a warning.
const DefaultExpiryWarnDays = 14

// Checker runs the checklist.
type Checker struct {
	Resolver Resolver
	// Search are the host's search suffixes: a name that only resolves
	// with one appended is explained, never accepted.
	Search []string
	// Roots are the trusted roots (nil: the system's).
	Roots *x509.CertPool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Timeout bounds each network step of the reachable check (5s when 0).
	Timeout time.Duration
	// LocalAddrs lists this host's addresses (the interfaces' when nil).
	LocalAddrs func() ([]netip.Addr, error)
	// ExpiryWarnDays (DefaultExpiryWarnDays when 0).
	ExpiryWarnDays int
	// OneOff: the settings come from flags, not from a stored
	// configuration, so there is no binding to check.
	OneOff bool
	// ProfileIP is the sip-ip of the federation profile as stored ("" when
	// unknown): FreeSWITCH listens there, so the bind address must be it
	// (or the profile must listen on every address).
	ProfileIP string
}

// Run runs the six checks on s (normalised first) and returns them in
// order. It never fails as a whole: every problem is a check's status.
func (c *Checker) Run(ctx context.Context, s Settings) Report {
	s.Normalize()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	var r Report
	r.Checks = append(r.Checks, c.fqdnInDomain(s))
	a, addrs := c.aRecord(ctx, s)
	r.Checks = append(r.Checks, a)
	r.Checks = append(r.Checks, c.srvRecord(ctx, s))
	cert, cc := c.certificate(s, now())
	r.Checks = append(r.Checks, cc)
	r.Checks = append(r.Checks, c.reachable(ctx, s, addrs, cert))
	r.Checks = append(r.Checks, c.bound(s))
	return r
}

func (c *Checker) fqdnInDomain(s Settings) Check {
	ch := Check{ID: IDFQDNInDomain}
	switch {
	case s.Domain == "":
		return fail(ch, "no federation domain configured", "Set the federation domain (--domain), the part after the @ of your users' SIP addresses.")
	case s.FQDN == "":
		return fail(ch, "no FQDN configured", "Set the public name of this server (--fqdn), e.g. sip."+s.Domain+".")
	}
	if err := names.DNSName(s.Domain); err != nil {
		return fail(ch, "domain: "+err.Error(), "Set the federation domain to a valid DNS name.")
	}
	if err := names.DNSName(s.FQDN); err != nil {
		return fail(ch, "fqdn: "+err.Error(), "Set the FQDN to a valid DNS name.")
	}
	if s.FQDN != s.Domain && !strings.HasSuffix(s.FQDN, "."+s.Domain) {
		return fail(ch, fmt.Sprintf("%s does not end with the federation domain %s", s.FQDN, s.Domain),
			"Choose an FQDN inside the federation domain, e.g. sip."+s.Domain+", with an A record and a certificate for it.")
	}
	return pass(ch, s.FQDN+" is inside "+s.Domain)
}

// expectedAddr is what the A record must name: the public address when
// set, else the bind address when it is public. Invalid when unknown.
func expectedAddr(s Settings) netip.Addr {
	if a, err := names.ParseAddr(s.PublicAddress); err == nil {
		return a
	}
	if a, err := netip.ParseAddr(s.BindAddress); err == nil && a.IsGlobalUnicast() && !a.IsPrivate() {
		return a
	}
	return netip.Addr{}
}

func (c *Checker) aRecord(ctx context.Context, s Settings) (Check, []netip.Addr) {
	ch := Check{ID: IDARecord}
	if s.FQDN == "" || names.DNSName(s.FQDN) != nil {
		return skip(ch, "no valid FQDN to look up"), nil
	}
	q := dns.Fqdn(s.FQDN)
	addrs, err := c.Resolver.addrs(ctx, q)
	if err == nil && len(addrs) == 0 {
		err = errors.New("has no A or AAAA record")
	}
	if err != nil {
		detail := fmt.Sprintf("%s %v (asked %s as an absolute name, no search suffix)", q, err, c.Resolver.Server)
		if hit, ok := c.searchHit(ctx, s.FQDN); ok {
			detail += "; it resolves only as " + hit + ", with this host's search suffix appended, which is what a plain nslookup shows"
		}
		return fail(ch, detail, "Add an A record for "+q+" at the public DNS provider of "+s.Domain+"."), nil
	}
	list := joinAddrs(addrs)
	want := expectedAddr(s)
	if !want.IsValid() {
		return warn(ch, q+" resolves to "+list+"; no public address is configured to compare with",
			"Set the public address (--public-ip, or use_public_address with the STUN result)."), addrs
	}
	if !slices.Contains(addrs, want) {
		return fail(ch, fmt.Sprintf("%s resolves to %s, not to the public address %s", q, list, want),
			"Change the A record of "+q+" to "+want.String()+"."), addrs
	}
	if len(addrs) > 1 {
		return warn(ch, fmt.Sprintf("%s resolves to %s: peers may pick an address other than %s", q, list, want),
			"Remove the other A/AAAA records of "+q+"."), addrs
	}
	return pass(ch, q+" resolves to "+list), addrs
}

// searchHit tries name with each search suffix appended (what a resolver
// without the trailing dot would do) and returns the first that
// resolves.
func (c *Checker) searchHit(ctx context.Context, name string) (string, bool) {
	for _, suf := range c.Search {
		q := dns.Fqdn(name + "." + strings.Trim(suf, "."))
		if a, err := c.Resolver.addrs(ctx, q); err == nil && len(a) > 0 {
			return q, true
		}
	}
	return "", false
}

func (c *Checker) srvRecord(ctx context.Context, s Settings) Check {
	ch := Check{ID: IDSRVRecord}
	if s.Mode == ModeDirect {
		return skip(ch, "direct federation publishes no SRV record")
	}
	if s.Domain == "" || names.DNSName(s.Domain) != nil {
		return skip(ch, "no valid federation domain to look up")
	}
	q := SRVPrefix + dns.Fqdn(s.Domain)
	want := dns.Fqdn(s.FQDN)
	fix := fmt.Sprintf("Publish SRV %s 0 0 %d %s at the public DNS provider of %s.", q, s.Port, want, s.Domain)
	recs, err := c.Resolver.srv(ctx, q)
	if err == nil && len(recs) == 0 {
		err = errors.New("has no SRV record")
	}
	if err != nil {
		return fail(ch, fmt.Sprintf("%s %v", q, err), fix)
	}
	var good, bad []string
	for _, r := range recs {
		d := fmt.Sprintf("%s:%d (priority %d, weight %d)", r.Target, r.Port, r.Priority, r.Weight)
		switch {
		case !strings.EqualFold(r.Target, want):
			bad = append(bad, d+" targets another host than "+want)
		case int(r.Port) != s.Port:
			bad = append(bad, fmt.Sprintf("%s has port %d, not %d", d, r.Port, s.Port))
		default:
			good = append(good, d)
		}
	}
	switch {
	case len(good) == 0:
		return fail(ch, q+": "+strings.Join(bad, "; "), fix)
	case len(bad) > 0:
		return warn(ch, q+" → "+strings.Join(good, ", ")+", but also "+strings.Join(bad, "; "), "Remove the other SRV records of "+q+".")
	}
	return pass(ch, q+" → "+strings.Join(good, ", "))
}

func (c *Checker) certificate(s Settings, now time.Time) (*Certificate, Check) {
	ch := Check{ID: IDCertificate}
	if s.CertFile == "" {
		return nil, fail(ch, "no certificate configured", "Set the certificate file (--cert), e.g. /etc/letsencrypt/live/"+s.FQDN+"/fullchain.pem.")
	}
	cert, err := LoadCertificate(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, fail(ch, err.Error(), "Point --cert (and --key) at readable PEM files.")
	}
	ps := cert.Examine(s.FQDN, c.Roots, now, false)
	if len(ps) > 0 {
		ds := make([]string, len(ps))
		for i, p := range ps {
			ds[i] = p.Detail
		}
		return cert, fail(ch, strings.Join(ds, "; "), ps[0].Fix)
	}
	days := cert.DaysLeft(now)
	detail := fmt.Sprintf("issued for %s by %s, expires %s (%d days left)", s.FQDN, issuerName(cert.Leaf),
		cert.Leaf.NotAfter.UTC().Format(time.DateOnly), days)
	if cert.KeyPEM == nil {
		detail += "; no key given, so the key was not checked"
	}
	warnDays := c.ExpiryWarnDays
	if warnDays == 0 {
		warnDays = DefaultExpiryWarnDays
	}
	if days < warnDays {
		return cert, warn(ch, detail, "Renew the certificate now (certbot renew); fsplane picks up the renewed files by itself.")
	}
	return cert, pass(ch, detail)
}

func issuerName(x *x509.Certificate) string {
	if x.Issuer.CommonName != "" {
		return x.Issuer.CommonName
	}
	return x.Issuer.String()
}

func (c *Checker) reachable(ctx context.Context, s Settings, addrs []netip.Addr, cert *Certificate) Check {
	ch := Check{ID: IDReachable}
	if len(addrs) == 0 {
		return fail(ch, "the FQDN does not resolve, so there is nothing to connect to", "Fix the A record first.")
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	target := addrs[0]
	if want := expectedAddr(s); want.IsValid() && slices.Contains(addrs, want) {
		target = want
	}
	addr := netip.AddrPortFrom(target, uint16(s.Port)).String()
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail(ch, fmt.Sprintf("TCP connection to %s (%s) failed: %v", s.FQDN, addr, err),
			fmt.Sprintf("Forward %d/tcp on the public address to the federation bind address and open it in the firewall (fsplane firewall export).", s.Port))
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(timeout))
	cfg := &tls.Config{
		ServerName: s.FQDN,
		// The chain is the certificate check's job; here only identity
		// with the configured certificate counts.
		InsecureSkipVerify: true,
	}
	if cert != nil && cert.KeyPEM != nil && cert.KeyMatch == nil {
		// Federation peers speak mutual TLS: offer the configured
		// certificate as a peer would offer its own.
		if kp, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM); err == nil {
			cfg.Certificates = []tls.Certificate{kp}
		}
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return fail(ch, fmt.Sprintf("TCP to %s works, but the TLS handshake failed: %v", addr, err),
			"Enable TLS on the federation profile (tls, tls-sip-port) with the configured certificate.")
	}
	peer := conn.ConnectionState().PeerCertificates
	if len(peer) == 0 {
		return fail(ch, "the TLS server presented no certificate", "Enable TLS on the federation profile with the configured certificate.")
	}
	if cert == nil {
		return fail(ch, fmt.Sprintf("%s presents %s, but no readable certificate is configured to compare with", addr, describeCert(peer[0])),
			"Configure the certificate file.")
	}
	if !peer[0].Equal(cert.Leaf) {
		what := "a different certificate"
		if selfSigned(peer[0]) {
			what = "a self-signed certificate (what sofia generates when agent.pem or cafile.pem is missing)"
		}
		return fail(ch, fmt.Sprintf("%s presents %s: %s, not the configured one", addr, what, describeCert(peer[0])),
			"Put the configured certificate in place on the federation profile (agent.pem and cafile.pem in its tls-cert-dir) and restart the profile.")
	}
	if _, err := conn.Write([]byte(optionsRequest(conn, s.FQDN, s.Domain, s.Port))); err != nil {
		return fail(ch, "sending SIP OPTIONS failed: "+err.Error(), "Check that the federation profile speaks SIP over TLS on this port.")
	}
	code, reason, err := readFinalResponse(bufio.NewReader(conn))
	// crypto/tls reports the peer's alert only as text.
	if err != nil && (strings.Contains(err.Error(), "tls: certificate required") || strings.Contains(err.Error(), "tls: bad certificate")) {
		if len(cfg.Certificates) == 0 {
			return fail(ch, fmt.Sprintf("%s requires a client certificate (mutual TLS): %v", addr, err),
				"Give the key of the configured certificate (--key), so the check can present it as a federation peer does.")
		}
		return fail(ch, fmt.Sprintf("%s requires a client certificate (mutual TLS) and refused the configured one: %v", addr, err),
			"Use a certificate that allows client authentication (extended key usage clientAuth) from a CA the peers trust.")
	}
	if err != nil {
		return fail(ch, fmt.Sprintf("TLS to %s presents the configured certificate, but SIP OPTIONS got no answer: %v", addr, err),
			"Check that the federation profile speaks SIP over TLS on this port and answers OPTIONS.")
	}
	return pass(ch, fmt.Sprintf("%s: TCP and TLS (configured certificate) work; OPTIONS answered %s %s", addr, strconv.Itoa(code), reason))
}

func describeCert(x *x509.Certificate) string {
	n := x.DNSNames
	if len(n) == 0 {
		n = []string{x.Subject.CommonName}
	}
	return fmt.Sprintf("issued for %s by %s, expiring %s", strings.Join(n, ", "), issuerName(x), x.NotAfter.UTC().Format(time.DateOnly))
}

func (c *Checker) bound(s Settings) Check {
	ch := Check{ID: IDBound}
	if c.OneOff {
		return skip(ch, "one-off check from flags: no stored federation configuration to check")
	}
	if !s.Enabled {
		return fail(ch, "federation is not enabled", "Enable federation (PUT /api/v1/federation with \"enabled\": true).")
	}
	if s.BindAddress == "" {
		return fail(ch, "no bind address configured", "Set bind_address to the interface address peers reach through the firewall.")
	}
	a, err := parseBind(s.BindAddress)
	if err != nil {
		return fail(ch, "bind_address: "+err.Error(), "Set bind_address to an address of this host.")
	}
	list := c.LocalAddrs
	if list == nil {
		list = InterfaceAddrs
	}
	local, err := list()
	if err != nil {
		return fail(ch, "cannot list this host's addresses: "+err.Error(), "")
	}
	if !slices.Contains(local, a) {
		return fail(ch, fmt.Sprintf("%s is not an address of this host (it has %s)", a, joinAddrs(local)),
			"Set bind_address to one of this host's addresses.")
	}
	if pip, err := netip.ParseAddr(strings.Trim(c.ProfileIP, "[]")); err == nil && !pip.IsUnspecified() && pip != a {
		return fail(ch, fmt.Sprintf("profile %s listens on %s, not on the bind address %s", s.Profile, pip, a),
			"Set the profile's sip_ip to "+a.String()+", or bind_address to "+pip.String()+".")
	}
	return pass(ch, fmt.Sprintf("enabled, profile %s bound to %s", s.Profile, netip.AddrPortFrom(a, uint16(s.Port))))
}

// InterfaceAddrs are the addresses of this host's interfaces.
func InterfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().WithZone(""))
		}
	}
	return out, nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func pass(c Check, d string) Check { c.Status, c.Detail = Pass, d; return c }
func skip(c Check, d string) Check { c.Status, c.Detail = Skip, d; return c }
func fail(c Check, d, fix string) Check {
	c.Status, c.Detail, c.Fix = Fail, d, fix
	return c
}
func warn(c Check, d, fix string) Check {
	c.Status, c.Detail, c.Fix = Warn, d, fix
	return c
}

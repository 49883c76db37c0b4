package api

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// Rules that come from operating real providers (see the Plusnet and 1&1
// runbook in providers/testdata):
//   - IPv6 hosts are bracketed, or FreeSWITCH cuts them at the last colon.
//   - register: true needs username and password; register: false is IP
//     authentication and needs the provider's source ranges (ACL, firewall).
//   - The profile must reach the proxy's address family (1&1 answers 503 to
//     IPv4 from hosting networks), and its ext-sip-ip / ext-rtp-ip must be
//     of the trunk's family (otherwise the call connects without audio).
//   - Warnings: a realm other than the registrar's host (401), an
//     IP-authenticated trunk to a round-robin name without an outbound
//     proxy (INVITE and ACK reach different servers: 408), and a
//     registering trunk whose fixed IPv6 outbound proxy is not its
//     register proxy (REGISTER never goes to outbound-proxy).

// validateTrunk checks and normalises t in place (hosts bracketed, names
// lower-cased). hasPassword says whether the trunk will have a password
// after the write. It returns the warnings, or a *ValidationError.
func (s *server) validateTrunk(ctx context.Context, t *models.Trunk, hasPassword bool, preset *string) ([]Warning, error) {
	fe := fieldErrors{}
	fe.addErr("name", names.Gateway(t.Name))
	if t.Provider != "" {
		fe.addErr("provider", names.Provider(t.Provider))
	}
	fe.addErr("description", names.Text(t.Description, 512))
	fe.addErr("profile", names.Profile(t.Profile))

	hosts := map[string]names.Host{}
	normHost := func(field string, v *string, allowPort, optional bool) {
		if *v == "" && optional {
			return
		}
		h, err := names.ParseHost(*v, allowPort)
		if err != nil {
			fe.addErr(field, err)
			return
		}
		hosts[field] = h
		*v = h.String()
	}
	normHost("proxy", &t.Proxy, true, false)
	normHost("outbound_proxy", &t.OutboundProxy, true, true)
	normHost("register_proxy", &t.RegisterProxy, true, true)
	normHost("realm", &t.Realm, false, true)
	normHost("from_domain", &t.FromDomain, false, true)

	for field, v := range map[string]string{"username": t.Username, "auth_username": t.AuthUsername,
		"from_user": t.FromUser, "extension": t.Extension} {
		if v != "" {
			fe.addErr(field, names.SIPUser(v))
		}
	}
	if t.Password != nil && *t.Password != "" {
		fe.addErr("password", names.Password(*t.Password, 1))
	}
	if !slices.Contains([]string{"udp", "tcp", "tls"}, t.Transport) {
		fe.add("transport", "%q must be udp, tcp or tls", t.Transport)
	}
	if t.CallerID != "" {
		fe.addErr("caller_id", names.E164(t.CallerID))
	}
	fe.addErr("expire_seconds", checkRange(t.ExpireSeconds, 60, 86400))
	fe.addErr("retry_seconds", checkRange(t.RetrySeconds, 5, 3600))
	if t.PingSeconds != 0 {
		if err := checkRange(t.PingSeconds, 5, 3600); err != nil {
			fe.add("ping_seconds", "%v (0 turns OPTIONS pings off)", err)
		}
	}
	fe.addErr("context", names.Context(t.Context))
	if len(t.Numbers) > 1000 {
		fe.add("numbers", "at most 1000 numbers per trunk")
	}
	for i, n := range t.Numbers {
		if err := names.E164(n); err != nil {
			fe.add("numbers", "[%d]: %v", i, err)
		} else if slices.Index(t.Numbers, n) != i {
			fe.add("numbers", "[%d]: %s is listed twice", i, n)
		}
	}
	for i, h := range t.Hostnames {
		if err := names.DNSName(h); err != nil || len(h) > 63 {
			fe.add("hostnames", "[%d]: %q is not a FreeSWITCH host name", i, h)
		}
	}

	needCreds := "required when register is true (the trunk REGISTERs with username and password)"
	if preset != nil {
		needCreds = fmt.Sprintf("required: preset %q registers with username and password", *preset)
	}
	if t.Register && t.Username == "" {
		fe.add("username", "%s", needCreds)
	}
	if t.Register && !hasPassword {
		fe.add("password", "%s", needCreds)
	}

	var (
		profile *models.Profile
		ranges  []models.ProviderRange
	)
	if _, bad := fe["profile"]; !bad {
		p, err := s.store.ProfileByName(ctx, t.Profile)
		switch {
		case errors.Is(err, models.ErrNotFound):
			fe.add("profile", "no sofia profile %q (see GET /api/v1/sip/profiles)", t.Profile)
		case err != nil:
			return nil, fmt.Errorf("api: read profile %s: %w", t.Profile, err)
		default:
			profile = p
		}
	}
	if _, bad := fe["provider"]; !bad && t.Provider != "" {
		var err error
		if ranges, err = s.store.ListRanges(ctx, t.Provider); err != nil {
			return nil, fmt.Errorf("api: read ranges of %s: %w", t.Provider, err)
		}
	}
	// That an IP-authenticated trunk's provider has source ranges is a
	// rule across rows: the store checks it inside the write's transaction
	// (models.InvariantError, answered 422 on "provider").
	if t.Transport == "tls" && profile != nil && !profile.TLS {
		fe.add("transport", "tls needs a profile with TLS; profile %q has none", profile.Name)
	}
	if profile != nil {
		for _, is := range familyIssues(t, hosts, profile, ranges) {
			fe.add(is.field, "%s", is.msg)
		}
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	return s.trunkWarnings(ctx, t, hosts), nil
}

// issue is one family problem: the trunk field to blame and the profile
// setting to blame when the profile is being changed.
type issue struct{ field, setting, msg string }

// signalFamily is the address family the trunk's SIP goes to: that of
// the outbound proxy, else of the proxy, else of the register proxy, when
// they are literal addresses; "" when only names are known.
func signalFamily(hosts map[string]names.Host) (string, string) {
	for _, f := range []string{"outbound_proxy", "proxy", "register_proxy"} {
		if h, ok := hosts[f]; ok && h.Family() != "" {
			return h.Family(), f
		}
	}
	return "", ""
}

// familyIssues are the ways a trunk cannot work on a profile because of
// address families. hosts are the trunk's parsed hosts by field.
func familyIssues(t *models.Trunk, hosts map[string]names.Host, p *models.Profile, ranges []models.ProviderRange) []issue {
	var out []issue
	for _, f := range []string{"proxy", "outbound_proxy", "register_proxy"} {
		h, ok := hosts[f]
		if !ok {
			continue
		}
		switch {
		case h.Family() == "ipv6" && p.Family == models.FamilyIPv4:
			out = append(out, issue{f, "family", fmt.Sprintf("%s is IPv6 but profile %q is IPv4-only: use a dual-stack or IPv6 profile (1&1 answers 503 to IPv4 from hosting networks)", h, p.Name)})
		case h.Family() == "ipv4" && p.Family == models.FamilyIPv6:
			out = append(out, issue{f, "family", fmt.Sprintf("%s is IPv4 but profile %q is IPv6-only", h, p.Name)})
		}
	}
	if fam, via := signalFamily(hosts); fam != "" {
		for _, x := range []struct{ name, val string }{{"ext-rtp-ip", p.ExtRTPIP}, {"ext-sip-ip", p.ExtSIPIP}} {
			a, err := netip.ParseAddr(strings.Trim(x.val, "[]"))
			if err != nil || names.AddrFamily(a) == fam {
				continue
			}
			what := "SIP replies cannot reach this host"
			if x.name == "ext-rtp-ip" {
				what = "calls would connect without audio"
			}
			out = append(out, issue{"profile", strings.ReplaceAll(x.name, "-", "_"), fmt.Sprintf("profile %q has %s %s (%s) but the trunk's %s %s is %s: %s; use a profile whose %s is %s",
				p.Name, x.name, a, names.AddrFamily(a), via, hosts[via], fam, what, x.name, fam)})
		}
	}
	if len(ranges) > 0 && p.Family != models.FamilyDual {
		var v4, v6 int
		for _, r := range ranges {
			if pfx, err := firewall.NormalizeCIDR(r.CIDR); err == nil {
				if pfx.Addr().Is4() {
					v4++
				} else {
					v6++
				}
			}
		}
		switch {
		case p.Family == models.FamilyIPv6 && v6 == 0 && v4 > 0:
			out = append(out, issue{"provider", "family", fmt.Sprintf("provider %q sends from IPv4 only but profile %q is IPv6-only", t.Provider, p.Name)})
		case p.Family == models.FamilyIPv4 && v4 == 0 && v6 > 0:
			out = append(out, issue{"provider", "family", fmt.Sprintf("provider %q sends from IPv6 only but profile %q is IPv4-only", t.Provider, p.Name)})
		}
	}
	return out
}

// trunkWarnings are findings that do not stop the write. A DNS lookup
// that fails or times out yields no warning.
func (s *server) trunkWarnings(ctx context.Context, t *models.Trunk, hosts map[string]names.Host) []Warning {
	out := []Warning{}
	proxy := hosts["proxy"]
	// Only a proxy given by name says what the registrar's host is.
	if realm, ok := hosts["realm"]; ok && proxy.Name != "" && (t.Register || t.Username != "") && !strings.EqualFold(realm.Host(), proxy.Host()) {
		out = append(out, Warning{Field: "realm", Message: fmt.Sprintf(
			"realm %q is not the registrar's host %q: the registrar answers 401 Unauthorized although username and password are right (1&1 needs sip.1und1.de, not 1und1.de)",
			realm.Host(), proxy.Host())})
	}
	if !t.Register && t.OutboundProxy == "" && proxy.Name != "" {
		if n, fam := s.countAddrs(ctx, proxy.Name); n > 1 {
			out = append(out, Warning{Field: "outbound_proxy", Message: fmt.Sprintf(
				"%s has %d %s addresses (DNS round-robin) and no outbound_proxy is set: INVITE and ACK can reach different servers (408 Request Timeout); set outbound_proxy to one fixed address",
				proxy.Name, n, fam)})
		}
	}
	if ob, ok := hosts["outbound_proxy"]; ok && t.Register && t.RegisterProxy == "" && ob.Family() == "ipv6" && proxy.Name != "" {
		out = append(out, Warning{Field: "register_proxy", Message: fmt.Sprintf(
			"REGISTER goes to register_proxy or to %s by DNS, never to outbound_proxy %s: set register_proxy to %s as well to register over IPv6",
			proxy.Name, ob, ob)})
	}
	return out
}

// countAddrs returns the larger of the host's IPv4 and IPv6 address
// counts and that family's name; 0 when the lookup fails.
func (s *server) countAddrs(ctx context.Context, host string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, s.resolveTimeout)
	defer cancel()
	addrs, err := s.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		s.log.Debug("api: proxy lookup failed; round-robin check skipped", "host", host, "err", err)
		return 0, ""
	}
	seen := map[netip.Addr]bool{}
	var v4, v6 int
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || seen[ip.Unmap()] {
			continue
		}
		seen[ip.Unmap()] = true
		if ip.Unmap().Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v6 > v4 {
		return v6, "IPv6"
	}
	return v4, "IPv4"
}

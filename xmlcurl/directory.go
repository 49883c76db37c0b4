package xmlcurl

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// DefaultDialString is FreeSWITCH's own default (conf/vanilla
// directory/default.xml): ring every registered contact of the user.
const DefaultDialString = "{^^:sip_invite_domain=${dialed_domain}:presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(*/${dialed_user}@${dialed_domain})}"

// maxInlineCIDRs is how many comma-separated CIDRs FreeSWITCH reads from an
// inline ACL (switch_check_network_list_ip_port_token splits into argv[32];
// the rest lands unsplit in the last element and never matches).
const maxInlineCIDRs = 32

// renderUser answers a user lookup (sip_auth, user_call, plain): the one
// enabled user with a password, or not-found. Only a database failure is
// an error; a row that cannot be rendered is logged and answered not-found.
//
// realm is the digest realm of a sip_auth lookup (sip_auth_realm); "" means
// the domain. Unless plaintext passwords are configured, the user carries
// a1-hash (MD5 of user:realm:password, what sofia_reg.c compares) instead
// of its password, so a captured answer does not reveal the password.
func (h *Handler) renderUser(ctx context.Context, domain, user, realm string) ([]byte, error) {
	e, err := h.store.ExtensionByUser(ctx, domain, user)
	if errors.Is(err, models.ErrNotFound) {
		return notFound, nil
	}
	if err != nil {
		return nil, fmt.Errorf("xmlcurl: look up user %q: %w", user+"@"+domain, err)
	}
	if !e.Enabled {
		return notFound, nil
	}
	body, err := h.userDocument(e, domain, realm)
	if err != nil {
		h.skip(models.KindExtension, e.UserID+"@"+e.Domain, err)
		return notFound, nil
	}
	h.problems.clear(models.KindExtension, e.UserID+"@"+e.Domain)
	return body, nil
}

// a1Hash is the digest HA1 for MD5 (RFC 2617 §3.2.2.2): sofia_reg.c uses a
// user's a1-hash param in place of computing it from password.
func a1Hash(user, realm, password string) string {
	sum := md5.Sum([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(sum[:])
}

func (h *Handler) userDocument(e *models.Extension, domain, realm string) ([]byte, error) {
	// FreeSWITCH lets a user without a password in: never answer one.
	if e.PasswordEnc == "" {
		return nil, fmt.Errorf("%w: no password", ErrIncomplete)
	}
	pw, err := h.store.Reveal(models.KindExtension, e.ID, e.UserID+"@"+e.Domain, e.PasswordEnc)
	if err != nil {
		return nil, err // a *models.SecretError: names the row, never the secret
	}
	if pw == "" {
		return nil, fmt.Errorf("%w: empty password", ErrIncomplete)
	}
	if realm == "" {
		realm = domain
	}
	var p params
	if err := checkValue("password", pw); err != nil {
		return nil, err // before hashing: a hash would hide what cannot be typed
	}
	if h.plaintext {
		p.add("password", pw)
	} else {
		p.add("a1-hash", a1Hash(e.UserID, realm, pw))
	}
	if h.fallback != "" {
		p.add("dial-string", DefaultDialString+"|"+h.fallback) // '|': the next leg when the first fails
	} else {
		p.add("dial-string", DefaultDialString)
	}
	var v params
	v.addIf("user_context", e.Context)
	name := e.DisplayName
	if name == "" {
		name = e.UserID
	}
	number := e.CallerID
	if number == "" {
		number = e.UserID
	}
	v.add("effective_caller_id_name", name)
	v.add("effective_caller_id_number", number)
	if err := errors.Join(checkValue("domain", domain), checkValue("realm", realm), names.User(e.UserID), p.err, v.err); err != nil {
		return nil, err
	}
	doc, sec := newDocument("directory")
	d := sec.CreateElement("domain")
	d.CreateAttr("name", domain)
	u := d.CreateElement("user")
	u.CreateAttr("id", e.UserID)
	if h.cacheable != "" {
		u.CreateAttr("cacheable", h.cacheable)
	}
	p.writeTo(u.CreateElement("params"), "param")
	v.writeTo(u.CreateElement("variables"), "variable")
	return serialize(doc)
}

// renderGateways answers sofia's purpose=gateways lookup: every enabled
// trunk of the asking profile (and this node, if the trunk is scoped) as
// <domain><user><gateways><gateway>. A trunk that cannot be rendered is
// left out and logged: sofia's parse_gateways returns on the first bad
// gateway (an unsupported register-transport, a missing password), which
// would lose every gateway after it.
func (h *Handler) renderGateways(ctx context.Context, k gatewaysKey) ([]byte, error) {
	trunks, err := h.store.EnabledTrunks(ctx, k.profile)
	if err != nil {
		return nil, fmt.Errorf("xmlcurl: list trunks of profile %q: %w", k.profile, err)
	}
	tls := false
	if len(trunks) > 0 {
		prof, err := h.store.ProfileByName(ctx, k.profile)
		switch {
		case err == nil:
			tls = prof.TLS
		case !errors.Is(err, models.ErrNotFound):
			return nil, fmt.Errorf("xmlcurl: read profile %q: %w", k.profile, err)
		}
	}
	var byProvider map[string][]string
	for _, t := range trunks {
		if t.Register {
			ranges, err := h.store.ListRanges(ctx, "")
			if err != nil {
				return nil, fmt.Errorf("xmlcurl: list provider ranges: %w", err)
			}
			byProvider = h.inlineACLs(ranges, true)
			break
		}
	}

	if err := checkValue("domain", k.domain); err != nil {
		return notFound, nil
	}
	doc, sec := newDocument("directory")
	d := sec.CreateElement("domain")
	d.CreateAttr("name", k.domain)
	var gws []*gatewayParams
	taken := map[string]bool{}
	for i := range trunks {
		t := &trunks[i]
		taken[t.Name] = true
		if !onNode(t, k.hostname) {
			continue
		}
		g, err := h.gateway(t, tls, byProvider[t.Provider])
		if err != nil {
			h.skip(models.KindTrunk, t.Name, err)
			continue
		}
		h.problems.clear(models.KindTrunk, t.Name)
		gws = append(gws, g)
	}
	routes, err := h.federationRoutes(ctx, k.profile, taken)
	if err != nil {
		return nil, err
	}
	gws = append(gws, routes...)
	if len(gws) > 0 {
		u := d.CreateElement("user")
		u.CreateAttr("id", carrierUser)
		pe := u.CreateElement("params").CreateElement("param")
		pe.CreateAttr("name", "password")
		pe.CreateAttr("value", h.carrierPassword)
		ge := u.CreateElement("gateways")
		for _, g := range gws {
			e := ge.CreateElement("gateway")
			e.CreateAttr("name", g.name)
			g.p.writeTo(e, "param")
		}
	}
	return serialize(doc)
}

// federationRoutes are direct federation's routes as gateways of the
// federation profile (only once its TLS side is rendered): TLS to the
// peer's FQDN:port, no registration. A name a trunk already has is left
// out and logged (gateway names are global in sofia).
func (h *Handler) federationRoutes(ctx context.Context, profile string, taken map[string]bool) ([]*gatewayParams, error) {
	if h.fedTLS == nil {
		return nil, nil
	}
	side, ok, err := h.fedTLS(ctx)
	if err != nil {
		return nil, fmt.Errorf("xmlcurl: federation settings: %w", err)
	}
	if !ok || side.Profile != profile {
		return nil, nil
	}
	var out []*gatewayParams
	for _, r := range side.Routes {
		name := RouteGateway(r.Domain)
		target, herr := names.ParseHost(r.FQDN, false)
		switch {
		case names.Gateway(name) != nil || herr != nil || target.Name == "" || r.Port < 1 || r.Port > 65535:
			h.log.Warn("federation route left out: not renderable", "domain", r.Domain)
			continue
		case taken[name]:
			h.log.Warn("federation route left out: a trunk has its gateway name", "gateway", name)
			continue
		}
		g := &gatewayParams{name: name}
		g.p.add("register", "false")
		g.p.add("proxy", target.Name+":"+strconv.Itoa(r.Port))
		g.p.add("register-transport", "tls")
		g.p.add("realm", r.Domain)
		g.p.addIf("from-domain", side.Domain)
		if g.p.err != nil {
			continue
		}
		out = append(out, g)
	}
	return out, nil
}

type gatewayParams struct {
	name string
	p    params
}

// gateway turns one trunk into its params, or says why it cannot.
func (h *Handler) gateway(t *models.Trunk, profileTLS bool, acl []string) (*gatewayParams, error) {
	// sofia ignores a name outside ^[\w.-]+$; fsplane's rule is stricter.
	if err := names.Gateway(t.Name); err != nil {
		return nil, err
	}
	password := ""
	if t.PasswordEnc != "" {
		pw, err := h.store.Reveal(models.KindTrunk, t.ID, t.Name, t.PasswordEnc)
		if err != nil {
			return nil, err // never render a registering trunk without its password
		}
		password = pw
	}
	if t.Register && (t.Username == "" || password == "") {
		return nil, fmt.Errorf("%w: a registering trunk needs username and password (sofia rejects the gateway)", ErrIncomplete)
	}
	transport := strings.ToLower(t.Transport)
	switch transport {
	case "", "udp", "tcp":
	case "tls":
		if !profileTLS {
			return nil, fmt.Errorf("%w: register-transport tls on profile %q without TLS (sofia stops reading gateways)", ErrIncomplete, t.Profile)
		}
	default:
		return nil, fmt.Errorf("%w: register-transport %q is not udp, tcp or tls", ErrUnrenderable, t.Transport)
	}

	g := &gatewayParams{name: t.Name}
	p := &g.p
	p.add("register", boolString(t.Register))
	p.addIf("username", t.Username)
	p.addIf("auth-username", t.AuthUsername)
	p.addIf("password", password)
	p.addIf("realm", bracketHost(t.Realm))
	p.addIf("proxy", bracketHost(t.Proxy))
	p.addIf("outbound-proxy", bracketHost(t.OutboundProxy))
	registerProxy := t.RegisterProxy
	if t.Register && registerProxy == "" {
		// REGISTER goes to register-proxy or to proxy by DNS, never to
		// outbound-proxy (measured in FreeSWITCH 1.10.12): a registrar
		// reachable only at the outbound proxy's address needs both.
		registerProxy = t.OutboundProxy
	}
	p.addIf("register-proxy", bracketHost(registerProxy))
	p.addIf("register-transport", transport)
	p.addIf("from-user", t.FromUser)
	p.addIf("from-domain", bracketHost(t.FromDomain))
	p.add("caller-id-in-from", boolString(t.CallerIDInFrom))
	if t.ExpireSeconds > 0 {
		p.add("expire-seconds", strconv.Itoa(t.ExpireSeconds))
	}
	if t.RetrySeconds > 0 {
		p.add("retry-seconds", strconv.Itoa(t.RetrySeconds))
	}
	if t.PingSeconds >= 5 { // sofia refuses a lower ping frequency
		p.add("ping", strconv.Itoa(t.PingSeconds))
	}
	p.addIf("extension", t.Extension)
	p.addIf("context", t.Context)
	if t.Register {
		// A per-version Contact tag: after killgw + rescan the old
		// gateway's un-REGISTER carries a different Contact than the new
		// REGISTER, so it can never delete the new binding.
		p.add("contact-params", "fsplane=v"+strconv.FormatInt(t.Version, 10))
		if len(acl) > 0 {
			// A bracketed IPv6 registrar's 401 is only answered when the
			// challenge's source matches gw-auth-acl; inline CIDRs work
			// before acl.conf is loaded.
			p.add("gw-auth-acl", strings.Join(acl, ","))
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return g, nil
}

// inlineACLs groups the valid ranges by provider as canonical CIDRs. A
// range left out is reported (log, skipped_total) only when report is
// set: rendering for FreeSWITCH reports it, an API read or the audit that
// only asks whether a trunk renders does not count it again.
func (h *Handler) inlineACLs(ranges []models.ProviderRange, report bool) map[string][]string {
	skip := func(r models.ProviderRange, err error) {
		if report {
			h.skip("range", r.Provider+" "+r.CIDR, err)
		}
	}
	out := map[string][]string{}
	for _, r := range ranges {
		p, err := netip.ParsePrefix(strings.TrimSpace(r.CIDR))
		if err != nil {
			skip(r, fmt.Errorf("%w: not a CIDR", ErrUnrenderable))
			continue
		}
		if len(out[r.Provider]) == maxInlineCIDRs {
			skip(r, fmt.Errorf("%w: FreeSWITCH reads at most %d inline CIDRs in gw-auth-acl", ErrIncomplete, maxInlineCIDRs))
			continue
		}
		out[r.Provider] = append(out[r.Provider], p.Masked().String())
	}
	return out
}

// onNode reports whether trunk t belongs on the FreeSWITCH host asking.
func onNode(t *models.Trunk, hostname string) bool {
	if len(t.Hostnames) == 0 {
		return true
	}
	for _, n := range t.Hostnames {
		if strings.EqualFold(n, hostname) {
			return true
		}
	}
	return false
}

func (h *Handler) skip(kind, name string, err error) {
	h.m.skipped.WithLabelValues(kind).Inc()
	h.problems.set(kind, name, err)
	h.log.Warn("xml-curl: left out of the answer", "err", &skipError{Kind: kind, Name: name, Err: err})
}

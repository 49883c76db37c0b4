package xmlcurl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// renderSofia answers sofia.conf: every profile, whole. FreeSWITCH asks
// with and without profile=; a document missing a profile, or a profile
// without settings, would stop or wipe it, so the answer never varies with
// the request.
func (h *Handler) renderSofia(ctx context.Context) ([]byte, error) {
	profiles, err := h.store.ListProfiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("xmlcurl: list profiles: %w", err)
	}
	var fed TLSSide
	fedOK := false
	if h.fedTLS != nil {
		if fed, fedOK, err = h.fedTLS(ctx); err != nil {
			return nil, fmt.Errorf("xmlcurl: federation settings: %w", err)
		}
	}
	doc, sec := newDocument("configuration")
	cfg := sec.CreateElement("configuration")
	cfg.CreateAttr("name", "sofia.conf")
	cfg.CreateAttr("description", "sofia Endpoint")
	cfg.CreateElement("global_settings")
	list := cfg.CreateElement("profiles")
	for i := range profiles {
		p := &profiles[i]
		settings, dropped, err := h.profileSettings(p)
		switch {
		case err != nil:
			h.skip(models.KindProfile, p.Name, err)
			continue
		case dropped != nil:
			h.skip(models.KindProfile, p.Name, dropped)
		default:
			h.problems.clear(models.KindProfile, p.Name)
		}
		if fedOK && p.Name == fed.Profile && checkValue("tls-cert-dir", fed.CertDir) == nil {
			settings.set("tls", "true")
			settings.set("tls-sip-port", strconv.Itoa(fed.Port))
			settings.set("tls-cert-dir", fed.CertDir)
			if a, err := names.ParseAddr(fed.ExtSIPIP); err == nil {
				settings.set("ext-sip-ip", a.String())
			}
		}
		pe := list.CreateElement("profile")
		pe.CreateAttr("name", p.Name)
		pe.CreateElement("aliases")
		pe.CreateElement("gateways")
		// Gateways come from the directory (purpose=gateways), which sofia
		// asks only for a domain with parse="true".
		d := pe.CreateElement("domains").CreateElement("domain")
		d.CreateAttr("name", "all")
		d.CreateAttr("alias", "false")
		d.CreateAttr("parse", "true")
		settings.writeTo(pe.CreateElement("settings"), "param")
	}
	return serialize(doc)
}

// TLSSide is the TLS side of the profile that carries federation, which
// package federation owns: given only once agent.pem and cafile.pem are in
// CertDir (sofia would otherwise serve a self-signed certificate), it
// replaces the profile row's tls, tls-sip-port and tls-cert-dir.
type TLSSide struct {
	Profile string
	Port    int
	CertDir string
	// ExtSIPIP, when set, is the public address behind NAT (federation's
	// use_public_address): it replaces the profile's ext-sip-ip.
	ExtSIPIP string
	// Domain is the federation domain (the From domain of the routes).
	Domain string
	// Routes are direct federation's peers: each becomes a gateway
	// "federation-<domain>" on the profile, over TLS to FQDN:Port.
	Routes []FederationRoute
}

// FederationRoute is one direct-federation peer.
type FederationRoute struct {
	Domain, FQDN string
	Port         int
}

// RouteGateway is the gateway name of a direct-federation route.
func RouteGateway(domain string) string { return models.FederationRouteGateway(domain) }

// set replaces the value of name, or adds it; the caller checked value.
func (p *params) set(name, value string) {
	for i := range p.list {
		if p.list[i].Name == name {
			p.list[i].Value = value
			return
		}
	}
	p.add(name, value)
}

// profileSettings returns p's settings, and in dropped the free settings
// left out (each named), or an error when the profile cannot be rendered.
func (h *Handler) profileSettings(p *models.Profile) (_ *params, dropped, _ error) {
	if err := names.Profile(p.Name); err != nil {
		return nil, nil, err
	}
	if p.BindIP == "" || p.SIPPort <= 0 {
		return nil, nil, fmt.Errorf("%w: no sip-ip or sip-port", ErrIncomplete)
	}
	var s params
	s.add("sip-ip", bareHost(p.BindIP))
	s.add("sip-port", strconv.Itoa(p.SIPPort))
	rtp := p.RTPIP
	if rtp == "" {
		rtp = p.BindIP
	}
	s.add("rtp-ip", bareHost(rtp))
	s.addIf("ext-sip-ip", bareHost(p.ExtSIPIP))
	s.addIf("ext-rtp-ip", bareHost(p.ExtRTPIP))
	s.add("tls", boolString(p.TLS))
	if p.TLSPort > 0 {
		s.add("tls-sip-port", strconv.Itoa(p.TLSPort))
	}
	s.addIf("tls-cert-dir", p.TLSCertDir)
	s.addIf("wss-binding", p.WSSBinding)
	s.addIf("apply-inbound-acl", p.InboundACL)
	s.add("auth-calls", boolString(p.AuthCalls))
	s.addIf("context", p.Context)
	if s.err != nil {
		return nil, nil, s.err
	}
	if _, ok := p.Params["dialplan"]; !ok {
		s.add("dialplan", "XML")
	}
	extra := make([]string, 0, len(p.Params))
	for name := range p.Params {
		extra = append(extra, name)
	}
	slices.Sort(extra)
	for _, name := range extra {
		value := p.Params[name]
		// The API refuses these at write time; a row written past it
		// loses the one setting, never the profile.
		if err := names.Setting(name, value); err != nil {
			dropped = errors.Join(dropped, fmt.Errorf("%w: setting %s left out: %v", ErrUnrenderable, strconv.Quote(name), err))
			continue
		}
		s.add(name, value)
	}
	return &s, dropped, nil
}

// renderACL answers acl.conf from the same function as the firewall
// export, so the two never disagree.
func (h *Handler) renderACL(ctx context.Context) ([]byte, error) {
	ranges, err := h.store.ListRanges(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("xmlcurl: list provider ranges: %w", err)
	}
	doc, sec := newDocument("configuration")
	sec.AddChild(firewall.ACLConfig(ranges))
	return serialize(doc)
}

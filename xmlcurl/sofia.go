package xmlcurl

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// ownSettings are the sofia settings rendered from Profile's columns; a
// Params entry of the same name is ignored.
var ownSettings = []string{
	"sip-ip", "sip-port", "rtp-ip", "ext-sip-ip", "ext-rtp-ip", "tls", "tls-sip-port",
	"tls-cert-dir", "wss-binding", "apply-inbound-acl", "auth-calls", "context",
}

// deniedSettings would switch authentication off for the whole profile.
var deniedSettings = []string{"accept-blind-reg", "accept-blind-auth"}

// settingName is the shape of every sofia setting name.
var settingName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// renderSofia answers sofia.conf: every profile, whole. FreeSWITCH asks
// with and without profile=; a document missing a profile, or a profile
// without settings, would stop or wipe it, so the answer never varies with
// the request.
func (h *Handler) renderSofia(ctx context.Context) ([]byte, error) {
	profiles, err := h.store.ListProfiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("xmlcurl: list profiles: %w", err)
	}
	doc, sec := newDocument("configuration")
	cfg := sec.CreateElement("configuration")
	cfg.CreateAttr("name", "sofia.conf")
	cfg.CreateAttr("description", "sofia Endpoint")
	cfg.CreateElement("global_settings")
	list := cfg.CreateElement("profiles")
	for i := range profiles {
		p := &profiles[i]
		settings, err := h.profileSettings(p)
		if err != nil {
			h.skip("profile", p.Name, err)
			continue
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

func (h *Handler) profileSettings(p *models.Profile) (*params, error) {
	if err := names.Profile(p.Name); err != nil {
		return nil, err
	}
	if p.BindIP == "" || p.SIPPort <= 0 {
		return nil, fmt.Errorf("%w: no sip-ip or sip-port", ErrIncomplete)
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
		return nil, s.err
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
		var why string
		switch {
		case !settingName.MatchString(name):
			why = "is not a sofia setting name"
		case slices.Contains(ownSettings, name):
			why = "is set from the profile's own field"
		case slices.Contains(deniedSettings, name):
			why = "would disable authentication"
		case checkValue(name, value) != nil:
			why = "has a value that cannot be rendered"
		}
		if why != "" {
			h.skip("profile", p.Name+" setting "+strconv.Quote(name), fmt.Errorf("%w: %s", ErrUnrenderable, why))
			continue
		}
		s.add(name, value)
	}
	return &s, nil
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

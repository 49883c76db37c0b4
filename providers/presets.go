package providers

import (
	"fmt"
	"slices"

	"github.com/fsplane/fsplane/models"
)

// Names of the built-in presets, as stored in Trunk.Provider and
// ProviderRange.Provider.
const (
	Plusnet   = "plusnet"
	OneAndOne = "1und1"
)

// Default profile names (the runbook's).
const (
	ProfileExternalIPv4 = "external-ipv4"
	ProfileInternal     = "internal"
)

// Range is a network a provider sends SIP from and the local ports it
// must reach, in firewall.ParsePortSpec syntax.
type Range struct {
	CIDR        string   `json:"cidr"`
	Ports       []string `json:"ports"`
	Description string   `json:"description"`
}

// Preset is a provider's known-good trunk settings.
type Preset struct {
	// Name is the provider's slug, stored in Trunk.Provider.
	Name string `json:"name"`
	// Title is the provider's name for people.
	Title         string `json:"title"`
	Profile       string `json:"profile"`
	Proxy         string `json:"proxy"`
	OutboundProxy string `json:"outbound_proxy"`
	RegisterProxy string `json:"register_proxy"`
	// Register false means IP authentication: no REGISTER, gateway state
	// NOREG, and the provider's ranges must be allowed in.
	Register       bool   `json:"register"`
	Realm          string `json:"realm"`
	Transport      string `json:"transport"`
	CallerIDInFrom bool   `json:"caller_id_in_from"`
	ExpireSeconds  int    `json:"expire_seconds"`
	RetrySeconds   int    `json:"retry_seconds"`
	// NeedsCredentials is true when a trunk needs username and password.
	NeedsCredentials bool    `json:"needs_credentials"`
	Ranges           []Range `json:"ranges"`
	// Notes explain the settings that are not obvious.
	Notes []string `json:"notes"`
}

// Builtin returns the built-in presets, ordered by name.
func Builtin() []Preset {
	return []Preset{oneAndOne(), plusnet()}
}

// ByName returns the preset with that name (case-sensitive slug).
func ByName(name string) (Preset, error) {
	for _, p := range Builtin() {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("%w %q (known: %s, %s)", ErrUnknownPreset, name, OneAndOne, Plusnet)
}

// Trunk returns a trunk filled from the preset: everything but the name,
// numbers and credentials. It is enabled.
func (p Preset) Trunk() models.Trunk {
	return models.Trunk{
		Provider:       p.Name,
		Profile:        p.Profile,
		Proxy:          p.Proxy,
		OutboundProxy:  p.OutboundProxy,
		RegisterProxy:  p.RegisterProxy,
		Register:       p.Register,
		Realm:          p.Realm,
		Transport:      p.Transport,
		CallerIDInFrom: p.CallerIDInFrom,
		ExpireSeconds:  p.ExpireSeconds,
		RetrySeconds:   p.RetrySeconds,
		Context:        "public",
		Enabled:        true,
		Numbers:        models.StringList{},
		Hostnames:      models.StringList{},
	}
}

// ProviderRanges returns the preset's ranges as rows to store.
func (p Preset) ProviderRanges() []models.ProviderRange {
	out := make([]models.ProviderRange, 0, len(p.Ranges))
	for _, r := range p.Ranges {
		out = append(out, models.ProviderRange{
			Provider: p.Name, CIDR: r.CIDR, Ports: slices.Clone(r.Ports), Description: r.Description,
		})
	}
	return out
}

func plusnet() Preset {
	sip := []string{"5060/udp", "5061/tcp"}
	return Preset{
		Name:    Plusnet,
		Title:   "Plusnet",
		Profile: ProfileExternalIPv4,
		Proxy:   "sip.plusnet.de",
		// sip.plusnet.de is DNS round-robin: without one fixed outbound
		// proxy INVITE and ACK can reach different servers (408).
		OutboundProxy:  "92.197.176.16",
		Register:       false,
		Transport:      "udp",
		CallerIDInFrom: false,
		ExpireSeconds:  3600,
		RetrySeconds:   30,
		Ranges: []Range{
			{CIDR: "92.197.176.0/24", Ports: sip, Description: "Plusnet SIP"},
			{CIDR: "92.197.177.0/24", Ports: sip, Description: "Plusnet SIP"},
			{CIDR: "92.197.182.0/24", Ports: sip, Description: "Plusnet SIP"},
		},
		Notes: []string{
			"IP authentication: no REGISTER; the gateway state NOREG is correct.",
			"The host's public IPv4 address must be enabled in the Plusnet customer portal.",
			"sip.plusnet.de is DNS round-robin: the outbound proxy 92.197.176.16 keeps INVITE and ACK on one server (otherwise 408 Request Timeout).",
		},
	}
}

func oneAndOne() Preset {
	const v6 = "[2001:8d8:104:100:212:227:124:129]"
	return Preset{
		Name:          OneAndOne,
		Title:         "1&1",
		Profile:       ProfileInternal,
		Proxy:         "sip.1und1.de",
		OutboundProxy: v6,
		// FreeSWITCH sends REGISTER to register-proxy, or else to the
		// proxy's DNS name, never to outbound-proxy; 1&1 refuses IPv4 from
		// hosting networks (503), so the registrar is pinned to IPv6 too.
		RegisterProxy:    v6,
		Register:         true,
		Realm:            "sip.1und1.de",
		Transport:        "udp",
		ExpireSeconds:    3600,
		RetrySeconds:     30,
		NeedsCredentials: true,
		Ranges: []Range{
			{CIDR: "2001:8d8:104:100:212:227:124:128/125", Ports: []string{"5060/udp"}, Description: "1&1 SIP (IPv6)"},
			{CIDR: "212.227.124.0/24", Ports: []string{"5060/udp"}, Description: "1&1 SIP (IPv4 fallback)"},
		},
		Notes: []string{
			"1&1 rejects REGISTER from some hosting IPv4 networks with 503: use IPv6 (profile internal, IPv6 ext-sip-ip and ext-rtp-ip).",
			"The realm must be sip.1und1.de, not 1und1.de (401 Unauthorized).",
			"IPv6 proxies are written in brackets: [2001:8d8:104:100:212:227:124:129].",
		},
	}
}

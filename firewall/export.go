package firewall

import (
	"encoding/json"
	"fmt"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/models"
)

// Formats Export knows.
const (
	FormatUFW  = "ufw"
	FormatNFT  = "nft"
	FormatACL  = "acl"
	FormatJSON = "json"
)

// Content types Export returns.
const (
	ContentTypeText = "text/plain; charset=utf-8"
	ContentTypeXML  = "text/xml; charset=utf-8"
	ContentTypeJSON = "application/json"
)

// Export renders the policy for ranges (already filtered to one provider
// if the caller wants that) and profiles in format, with its content type.
// Profiles only add the general rules; nil leaves them out. general adds
// ports open to any source beyond the profiles' (the federation port, from
// package federation). Invalid input
// is refused (ErrInvalid, every offending value named), an unknown format
// with ErrUnknownFormat.
//
// The nft ruleset replaces the whole fsplane table when loaded, so a
// ruleset rendered from one provider's ranges drops the other providers'
// SIP traffic: filter nft output by provider only for inspection.
func Export(format string, ranges []models.ProviderRange, profiles []models.Profile, general ...PortSpec) (body []byte, contentType string, err error) {
	switch format {
	case FormatUFW, FormatNFT, FormatJSON:
	case FormatACL:
		el, err := ACL(ranges)
		if err != nil {
			return nil, "", err
		}
		doc := etree.NewDocument()
		doc.SetRoot(el)
		doc.Indent(2)
		b, err := doc.WriteToBytes()
		if err != nil {
			return nil, "", fmt.Errorf("firewall: render acl.conf: %w", err)
		}
		return b, ContentTypeXML, nil
	default:
		return nil, "", fmt.Errorf("%w: %q", ErrUnknownFormat, format)
	}
	pol, err := NewPolicy(ranges, profiles, general...)
	if err != nil {
		return nil, "", err
	}
	switch format {
	case FormatUFW:
		return pol.UFW(), ContentTypeText, nil
	case FormatNFT:
		return pol.NFT(), ContentTypeText, nil
	default:
		b, err := pol.JSON()
		return b, ContentTypeJSON, err
	}
}

// JSONRule is one rule of the json format.
type JSONRule struct {
	// Providers is empty for a general rule.
	Providers []string `json:"providers"`
	// Family is ipv4, ipv6 or any.
	Family string `json:"family"`
	// Source is the admitted CIDR; absent for any source.
	Source   string `json:"source,omitempty"`
	PortFrom uint16 `json:"port_from"`
	PortTo   uint16 `json:"port_to"`
	Proto    string `json:"proto"`
	// Ports is the port spec in UFW's syntax: "5060/udp".
	Ports   string `json:"ports"`
	Comment string `json:"comment"`
	// UFW is the rule as a `ufw` shell line.
	UFW string `json:"ufw"`
}

// JSONPolicy is the document of the json format.
type JSONPolicy struct {
	Rules []JSONRule `json:"rules"`
}

// JSON renders the policy as a machine-readable rule list (JSONPolicy).
func (pol *Policy) JSON() ([]byte, error) {
	doc := JSONPolicy{Rules: make([]JSONRule, 0, len(pol.Rules))}
	for _, r := range pol.Rules {
		jr := JSONRule{
			Providers: r.Providers,
			Family:    r.Family(),
			PortFrom:  r.Port.From,
			PortTo:    r.Port.To,
			Proto:     r.Port.Proto,
			Ports:     r.Port.String(),
			Comment:   r.Comment(),
			UFW:       r.UFW(),
		}
		if jr.Providers == nil {
			jr.Providers = []string{}
		}
		if r.Source.IsValid() {
			jr.Source = r.Source.String()
		}
		doc.Rules = append(doc.Rules, jr)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("firewall: render json: %w", err)
	}
	return append(b, '\n'), nil
}

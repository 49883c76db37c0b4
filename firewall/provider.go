package firewall

import (
	"fmt"
	"net/netip"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// DefaultPort is what a provider range with no ports admits: SIP
// signalling.
var DefaultPort = PortSpec{From: 5060, To: 5060, Proto: "udp"}

// GeneralMarker is the comment suffix of the rules that come from profile
// settings (WebRTC, RTP) rather than a provider; "general" is therefore
// not a valid provider name.
const GeneralMarker = names.ReservedProvider

// ValidateProvider checks a provider name with names.Provider: what passes
// may stand in a UFW comment on a shell line and in an nftables or shell
// comment without quoting.
func ValidateProvider(name string) error {
	if err := names.Provider(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ValidateRange checks everything about a range that a rule is built from:
// the provider name, the CIDR (a prefix of length 0 would admit every
// address and is refused) and each port. Host bits set in the CIDR are not
// an error; they are cleared when rules are built.
func ValidateRange(r models.ProviderRange) error {
	_, _, err := parseRange(r)
	return err
}

// parseRange validates r and returns its normalised prefix and its ports
// (DefaultPort when it lists none), deduplicated.
func parseRange(r models.ProviderRange) (pfx netip.Prefix, ports []PortSpec, err error) {
	if err := ValidateProvider(r.Provider); err != nil {
		return netip.Prefix{}, nil, err
	}
	p, err := NormalizeCIDR(r.CIDR)
	if err != nil {
		return netip.Prefix{}, nil, fmt.Errorf("provider %s: %w", r.Provider, err)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, nil, fmt.Errorf("%w: provider %s: CIDR %q admits every address", ErrInvalid, r.Provider, r.CIDR)
	}
	if len(r.Ports) == 0 {
		return p, []PortSpec{DefaultPort}, nil
	}
	seen := make(map[PortSpec]bool, len(r.Ports))
	for _, s := range r.Ports {
		ps, err := ParsePortSpec(s)
		if err != nil {
			return netip.Prefix{}, nil, fmt.Errorf("provider %s, CIDR %s: %w", r.Provider, r.CIDR, err)
		}
		if !seen[ps] {
			seen[ps] = true
			ports = append(ports, ps)
		}
	}
	return p, ports, nil
}

package firewall

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fsplane/fsplane/models"
)

// MarkerPrefix starts the comment of every UFW rule fsplane generates;
// `fsplane firewall diff` treats every rule carrying it as fsplane's.
const MarkerPrefix = "fsplane:"

// Rule is one allow rule: traffic from Source to the ports of Port.
type Rule struct {
	// Providers whose ranges the rule admits, sorted; empty for a general
	// rule (from profile settings, open to any source).
	Providers []string
	// Source is the admitted network, masked; the zero Prefix (not
	// IsValid) means any source of either family.
	Source netip.Prefix
	Port   PortSpec
}

// Comment is the rule's UFW comment: "fsplane:" and its providers joined
// by '+', or "fsplane:general".
func (r Rule) Comment() string {
	if len(r.Providers) == 0 {
		return MarkerPrefix + GeneralMarker
	}
	return MarkerPrefix + strings.Join(r.Providers, "+")
}

// Family is "ipv4", "ipv6" or "any".
func (r Rule) Family() string {
	switch {
	case !r.Source.IsValid():
		return "any"
	case r.Source.Addr().Is4():
		return models.FamilyIPv4
	default:
		return models.FamilyIPv6
	}
}

// key identifies a rule the way UFW does: comments aside.
type ruleKey struct {
	src  netip.Prefix
	port PortSpec
}

func (r Rule) key() ruleKey { return ruleKey{r.Source, r.Port} }

// source renders the source as UFW prints it: a host prefix as the bare
// address.
func source(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// UFWArgs are the arguments after "ufw" that add the rule.
func (r Rule) UFWArgs() []string {
	var a []string
	if r.Source.IsValid() {
		ports := strconv.Itoa(int(r.Port.From))
		if r.Port.To != r.Port.From {
			ports += ":" + strconv.Itoa(int(r.Port.To))
		}
		a = []string{"allow", "from", source(r.Source), "to", "any", "port", ports, "proto", r.Port.Proto}
	} else {
		a = []string{"allow", r.Port.String()}
	}
	return append(a, "comment", r.Comment())
}

// UFW is the shell line that adds the rule. The comment is single-quoted;
// provider names are validated, so it never holds a quote or newline.
func (r Rule) UFW() string {
	a := r.UFWArgs()
	a[len(a)-1] = "'" + a[len(a)-1] + "'"
	return "ufw " + strings.Join(a, " ")
}

// ufwDelete is the shell line that deletes a rule with r's source and
// port. UFW matches a delete on everything but the comment.
func ufwDelete(r Rule) string {
	a := r.UFWArgs()
	return "ufw delete " + strings.Join(a[:len(a)-2], " ")
}

func comparePort(a, b PortSpec) int {
	return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Proto, b.Proto))
}

// compareRule sorts provider rules (by comment) before the general ones,
// then by port, family and source: deterministic output.
func compareRule(a, b Rule) int {
	ag, bg := len(a.Providers) == 0, len(b.Providers) == 0
	if ag != bg {
		if ag {
			return 1
		}
		return -1
	}
	return cmp.Or(strings.Compare(a.Comment(), b.Comment()), comparePort(a.Port, b.Port), comparePrefix(a.Source, b.Source))
}

// Policy is the validated, normalised input of every export format.
type Policy struct {
	// Rules are sorted: provider rules (by providers, port, family,
	// source), then the general rules by port.
	Rules []Rule
}

// NewPolicy validates ranges and profiles and builds the rules. Per
// provider and port, duplicate and contained CIDRs merge (MergePrefixes);
// a network two providers share on the same port becomes one rule naming
// both, because UFW keeps one comment per rule. A range with no ports
// admits DefaultPort (5060/udp). Profiles add the general rules: the
// WebRTC port of WSSBinding (tcp) and the RTPPortMin:RTPPortMax range
// (udp), deduplicated across profiles; general adds further ports open to
// any source (the federation port, 5061/tcp). Every invalid value is
// reported, named, in one joined error.
func NewPolicy(ranges []models.ProviderRange, profiles []models.Profile, general ...PortSpec) (*Policy, error) {
	var errs []error
	type provPort struct {
		provider string
		port     PortSpec
	}
	byProvPort := map[provPort][]netip.Prefix{}
	for _, r := range ranges {
		p, ports, err := parseRange(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ps := range ports {
			k := provPort{r.Provider, ps}
			byProvPort[k] = append(byProvPort[k], p)
		}
	}
	providers := map[ruleKey][]string{}
	for k, ps := range byProvPort {
		for _, p := range MergePrefixes(ps) {
			rk := ruleKey{p, k.port}
			providers[rk] = append(providers[rk], k.provider)
		}
	}
	pol := &Policy{Rules: make([]Rule, 0, len(providers))}
	for rk, names := range providers {
		slices.Sort(names)
		pol.Rules = append(pol.Rules, Rule{Providers: names, Source: rk.src, Port: rk.port})
	}

	fromProfiles, err := generalPorts(profiles)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ps := range general {
		if ps.From == 0 || ps.To < ps.From || (ps.Proto != "tcp" && ps.Proto != "udp") {
			errs = append(errs, fmt.Errorf("%w: general port %+v", ErrInvalid, ps))
		} else if !slices.Contains(fromProfiles, ps) {
			fromProfiles = append(fromProfiles, ps)
		}
	}
	slices.SortFunc(fromProfiles, comparePort)
	for _, ps := range fromProfiles {
		pol.Rules = append(pol.Rules, Rule{Port: ps})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(pol.Rules, compareRule)
	return pol, nil
}

// generalPorts returns the ports the profiles open to any source, sorted
// and deduplicated.
func generalPorts(profiles []models.Profile) ([]PortSpec, error) {
	var errs []error
	seen := map[PortSpec]bool{}
	add := func(ps PortSpec) {
		seen[ps] = true
	}
	for _, p := range profiles {
		if p.WSSBinding != "" {
			port, err := bindingPort(p.WSSBinding)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: profile %q: wss-binding %q: %v", ErrInvalid, p.Name, p.WSSBinding, err))
			} else {
				add(PortSpec{From: port, To: port, Proto: "tcp"})
			}
		}
		// Both zero: the profile leaves RTP to switch.conf, which fsplane
		// does not manage, so there is no range to open.
		if p.RTPPortMin != 0 || p.RTPPortMax != 0 {
			if p.RTPPortMin < 1 || p.RTPPortMax > 65535 || p.RTPPortMin > p.RTPPortMax {
				errs = append(errs, fmt.Errorf("%w: profile %q: RTP ports %d:%d (want 1 <= min <= max <= 65535)", ErrInvalid, p.Name, p.RTPPortMin, p.RTPPortMax))
			} else {
				add(PortSpec{From: uint16(p.RTPPortMin), To: uint16(p.RTPPortMax), Proto: "udp"})
			}
		}
	}
	out := make([]PortSpec, 0, len(seen))
	for ps := range seen {
		out = append(out, ps)
	}
	slices.SortFunc(out, comparePort)
	return out, errors.Join(errs...)
}

// bindingPort takes the port of a sofia binding: ":7443", "0.0.0.0:7443",
// "[::]:7443" or a bare "7443".
func bindingPort(b string) (uint16, error) {
	p := b
	if strings.Contains(b, ":") {
		var err error
		if _, p, err = net.SplitHostPort(b); err != nil {
			return 0, err
		}
	}
	return parsePort(p)
}

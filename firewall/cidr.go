package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NormalizeCIDR parses a CIDR (or a bare address, taken as a host route)
// and clears its host bits: "2001:8d8:104:100:212:227:124:129/125" becomes
// "2001:8d8:104:100:212:227:124:128/125". IPv4-mapped IPv6 is unmapped.
func NormalizeCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %q is not a CIDR", ErrInvalid, s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %q is not an address or CIDR", ErrInvalid, s)
		}
		// PrefixFrom would silently drop a zone ("fe80::1%eth0"); a zone
		// names a local link and has no place in a rule.
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: %q has a zone", ErrInvalid, s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// PortSpec is a port or port range with its protocol: "5060/udp",
// "10000:10060/udp".
type PortSpec struct {
	From, To uint16
	Proto    string // "udp" or "tcp"
}

// String renders the spec in UFW's syntax.
func (p PortSpec) String() string {
	if p.From == p.To {
		return fmt.Sprintf("%d/%s", p.From, p.Proto)
	}
	return fmt.Sprintf("%d:%d/%s", p.From, p.To, p.Proto)
}

// ParsePortSpec parses "PORT/PROTO" or "FROM:TO/PROTO" (PROTO udp or tcp).
func ParsePortSpec(s string) (PortSpec, error) {
	bad := func(why string) (PortSpec, error) {
		return PortSpec{}, fmt.Errorf("%w: port %q: %s (want e.g. 5060/udp or 10000:10060/udp)", ErrInvalid, s, why)
	}
	ports, proto, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return bad("no protocol")
	}
	if proto != "udp" && proto != "tcp" {
		return bad("protocol must be udp or tcp")
	}
	lo, hi, isRange := strings.Cut(ports, ":")
	from, err := parsePort(lo)
	if err != nil {
		return bad(err.Error())
	}
	to := from
	if isRange {
		if to, err = parsePort(hi); err != nil {
			return bad(err.Error())
		}
		if to < from {
			return bad("range ends before it starts")
		}
	}
	return PortSpec{From: from, To: to, Proto: proto}, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a port number")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("port out of range 1-65535")
	}
	return uint16(n), nil
}

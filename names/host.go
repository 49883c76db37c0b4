package names

import (
	"net/netip"
	"strconv"
	"strings"
)

// Host is a proxy, registrar, realm or domain: a DNS name or an IP
// address, with an optional port.
type Host struct {
	Name string     // DNS name, lower case; "" for an address
	Addr netip.Addr // valid for an address
	Port int        // 0: none
}

// String renders the host as FreeSWITCH needs it: IPv6 in brackets
// ([2001:db8::1] or [2001:db8::1]:5060); without them FreeSWITCH cuts the
// address at its last colon.
func (h Host) String() string {
	host := h.Name
	if h.Addr.IsValid() {
		host = h.Addr.String()
		if h.Addr.Is6() {
			host = "[" + host + "]"
		}
	}
	if h.Port != 0 {
		host += ":" + strconv.Itoa(h.Port)
	}
	return host
}

// Host returns the name or bare address, without port or brackets.
func (h Host) Host() string {
	if h.Addr.IsValid() {
		return h.Addr.String()
	}
	return h.Name
}

// Family is ipv4 or ipv6 for an address, "" for a DNS name.
func (h Host) Family() string { return AddrFamily(h.Addr) }

// AddrFamily is "ipv4", "ipv6", or "" for an invalid address.
func AddrFamily(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return ""
	case a.Is4():
		return "ipv4"
	default:
		return "ipv6"
	}
}

// ParseHost parses a host with an optional port (when allowPort). A bare
// IPv6 address is accepted and later rendered in brackets; "2001:db8::1:5060"
// is read as an address, so an IPv6 host with a port must be bracketed.
func ParseHost(s string, allowPort bool) (Host, error) {
	if s == "" {
		return Host{}, invalidf("must not be empty")
	}
	if err := Token(s); err != nil {
		return Host{}, err
	}
	if len(s) > 255 {
		return Host{}, invalidf("longer than 255 characters")
	}
	var h Host
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return h, invalidf("%q: missing ] after the IPv6 address", s)
		}
		a, err := ParseAddr(s[1:end])
		if err != nil {
			return h, err
		}
		if !a.Is6() {
			return h, invalidf("%q: only IPv6 addresses go in brackets", s)
		}
		h.Addr = a
		rest := s[end+1:]
		if rest == "" {
			return h, nil
		}
		if !strings.HasPrefix(rest, ":") {
			return h, invalidf("%q: unexpected %q after the address", s, rest)
		}
		return h, h.setPort(rest[1:], allowPort)
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a, err = ParseAddr(s); err != nil {
			return h, err
		}
		h.Addr = a
		return h, nil
	}
	if strings.Count(s, ":") > 1 {
		return h, invalidf("%q is not a valid IPv6 address (with a port, write [2001:db8::1]:5060)", s)
	}
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort {
		if err := h.setPort(port, allowPort); err != nil {
			return h, err
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a, err = ParseAddr(host); err != nil {
			return h, err
		}
		h.Addr = a
		return h, nil
	}
	if err := DNSName(host); err != nil {
		return h, err
	}
	h.Name = strings.ToLower(host)
	return h, nil
}

func (h *Host) setPort(p string, allow bool) error {
	if !allow {
		return invalidf("must not carry a port")
	}
	n, err := ParsePort(p)
	if err != nil {
		return err
	}
	h.Port = n
	return nil
}

func ParsePort(p string) (int, error) {
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return 0, invalidf("port %q is not a number", p)
	}
	n, _ := strconv.Atoi(p)
	if n < 1 || n > 65535 {
		return 0, invalidf("port %d out of range 1-65535", n)
	}
	return n, nil
}

// ParseAddr accepts the addresses a SIP peer can have: no zone, no
// IPv4-mapped IPv6, not unspecified or multicast.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, invalidf("%q is not a valid IP address", s)
	case a.Zone() != "":
		return a, invalidf("%q has a zone; use a global address", s)
	case a.Is4In6():
		return a, invalidf("%q is an IPv4-mapped IPv6 address; write the IPv4 address %s", s, a.Unmap())
	case a.IsUnspecified():
		return a, invalidf("%q is the unspecified address", s)
	case a.IsMulticast():
		return a, invalidf("%q is a multicast address", s)
	}
	return a, nil
}

// DNSName checks a host name: labels of letters, digits and hyphens, not
// starting or ending with a hyphen, at most 63 characters each, 253 in
// all. A name whose last label is numeric must be an IPv4 address.
func DNSName(s string) error {
	if s == "" {
		return invalidf("empty host name")
	}
	if len(s) > 253 {
		return invalidf("host name %q is longer than 253 characters", s)
	}
	labels := strings.Split(strings.TrimSuffix(s, "."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return invalidf("host name %q has an empty or over-long label", s)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return invalidf("host name %q has a label starting or ending with '-'", s)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return invalidf("host name %q contains %q", s, c)
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return invalidf("%q is not a valid IPv4 address or host name", s)
	}
	return nil
}

// Domain checks a directory domain as stored: a host name or an address
// without port, in the form ParseHost gives it (lower case, IPv6 in
// brackets), so that the API, xml-curl and xml_flush_cache agree on it.
func Domain(s string) error {
	h, err := ParseHost(s, false)
	if err != nil {
		return err
	}
	if h.String() != s {
		return invalidf("%q is not in normal form: write %s", s, h.String())
	}
	return nil
}

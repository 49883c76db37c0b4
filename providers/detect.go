package providers

import (
	"fmt"
	"net"
	"net/netip"
)

// Addresses are the host addresses the default profiles use, and why.
type Addresses struct {
	IPv4, IPv6 netip.Addr
	// Notes say which address was a fallback and what to do about it.
	Notes []string
}

var (
	fallbackV4 = netip.MustParseAddr("127.0.0.1")
	fallbackV6 = netip.MustParseAddr("::1")
	cgnat      = netip.MustParsePrefix("100.64.0.0/10")
	ula        = netip.MustParsePrefix("fc00::/7")
)

// ResolveAddresses returns the addresses given in opt, detecting the ones
// that are empty. Detection prefers a public global unicast address, then
// a private one (behind NAT), then loopback; every fallback adds a note.
func ResolveAddresses(opt SeedOptions) (Addresses, error) {
	var out Addresses
	var err error
	if opt.ExternalIPv4 != "" {
		if out.IPv4, err = netip.ParseAddr(opt.ExternalIPv4); err != nil || !out.IPv4.Is4() {
			return out, fmt.Errorf("%w: external IPv4 %q is not an IPv4 address", ErrInvalidAddress, opt.ExternalIPv4)
		}
	}
	if opt.ExternalIPv6 != "" {
		out.IPv6, err = netip.ParseAddr(opt.ExternalIPv6)
		if err != nil || !out.IPv6.Is6() || out.IPv6.Is4In6() || out.IPv6.Zone() != "" {
			return out, fmt.Errorf("%w: external IPv6 %q is not an IPv6 address", ErrInvalidAddress, opt.ExternalIPv6)
		}
	}
	if out.IPv4.IsValid() && out.IPv6.IsValid() {
		return out, nil
	}
	list := opt.InterfaceAddrs
	if list == nil {
		list = InterfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		out.Notes = append(out.Notes, fmt.Sprintf("cannot list network interfaces (%v)", err))
	}
	if !out.IPv4.IsValid() {
		var note string
		out.IPv4, note = pickV4(addrs)
		if note != "" {
			out.Notes = append(out.Notes, note+"; set FSPLANE_EXTERNAL_IPV4 and update profile "+ProfileExternalIPv4)
		}
	}
	if !out.IPv6.IsValid() {
		var note string
		out.IPv6, note = pickV6(addrs)
		if note != "" {
			out.Notes = append(out.Notes, note+"; set FSPLANE_EXTERNAL_IPV6 and update profile "+ProfileInternal+" (IPv6 providers such as 1&1 need it)")
		}
	}
	return out, nil
}

func pickV4(addrs []netip.Addr) (netip.Addr, string) {
	var private netip.Addr
	for _, a := range addrs {
		if !a.Is4() || !a.IsGlobalUnicast() {
			continue
		}
		if a.IsPrivate() || cgnat.Contains(a) {
			if !private.IsValid() {
				private = a
			}
			continue
		}
		return a, ""
	}
	if private.IsValid() {
		return private, fmt.Sprintf("no public IPv4 address found, using the private %s (behind NAT ext-sip-ip and ext-rtp-ip must be the public one)", private)
	}
	return fallbackV4, "no IPv4 address found, using " + fallbackV4.String()
}

func pickV6(addrs []netip.Addr) (netip.Addr, string) {
	var local netip.Addr
	for _, a := range addrs {
		if !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() {
			continue
		}
		if ula.Contains(a) {
			if !local.IsValid() {
				local = a
			}
			continue
		}
		return a, ""
	}
	if local.IsValid() {
		return local, fmt.Sprintf("no global IPv6 address found, using the unique local %s", local)
	}
	return fallbackV6, "no global IPv6 address found, using " + fallbackV6.String()
}

// InterfaceAddrs returns the addresses of the network interfaces that are
// up, in interface order, without zones.
func InterfaceAddrs() ([]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

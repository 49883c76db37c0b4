package firewall

import (
	"net/netip"
	"slices"
)

// comparePrefix orders IPv4 before IPv6, then by address, then shorter
// prefixes first, so a prefix comes right before the ones it contains.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// MergePrefixes returns the prefixes sorted (IPv4 first), masked, with
// duplicates and prefixes contained in another one removed. It never
// widens anything: every prefix returned is one of the inputs, so the rules
// stay recognisable as the ranges an operator stored. Invalid prefixes are
// dropped; IPv4 and IPv6 never merge with each other.
func MergePrefixes(ps []netip.Prefix) []netip.Prefix {
	in := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() {
			in = append(in, p.Masked())
		}
	}
	slices.SortFunc(in, comparePrefix)
	out := in[:0]
	for _, p := range in {
		// Prefixes either nest or are disjoint; sorted by start and length,
		// a prefix inside any kept one is inside the last kept one.
		if n := len(out); n > 0 && out[n-1].Addr().BitLen() == p.Addr().BitLen() &&
			out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return slices.Clip(out)
}

// AggregatePrefixes is MergePrefixes plus joining sibling prefixes into
// their parent (92.197.176.0/24 and 92.197.177.0/24 become
// 92.197.176.0/23), repeatedly. It covers exactly the addresses the input
// covers with the fewest prefixes; the nftables sets use it.
func AggregatePrefixes(ps []netip.Prefix) []netip.Prefix {
	merged := MergePrefixes(ps)
	out := make([]netip.Prefix, 0, len(merged))
	for _, p := range merged {
		out = append(out, p)
		// The input is disjoint and sorted, so a new parent can only pair
		// with what is left of it on the stack.
		for len(out) >= 2 {
			a, b := out[len(out)-2], out[len(out)-1]
			if a.Bits() != b.Bits() || a.Bits() == 0 || a.Addr().BitLen() != b.Addr().BitLen() {
				break
			}
			pa := netip.PrefixFrom(a.Addr(), a.Bits()-1).Masked()
			if pa != netip.PrefixFrom(b.Addr(), b.Bits()-1).Masked() {
				break
			}
			out = append(out[:len(out)-2], pa)
		}
	}
	return out
}

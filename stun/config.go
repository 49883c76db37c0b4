package stun

import (
	"fmt"
	"net/netip"
)

// Config is the responder's addresses.
type Config struct {
	// Primary is A1:P1 (usually port 3478). An unspecified address
	// ([::]:3478) is allowed only without a secondary: it answers IPv4
	// and IPv6 on one socket but cannot say which address it answered
	// from.
	Primary netip.AddrPort
	// Secondary is A2:P2 (usually port 3479); zero disables
	// CHANGE-REQUEST, OTHER-ADDRESS, RESPONSE-ORIGIN and CHANGED-ADDRESS.
	// It must differ from the primary in both address and port, in the
	// same family.
	Secondary netip.AddrPort
	// PrimaryAdvertised and SecondaryAdvertised replace A1 and A2 in what
	// the responder tells clients (OTHER-ADDRESS, RESPONSE-ORIGIN,
	// CHANGED-ADDRESS, SOURCE-ADDRESS) when the sockets sit behind a 1:1
	// NAT; the ports are the same.
	PrimaryAdvertised   netip.Addr
	SecondaryAdvertised netip.Addr
	// RateLimit is the requests per second one source address may send
	// (burst: two seconds' worth, at least 10); 0 disables the limit.
	RateLimit float64
}

// Validate checks the addresses once, at start.
func (c Config) Validate() error {
	p, s := c.Primary, c.Secondary
	if !p.IsValid() {
		return ErrNoPrimary
	}
	if p.Addr().Zone() != "" {
		return fmt.Errorf("primary %s: %w", p, errZone)
	}
	if c.RateLimit < 0 {
		return fmt.Errorf("rate limit %v: must not be negative", c.RateLimit)
	}
	if c.PrimaryAdvertised.IsValid() && c.PrimaryAdvertised.Unmap().Is4() != p.Addr().Unmap().Is4() {
		return fmt.Errorf("%w: primary advertised %s is not of the primary's family (%s)", ErrAdvertised, c.PrimaryAdvertised, p)
	}
	if !s.IsValid() {
		if c.SecondaryAdvertised.IsValid() {
			return fmt.Errorf("%w: secondary advertised %s without a secondary address", ErrAdvertised, c.SecondaryAdvertised)
		}
		return nil
	}
	switch {
	case s.Addr().Zone() != "":
		return fmt.Errorf("secondary %s: %w", s, errZone)
	case p.Addr().IsUnspecified() || s.Addr().IsUnspecified():
		return fmt.Errorf("%w: %s and %s: with a secondary both addresses must be specific (not 0.0.0.0 or ::): answers must leave from the address the client expects", ErrSecondary, p, s)
	case p.Addr().Unmap().Is4() != s.Addr().Unmap().Is4():
		return fmt.Errorf("%w: %s and %s are not of one address family", ErrSecondary, p, s)
	case s.Addr().Unmap() == p.Addr().Unmap():
		return fmt.Errorf("%w: %s has the primary's address %s; the secondary must differ from the primary in address and port", ErrSecondary, s, p.Addr())
	case p.Port() == 0 && s.Port() == 0:
		// Both chosen by the kernel (tests): they differ once bound.
	case s.Port() == p.Port():
		return fmt.Errorf("%w: %s has the primary's port %d; the secondary must differ from the primary in address and port", ErrSecondary, s, p.Port())
	}
	if c.SecondaryAdvertised.IsValid() && c.SecondaryAdvertised.Unmap().Is4() != s.Addr().Unmap().Is4() {
		return fmt.Errorf("%w: secondary advertised %s is not of the secondary's family (%s)", ErrAdvertised, c.SecondaryAdvertised, s)
	}
	if c.PrimaryAdvertised.IsValid() != c.SecondaryAdvertised.IsValid() {
		return fmt.Errorf("%w: advertise both the primary and the secondary address, or neither", ErrAdvertised)
	}
	if c.PrimaryAdvertised.IsValid() && c.PrimaryAdvertised.Unmap() == c.SecondaryAdvertised.Unmap() {
		return fmt.Errorf("%w: primary and secondary advertised are both %s", ErrAdvertised, c.PrimaryAdvertised)
	}
	return nil
}

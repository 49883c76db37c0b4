package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// The STUN responder's settings (package stun). It runs inside serve when
// FSPLANE_STUN_PRIMARY is set, and alone as `fsplane stun serve`.
const (
	EnvSTUNPrimary             = "FSPLANE_STUN_PRIMARY"
	EnvSTUNSecondary           = "FSPLANE_STUN_SECONDARY"
	EnvSTUNPrimaryAdvertised   = "FSPLANE_STUN_PRIMARY_ADVERTISED"
	EnvSTUNSecondaryAdvertised = "FSPLANE_STUN_SECONDARY_ADVERTISED"
	EnvSTUNRateLimit           = "FSPLANE_STUN_RATE_LIMIT"
	EnvSTUNProbeServer         = "FSPLANE_STUN_PROBE_SERVER"
	EnvSTUNProbeInterval       = "FSPLANE_STUN_PROBE_INTERVAL"
)

// DefaultSTUNRateLimit is the requests per second one source address may
// send to the STUN responder.
const DefaultSTUNRateLimit = 100

func init() {
	Settings = append(Settings, EnvSTUNPrimary, EnvSTUNSecondary, EnvSTUNPrimaryAdvertised, EnvSTUNSecondaryAdvertised, EnvSTUNRateLimit,
		EnvSTUNProbeServer, EnvSTUNProbeInterval)
}

// applySTUN is Apply for the STUN settings; ok reports whether name is one.
func (c *Config) applySTUN(name, value string) (ok bool, err error) {
	bad := func(err error) error { return fmt.Errorf("%s: %w", name, err) }
	switch name {
	case EnvSTUNPrimary, EnvSTUNSecondary:
		var ap netip.AddrPort
		if value != "" {
			if ap, err = netip.ParseAddrPort(value); err != nil {
				return true, bad(fmt.Errorf("%q is not IP:port (e.g. 127.0.0.1:3478 or [::1]:3478)", value))
			}
		}
		if name == EnvSTUNPrimary {
			c.STUN.Primary = ap
		} else {
			c.STUN.Secondary = ap
		}
	case EnvSTUNPrimaryAdvertised, EnvSTUNSecondaryAdvertised:
		var a netip.Addr
		if value != "" {
			if a, err = netip.ParseAddr(value); err != nil {
				return true, bad(fmt.Errorf("%q is not an IP address", value))
			}
		}
		if name == EnvSTUNPrimaryAdvertised {
			c.STUN.PrimaryAdvertised = a
		} else {
			c.STUN.SecondaryAdvertised = a
		}
	case EnvSTUNRateLimit:
		r, err := strconv.ParseFloat(value, 64)
		if err != nil || r < 0 {
			return true, bad(fmt.Errorf("%q is not a number of requests per second (0 disables the limit)", value))
		}
		c.STUN.RateLimit = r
	case EnvSTUNProbeServer:
		if value != "" {
			if h, p, err := net.SplitHostPort(value); err != nil || h == "" || p == "" {
				return true, bad(fmt.Errorf("%q is not host:port (e.g. stun.example.org:3478)", value))
			}
		}
		c.STUNProbeServer = value
	case EnvSTUNProbeInterval:
		d, err := time.ParseDuration(value)
		if err != nil || d < 10*time.Millisecond || d > 24*time.Hour {
			return true, bad(fmt.Errorf("%q is not a duration between 10ms and 24h (e.g. 5m)", value))
		}
		c.STUNProbeInterval = d
	default:
		return false, nil
	}
	return true, nil
}

// DefaultSTUNProbeInterval is FSPLANE_STUN_PROBE_INTERVAL's default.
const DefaultSTUNProbeInterval = 5 * time.Minute

// validateSTUN checks the STUN settings when the responder is enabled.
func (c *Config) validateSTUN() error {
	if c.STUNProbeInterval == 0 {
		c.STUNProbeInterval = DefaultSTUNProbeInterval
	}
	s := c.STUN
	if !s.Primary.IsValid() {
		if s.Secondary.IsValid() || s.PrimaryAdvertised.IsValid() || s.SecondaryAdvertised.IsValid() {
			return fmt.Errorf("%s: the STUN secondary and advertised addresses need %s", EnvSTUNPrimary, EnvSTUNPrimary)
		}
		return nil
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%s/%s: %w", EnvSTUNPrimary, EnvSTUNSecondary, err)
	}
	return nil
}

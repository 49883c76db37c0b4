package providers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
)

// SeedOptions are the host's addresses for the default profiles.
type SeedOptions struct {
	// ExternalIPv4 and ExternalIPv6 are this host's public addresses; each
	// is detected from the network interfaces when empty.
	ExternalIPv4 string
	ExternalIPv6 string
	// Logger is told which addresses were detected and which fallbacks
	// were taken; nil discards.
	Logger *slog.Logger
	// InterfaceAddrs lists the host's addresses for detection; nil means
	// the addresses of the network interfaces that are up.
	InterfaceAddrs func() ([]netip.Addr, error)
}

// Seed gives an empty database the default profiles (external-ipv4 and
// internal, see DefaultProfiles) and each built-in preset's ranges when
// that provider has none. It is idempotent; concurrent seeding by another
// replica is not an error.
func Seed(ctx context.Context, s *models.Store, opt SeedOptions) error {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if models.ActorFrom(ctx).Name == "system" {
		ctx = models.WithActor(ctx, models.Actor{Name: "seed"})
	}
	profiles, err := s.ListProfiles(ctx)
	if err != nil {
		return fmt.Errorf("providers: seed: list profiles: %w", err)
	}
	if len(profiles) == 0 {
		addrs, err := ResolveAddresses(opt)
		if err != nil {
			return err
		}
		for _, n := range addrs.Notes {
			log.Warn("default profiles: " + n)
		}
		log.Info("creating default sofia profiles", "ipv4", addrs.IPv4.String(), "ipv6", addrs.IPv6.String())
		for _, p := range DefaultProfiles(addrs.IPv4, addrs.IPv6) {
			if err := s.CreateProfile(ctx, &p); err != nil && !errors.Is(err, models.ErrDuplicate) {
				return fmt.Errorf("providers: seed: create profile %s: %w", p.Name, err)
			}
		}
	}
	for _, p := range Builtin() {
		have, err := s.ListRanges(ctx, p.Name)
		if err != nil {
			return fmt.Errorf("providers: seed: list ranges of %s: %w", p.Name, err)
		}
		if len(have) > 0 {
			continue
		}
		for _, r := range p.ProviderRanges() {
			if err := s.CreateRange(ctx, &r); err != nil && !errors.Is(err, models.ErrDuplicate) {
				return fmt.Errorf("providers: seed: create range %s of %s: %w", r.CIDR, p.Name, err)
			}
		}
		log.Info("created provider ranges", "provider", p.Name, "count", len(p.Ranges))
	}
	return nil
}

// DefaultProfiles returns the runbook's two sofia profiles for a host with
// the given addresses:
//   - external-ipv4 binds v4 only, for IP-authenticated providers (Plusnet);
//   - internal binds :: (dual stack) with TLS on 5061 and WSS on :7443, and
//     announces v6, for IPv6 providers (1&1), extensions and WebRTC.
//
// Both admit the providers' ranges through the sip-gateways ACL; the
// runbook's two open RTP port ranges go one to each profile.
func DefaultProfiles(v4, v6 netip.Addr) []models.Profile {
	return []models.Profile{
		{
			Name:        ProfileExternalIPv4,
			Description: "IPv4 only, for IP-authenticated providers",
			Family:      models.FamilyIPv4,
			BindIP:      v4.String(),
			SIPPort:     5060,
			RTPIP:       v4.String(),
			ExtSIPIP:    v4.String(),
			ExtRTPIP:    v4.String(),
			RTPPortMin:  10000,
			RTPPortMax:  10060,
			InboundACL:  firewall.GatewaysACL,
			// IP-authenticated providers are let in by the ACL; anyone
			// else is refused rather than challenged.
			AuthCalls: false,
			Context:   "public",
			Params:    models.StringMap{},
		},
		{
			Name:        ProfileInternal,
			Description: "Dual stack: IPv6 providers, extensions and WebRTC",
			Family:      models.FamilyDual,
			BindIP:      "::",
			SIPPort:     5060,
			ExtSIPIP:    v6.String(),
			ExtRTPIP:    v6.String(),
			RTPPortMin:  16384,
			RTPPortMax:  16484,
			TLS:         true,
			TLSPort:     5061,
			WSSBinding:  ":7443",
			InboundACL:  firewall.GatewaysACL,
			AuthCalls:   true,
			Context:     "public",
			Params:      models.StringMap{},
		},
	}
}

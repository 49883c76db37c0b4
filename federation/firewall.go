package federation

import (
	"context"
	"fmt"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
)

// FirewallPorts are the ports federation opens to any source: its TLS port
// (5061/tcp) while enabled; peers connect from anywhere on the Internet.
func (s Settings) FirewallPorts() []firewall.PortSpec {
	if !s.Enabled {
		return nil
	}
	port := s.Port
	if port == 0 {
		port = DefaultPort
	}
	return []firewall.PortSpec{{From: uint16(port), To: uint16(port), Proto: "tcp"}}
}

// PolicyInput reads everything the firewall policy is built from: every
// provider range, every profile, and the ports federation opens. The CLI's
// `firewall diff`/`export` and the console's diff use it, so none of them
// forgets a part.
func PolicyInput(ctx context.Context, s *models.Store) ([]models.ProviderRange, []models.Profile, []firewall.PortSpec, error) {
	ranges, err := s.ListRanges(ctx, "")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list provider ranges: %w", err)
	}
	profiles, err := s.ListProfiles(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list profiles: %w", err)
	}
	set, _, _, err := Load(ctx, s)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("federation settings: %w", err)
	}
	return ranges, profiles, set.FirewallPorts(), nil
}

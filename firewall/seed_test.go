package firewall

import "github.com/fsplane/fsplane/models"

// seedRanges are the provider ranges of seed 002 (the operator runbook in
// testdata/seed_002_runbook.txt). 1&1's IPv6 range is stored as the
// runbook's outbound proxy address with host bits set; the ports of the
// IPv4 fallback are left empty, so the default applies.
func seedRanges() []models.ProviderRange {
	return []models.ProviderRange{
		{Provider: "plusnet", CIDR: "92.197.176.0/24", Ports: models.StringList{"5060/udp", "5061/tcp"}},
		{Provider: "plusnet", CIDR: "92.197.177.0/24", Ports: models.StringList{"5060/udp", "5061/tcp"}},
		{Provider: "plusnet", CIDR: "92.197.182.0/24", Ports: models.StringList{"5061/tcp", "5060/udp"}},
		{Provider: "1und1", CIDR: "2001:8d8:104:100:212:227:124:129/125", Ports: models.StringList{"5060/udp"}},
		{Provider: "1und1", CIDR: "212.227.124.0/24", Description: "IPv4 fallback"},
	}
}

// seedProfiles are the seed's sofia profiles: external-ipv4 (plusnet) and
// internal (dual stack, TLS, WebRTC), each with one of its RTP ranges.
func seedProfiles() []models.Profile {
	return []models.Profile{
		{Name: "external-ipv4", Family: models.FamilyIPv4, BindIP: "46.4.96.105", SIPPort: 5060, RTPPortMin: 10000, RTPPortMax: 10060},
		{Name: "internal", Family: models.FamilyDual, BindIP: "::", SIPPort: 5060, TLS: true, TLSPort: 5061, WSSBinding: ":7443", RTPPortMin: 16384, RTPPortMax: 16484},
	}
}

package federation

import "github.com/fsplane/fsplane/firewall"

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

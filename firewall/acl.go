package firewall

import (
	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/models"
)

// GatewaysACL is the network list that admits the providers' ranges.
const GatewaysACL = "sip-gateways"

// ACLConfig returns the <configuration name="acl.conf"> element: the
// sip-gateways list (default deny, one allow node per range).
func ACLConfig(ranges []models.ProviderRange) *etree.Element {
	cfg := etree.NewElement("configuration")
	cfg.CreateAttr("name", "acl.conf")
	cfg.CreateAttr("description", "Network Lists")
	lists := cfg.CreateElement("network-lists")
	l := lists.CreateElement("list")
	l.CreateAttr("name", GatewaysACL)
	l.CreateAttr("default", "deny")
	for _, r := range ranges {
		n := l.CreateElement("node")
		n.CreateAttr("type", "allow")
		n.CreateAttr("cidr", r.CIDR)
	}
	return cfg
}

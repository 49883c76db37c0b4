package firewall

import (
	"errors"
	"net/netip"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/models"
)

// GatewaysACL is the network list that admits the providers' ranges.
const GatewaysACL = "sip-gateways"

// ACLConfig returns the <configuration name="acl.conf"> element: the
// sip-gateways list, default deny, one allow node per range of any
// provider, normalised, with duplicates and contained ranges merged,
// IPv4 before IPv6. A range that does not validate is left out: the list
// fails closed, and the serving path is not broken by one bad row (the API
// refuses such rows with ValidateRange; ACL reports them).
func ACLConfig(ranges []models.ProviderRange) *etree.Element {
	var ps []netip.Prefix
	for _, r := range ranges {
		if p, _, err := parseRange(r); err == nil {
			ps = append(ps, p)
		}
	}
	return aclElement(ps)
}

// ACL is ACLConfig that refuses invalid ranges, naming each one.
func ACL(ranges []models.ProviderRange) (*etree.Element, error) {
	var ps []netip.Prefix
	var errs []error
	for _, r := range ranges {
		p, _, err := parseRange(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps = append(ps, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return aclElement(ps), nil
}

func aclElement(ps []netip.Prefix) *etree.Element {
	cfg := etree.NewElement("configuration")
	cfg.CreateAttr("name", "acl.conf")
	cfg.CreateAttr("description", "Network Lists")
	lists := cfg.CreateElement("network-lists")
	l := lists.CreateElement("list")
	l.CreateAttr("name", GatewaysACL)
	l.CreateAttr("default", "deny")
	for _, p := range MergePrefixes(ps) {
		n := l.CreateElement("node")
		n.CreateAttr("type", "allow")
		n.CreateAttr("cidr", p.String())
	}
	return cfg
}

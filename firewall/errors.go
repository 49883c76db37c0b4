package firewall

import "errors"

var (
	// ErrInvalid is wrapped by every validation error of this package: a
	// CIDR, port, protocol, provider name or profile setting that cannot
	// become a rule. The message names the offending value.
	ErrInvalid = errors.New("firewall: invalid value")

	// ErrUnknownFormat is returned for a format Export does not know.
	ErrUnknownFormat = errors.New("firewall: unknown format (want ufw, nft, acl or json)")

	// ErrUFWStatus is returned when text handed to ParseUFWStatus is
	// neither `ufw status` nor `ufw show added` output.
	ErrUFWStatus = errors.New("firewall: not ufw status output")
)

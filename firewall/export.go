package firewall

import (
	"errors"

	"github.com/fsplane/fsplane/models"
)

// Formats Export knows.
const (
	FormatUFW  = "ufw"
	FormatNFT  = "nft"
	FormatACL  = "acl"
	FormatJSON = "json"
)

// ErrUnknownFormat is returned for a format Export does not know.
var ErrUnknownFormat = errors.New("firewall: unknown format (want ufw, nft, acl or json)")

// Export renders the policy for ranges (already filtered to one provider
// if the caller wants that) and profiles in format, with its content type.
func Export(format string, ranges []models.ProviderRange, profiles []models.Profile) (body []byte, contentType string, err error) {
	return nil, "", errors.New("firewall: export not implemented yet")
}

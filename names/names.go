// Package names holds the strict validators for every user-supplied name
// that reaches a FreeSWITCH command or XML: gateway (trunk) names, profile
// names, ACL list names. Whatever passes here contains no space, newline,
// quote, angle bracket, ampersand or dollar sign, so it can be put on an ESL
// command line or into an attribute without any further escaping.
package names

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalid is wrapped by every validation error here.
var ErrInvalid = errors.New("invalid name")

var (
	gatewayRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	profileRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	aclRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

// Gateway checks a trunk's gateway name: lower-case letters, digits, '.',
// '_' and '-', starting with a letter or digit, at most 63 characters.
// FreeSWITCH gateway names are global across profiles.
func Gateway(s string) error { return check("gateway", s, gatewayRe) }

// Profile checks a sofia profile name (same alphabet as Gateway).
func Profile(s string) error { return check("profile", s, profileRe) }

// ACL checks a network-list name (same alphabet as Gateway).
func ACL(s string) error { return check("ACL", s, aclRe) }

func check(what, s string, re *regexp.Regexp) error {
	if !re.MatchString(s) {
		return fmt.Errorf("%w: %s name %q must match %s", ErrInvalid, what, s, re.String())
	}
	return nil
}

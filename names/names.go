package names

import (
	"regexp"
	"strings"
)

// The name patterns. Each admits only ASCII letters, digits and a few of
// '.', '_', '-', '+', '~', '=', '@', ':': nothing that ends a word on an ESL
// command line or needs escaping in XML or a shell comment.
var (
	// FreeSWITCH gateway names are global across profiles and must match
	// ^[\w.-]+$; lower case keeps them unique however they are typed.
	slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	// Directory user ids: extensions ("1001"), names ("alice.smith") and
	// E.164 numbers ("+493012345").
	userRe = regexp.MustCompile(`^(?:\+[A-Za-z0-9][A-Za-z0-9._-]{0,62}|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$`)
	// SIP user parts a provider hands out (RFC 3261 unreserved and a few
	// user-unreserved characters).
	sipUserRe  = regexp.MustCompile(`^[A-Za-z0-9._~+=@-]{1,128}$`)
	contextRe  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	providerRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	settingRe  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	certDirRe  = regexp.MustCompile(`^/[A-Za-z0-9._/-]{0,254}$`)
	e164Re     = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
)

// ReservedProvider is the comment marker of the firewall rules that come
// from profile settings rather than a provider, and so not a provider name.
const ReservedProvider = "general"

// Gateway checks a trunk's gateway name: lower-case letters, digits, '.',
// '_' and '-', starting with a letter or digit, at most 63 characters.
func Gateway(s string) error { return match(slugRe, "gateway name", s) }

// Profile checks a sofia profile name (the alphabet of Gateway).
func Profile(s string) error { return match(slugRe, "profile name", s) }

// ACL checks a network-list name (the alphabet of Gateway).
func ACL(s string) error { return match(slugRe, "ACL name", s) }

// Provider checks a provider name (lower-case letters, digits, '.', '_',
// '-', at most 64 characters, not "general"). It stands in UFW and
// nftables comments on a shell line.
func Provider(s string) error {
	if err := match(providerRe, "provider name", s); err != nil {
		return err
	}
	if s == ReservedProvider {
		return invalidf("provider name %q is reserved for the rules from profile settings", s)
	}
	return nil
}

// User checks a directory user id: letters, digits, '.', '_', '-', an
// optional leading '+' (E.164 extensions), at most 64 characters in all.
func User(s string) error { return match(userRe, "SIP user id", s) }

// SIPUser checks a SIP user name given by a provider (username,
// auth-username, from-user, extension): at most 128 of letters, digits and
// . _ ~ + = @ -.
func SIPUser(s string) error { return match(sipUserRe, "SIP user", s) }

// Context checks a dialplan context name.
func Context(s string) error { return match(contextRe, "dialplan context", s) }

// CertDir checks a certificate directory: an absolute path of letters,
// digits, '.', '_', '-' and '/'.
func CertDir(s string) error { return match(certDirRe, "absolute directory path", s) }

// E164 checks a number in E.164 form: '+', then 2 to 15 digits, the first
// not 0.
func E164(s string) error {
	if e164Re.MatchString(s) {
		return nil
	}
	if strings.ContainsAny(s, " -/()") {
		return invalidf("%q must be E.164 without separators, e.g. %s", s, strings.Map(func(r rune) rune {
			if r == '+' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s))
	}
	return invalidf("%q is not an E.164 number (+ then 2 to 15 digits, e.g. +493455667290)", s)
}

// match explains a refusal: the forbidden character (the usual mistake)
// and the pattern. The value is quoted with Go escapes, so a control
// character shows as \n, never raw; names are not secrets.
func match(re *regexp.Regexp, what, s string) error {
	if re.MatchString(s) {
		return nil
	}
	if err := Token(s); err != nil {
		return invalidf("%s %q %s; it must match %s", what, s, err, re.String())
	}
	return invalidf("%s %q must match %s", what, s, re.String())
}

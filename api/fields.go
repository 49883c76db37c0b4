package api

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field rules for values that reach FreeSWITCH (gateway params, directory
// entries, sofia settings) or its command line.

var (
	e164Re    = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	sipUserRe = regexp.MustCompile(`^[A-Za-z0-9._~+=@-]{1,128}$`)
	userIDRe  = regexp.MustCompile(`^\+?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	contextRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	slugRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	paramRe   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	certDirRe = regexp.MustCompile(`^/[A-Za-z0-9._/-]{0,254}$`)
)

// forbidden are the characters that could break out of an ESL command
// line, an XML attribute or FreeSWITCH's variable expansion.
const forbidden = " \t<>&\"'$`\\"

// safeToken refuses whitespace, control characters, XML and quoting
// characters and '$'. The error quotes the offending character, never
// the value (which might be a secret in other callers).
func safeToken(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("must not contain whitespace or control characters (found %q)", r)
		}
		if strings.ContainsRune(forbidden, r) {
			return fmt.Errorf("must not contain %q", r)
		}
	}
	return nil
}

// checkE164 validates a number in E.164 form.
func checkE164(s string) error {
	if e164Re.MatchString(s) {
		return nil
	}
	if strings.ContainsAny(s, " -/()") {
		return fmt.Errorf("%q must be E.164 without separators, e.g. %s", s, strings.Map(func(r rune) rune {
			if r == '+' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s))
	}
	return fmt.Errorf("%q is not an E.164 number (+ then 2 to 15 digits, e.g. +493455667290)", s)
}

func checkRe(re *regexp.Regexp, what, s string) error {
	if re.MatchString(s) {
		return nil
	}
	if err := safeToken(s); err != nil {
		return err
	}
	return fmt.Errorf("%q is not a valid %s (allowed: %s)", s, what, re.String())
}

// checkPassword allows any printable text: passwords go into XML through
// an encoder, but a line break would still end a FreeSWITCH value. The
// error never repeats the password.
func checkPassword(s string, minLen int) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("must not contain line breaks or control characters")
		}
	}
	if n := utf8.RuneCountInString(s); n < minLen {
		return fmt.Errorf("must be at least %d characters", minLen)
	} else if n > 128 {
		return errors.New("must be at most 128 characters")
	}
	return nil
}

// checkText is for descriptions and labels FreeSWITCH never sees.
func checkText(s string, max int) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("must not contain line breaks or control characters")
		}
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("must be at most %d characters", max)
	}
	return nil
}

// checkSafeValue is for free values that reach FreeSWITCH (display
// names, sofia params): no whitespace, quotes, XML or '$'.
// checkDisplayName allows what people call themselves ("Reception Desk",
// "Müller & Söhne"): it only reaches FreeSWITCH as an XML value, which etree
// escapes. Line breaks, control characters, '$' (variable expansion) and
// '\' (escapes) stay out.
func checkDisplayName(s string) error {
	if err := checkText(s, 128); err != nil {
		return err
	}
	if strings.ContainsAny(s, "$\\") {
		return errors.New("must not contain '$' or '\\'")
	}
	return nil
}

func checkSafeValue(s string, max int) error {
	if err := safeToken(s); err != nil {
		return err
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("must be at most %d characters", max)
	}
	return nil
}

func checkRange(v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%d out of range %d-%d", v, lo, hi)
	}
	return nil
}

// Package names is the one place that says what is valid: every name and
// every value that fsplane hands to FreeSWITCH — on an ESL command line, in
// an xml-curl answer, in a firewall rule — and every character a stored
// value may carry. The API checks input with it, xml-curl checks rows
// before rendering them, the ESL layer checks every argument it sends, and
// the registrar and the console will ask it too. No other package keeps a
// pattern for the same thing.
//
// The contract:
//   - A name that passes Gateway, Profile, ACL, Provider, User, SIPUser,
//     Context, Setting or ParseHost contains no whitespace, quote, angle
//     bracket, ampersand, dollar sign or backslash: it can stand on an ESL
//     command line, in a shell comment or in an XML attribute as it is.
//   - A value that passes Chars (and so Text, Password, DisplayName,
//     SettingValue) is valid UTF-8 with no control character, surrogate or
//     Unicode noncharacter: XML 1.0 carries it, and xml-curl renders it so
//     that FreeSWITCH reads back exactly the same bytes.
//   - Errors never repeat a value that may be a secret: they name the
//     offending character and its position instead. Errors wrap ErrInvalid.
//
// Nothing here repairs input: a value either passes unchanged or is
// refused. The only normal forms are those of ParseHost (lower-case DNS
// names, bracketed IPv6), which the caller stores instead of the input.
package names

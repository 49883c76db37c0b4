// Package federation is SIP federation over TLS (issue 13): the admin's
// checklist as one function, the settings that describe a federation, and
// the certificate files FreeSWITCH reads.
//
// # The checklist
//
// Checker.Run runs six checks on a Settings and returns a Report, one
// Check per line, always in this order and with these ids:
//
//	fqdn-in-domain  the FQDN ends with the federation domain (label-wise)
//	a-record        A/AAAA of the FQDN exists and equals the public address
//	srv-record      _sipfederationtls._tcp.<domain> targets FQDN:port (skip in direct mode)
//	certificate     the certificate names exactly the FQDN, no wildcard, chains
//	                to a trusted root, key matches, not expired; days left
//	reachable       TCP to FQDN:port, the TLS handshake presents that same
//	                certificate, and a SIP OPTIONS over it is answered
//	bound           federation is enabled and bound to an address of this host
//
// Every status is pass, warn, fail or skip; a Report fails when any check
// fails. Every DNS question is asked as an absolute name (trailing dot), so
// no search suffix is appended; when a name only resolves with one of the
// host's search suffixes, the detail says so (the nslookup pitfall of the
// admin's checklist). The resolver is configurable (default: the first
// nameserver of /etc/resolv.conf); trusted roots are the system's plus any
// private CA handed in.
//
// Host names are checked with package names; nothing here keeps a pattern
// of its own.
package federation

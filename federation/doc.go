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
// # Settings and certificates
//
// Settings are one stored row (models.Federation, migration
// 0005_federation); stored names are in normal form (lower case, no
// trailing dot) or refused. An enabled federation's certificate must name
// exactly the FQDN (SAN, or CN without SAN), be no wildcard, chain to a
// trusted root, match its key and not be expired (Prepare); only then is it
// put in the TLS directory as agent.pem (certificate + key) and cafile.pem
// (the verified chain up to the root), each by rename (Install). xml-curl
// renders tls, tls-sip-port and tls-cert-dir on the federation profile only
// while both files are there (Service.TLS): sofia would otherwise generate
// and serve a self-signed certificate without a word.
//
// # Renewal
//
// Service.Watch watches the directories of the certificate and key files
// (renewers replace files, or certbot's symlinks, by rename), debounced,
// and compares them every Poll as well. A replacement is validated like a
// new certificate; a valid one is installed and announced in the change
// log (models.Store.CertificateRenewed: field tls_cert), from which the ESL
// planner sends reloadcert, or restarts the profile when allowed, or
// reports the node's restart_needed. An invalid one is refused and
// reported (Warnings, /readyz); the certificate in place stays.
//
// Host names are checked with package names; nothing here keeps a pattern
// of its own.
package federation

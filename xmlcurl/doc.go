// Package xmlcurl is fsplane's mod_xml_curl backend: FreeSWITCH POSTs its
// lookups to /api/v1/sip/xml-curl and gets its directory users, gateways,
// sofia.conf and acl.conf rendered from the database.
//
// The contract:
//   - Answers follow what FreeSWITCH 1.10 reads (docs/freeswitch.md): users
//     and gateways as <domain><user>, sofia.conf whole (every profile with
//     its settings), acl.conf from firewall.ACLConfig. Everything else is
//     the not-found document, answered without touching the database.
//   - A user is never answered without credentials, and they are its
//     a1-hash (MD5 of user:realm:password, with the sip_auth_realm of the
//     lookup, else the domain), not its password, unless
//     Options.PlaintextPasswords: a captured answer does not reveal it.
//   - A row that cannot be rendered exactly (undecryptable password, a
//     value package names refuses) is left out and logged, never rendered
//     empty or altered; it stays a Problem (Health, the
//     unrenderable_rows gauge, render_error in the API) until it renders
//     or is deleted. Audit finds such rows at start.
//   - Every value goes through etree into an attribute, and the output is
//     neutralised against FreeSWITCH's pre-processor ("$${var}",
//     "X-pre-process"): FreeSWITCH reads exactly what was stored.
//   - Answers are cached. OnChange, called synchronously after each commit,
//     invalidates what the write touched; a render that raced a write is
//     not cached. A request after a committed write never sees the old
//     answer.
//   - When the database fails, the last good sofia.conf, acl.conf and
//     gateways renders are answered and Health reports "degraded"; users
//     not in the cache get not-found (HTTP 503), never a guess.
//   - Requests are authenticated (HTTP Basic, or a bearer token with the
//     xmlcurl or admin scope, checked by the API's auth.Verifier) and
//     optionally limited to source networks. A database outage stops
//     neither credential for warm answers: Basic needs no database, and a
//     token verified within the verifier's cache TTL passes from its cache;
//     a token not verified within it gets 503 with Retry-After.
package xmlcurl

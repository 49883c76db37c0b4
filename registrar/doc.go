// Package registrar is fsplane's own SIP registrar, location service and
// proxy (RFC 3261 §10.3, §16) for native SIP endpoints that register with
// fsplane when FreeSWITCH is down or should not be depended on. It runs on
// github.com/emiago/sipgo over UDP and TCP (and TLS when a certificate is
// configured) and serves the domains of the extensions in the database.
//
// Contract:
//   - Digest authentication (MD5 and SHA-256 per RFC 8760, qop=auth, offered
//     in Options.Algorithms' order: clients take the topmost they support)
//     against
//     the extensions' passwords, held in memory as HA1 hashes per realm and
//     algorithm and refreshed from the change feed (OnChange): no database
//     round trip per REGISTER. The realm is the AOR's domain. A change is
//     read in the registrar's own goroutine, so it takes effect shortly
//     after the API write returns, not with it.
//   - Nonces are stateless: a timestamp HMAC-signed with a key every
//     replica derives from the shared Fernet key, so any replica accepts
//     them; an expired one is challenged again with stale=true. A replayed
//     response within the nonce lifetime is not detected (no nonce state).
//   - An unknown user is answered exactly like a known one: the same 401
//     challenge without credentials, 403 for credentials that do not
//     match (no user enumeration). Third-party registration (From ≠ To, or
//     credentials of another user) is 403. No credential is ever logged.
//   - Expiry policy: DefaultExpires when the client states none, requests
//     longer than MaxExpires are shortened, shorter than MinExpires (and
//     not 0) refused with 423 and Min-Expires.
//   - Bindings: several contacts per AOR with q; Expires 0 removes one;
//     "Contact: *" with Expires 0 (and nothing else) removes all, 400
//     otherwise; Call-ID/CSeq ordering of §10.3 step 7 (an out-of-order
//     request is 500); the 200 lists every current binding with its
//     remaining expires and a Date header. Beyond MaxContacts per AOR or
//     MaxBindings in all: 503 with Retry-After.
//   - The in-memory index is authoritative for reads; bindings are written
//     to the database (models.Binding, outside the audited path: no change
//     event or audit row per REGISTER) in batches every FlushInterval and
//     on shutdown, read back at start (they survive a restart) and swept
//     when expired. A crash loses at most the last FlushInterval of churn.
//   - The source address and transport of a REGISTER are stored with the
//     binding (rport, RFC 3581) and used to reach the contact: requests
//     proxied to it go to that address, over the same TCP/TLS connection
//     when it is still open.
//   - UDP REGISTERs are answered statelessly on a fast path ahead of sipgo's
//     transaction layer (fastpath.go), by one reader goroutine per CPU
//     (udp.go) that hand sipgo every other datagram; a retransmission
//     (same branch and CSeq) is processed again and answered alike. TCP
//     and TLS go through sipgo's transactions.
//   - Proxy (§16): a request to an AOR goes to its contacts, highest q
//     first, the next on failure; this proxy's Via on top (rport/received
//     filled in below it), Max-Forwards decremented, loops refused (482),
//     INVITEs record-routed so the dialog's ACK and BYE come through it.
//     404 for an unknown AOR, 480 without binding, 405 for other methods
//     addressed to the registrar itself, OPTIONS to it 200. It relays only
//     to its own AORs and to contacts registered with it: no open relay.
//     Out of a dialog, a sender outside Options.Trusted gets 407 and must
//     authenticate as its From user before any AOR is looked up (so the
//     404/480 distinction is only told to users of the served domains).
//   - Malformed input is answered 400 or dropped, never a crash (RFC 4475,
//     fuzzed). sipgo's logs never carry a SIP message or a quoted header
//     line (redactHandler).
package registrar

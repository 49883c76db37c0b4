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
//   - Reads are served from an in-memory index; bindings are written to
//     the database (models.Binding, outside the audited path: no change
//     event or audit row per REGISTER) in batches every FlushInterval and
//     on shutdown, read back at start (they survive a restart) and swept
//     when expired. A crash loses at most the last FlushInterval of churn.
//   - Several replicas on one PostgreSQL share the location service: a
//     flush writes only the contacts this replica changed, one by one
//     (upsert or delete by AOR and contact, ordered by when each REGISTER
//     was accepted: a stored row registered later, or of the same Call-ID
//     with a higher CSeq, is kept), so that two replicas writing one AOR
//     merge, and a late flush or a delete made on a stale view never
//     undoes a newer registration; each flush announces the
//     AORs it wrote in one NOTIFY (models.BindingsChannel, chunked under
//     PostgreSQL's payload limit), and the other replicas read those AORs
//     back into their index (Options.Subscribe; everything after a
//     reconnect). A binding is thus listed, proxied to and unregistered
//     (Unregister writes before it returns) on every replica, a flush
//     interval and a notification after it was made. A contact changed
//     here and not yet written keeps its local state over a read-back;
//     its AOR is read again once the write is done.
//   - The source address and transport of a REGISTER are stored with the
//     binding (rport, RFC 3581) and used to reach the contact: requests
//     proxied to it go to that address, over the same TCP/TLS connection
//     when it is still open. A TCP/TLS binding made at another replica
//     (or before a restart) has its connection elsewhere: the proxy opens
//     a connection to the Contact's own address instead (where a phone
//     that is not behind NAT listens), and tries the next contact if that
//     fails. A UDP binding made elsewhere is sent its requests from this
//     replica's socket to its received address, which a NAT that filters
//     by remote address drops unless the replicas share one address.
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
//     fuzzed). On TCP and TLS messages are framed by their Content-Length
//     ahead of sipgo (framing.go, RFC 3261 §18.3): a message without one,
//     with several or with a bad value cannot be delimited and is
//     answered 400 (413 beyond 64 KiB) before the connection is closed,
//     as is one whose headers end in a bare-LF empty line (sipgo's stream
//     parser ends them only at an empty CRLF line);
//     an unsupported Request-URI scheme is answered 416 on every
//     transport. sipgo's logs never carry a SIP message or a quoted header
//     line (redactHandler).
package registrar

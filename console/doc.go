// Package console is fsplane's operator web console at /ui/: server-rendered
// pages (html/template, assets embedded) for trunks with their live gateway
// state, extensions, registrations, providers and ranges, the firewall
// preview, FreeSWITCH nodes and the audit log.
//
// Contract:
//   - One authentication path. POST /ui/login takes an API token (form
//     field "token") and checks it with the auth.Verifier the API and
//     xml-curl use; every later request checks the token again through the
//     same verifier (VerifyDigest), so an expired token, or one revoked
//     behind fsplane's back, ends the session within the verifier's cache
//     TTL; revoking it through fsplane (API or CLI) deletes its sessions at
//     once. After 5 failed logins from one source (an IPv4 address, an IPv6
//     /64) a login from it is refused with 429 and Retry-After, before its
//     token is looked at, until the allowance refills (one try per 20 s;
//     throttle.go). A submitted token is never logged.
//   - Sessions live in the database (models.ConsoleSession), so a restart
//     logs nobody out and every replica on one PostgreSQL serves every
//     session without sticky routing. The cookie holds only a random
//     session id; the row is keyed by its SHA-256 and names the token by
//     its digest: neither the id nor the token is stored. There is no
//     cache: every request reads its session's row, so a logout on one
//     replica ends the session on all at once (a live-update stream on
//     another replica ends at its next heartbeat, within 15 s). The cookie
//     is HttpOnly, SameSite=Strict, Path=/ui/, Secure when the request came
//     over TLS (or Options.SecureCookies). Sessions end after IdleTimeout
//     without a request (counted to within a minute: the idle end is
//     written at most once a minute) and MaxAge after login, and at
//     logout; ended rows are deleted when met and swept at each login.
//     Messages shown once after a write live in the row too.
//   - Every form, the login form included, carries a CSRF token that a
//     POST must echo ("csrf"); a POST without it is refused with 403 before
//     anything else happens.
//   - No second copy of validation: every write is a request to the API
//     handler (Options.API) in-process, as the session's verified principal
//     (auth.WithPrincipal: the session keeps no token text to send as
//     bearer), so scopes, validation, versions and the audit log are the
//     API's own.
//     A 422's "fields" are shown beside the form fields they name. Reads go
//     the same way, but for the live gateway state and the firewall diff,
//     which read the store and ESL directly after the session's scopes were
//     checked.
//   - What a page shows follows the token's scopes: without sip:write no
//     form or button that writes is rendered, and the API refuses the write
//     anyway.
//   - Live updates are server-sent events at /ui/events: "change" for every
//     committed change (the events.Bus feed, OnChange) and "gateway" when a
//     gateway's state on a node changes: pushed when FreeSWITCH reports it
//     (sofia::gateway_state through esl.Manager.OnGatewayState), and read
//     through ESL (GatewayStatus) every GatewayPoll as a net while at least
//     one browser listens. Without JavaScript every page still reads
//     right; reloading shows the news.
//   - Pages are readable without JavaScript; the script (static/console.js,
//     ours, no third-party code) only adds the live updates, copy buttons
//     and the preset form's conveniences. A Content-Security-Policy allows
//     nothing but this origin's own script and style.
package console

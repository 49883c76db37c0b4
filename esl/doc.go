// Package esl keeps every configured FreeSWITCH node connected over its
// event socket and brings it up to date with fsplane's data, so a change
// made through the API reaches FreeSWITCH without anyone typing fs_cli.
//
// # Contract
//
//   - Nothing is lost. Every committed write already appends a
//     models.ChangeEvent in its own transaction (a transactional outbox);
//     this package persists, per node, a cursor: the change up to which
//     every command reached that node (table esl_cursors, migration
//     0003_esl_outbox). Commands are derived from the change log after the
//     cursor, so changes made while a node, or fsplane itself, was down are
//     applied when both are back. OnChange only wakes the node loops; it
//     never blocks and never writes. The log is also polled every
//     HealthInterval, in case a wake-up was missed (or another replica
//     wrote). On PostgreSQL a transaction can take a lower ID and commit
//     after a higher one: the cursor stops below a missing ID until it
//     turns up or GapGrace passes.
//   - Why a cursor, not a table of commands: the commands are a function of
//     the changes and of the node (which trunks belong to it, which
//     profiles it runs), so storing the changes once and the progress per
//     node is both smaller and immune to the crash between "commit" and
//     "enqueue" that a separately written outbox has. Several replicas
//     share the cursors; each applies what it has not seen applied, and
//     every command is idempotent (killgw of an absent gateway, a second
//     rescan or reloadacl do no harm), so duplicates are harmless.
//   - Minimal commands, coalesced. A planner folds changes into sets: a new
//     trunk → `sofia profile P rescan`; a changed trunk → `sofia profile P
//     killgw NAME`, then rescan (of the old and the new profile when it
//     moved); deleted or disabled → killgw; a provider range → `reloadacl`;
//     a profile's binding (IPs, ports, TLS, WSS) → `sofia profile P
//     restart` when Options.AllowRestart, never within the profile's first
//     10 seconds (tracked, and FreeSWITCH's own refusal is honoured); other
//     profile settings → rescan; a new profile → `sofia profile P start`; an
//     extension changed or deleted → `xml_flush_cache id USER DOMAIN` (a
//     cacheable directory entry would otherwise outlive it); description-only
//     edits → nothing. Commands go out once the changes have been quiet for
//     CoalesceWindow (at most CoalesceMax): a hundred edits in a burst give
//     one killgw per gateway and one rescan per profile.
//   - A registering trunk is re-added only after FreeSWITCH deleted the old
//     gateway: the rescan waits for its sofia::gateway_delete event
//     (DeleteWait at most; a delete that arrives later triggers one more
//     rescan). Measured: an immediate rescan lets the old gateway's
//     un-REGISTER, with the same Contact, delete the new binding at the
//     provider about one time in four.
//   - Every (re)connect syncs the node, which also heals FreeSWITCH having
//     started while fsplane was down: `module_exists mod_sofia` → `load
//     mod_sofia` when false; `sofia xmlstatus` → `sofia profile P start` for
//     each missing profile; a rescan of every profile with enabled trunks
//     for this node; `reloadacl`; then what the change log still owes.
//   - Replies are checked (+OK, -ERR, "Reload XML [Success]" and "+OK scan
//     complete" for rescan, "Invalid Profile", "Command not found"). A step
//     FreeSWITCH refuses stays owed and is retried with capped, jittered
//     exponential backoff; it shows in NodeStatus (Pending, LastError) and
//     in the metrics, and the cursor does not move past it.
//   - Node scoping: a trunk with Hostnames is loaded only on the nodes whose
//     FreeSWITCH switchname (`api switchname`, the "hostname" mod_xml_curl
//     sends) is listed; other nodes get no command for it. Until a node's
//     switchname is known every trunk is assumed to belong to it (the extra
//     commands are harmless).
//
// # Connections
//
// Each node has its own connection, dialled with DialTimeout and
// authenticated within AuthTimeout; a silent server, a wrong password and an
// ACL rejection (text/rude-rejection) each end in an error, never a hang.
// It reconnects forever with capped exponential backoff and jitter. Commands
// on a connection are serialised and carry a deadline; one that misses it
// drops the connection (its late reply would be taken for the next
// command's). A periodic `api status` within HealthTimeout detects a
// half-dead connection. Panics in a node's loop or reader are recovered,
// counted and end only that connection.
//
// The event socket is spoken directly (conn.go, wire.go) rather than through
// github.com/percipia/eslgo v1.5.0, which cannot be made safe from outside:
// its Dial waits for the auth/request greeting on a bare channel receive
// (inbound.go:55) that no context or deadline reaches, so a silent server or
// a rude rejection (for which it has no channel, ending its receive loop)
// blocks it forever and leaks the socket; its receive loop sends on the
// response channel map outside the lock that Close takes (connection.go:299,
// the EOF branch of receiveLoop: issue #46), a panic on a goroutine the
// caller cannot recover; it delivers each event on its own goroutine, losing
// their order; and it cannot be handed a net.Conn to work around any of
// this. The protocol is small: frames of "Name: value" lines and a
// Content-Length body (mod_event_socket.c).
//
// # Safety
//
// Commands are built only from values that passed names.Profile,
// names.Gateway or the user/domain patterns (no space, CR or LF); a value
// that does not pass is refused, counted and reported, never sent. As a last
// line, the connection refuses to write any command line containing CR or
// LF. Gateway parameters (proxy, realm, …) never reach the event socket: they
// travel in xml-curl's XML.
//
// # Not handled
//
// A deleted profile keeps running until FreeSWITCH restarts or an operator
// stops it, and so does the old name of a renamed one (stopping drops
// calls); both are logged and counted as operator actions. A binding change
// while restarts are not allowed is likewise only reported.
package esl

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
//     turns up, or every transaction that could hold it has ended (the
//     snapshot horizon, events.Horizon), or GapGrace passes.
//   - Why a cursor, not a table of commands: the commands are a function of
//     the changes and of the node (which trunks belong to it, which
//     profiles it runs), so storing the changes once and the progress per
//     node is both smaller and immune to the crash between "commit" and
//     "enqueue" that a separately written outbox has. Every command is
//     idempotent (killgw of an absent gateway, a second rescan or reloadacl
//     do no harm), so the few a crash between a command and its cursor
//     update makes a successor send again are harmless.
//   - One replica drives the nodes. Several replicas share the cursors,
//     and serve runs the Manager only while its replica leads (package
//     leader): each Run is a term, and a Manager may Run again after a
//     previous Run returned. A term starts from the database: cursors are
//     read again (another replica may have moved them), the previous
//     term's plans and waits are dropped, and each node is synced on
//     connect; so a new leader continues where the old one's cursor
//     stopped. While a Manager does not run, its nodes show as "standby",
//     not "down".
//   - Minimal commands, coalesced. A planner folds changes into sets: a new
//     trunk → `sofia profile P rescan`; a changed trunk → `sofia profile P
//     killgw NAME`, then rescan (of the old and the new profile when it
//     moved); deleted or disabled → killgw; a provider range → `reloadacl`;
//     a profile's binding (IPs, ports, TLS, WSS) → `sofia profile P
//     restart` when Options.AllowRestart, never within the profile's first
//     10 seconds (tracked, and FreeSWITCH's own refusal is honoured); other
//     profile settings → rescan; replaced TLS certificate files (field
//     tls_cert) → `reloadcert`, or on a FreeSWITCH without it a restart when
//     allowed, else NodeStatus.RestartNeeded; a new profile → `sofia profile P start`; an
//     extension changed or deleted → `xml_flush_cache id USER DOMAIN` (a
//     cacheable directory entry would otherwise outlive it); description-only
//     edits → nothing. Commands go out once the changes have been quiet for
//     CoalesceWindow (at most CoalesceMax): a hundred edits in a burst give
//     one killgw per gateway and one rescan per profile.
//   - A rescan is mod_sofia's only way to add a gateway, and it reads every
//     gateway of the profile again: FreeSWITCH logs "Ignoring duplicate
//     gateway 'X'" for each one it already runs. That is harmless (the
//     changed ones were removed with killgw first) and expected on every
//     rescan; the README tells operators so.
//   - A profile binding changed while the node was not connected is decided
//     when it connects: `api status` gives FreeSWITCH's uptime, and a
//     FreeSWITCH that started after the change runs the new binding (no
//     restart, no "operator action needed"). Otherwise, and when the uptime
//     cannot be read, it is treated as a change to a running profile.
//   - A registering trunk is re-added only after FreeSWITCH deleted the old
//     gateway: the rescan waits for its sofia::gateway_delete event
//     (DeleteWait at most; a delete that arrives later triggers one more
//     rescan). Measured: an immediate rescan lets the old gateway's
//     un-REGISTER, with the same Contact, delete the new binding at the
//     provider about one time in four.
//   - Every (re)connect syncs the node, which also heals FreeSWITCH having
//     started while fsplane was down (`switchname` and `status` first, for
//     trunk scoping and FreeSWITCH's uptime): `module_exists mod_sofia` → `load
//     mod_sofia` when false; `sofia xmlstatus` → `sofia profile P start` for
//     each missing profile; a rescan of every profile with enabled trunks
//     for this node; `reloadacl`; then what the change log still owes.
//   - Replies are checked (+OK, -ERR, "Reload XML [Success]" and "+OK scan
//     complete" for rescan, "Invalid Profile", "Command not found"). A step
//     FreeSWITCH refuses stays owed and is retried with capped, jittered
//     exponential backoff; it shows in NodeStatus (Pending, LastError) and
//     in the metrics, and the cursor does not move past it. LastError is the
//     current problem: once the node is connected, synced and owes nothing
//     it moves to PreviousError (with its time). A name refused for the
//     command line is no problem a retry solves: it stays in LastError
//     until another error replaces it.
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
// It reconnects forever with capped exponential backoff and jitter
// (ReconnectMin to ReconnectMax, 500 ms to 30 s by default). A backoff that
// grows to seconds would leave a FreeSWITCH that came back unmanaged for
// that long, so while the node does not accept TCP connections at all
// (ErrUnreachable: refused, unreachable, no answer) a bare TCP connect
// probes it every ProbeInterval (1 s) and the next attempt starts as soon
// as one succeeds: fsplane is connected about ProbeInterval after the event
// socket accepts again (BenchmarkReconnectDelay), at the cost of one SYN a
// second to a node that is down. A node that accepts but refuses (password,
// ACL) or hangs is not probed: the backoff alone keeps it from being
// hammered. Commands
// on a connection are serialised and carry a deadline; one that misses it
// drops the connection (its late reply would be taken for the next
// command's). A periodic `api status` within HealthTimeout detects a
// half-dead connection. Panics in a node's loop or reader are recovered,
// counted and end only that connection.
//
// # Time, and where the parts live
//
// A node is one type in several files: lifecycle.go (connect, session,
// reconnect, probes), cursor.go (the change log, gaps, the cursor),
// executor.go (when the plan runs, and running it over a commander: a
// connection, or a test's fake without a socket), events.go (FreeSWITCH's
// events, the wait for gateway deletes), gwstatus.go (gateway status and
// its cache: state, call counters, the last REGISTER reply an event
// carried), registrations.go (FreeSWITCH's own registrations and
// flush_inbound_reg); planner.go turns changes into the plan. Every timer of the
// loop comes from Options.Time (a Clock), so a test moves time by hand
// instead of sleeping; deadlines on socket I/O stay on real time.
//
// # eslgo, and what stands in front of it
//
// Commands, replies, authentication and event parsing go through
// github.com/percipia/eslgo v1.5.0 (the library fsplane is built on, and
// the only version the module proxy serves). eslgo dials an address itself
// and cannot be handed a connection, so fsplane puts a relay between it and
// FreeSWITCH: fsplane dials FreeSWITCH, reads the greeting, then lets eslgo
// dial a unix socket in a fresh 0700 directory (nobody else can take that
// one connection, as anyone could take a loopback port), replays the
// greeting to it and relays whole frames both ways. The relay costs two
// local socket hops per command (about 60 µs; BenchmarkAPIRoundTrip). What
// it works around, in eslgo's files:
//
//   - Dial (inbound.go:47) net.Dials without a timeout (:48) and then waits
//     for auth/request on a bare channel receive (:55) that no deadline
//     reaches; a text/rude-rejection has no channel at all
//     (connection.go:345 ends its receive loop, :310). fsplane dials with
//     DialTimeout and reads the greeting itself within AuthTimeout, so a
//     silent server times out and a rejection fails at once; eslgo then
//     gets its greeting at once, and its auth is bounded by AuthTimeout
//     (:56) and by the context fsplane gives it.
//   - SendCommand (connection.go:123) takes whichever reply arrives next
//     (:156-171): commands are serialised, each with a deadline; one that
//     misses it ends the connection. The relay also counts replies against
//     commands: one nobody asked for is a protocol error.
//   - IsOk (response.go:63) checks only a leading "+OK", and GetHeader
//     URL-decodes a reply, giving "" for one that does not decode (:93):
//     replies are checked by this package on the raw body and header
//     ("Reload XML [Success]", "Invalid Profile", ...).
//   - A frame eslgo has no channel for ends its receive loop without a word
//     (connection.go:345, :310), an auth/request after the greeting makes
//     its authLoop send a command of its own (inbound.go:90), a negative
//     Content-Length panics its goroutines (response.go:52, event.go:52),
//     and an event it cannot parse it drops (event.go:39). The relay
//     forwards only replies and plain events that eslgo's own parser
//     accepts; a disconnect notice, a rejection or a broken frame end the
//     connection in the relay, with the reason kept for Err.
//   - eslgo calls each event listener on a goroutine of its own
//     (connection.go:211), losing their order. The relay notes each event's
//     Event-Sequence as it forwards it; a sequencer hands the events to the
//     node in that order (an event eslgo lost anyway, which it does only
//     when its event loop stalls for 5 s, connection.go:332, is given up
//     after 6 s). A full backlog holds the relay back, never eslgo's loops.
//   - eslgo's Close is unsafe after a successful Dial: it empties its
//     channel map under a lock (connection.go:190-201) that its disconnect
//     and auth loops do not take to read it (inbound.go:79, :93), a data
//     race, and its receive loop's EOF branch sends on a channel from that
//     map without the lock (connection.go:295-308; issue #46, a send on a
//     closed channel, a panic on eslgo's goroutine that nothing can
//     recover). fsplane never calls it: it closes FreeSWITCH's side, lets
//     the command in flight finish, ends eslgo's context (its loops
//     return), and only then closes the relay, so the receive loop reads EOF
//     with no one left to tell and returns. eslgo's own socket, which only
//     Close would close, is released by the garbage collector (its peer is
//     gone by then). The connection's Close returns when all of this is
//     done; a test makes fifty connections end in every way and finds no
//     goroutine and no descriptor left.
//   - Panics on fsplane's goroutines inside eslgo (Dial, SendCommand) and in
//     event handling are recovered and end only that connection
//     (ErrPanic). A dead connection is noticed by the relay (FreeSWITCH's
//     side ended) and, for what no socket reports, by the periodic health
//     check.
//
// # Safety
//
// Commands are built only from values that passed names.Profile,
// names.Gateway or the user/domain patterns (no space, CR or LF); a value
// that does not pass is refused, counted and reported, never sent. A
// registration is flushed only by a Call-ID FreeSWITCH itself listed for
// that profile a moment before, matched exactly, that passes names.Token,
// is printable ASCII and is not "reboot" (which cmd_profile reads as its
// flag), and that matches no other listed row the way
// sofia_reg_expire_call_id matches it. As a last
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

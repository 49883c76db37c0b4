// Package providers holds fsplane's built-in SIP provider presets (Plusnet
// and 1&1) and Seed, which gives a fresh database the two default sofia
// profiles and the presets' source ranges.
//
// A preset encodes what operators learnt the hard way (see the runbook in
// testdata/runbook.txt): Plusnet authenticates by source IP, uses DNS
// round-robin and therefore needs a fixed outbound proxy; 1&1 must be
// reached over IPv6 with the realm sip.1und1.de, and refuses IPv4 from some
// hosting networks with 503. Creating a trunk from a preset needs only a
// name, the numbers and, for 1&1, the credentials.
//
// Contract:
//   - Presets are values: Builtin returns fresh copies every call, so a caller
//     cannot change what another caller sees.
//   - Seed is idempotent and safe to run at every start and from several
//     replicas at once: it creates the default profiles only when there is
//     no profile at all, and a preset's ranges only when that provider has
//     none, so an operator's edits are never undone.
package providers

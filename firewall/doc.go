// Package firewall turns provider ranges and profile settings into host
// firewall rules (UFW, nftables), the FreeSWITCH ACL and a JSON rule list.
// It does no I/O of its own and does not log; the callers (the API, xml-curl,
// `fsplane firewall`) load the rows and write the result.
//
// # Input
//
// A provider range (models.ProviderRange) admits its CIDR to its ports
// ("5060/udp", "5061/tcp", "10000:10060/udp"); a range with no ports admits
// DefaultPort, SIP signalling on 5060/udp. CIDRs are normalised
// (NormalizeCIDR: host bits cleared, IPv4-mapped IPv6 unmapped); a prefix of
// length 0 is refused. Provider names must match ValidateProvider's strict
// pattern, so a name can sit in a single-quoted shell word or a comment
// without escaping; "general" is reserved. Profiles add the general rules,
// open to any source: the WebRTC port of WSSBinding (tcp) and each
// profile's RTPPortMin:RTPPortMax (udp). Every invalid value is refused
// with ErrInvalid and named; NewPolicy reports all of them at once.
//
// # Merging
//
// Per family (IPv4 and IPv6 never mix), duplicate and contained prefixes
// merge (MergePrefixes); that never widens anything, so UFW rules and ACL
// nodes stay the ranges an operator stored. UFW rules merge per provider
// and port; a network two providers share on one port is one rule naming
// both, because UFW keeps a single comment per rule. The nftables sets also
// join sibling prefixes (AggregatePrefixes), since nft interval sets refuse
// overlaps and the kernel does not care who owns an address.
//
// # UFW
//
// One `ufw allow` line per rule, each with the comment
// "fsplane:<provider>[+<provider>…]" or "fsplane:general", sorted, so the
// output is deterministic and a re-run is a no-op. DiffUFW compares the
// policy with `ufw status` (or `ufw show added`) output: missing rules to
// add, rules UFW has without fsplane's comment to update (UFW rewrites the
// comment in place), fsplane-marked rules no longer generated to delete,
// and fsplane-marked rules of a shape fsplane never writes to review.
//
// # nftables and how it layers
//
// Policy.NFT is one `nft -f` ruleset confined to table inet fsplane. It
// declares and deletes the table before defining it, so the same file
// loads on a host without the table and re-loads atomically on one with
// it; no other table is flushed or touched. Its input chain has priority
// filter - 10 and policy accept. It accepts loopback, established and
// related traffic and the general ports; for each provider port it accepts
// the port's IPv4 and IPv6 source sets and drops every other source. It
// drops nothing else: traffic to ports no provider range names passes on
// to the operator's own tables unchanged.
//
// In nftables an accept ends only the current base chain; every other base
// chain on the hook still sees the packet, and a drop anywhere is final. So
// this table only narrows: it decides who may reach the SIP ports and
// leaves the default to the operator. An operator with a default-drop
// table of their own opens the SIP, WebRTC and RTP ports there (for
// example `udp dport 5060 accept`), and fsplane's table restricts the SIP
// ports to the providers. A ruleset rendered from one provider's ranges
// replaces the whole table, dropping the others' SIP traffic: export nft
// for all providers.
//
// # FreeSWITCH ACL
//
// ACLConfig builds acl.conf's sip-gateways list (default deny, one allow
// node per merged range) for the xml-curl handler; ACL is the same and
// refuses invalid rows, for Export. One code path serves both.
package firewall

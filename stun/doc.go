// Package stun is fsplane's STUN service: a Binding responder (RFC 8489,
// RFC 5780, and RFC 3489's classic clients) and a NAT-type probe.
//
// # Responder
//
// The responder listens on up to four UDP sockets built from a primary
// address A1:P1 and an optional secondary A2:P2 (RFC 3489's model; A1:P2
// and A2:P1 follow), plus TCP on A1:P1. Socket i answers CHANGE-REQUEST
// from socket i^1 (change IP), i^2 (change port) or i^3 (both), held in a
// fixed array so the hot path has no lookup. The contract:
//
//   - A request with the magic cookie gets XOR-MAPPED-ADDRESS,
//     MAPPED-ADDRESS, SOFTWARE and FINGERPRINT; with a secondary also
//     RESPONSE-ORIGIN and OTHER-ADDRESS (RFC 5780). Without a secondary
//     OTHER-ADDRESS is never advertised.
//   - A request without the cookie (RFC 3489) gets MAPPED-ADDRESS,
//     SOURCE-ADDRESS and, with a secondary, CHANGED-ADDRESS, and nothing
//     else: classic clients reject attributes they do not know below
//     0x8000, so never XOR-MAPPED-ADDRESS. Its 128-bit transaction ID is
//     echoed whole.
//   - A CHANGE-REQUEST the configuration cannot honour (no such socket,
//     or any change over TCP) gets 420 naming CHANGE-REQUEST in
//     UNKNOWN-ATTRIBUTES, never an answer from the wrong socket.
//   - Unknown comprehension-required attributes get 420 with
//     UNKNOWN-ATTRIBUTES. RESPONSE-ADDRESS and PADDING are not
//     implemented and so count as unknown: an answer goes only to the
//     request's source address and is never padded (no reflection
//     amplification). RESPONSE-PORT (RFC 5780 §7.5, UDP with the cookie)
//     is honoured: it changes only the port the answer goes to.
//     USERNAME and MESSAGE-INTEGRITY(-SHA256) are understood and ignored:
//     the service has no credentials (RFC 8489 §9).
//   - Malformed packets (bad header, length, attribute layout, a wrong
//     FINGERPRINT), responses, indications and other methods are dropped
//     without a reply.
//   - A per-source-address token bucket drops what exceeds the rate.
//   - Metrics (namespace fsplane, subsystem stun): requests by kind,
//     responses by class, drops by reason, each per socket.
//
// Answering a request allocates nothing (TestHandleAllocs, and
// TestBatchAllocs for the Linux path that reads and writes UDP in batches
// with recvmmsg/sendmmsg).
//
// # Probe
//
// Probe runs the RFC 3489 §10.1 test sequence and, when the server
// advertises a second address, the RFC 5780 §4.3/§4.4 mapping and
// filtering tests, and names one of the NAT types in NATType.
package stun

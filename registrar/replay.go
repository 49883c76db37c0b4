package registrar

import (
	"strings"
	"sync"
	"time"
)

// maxNonceCounts bounds the nonces remembered; only nonces that
// authenticated a request get in, so reaching it means an unusual number
// of registrations within one nonce lifetime (the oldest are forgotten).
var maxNonceCounts = 200_000 // a variable for the tests

// nonceCounts remembers, per nonce and user, the highest nonce count (nc)
// that authenticated a request: a captured Authorization header replayed
// with the same or a lower nc is refused, so it cannot re-register
// somebody else's contact for the rest of the nonce's life. Nonces stay
// stateless for the challenge; this memory is per replica (a replay at
// another replica within the nonce lifetime is not caught).
type nonceCounts struct {
	mu   sync.Mutex
	last map[nonceUser]nonceCount
	// order is every write to last, oldest first from head: forgetting
	// takes the oldest in constant time (a scan of the whole map per
	// registration once it was full made the registrar slow to a crawl
	// after maxNonceCounts registrations within a nonce lifetime).
	order []nonceSeen
	head  int
}

// nonceUser is the key: looked up without building a string, stored
// with copies (not the request's strings, which would keep the message).
type nonceUser struct{ nonce, user string }

type nonceCount struct {
	nc   uint64
	txn  txn // the request nc authenticated
	seen time.Time
}

// txn names a request: its Call-ID and CSeq (number and method).
type txn struct {
	callID string
	cseq   uint32
	method string
}

type nonceSeen struct {
	key  nonceUser
	seen time.Time
}

// fresh records nc for nonce+user and reports whether it is higher than
// every nc seen with them before, or the same nc for the same request
// (txn: Call-ID and CSeq; a UDP retransmission, which the Call-ID/CSeq
// ordering of §10.3 then answers as such). Counts older than ttl are
// forgotten (their nonce is stale anyway), and the oldest beyond
// maxNonceCounts.
func (n *nonceCounts) fresh(nonce, user string, nc uint64, t txn, now time.Time, ttl time.Duration) bool {
	k := nonceUser{nonce, user}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last == nil {
		n.last = map[nonceUser]nonceCount{}
	}
	if old, ok := n.last[k]; ok && (nc < old.nc || nc == old.nc && t != old.txn) {
		return false
	} else if ok && nc == old.nc {
		return true
	}
	k = nonceUser{strings.Clone(nonce), strings.Clone(user)}
	t.callID, t.method = strings.Clone(t.callID), strings.Clone(t.method)
	n.last[k] = nonceCount{nc: nc, txn: t, seen: now}
	n.order = append(n.order, nonceSeen{key: k, seen: now})
	n.forget(now, ttl)
	return true
}

// forget drops the oldest counts while they are older than ttl or too
// many; a write that a later one for the same key replaced is skipped.
func (n *nonceCounts) forget(now time.Time, ttl time.Duration) {
	for n.head < len(n.order) {
		e := n.order[n.head]
		if len(n.last) <= maxNonceCounts && now.Sub(e.seen) <= ttl {
			break
		}
		n.order[n.head] = nonceSeen{}
		n.head++
		if v, ok := n.last[e.key]; ok && v.seen.Equal(e.seen) {
			delete(n.last, e.key)
		}
	}
	if n.head > len(n.order)/2 && n.head > 1024 {
		n.order = n.order[:copy(n.order, n.order[n.head:])]
		n.head = 0
	}
}

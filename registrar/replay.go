package registrar

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
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
//
// It holds no pointers: nonce and user, and the request, are kept as
// keyed 64-bit hashes (two for the key: 128 bits), so the garbage
// collector does not scan the up to maxNonceCounts entries on every
// cycle (they were the largest live structure under load) and no
// request string is kept for the nonce lifetime.
type nonceCounts struct {
	mu   sync.Mutex
	last map[nonceKey]nonceCount
	// order is every write to last, oldest first from head: forgetting
	// takes the oldest in constant time (a scan of the whole map per
	// registration once it was full made the registrar slow to a crawl
	// after maxNonceCounts registrations within a nonce lifetime).
	order []nonceSeen
	head  int
}

// nonceKey is (nonce, user), hashed.
type nonceKey struct{ a, b uint64 }

type nonceCount struct {
	nc   uint64
	txn  uint64 // the request nc authenticated, hashed (txn.hash)
	seen int64  // Unix nanoseconds
}

// txn names a request: its Call-ID and CSeq (number and method) and, when
// req is set, everything a replay could change that the digest response
// does not cover: the source address (where the binding is reached), the
// top Via branch, the Request-URI (the proxy's target) and the Contact
// and Expires headers. A retransmission is the same datagram from the
// same source, so it keeps all of them; a captured REGISTER resent with
// another Contact, or from another address, does not.
type txn struct {
	callID string
	cseq   uint32
	method string
	req    *sip.Request
}

type nonceSeen struct {
	key  nonceKey
	seen int64
}

// The hash seeds are random per process: nobody can make up two requests
// or nonces with the same hash.
var (
	seedA, seedB, seedTxn = maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed()
)

func keyOf(nonce, user string) nonceKey {
	var h maphash.Hash
	h.SetSeed(seedA)
	h.WriteString(nonce)
	h.WriteByte(0)
	h.WriteString(user)
	a := h.Sum64()
	h.SetSeed(seedB)
	h.WriteString(nonce)
	h.WriteByte(0)
	h.WriteString(user)
	return nonceKey{a, h.Sum64()}
}

func (t txn) hash() uint64 {
	var h maphash.Hash
	h.SetSeed(seedTxn)
	h.WriteString(t.callID)
	h.WriteByte(0)
	h.WriteString(t.method)
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(t.cseq>>24), byte(t.cseq>>16), byte(t.cseq>>8), byte(t.cseq)
	h.Write(n[:])
	if r := t.req; r != nil {
		h.WriteByte(0)
		h.WriteString(r.Source())
		if v := r.Via(); v != nil {
			br, _ := v.Params.Get("branch")
			h.WriteByte(0)
			h.WriteString(br)
		}
		u := &r.Recipient
		h.WriteByte(0)
		h.WriteString(u.Scheme)
		h.WriteByte(0)
		h.WriteString(u.User)
		h.WriteByte(0)
		h.WriteString(u.Host)
		n[0], n[1], n[2], n[3] = byte(u.Port>>24), byte(u.Port>>16), byte(u.Port>>8), byte(u.Port)
		h.Write(n[:])
		for _, hd := range r.Headers() {
			if headerIs(hd, "contact") || headerIs(hd, "m") || headerIs(hd, "expires") {
				h.WriteByte(0)
				hd.StringWrite(&h) // without a string per header
			}
		}
	}
	return h.Sum64()
}

// fresh records nc for nonce+user and reports whether it is higher than
// every nc seen with them before, or the same nc for the same request
// (t: a UDP retransmission, which the Call-ID/CSeq ordering of §10.3 then
// answers as such). Counts older than ttl are forgotten (their nonce is
// stale anyway), and the oldest beyond maxNonceCounts.
func (n *nonceCounts) fresh(nonce, user string, nc uint64, t txn, now time.Time, ttl time.Duration) bool {
	k, th, at := keyOf(nonce, user), t.hash(), now.UnixNano()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last == nil {
		n.last = map[nonceKey]nonceCount{}
	}
	if old, ok := n.last[k]; ok {
		switch {
		case nc < old.nc || nc == old.nc && th != old.txn:
			return false
		case nc > old.nc:
			// Aged from the nonce's first use, not written to order
			// again: its nonce is stale by the time the count is
			// forgotten (it was issued before that use), and order
			// grows only with new nonces, not with every request a
			// client makes with one.
			n.last[k] = nonceCount{nc: nc, txn: th, seen: old.seen}
		}
		return true
	}
	n.last[k] = nonceCount{nc: nc, txn: th, seen: at}
	n.order = append(n.order, nonceSeen{key: k, seen: at})
	n.forget(at, ttl)
	return true
}

// forget drops the oldest counts while they are older than ttl or too
// many; a write that a later one for the same key replaced is skipped.
func (n *nonceCounts) forget(now int64, ttl time.Duration) {
	for n.head < len(n.order) {
		e := n.order[n.head]
		if len(n.last) <= maxNonceCounts && now-e.seen <= int64(ttl) {
			break
		}
		n.head++
		if v, ok := n.last[e.key]; ok && v.seen == e.seen {
			delete(n.last, e.key)
		}
	}
	if n.head > len(n.order)/2 && n.head > 1024 {
		n.order = n.order[:copy(n.order, n.order[n.head:])]
		n.head = 0
	}
}

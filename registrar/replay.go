package registrar

import (
	"sync"
	"time"
)

// maxNonceCounts bounds the nonces remembered; only nonces that
// authenticated a request get in, so reaching it means an unusual number
// of registrations within one nonce lifetime (the oldest are forgotten).
const maxNonceCounts = 200_000

// nonceCounts remembers, per nonce and user, the highest nonce count (nc)
// that authenticated a request: a captured Authorization header replayed
// with the same or a lower nc is refused, so it cannot re-register
// somebody else's contact for the rest of the nonce's life. Nonces stay
// stateless for the challenge; this memory is per replica (a replay at
// another replica within the nonce lifetime is not caught).
type nonceCounts struct {
	mu   sync.Mutex
	last map[string]nonceCount
}

type nonceCount struct {
	nc   uint64
	txn  string // Call-ID and CSeq of the request nc authenticated
	seen time.Time
}

// fresh records nc for nonce+user and reports whether it is higher than
// every nc seen with them before, or the same nc for the same request
// (txn: Call-ID and CSeq; a UDP retransmission, which the Call-ID/CSeq
// ordering of §10.3 then answers as such).
func (n *nonceCounts) fresh(nonce, user string, nc uint64, txn string, now time.Time, ttl time.Duration) bool {
	k := nonce + "\x00" + user
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last == nil {
		n.last = map[string]nonceCount{}
	}
	if old, ok := n.last[k]; ok && (nc < old.nc || nc == old.nc && txn != old.txn) {
		return false
	} else if ok && nc == old.nc {
		return true
	}
	if len(n.last) >= maxNonceCounts {
		for key, v := range n.last {
			if now.Sub(v.seen) > ttl {
				delete(n.last, key)
			}
		}
		for key := range n.last {
			if len(n.last) < maxNonceCounts {
				break
			}
			delete(n.last, key) // still full: forget arbitrary ones
		}
	}
	n.last[k] = nonceCount{nc: nc, txn: txn, seen: now}
	return true
}

package stun

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// limiter is a per-source-address token bucket in a fixed table: no
// allocation per packet and bounded memory whatever the number of
// sources. Addresses that hash to one slot evict each other (the newcomer
// starts with a full bucket), so a flood from many addresses is limited
// only by what each one sends; a flood from one address is held to the
// rate.
type limiter struct {
	perNs  float64 // tokens per nanosecond
	burst  float64
	seed   maphash.Seed
	now    func() time.Time
	start  time.Time
	shards [limiterShards]limiterShard
}

const (
	limiterShards = 64
	limiterSlots  = 256 // per shard
)

type limiterShard struct {
	mu    sync.Mutex
	slots [limiterSlots]limiterSlot
	_     [64]byte // keep shards' locks on separate cache lines
}

type limiterSlot struct {
	addr   [16]byte
	used   bool
	tokens float64
	last   int64 // ns since start
}

func newLimiter(perSecond float64, now func() time.Time) *limiter {
	burst := max(2*perSecond, 10)
	return &limiter{perNs: perSecond / 1e9, burst: burst, seed: maphash.MakeSeed(), now: now, start: now()}
}

// allow takes one token from a's bucket, or reports that it is empty.
func (l *limiter) allow(a netip.Addr) bool {
	key := a.Unmap().As16()
	h := maphash.Bytes(l.seed, key[:])
	sh := &l.shards[h%limiterShards]
	t := int64(l.now().Sub(l.start))
	sh.mu.Lock()
	s := &sh.slots[(h/limiterShards)%limiterSlots]
	if !s.used || s.addr != key {
		*s = limiterSlot{addr: key, used: true, tokens: l.burst, last: t}
	} else if t > s.last {
		s.tokens = min(l.burst, s.tokens+float64(t-s.last)*l.perNs)
		s.last = t
	}
	ok := s.tokens >= 1
	if ok {
		s.tokens--
	}
	sh.mu.Unlock()
	return ok
}

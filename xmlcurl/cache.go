package xmlcurl

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsplane/fsplane/models"
)

// cacheKey is a comparable key that can copy itself out of the request
// body it was parsed from: a key that kept pointing into a 1 KiB body
// would pin the whole body for as long as the entry lives.
type cacheKey[K any] interface {
	comparable
	own() K
}

// single is the key of a shelf holding one document.
type single struct{}

func (single) own() single { return single{} }

// shelf caches the renders of one answer kind.
//
// Freshness: OnChange clears fresh and bumps gen under the write lock,
// synchronously, after the write committed. A render records gen before it
// reads the database and is stored only if gen is unchanged when it is
// done, so a render that may have read pre-commit rows is never cached.
// Together: once OnChange returned, no request can be answered from a
// render older than the commit.
type shelf[K cacheKey[K]] struct {
	gen   uint64
	fresh map[K]answerDoc
	// last holds the last good render per key, kept across invalidation,
	// for answering while the database is unreachable. nil for users:
	// serving a user whose row changed could let a disabled user or an old
	// password back in.
	last map[K]answerDoc
	max  int // 0: unbounded
}

func newShelf[K cacheKey[K]](keepLast bool, max int) *shelf[K] {
	s := &shelf[K]{fresh: map[K]answerDoc{}, max: max}
	if keepLast {
		s.last = map[K]answerDoc{}
	}
	return s
}

func (s *shelf[K]) invalidate() {
	s.gen++
	if len(s.fresh) > 0 {
		s.fresh = map[K]answerDoc{}
	}
}

func (s *shelf[K]) put(k K, body answerDoc) {
	if s.max > 0 && len(s.fresh) >= s.max {
		// Evict an arbitrary entry; map order is random enough to keep a
		// scan of unknown users from pinning the cache.
		for old := range s.fresh {
			delete(s.fresh, old)
			break
		}
	}
	k = k.own()
	s.fresh[k] = body
	if s.last != nil {
		s.last[k] = body
	}
}

// answerDoc is a rendered answer with its Content-Length header value,
// formatted once when rendered instead of on every hit.
type answerDoc struct {
	body []byte
	// length is assigned to response headers as is: shared by every
	// response of this answer, so it must never be modified.
	length []string
	// at is when it was rendered (monotonic): a hit older than the
	// handler's maxAge is rendered again.
	at time.Time
}

func newAnswer(body []byte) answerDoc {
	return answerDoc{body: body, length: []string{strconv.Itoa(len(body))}, at: time.Now()}
}

type userKey struct{ domain, user string }

func (k userKey) own() userKey { return userKey{strings.Clone(k.domain), strings.Clone(k.user)} }

type gatewaysKey struct{ profile, domain, hostname string }

func (k gatewaysKey) own() gatewaysKey {
	return gatewaysKey{strings.Clone(k.profile), strings.Clone(k.domain), strings.Clone(k.hostname)}
}

type cache struct {
	mu       sync.RWMutex
	sofia    *shelf[single]
	acl      *shelf[single]
	gateways *shelf[gatewaysKey]
	users    *shelf[userKey]
}

func newCache(maxUsers int) *cache {
	return &cache{
		sofia:    newShelf[single](true, 0),
		acl:      newShelf[single](true, 0),
		gateways: newShelf[gatewaysKey](true, 1024),
		users:    newShelf[userKey](false, maxUsers),
	}
}

// onChange invalidates what a committed write may have changed.
func (c *cache) onChange(ev models.ChangeEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Kind {
	case models.KindExtension:
		c.users.gen++
		// Name is "user@domain". A user id may itself contain '@', so drop
		// the entry for every possible split: exact, and never stale.
		for _, name := range []string{ev.Name, ev.OldName} {
			for i := 0; i < len(name); i++ {
				if name[i] == '@' {
					delete(c.users.fresh, userKey{domain: name[i+1:], user: name[:i]})
				}
			}
		}
		if !strings.Contains(ev.Name, "@") {
			c.users.invalidate()
		}
	case models.KindTrunk:
		c.gateways.invalidate()
	case models.KindProfile:
		// A profile's TLS flag decides whether a tls trunk may be rendered.
		c.sofia.invalidate()
		c.gateways.invalidate()
	case models.KindProviderRange:
		// Ranges feed acl.conf and every registering trunk's gw-auth-acl.
		c.acl.invalidate()
		c.gateways.invalidate()
	case models.KindToken:
		// Tokens are the auth.Verifier's business, not this cache's.
	default:
		c.sofia.invalidate()
		c.acl.invalidate()
		c.gateways.invalidate()
		c.users.invalidate()
	}
}

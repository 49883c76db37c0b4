package xmlcurl

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
)

// Options are the handler's dependencies and settings.
type Options struct {
	Store      *models.Store
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil: no metrics
	// Cacheable is how long FreeSWITCH may cache a directory user
	// (FSPLANE_XMLCURL_CACHEABLE); 0 omits the cacheable attribute.
	Cacheable time.Duration
	// BasicUser and BasicPassword are the HTTP Basic credentials
	// FreeSWITCH sends (gateway-credentials); empty disables Basic.
	BasicUser, BasicPassword string
	// Networks are the source networks allowed; empty allows all.
	Networks []netip.Prefix
	// Verifier checks bearer tokens (the API's, so that both share one
	// cache and one last_used_at bookkeeping); nil disables bearer tokens.
	// A token it verified within its cache TTL passes while the database
	// is down, as HTTP Basic does.
	Verifier *auth.Verifier
	// CacheMaxAge bounds how long a cached answer is served without being
	// rendered again (FSPLANE_XMLCURL_CACHE_MAX_AGE; default 5 minutes): a
	// safety net under the change feed's invalidation, should a change
	// ever be missed. The last good renders kept for a database outage
	// are not bound by it.
	CacheMaxAge time.Duration
	// PlaintextPasswords renders a user's password instead of its a1-hash
	// (FSPLANE_XMLCURL_PLAINTEXT_PASSWORDS), for FreeSWITCH features that
	// need the password itself.
	PlaintextPasswords bool
	// FederationTLS gives the TLS side of the federation profile (see
	// TLSSide); nil: no federation.
	FederationTLS func(ctx context.Context) (TLSSide, bool, error)
	// FallbackDialString, when set, is tried after DefaultDialString fails
	// (the user has no FreeSWITCH registration): a leg to fsplane's own
	// registrar (registrar.FallbackDialString).
	FallbackDialString string
}

var (
	// contentTypeXML is assigned to response headers as is, saving a
	// slice per answer; it must never be modified.
	contentTypeXML = []string{"text/xml; charset=utf-8"}
	notFoundAnswer = newAnswer(notFound)
)

// DefaultCacheMaxAge is Options.CacheMaxAge's default.
const DefaultCacheMaxAge = 5 * time.Minute

// Tuning that is not configuration.
const (
	maxBody = 256 << 10
	// dbTimeout bounds one answer's database work, well inside the
	// timeout freeswitch-config sets, so that a stuck database yields the
	// last good render before FreeSWITCH gives up.
	dbTimeout = 2 * time.Second
	// maxUsers bounds the cached directory users (about 1 KiB each).
	maxUsers = 200_000
	// carrierUser owns the <gateways> in a gateways answer; sofia reads
	// gateways only from <domain><user><gateways>.
	carrierUser = "fsplane-gateways"
)

// Handler answers mod_xml_curl. It is safe for concurrent use.
type Handler struct {
	store     *models.Store
	log       *slog.Logger
	m         *metrics
	cacheable string // milliseconds, "" for none
	basic     bool
	basicSum  [32]byte // SHA-256 of "user:password", compared in constant time
	// basicHeader is the Authorization value a client encoding the
	// credentials canonically sends, checked before any decoding.
	basicHeader []byte
	networks    []netip.Prefix
	verifier    *auth.Verifier
	// carrierPassword is a random password on the gateways' carrier user:
	// FreeSWITCH lets a user without params authenticate with any
	// password, and that user is never one to log in as.
	carrierPassword string
	c               *cache
	bodies          sync.Pool

	plaintext bool
	fedTLS    func(ctx context.Context) (TLSSide, bool, error)
	maxAge    time.Duration
	seq       atomic.Uint64 // request ids of the debug log
	fallback  string
	problems  problems

	degraded      atomic.Bool
	degradedSince atomic.Int64 // unix nanoseconds

	// afterRender, when set (tests), runs between reading the database and
	// storing the render: where a concurrent write would land.
	afterRender func()
}

var _ http.Handler = (*Handler)(nil)

// New returns a handler serving opt.Store.
func New(opt Options) *Handler {
	h := &Handler{
		store:    opt.Store,
		log:      opt.Logger,
		m:        newMetrics(opt.Registerer),
		networks: opt.Networks,
		verifier: opt.Verifier,
		c:        newCache(maxUsers),

		plaintext: opt.PlaintextPasswords,
		fedTLS:    opt.FederationTLS,
		maxAge:    opt.CacheMaxAge,
		fallback:  opt.FallbackDialString,
	}
	if h.maxAge <= 0 {
		h.maxAge = DefaultCacheMaxAge
	}
	h.problems.gauge = h.m.unrenderable
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opt.Cacheable > 0 {
		h.cacheable = strconv.FormatInt(opt.Cacheable.Milliseconds(), 10)
	}
	if opt.BasicUser != "" {
		h.basic = true
		h.basicSum = sha256.Sum256([]byte(opt.BasicUser + ":" + opt.BasicPassword))
		h.basicHeader = []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(opt.BasicUser+":"+opt.BasicPassword)))
	}
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	h.carrierPassword = hex.EncodeToString(b[:])
	return h
}

// ServeHTTP answers one lookup: always HTTP 200 with a document, except for
// refused requests (401, 403, 405, 413) and a database failure with no
// last good render (503 with the not-found document, which FreeSWITCH
// treats like not-found: it falls back to its static XML).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "POST, GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.sourceAllowed(r) {
		h.m.requests.WithLabelValues(kindDenied, resultDenied).Inc()
		http.Error(w, "source address not allowed", http.StatusForbidden)
		return
	}
	if code := h.authenticate(r); code != 0 {
		h.m.requests.WithLabelValues(kindDenied, resultDenied).Inc()
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="fsplane"`)
			http.Error(w, "authentication required", code)
			return
		}
		// A token not verified within the cache TTL, while the database
		// is down: FreeSWITCH falls back to its static XML.
		w.Header().Set("Retry-After", "5")
		http.Error(w, "database unavailable: cannot check the bearer token now", code)
		return
	}
	var body string
	if r.Method == http.MethodGet {
		body = r.URL.RawQuery
	} else {
		buf, _ := h.bodies.Get().(*[]byte)
		if buf == nil {
			b := make([]byte, 0, 4096)
			buf = &b
		}
		// The buffer goes back to the pool only once the answer is written:
		// body and the Request parsed from it point into it (see below).
		defer h.bodies.Put(buf)
		b, err := h.readBody(w, r, (*buf)[:0])
		*buf = b
		if err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
			return
		}
		// No copy: the Request's strings live only for this call (cache
		// keys are cloned by shelf.put via own, renders copy what they
		// write), and the buffer is not reused before the deferred Put.
		body = unsafe.String(unsafe.SliceData(b), len(b))
	}
	req := ParseRequest(body)
	out, status, kind, result := h.answer(r.Context(), req)
	hdr := w.Header()
	hdr["Content-Type"] = contentTypeXML
	hdr["Content-Length"] = out.length
	w.WriteHeader(status)
	_, _ = w.Write(out.body)
	d := time.Since(start)
	h.m.observe(kind, result, d)
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.logRequest(r.Context(), req, status, kind, result, d)
	}
}

// readBody appends the request body to b. A body of known length within
// maxBody is read as is (the server's body reader stops at Content-Length);
// any other goes through http.MaxBytesReader, which also makes the server
// close the connection after the 413.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, b []byte) ([]byte, error) {
	var rd io.Reader = r.Body
	if r.ContentLength < 0 || r.ContentLength > maxBody {
		rd = http.MaxBytesReader(w, r.Body, maxBody)
	} else if need := int(r.ContentLength) + 1; cap(b) < need {
		// +1: room for the read that reports EOF, so it never grows b.
		b = make([]byte, 0, need)
	}
	for {
		if len(b) > maxBody {
			// A hand-built request whose body outruns its ContentLength.
			return b, &http.MaxBytesError{Limit: maxBody}
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// checkBasic reports whether authz carries HTTP Basic credentials (ok, with
// r.BasicAuth's rules) and whether they match, without allocating: the
// credentials are decoded on the stack and "user:password" is hashed as
// decoded, which is what r.BasicAuth's user and password joined with ':'
// would be.
func (h *Handler) checkBasic(authz string, r *http.Request) (match, ok bool) {
	const prefix = "Basic "
	if len(authz) < len(prefix) || !strings.EqualFold(authz[:len(prefix)], prefix) {
		return false, false
	}
	var src [256]byte
	if len(authz) == len(h.basicHeader) && len(authz) <= len(src) {
		// The usual case, FreeSWITCH's libcurl: the exact expected value.
		// Anything else is decided by decoding below.
		n := copy(src[:], authz)
		if subtle.ConstantTimeCompare(src[:n], h.basicHeader) == 1 {
			return true, true
		}
	}
	enc := authz[len(prefix):]
	var dst [192]byte
	var sum [32]byte
	if len(enc) <= len(src) {
		n := copy(src[:], enc)
		m, err := base64.StdEncoding.Decode(dst[:], src[:n])
		if err != nil || bytes.IndexByte(dst[:m], ':') < 0 {
			return false, false
		}
		sum = sha256.Sum256(dst[:m])
	} else {
		// Longer than any credentials fsplane configures: the slow path.
		user, pass, ok := r.BasicAuth()
		if !ok {
			return false, false
		}
		sum = sha256.Sum256([]byte(user + ":" + pass))
	}
	return subtle.ConstantTimeCompare(sum[:], h.basicSum[:]) == 1, true
}

func (h *Handler) sourceAllowed(r *http.Request) bool {
	if len(h.networks) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range h.networks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// authenticate returns 0 when the request may pass, else the HTTP status.
func (h *Handler) authenticate(r *http.Request) int {
	authz := r.Header.Get("Authorization")
	if h.basic {
		if match, ok := h.checkBasic(authz, r); ok {
			if match {
				return 0
			}
			return http.StatusUnauthorized
		}
	}
	if h.verifier != nil && len(authz) > 7 && strings.EqualFold(authz[:7], "bearer ") {
		p, err := h.verifier.Verify(r.Context(), strings.TrimSpace(authz[7:]))
		switch {
		case err == nil && p.Allows(auth.ScopeXMLCurl):
			return 0
		case err == nil, errors.Is(err, auth.ErrUnknownToken):
			return http.StatusUnauthorized
		default:
			h.log.Warn("xml-curl: cannot check bearer token", "err", err)
			return http.StatusServiceUnavailable
		}
	}
	return http.StatusUnauthorized
}

// answer dispatches a parsed request. The directory is asked for users
// whenever a user is named, whatever else the request says: a REGISTER's
// realm is copied raw into key_value, so only fields FreeSWITCH adds itself
// (user, domain) decide what is looked up.
func (h *Handler) answer(ctx context.Context, req Request) (body answerDoc, status int, kind, result string) {
	switch req.Section {
	case "configuration":
		switch strings.ToLower(req.KeyValue) {
		case "sofia.conf":
			body, status, result = lookup(h, ctx, h.c.sofia, single{}, h.renderSofia)
			return body, status, kindSofia, result
		case "acl.conf":
			body, status, result = lookup(h, ctx, h.c.acl, single{}, h.renderACL)
			return body, status, kindACL, result
		}
	case "directory":
		if req.User != "" {
			domain := req.Domain
			if domain == "" {
				domain = req.KeyValue
			}
			if domain == "" || (req.TagName == "domain" && req.KeyValue != "" && !strings.EqualFold(req.KeyValue, domain)) {
				// FreeSWITCH looks for <domain name=key_value>; an answer
				// for another domain would not be found anyway.
				return notFoundAnswer, http.StatusOK, kindUser, resultNotFound
			}
			k := userKey{domain: domain, user: req.User}
			if !h.plaintext && req.Realm != "" && req.Realm != domain {
				// The a1-hash depends on the realm; the cache holds the
				// answers for realm = domain, FreeSWITCH's usual case, so
				// another realm is rendered each time.
				return h.uncachedUser(ctx, k, req.Realm)
			}
			body, status, result = lookup(h, ctx, h.c.users, k, func(ctx context.Context) ([]byte, error) {
				return h.renderUser(ctx, k.domain, k.user, "")
			})
			return body, status, kindUser, result
		}
		if req.Purpose == "gateways" && req.Profile != "" {
			domain := req.KeyValue
			if domain == "" {
				// The profile's <domain name="all"> asks without tag or key;
				// sofia then reads every <domain> of the section.
				domain = "all"
			}
			k := gatewaysKey{profile: req.Profile, domain: domain, hostname: req.Hostname}
			body, status, result = lookup(h, ctx, h.c.gateways, k, func(ctx context.Context) ([]byte, error) {
				return h.renderGateways(ctx, k)
			})
			return body, status, kindGateways, result
		}
	}
	return notFoundAnswer, http.StatusOK, kindOther, resultNotFound
}

// lookup answers from the cache, else renders and caches; on a database
// failure it answers the last good render if the shelf keeps one.
func lookup[K cacheKey[K]](h *Handler, ctx context.Context, s *shelf[K], k K, render func(context.Context) ([]byte, error)) (answerDoc, int, string) {
	h.c.mu.RLock()
	body, ok := s.fresh[k]
	gen := s.gen
	h.c.mu.RUnlock()
	if ok && time.Since(body.at) < h.maxAge {
		return body, http.StatusOK, resultHit
	}
	rctx, cancel := context.WithTimeout(ctx, dbTimeout)
	out, err := render(rctx)
	cancel()
	if err != nil {
		h.markDegraded(err)
		h.c.mu.RLock()
		last, ok := s.last[k]
		h.c.mu.RUnlock()
		if ok {
			return last, http.StatusOK, resultStale
		}
		return notFoundAnswer, http.StatusServiceUnavailable, resultError
	}
	h.markHealthy()
	if h.afterRender != nil {
		h.afterRender()
	}
	body = newAnswer(out)
	h.c.mu.Lock()
	if s.gen == gen {
		s.put(k, body)
	}
	h.c.mu.Unlock()
	return body, http.StatusOK, resultMiss
}

func (h *Handler) uncachedUser(ctx context.Context, k userKey, realm string) (answerDoc, int, string, string) {
	rctx, cancel := context.WithTimeout(ctx, dbTimeout)
	out, err := h.renderUser(rctx, k.domain, k.user, realm)
	cancel()
	if err != nil {
		h.markDegraded(err)
		return notFoundAnswer, http.StatusServiceUnavailable, kindUser, resultError
	}
	h.markHealthy()
	return newAnswer(out), http.StatusOK, kindUser, resultMiss
}

func (h *Handler) markDegraded(err error) {
	if h.degraded.CompareAndSwap(false, true) {
		h.degradedSince.Store(time.Now().UnixNano())
		h.m.degraded.Set(1)
		h.log.Error("xml-curl: database unreachable, answering from the last good renders", "err", err)
	}
}

func (h *Handler) markHealthy() {
	if h.degraded.Load() && h.degraded.CompareAndSwap(true, false) {
		h.m.degraded.Set(0)
		h.log.Info("xml-curl: database reachable again")
	}
}

// OnChange invalidates the cached answers a committed write affects. It is
// subscribed to the events bus, runs synchronously in the writer's
// goroutine, and only takes a lock and deletes map entries.
func (h *Handler) OnChange(ev models.ChangeEvent) {
	h.c.onChange(ev)
	h.problems.onChange(ev)
}

// Health reports "ok", or "degraded" while the last database access of a
// render failed and answers come from the last good renders.
// Rows that cannot be rendered make it degraded too, naming them.
func (h *Handler) Health() (status, detail string) {
	var parts []string
	if h.degraded.Load() {
		since := time.Unix(0, h.degradedSince.Load()).UTC().Format(time.RFC3339)
		parts = append(parts, "database unreachable since "+since+"; answering from the last good renders, unknown users get not-found")
	}
	if ps := h.problems.list(); len(ps) > 0 {
		// /readyz is public: counts by kind, not the rows' names or the
		// reasons (render_error in the API and the log name them).
		byKind := map[string]int{}
		for _, p := range ps {
			byKind[p.Kind]++
		}
		kinds := make([]string, 0, len(byKind))
		for k, n := range byKind {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
		slices.Sort(kinds)
		parts = append(parts, fmt.Sprintf("%d stored rows cannot be rendered and are not in FreeSWITCH (%s): see render_error in the API",
			len(ps), strings.Join(kinds, ", ")))
	}
	if len(parts) == 0 {
		return "ok", ""
	}
	return "degraded", strings.Join(parts, "; ")
}

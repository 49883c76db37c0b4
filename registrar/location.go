package registrar

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/fsplane/fsplane/models"
)

// binding is one registered contact in memory.
type binding struct {
	uri       sip.Uri // the contact URI, parameters included
	key       string  // uri in canonical form, for comparison (§19.1.4, simplified)
	raw       string  // uri as the client sent it (stored, listed)
	q         int     // q × 1000
	expires   time.Time
	callID    string
	cseq      uint32
	branch    string // top Via branch of the REGISTER that made it (retransmissions)
	received  string // source ip:port of the REGISTER
	transport string // udp, tcp, tls
	userAgent string
}

// Binding is one binding as the API lists it.
type Binding struct {
	AOR       string
	Contact   string
	Q         float64
	Received  string
	Transport string
	UserAgent string
	Expires   time.Time
}

// location is the in-memory location service: authoritative for reads,
// written to the database in batches (dirty AORs).
type location struct {
	mu    sync.Mutex
	aors  map[string][]binding
	total int
	dirty map[string]struct{}
}

func newLocation() *location {
	return &location{aors: map[string][]binding{}, dirty: map[string]struct{}{}}
}

// contactKey is the comparison form of a contact URI: scheme, user and
// port as given, host lower-cased, parameters lower-cased and sorted.
func contactKey(u *sip.Uri) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(u.Scheme))
	b.WriteByte(':')
	b.WriteString(u.User)
	b.WriteByte('@')
	b.WriteString(strings.ToLower(u.Host))
	if u.Port > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(u.Port))
	}
	if u.UriParams != nil {
		keys := u.UriParams.Keys()
		slices.Sort(keys)
		for _, k := range keys {
			v, _ := u.UriParams.Get(k)
			b.WriteByte(';')
			b.WriteString(strings.ToLower(k))
			b.WriteByte('=')
			b.WriteString(strings.ToLower(v))
		}
	}
	return b.String()
}

// current returns the AOR's unexpired bindings; the caller holds mu.
func (l *location) currentLocked(aor string, now time.Time) []binding {
	bs := l.aors[aor]
	expired := false
	for _, b := range bs {
		if !b.expires.After(now) {
			expired = true
			break
		}
	}
	if !expired {
		return bs // callers never change it in place
	}
	live := bs[:0:0]
	for _, b := range bs {
		if b.expires.After(now) {
			live = append(live, b)
		}
	}
	if len(live) != len(bs) {
		l.setLocked(aor, live)
	}
	return live
}

// setLocked replaces the AOR's bindings and marks it for the next flush.
func (l *location) setLocked(aor string, bs []binding) {
	l.total += len(bs) - len(l.aors[aor])
	if len(bs) == 0 {
		delete(l.aors, aor)
	} else {
		l.aors[aor] = bs
	}
	l.dirty[aor] = struct{}{}
}

func (l *location) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// lookup returns the AOR's unexpired bindings, highest q first.
func (l *location) lookup(aor string, now time.Time) []binding {
	l.mu.Lock()
	bs := slices.Clone(l.currentLocked(aor, now))
	l.mu.Unlock()
	slices.SortStableFunc(bs, func(a, b binding) int { return b.q - a.q })
	return bs
}

// list returns every unexpired binding, by AOR then contact.
func (l *location) list(now time.Time) []Binding {
	l.mu.Lock()
	var out []Binding
	for aor, bs := range l.aors {
		for _, b := range bs {
			if b.expires.After(now) {
				out = append(out, Binding{AOR: aor, Contact: b.raw, Q: float64(b.q) / 1000, Received: b.received,
					Transport: b.transport, UserAgent: b.userAgent, Expires: b.expires})
			}
		}
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b Binding) int {
		if c := strings.Compare(a.AOR, b.AOR); c != 0 {
			return c
		}
		return strings.Compare(a.Contact, b.Contact)
	})
	return out
}

// remove deletes one binding by AOR and contact as listed.
func (l *location) remove(aor, contact string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	bs := l.currentLocked(aor, now)
	for i, b := range bs {
		if b.raw == contact {
			l.setLocked(aor, slices.Delete(slices.Clone(bs), i, i+1))
			return true
		}
	}
	return false
}

// sweep drops every expired binding and says how many went.
func (l *location) sweep(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	before := l.total
	for aor := range l.aors {
		l.currentLocked(aor, now)
	}
	return before - l.total
}

// takeDirty returns the rows to write for every AOR changed since the last
// call and clears the mark. On a failed write the caller calls markDirty.
func (l *location) takeDirty() map[string][]models.Binding {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.dirty) == 0 {
		return nil
	}
	out := make(map[string][]models.Binding, len(l.dirty))
	for aor := range l.dirty {
		var rows []models.Binding
		for _, b := range l.aors[aor] {
			rows = append(rows, models.Binding{Contact: b.raw, QMilli: b.q, Expires: b.expires, CallID: b.callID,
				CSeq: int64(b.cseq), Received: b.received, Transport: b.transport, UserAgent: b.userAgent})
		}
		out[aor] = rows
	}
	clear(l.dirty)
	return out
}

func (l *location) markDirty(aors map[string][]models.Binding) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for aor := range aors {
		l.dirty[aor] = struct{}{}
	}
}

// restore replaces the index with the stored bindings (at start); rows
// whose contact no longer parses are dropped.
func (l *location) restore(rows []models.Binding) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.aors)
	l.total = 0
	for _, r := range rows {
		var u sip.Uri
		if err := sip.ParseUri(r.Contact, &u); err != nil {
			continue
		}
		b := binding{uri: u, key: contactKey(&u), raw: r.Contact, q: r.QMilli, expires: r.Expires, callID: r.CallID,
			cseq: uint32(r.CSeq), received: r.Received, transport: r.Transport, userAgent: r.UserAgent}
		l.aors[r.AOR] = append(l.aors[r.AOR], b)
		l.total++
	}
}

// flushLoop writes dirty AORs every interval until ctx ends, then once
// more.
func (r *Registrar) flushLoop(ctx context.Context) {
	t := time.NewTicker(r.opt.FlushInterval)
	defer t.Stop()
	sweep := time.NewTicker(r.opt.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			r.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			r.flush(ctx)
		case <-sweep.C:
			r.loc.sweep(r.now())
			// Rows of other replicas or of a previous run are swept too.
			if _, err := r.store.DeleteExpiredBindings(ctx, r.now()); err != nil {
				r.log.Warn("registrar: sweep of expired bindings failed", "err", err)
			}
		}
	}
}

// flush writes the dirty AORs; a failure keeps them dirty for the next
// round.
func (r *Registrar) flush(ctx context.Context) {
	sets := r.loc.takeDirty()
	if sets == nil {
		return
	}
	if err := r.store.ReplaceBindings(ctx, sets); err != nil {
		r.m.writeErrors.Inc()
		r.loc.markDirty(sets)
		r.log.Warn("registrar: writing bindings failed; retrying with the next flush", "aors", len(sets), "err", err)
	}
}

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
	// registeredAt is when the REGISTER that made it was accepted (here,
	// or by the replica whose row it was read from): what orders the
	// writes of replicas (models.WriteBindings).
	registeredAt time.Time
	// remote: read from the database, last registered at another replica
	// (or before a restart); a TCP/TLS connection it came over is not
	// this process's.
	remote bool
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

// location is the in-memory location service: the index reads are served
// from, written to the database in batches (the contacts changed here),
// and refreshed from it for the AORs other replicas announce.
type location struct {
	mu    sync.Mutex
	aors  map[string][]binding
	total int
	// dirty are the contacts changed here since the last flush: written
	// (upserted, or deleted when no longer bound) one by one, so that a
	// flush never overwrites what another replica wrote for the AOR.
	dirty map[contactRef]struct{}
	// removed is, for each dirty contact no longer bound, the
	// registration it had: its delete removes only that one or an older
	// row, not another replica's later registration.
	removed map[contactRef]removal
	// recheck are AORs read back while contacts of theirs were dirty:
	// read again once those are written, as another replica's row may
	// have won over the write (models.WriteBindings).
	recheck map[string]struct{}
	// byAddr indexes the AORs by their contacts' user, host and port
	// (how many of each AOR's bindings have it): the proxy finds the
	// binding of an in-dialog request's Request-URI without a scan of
	// every AOR under the lock REGISTERs take.
	byAddr map[contactAddr]map[string]int
	// deferred are contacts whose only change since they were last
	// written is a later expiry (a re-registration of the same Call-ID):
	// written after deferWrite, before their stored expiry comes near,
	// or at the last flush. Registration churn is most of the flush's
	// work, and its rows change nothing but the expiry.
	deferred   map[contactRef]deferral
	deferWrite time.Duration
	now        func() time.Time
}

// deferral is one deferred refresh: since when, and the expiry of the row
// as written.
type deferral struct {
	since, storedExpires time.Time
	// The registration the stored row names: a read-back that finds
	// another (or none) was changed by another replica since.
	storedCallID string
	storedCSeq   uint32
}

// contactAddr is what byContact compares: user, host (lower case) and
// port.
type contactAddr struct {
	user, host string
	port       int
}

func addrOf(u *sip.Uri) contactAddr {
	return contactAddr{user: u.User, host: strings.ToLower(u.Host), port: u.Port}
}

// removal is the registration of a binding removed here.
type removal struct {
	callID       string
	cseq         uint32
	registeredAt time.Time
}

// contactRef names one binding: AOR and contact as stored (raw).
type contactRef struct{ aor, contact string }

func newLocation(now func() time.Time, deferWrite time.Duration) *location {
	return &location{aors: map[string][]binding{}, dirty: map[contactRef]struct{}{}, removed: map[contactRef]removal{},
		recheck: map[string]struct{}{}, byAddr: map[contactAddr]map[string]int{}, deferred: map[contactRef]deferral{},
		deferWrite: deferWrite, now: now}
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
		// Not marked: expired rows are swept from the table by their
		// expiry, and a delete here could hit a later registration
		// another replica wrote for the contact.
		l.putLocked(aor, live)
	}
	return live
}

// setLocked replaces the AOR's bindings and marks the contacts that
// changed, appeared or went for the next flush. A binding without
// registeredAt is a REGISTER's, accepted now.
func (l *location) setLocked(aor string, bs []binding) { l.setLockedBy(aor, bs, nil) }

// setLockedBy is setLocked for a REGISTER that removes contacts: the
// removals carry that request's Call-ID and CSeq and the time it was
// accepted, so that another replica's row is deleted unless it is newer
// than this request (a later CSeq of the same Call-ID) rather than newer
// than the binding as this replica last saw it.
func (l *location) setLockedBy(aor string, bs []binding, by *removal) {
	old := l.aors[aor]
	var now time.Time
	for i := range bs {
		j := indexRaw(old, bs[i].raw)
		if j >= 0 && sameRow(&old[j], &bs[i]) {
			if bs[i].registeredAt.IsZero() {
				bs[i].registeredAt = old[j].registeredAt // the same REGISTER again
			}
			continue
		}
		if bs[i].registeredAt.IsZero() {
			if now.IsZero() {
				now = l.now().UTC()
			}
			bs[i].registeredAt = now
		}
		ref := contactRef{aor, bs[i].raw}
		if _, dirty := l.dirty[ref]; !dirty && j >= 0 && l.deferWrite > 0 && refreshOnly(&old[j], &bs[i]) {
			if _, ok := l.deferred[ref]; !ok {
				// old[j] is as written (not dirty): its expiry is the
				// stored one.
				if now.IsZero() {
					now = l.now().UTC()
				}
				l.deferred[ref] = deferral{since: now, storedExpires: old[j].expires, storedCallID: old[j].callID, storedCSeq: old[j].cseq}
			}
			continue
		}
		l.dirty[ref] = struct{}{}
	}
	for i := range old {
		if indexRaw(bs, old[i].raw) < 0 {
			ref := contactRef{aor, old[i].raw}
			delete(l.deferred, ref)
			l.dirty[ref] = struct{}{}
			rm := removal{callID: old[i].callID, cseq: old[i].cseq, registeredAt: old[i].registeredAt}
			if by != nil {
				rm = *by
				if rm.registeredAt.IsZero() {
					if now.IsZero() {
						now = l.now().UTC()
					}
					rm.registeredAt = now
				}
			}
			l.removed[ref] = rm
		}
	}
	l.putLocked(aor, bs)
}

// putLocked replaces the AOR's bindings without marking anything.
func (l *location) putLocked(aor string, bs []binding) {
	old := l.aors[aor]
	l.total += len(bs) - len(old)
	if len(bs) == 0 {
		delete(l.aors, aor)
	} else {
		l.aors[aor] = bs
	}
	if sameAddrs(old, bs) {
		return // a refresh: the index stands
	}
	for i := range old {
		a := addrOf(&old[i].uri)
		if m := l.byAddr[a]; m != nil {
			if m[aor]--; m[aor] <= 0 {
				delete(m, aor)
			}
			if len(m) == 0 {
				delete(l.byAddr, a)
			}
		}
	}
	for i := range bs {
		l.indexLocked(aor, &bs[i])
	}
}

func (l *location) indexLocked(aor string, b *binding) {
	a := addrOf(&b.uri)
	m := l.byAddr[a]
	if m == nil {
		m = map[string]int{}
		l.byAddr[a] = m
	}
	m[aor]++
}

// sameAddrs: a and b have the same contacts, in order (the usual
// re-registration).
func sameAddrs(a, b []binding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].uri.User != b[i].uri.User || a[i].uri.Host != b[i].uri.Host || a[i].uri.Port != b[i].uri.Port {
			return false
		}
	}
	return true
}

func indexRaw(bs []binding, raw string) int {
	for i := range bs {
		if bs[i].raw == raw {
			return i
		}
	}
	return -1
}

// sameRow: a and b would be stored alike.
// refreshOnly: b renews a from the same address, transport and agent,
// changing nothing but the expiry and which REGISTER renewed it (Call-ID,
// CSeq): Kamailio's write-back mode (usrloc db_mode 2) likewise writes
// such changes on a timer.
func refreshOnly(a, b *binding) bool {
	// A binding of another replica taken over is written at once: that
	// replica must learn the contact is no longer its own.
	return !a.remote && (b.callID != a.callID || b.cseq > a.cseq) && !b.expires.Before(a.expires) && a.q == b.q &&
		a.received == b.received && a.transport == b.transport && a.userAgent == b.userAgent
}

func sameRow(a, b *binding) bool {
	return a.expires.Equal(b.expires) && a.cseq == b.cseq && a.callID == b.callID && a.q == b.q &&
		a.received == b.received && a.transport == b.transport && a.userAgent == b.userAgent
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

// remove deletes one binding by AOR and contact as listed: an operator's
// removal, of whatever registration the contact has up to now (even one
// this replica has not seen yet), not of a later one.
func (l *location) remove(aor, contact string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	bs := l.currentLocked(aor, now)
	for i, b := range bs {
		if b.raw == contact {
			l.setLocked(aor, slices.Delete(slices.Clone(bs), i, i+1))
			l.removed[contactRef{aor, contact}] = removal{registeredAt: now.UTC()} // no Call-ID: any
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

// takeDirty returns the writes for every contact changed since the last
// call (an upsert if it is still bound, else a delete) and clears the
// marks. On a failed write the caller calls markDirty.
func (l *location) takeDirty() ([]models.Binding, []models.BindingKey) { return l.takeDirtyAt(false) }

// takeDirtyAt is takeDirty; with all, every deferred refresh is taken
// too (the last flush).
func (l *location) takeDirtyAt(all bool) ([]models.Binding, []models.BindingKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.deferred) > 0 {
		now := l.now()
		for ref, d := range l.deferred {
			if _, dirty := l.dirty[ref]; dirty || all || now.Sub(d.since) >= l.deferWrite || !now.Before(d.storedExpires.Add(-l.deferWrite)) {
				l.dirty[ref] = struct{}{}
				delete(l.deferred, ref)
			}
		}
	}
	if len(l.dirty) == 0 {
		return nil, nil
	}
	var ups []models.Binding
	var dels []models.BindingKey
	for ref := range l.dirty {
		bs := l.aors[ref.aor]
		if i := indexRaw(bs, ref.contact); i >= 0 {
			b := &bs[i]
			ups = append(ups, models.Binding{AOR: ref.aor, Contact: b.raw, QMilli: b.q, Expires: b.expires, CallID: b.callID,
				CSeq: int64(b.cseq), Received: b.received, Transport: b.transport, UserAgent: b.userAgent, RegisteredAt: b.registeredAt})
		} else if rm, ok := l.removed[ref]; ok {
			dels = append(dels, models.BindingKey{AOR: ref.aor, Contact: ref.contact, CallID: rm.callID, CSeq: int64(rm.cseq),
				RegisteredAt: rm.registeredAt})
		}
	}
	clear(l.dirty)
	clear(l.removed)
	return ups, dels
}

// markDirty marks again the contacts of a failed write (unless changed
// here since).
func (l *location) markDirty(ups []models.Binding, dels []models.BindingKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range ups {
		l.dirty[contactRef{b.AOR, b.Contact}] = struct{}{}
	}
	for _, k := range dels {
		ref := contactRef{k.AOR, k.Contact}
		if _, changed := l.dirty[ref]; changed {
			continue // removed again, or bound again: that is what is written
		}
		l.dirty[ref] = struct{}{}
		l.removed[ref] = removal{callID: k.CallID, cseq: uint32(k.CSeq), registeredAt: k.RegisteredAt}
	}
}

// takeRecheck returns the AORs to read back after a write and clears them.
func (l *location) takeRecheck() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.recheck))
	for aor := range l.recheck {
		out = append(out, aor)
	}
	clear(l.recheck)
	return out
}

// fromRow is a stored binding in memory; false if its contact no longer
// parses.
func fromRow(r *models.Binding) (binding, bool) {
	var u sip.Uri
	if err := sip.ParseUri(r.Contact, &u); err != nil {
		return binding{}, false
	}
	return binding{uri: u, key: contactKey(&u), raw: r.Contact, q: r.QMilli, expires: r.Expires, callID: r.CallID,
		cseq: uint32(r.CSeq), received: r.Received, transport: r.Transport, userAgent: r.UserAgent, registeredAt: r.RegisteredAt,
		remote: true}, true
}

// restore replaces the index with the stored bindings (at start); rows
// whose contact no longer parses are dropped.
func (l *location) restore(rows []models.Binding) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.aors)
	clear(l.byAddr)
	l.total = 0
	for i := range rows {
		if b, ok := fromRow(&rows[i]); ok {
			l.aors[rows[i].AOR] = append(l.aors[rows[i].AOR], b)
			l.indexLocked(rows[i].AOR, &b)
			l.total++
		}
	}
}

// refresh makes the index of each AOR in aors (every AOR, with all) what
// rows, read from the database, say: other replicas' registrations and
// removals take effect here. Contacts changed here and not yet written
// keep their local state (the next flush writes it); a binding that is
// the same registration as the stored one (Call-ID and CSeq) stays as it
// is, with what only this process knows of it (its branch, that its
// connection is here).
func (l *location) refresh(aors []string, all bool, rows []models.Binding) {
	byAOR := map[string][]*models.Binding{}
	for i := range rows {
		byAOR[rows[i].AOR] = append(byAOR[rows[i].AOR], &rows[i])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if all {
		aors = aors[:0:0]
		for aor := range l.aors {
			aors = append(aors, aor)
		}
		for aor := range byAOR {
			if _, dup := l.aors[aor]; !dup {
				aors = append(aors, aor)
			}
		}
	}
	for _, aor := range aors {
		old := l.aors[aor]
		var next []binding
		for _, row := range byAOR[aor] {
			ref := contactRef{aor, row.Contact}
			if _, dirty := l.dirty[ref]; dirty {
				l.recheck[aor] = struct{}{}
				continue
			}
			i := indexRaw(old, row.Contact)
			if d, deferred := l.deferred[ref]; deferred && i >= 0 {
				switch {
				case row.CallID == d.storedCallID && row.CSeq == int64(d.storedCSeq):
					// The row this replica's deferred refresh renews.
					next = append(next, old[i])
					continue
				case old[i].registeredAt.After(row.RegisteredAt):
					// Another replica wrote an older registration: ours
					// is written now, and WriteBindings orders the two.
					delete(l.deferred, ref)
					l.dirty[ref] = struct{}{}
					l.recheck[aor] = struct{}{}
					continue
				}
				delete(l.deferred, ref) // a newer registration elsewhere wins
			}
			if i >= 0 && old[i].callID == row.CallID && int64(old[i].cseq) == row.CSeq {
				next = append(next, old[i])
				continue
			}
			if b, ok := fromRow(row); ok {
				next = append(next, b)
			}
		}
		for _, b := range old {
			ref := contactRef{aor, b.raw}
			if _, dirty := l.dirty[ref]; dirty {
				l.recheck[aor] = struct{}{}
				next = append(next, b)
			} else if _, deferred := l.deferred[ref]; deferred && indexRaw(next, b.raw) < 0 {
				// Its row is gone: removed at another replica (or
				// swept). Writing the refresh would bring it back.
				delete(l.deferred, ref)
			}
		}
		l.putLocked(aor, next)
	}
}

// flushLoop writes the changed contacts every interval (and when asked
// to, by flushNow) until ctx ends, then once more; it reads back the AORs
// other replicas announce (refreshBindings) in the same goroutine, so a
// read never sees the table without a write of this replica that has
// left the index's marks already.
func (r *Registrar) flushLoop(ctx context.Context) {
	t := time.NewTicker(r.opt.FlushInterval)
	defer t.Stop()
	sweep := time.NewTicker(r.opt.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = r.flushAll(context.WithoutCancel(ctx), true)
			return
		case <-t.C:
			_ = r.flush(ctx)
		case done := <-r.flushNow:
			done <- r.flush(ctx)
		case <-r.refreshC:
			r.refreshBindings(ctx)
		case <-sweep.C:
			r.loc.sweep(r.now())
			// Rows of other replicas or of a previous run are swept too.
			if _, err := r.store.DeleteExpiredBindings(ctx, r.now()); err != nil {
				r.log.Warn("registrar: sweep of expired bindings failed", "err", err)
			}
		}
	}
}

// OnBindings takes an announcement of another replica's binding writes
// (a models.BindingsChannel payload without its schema): the AORs named
// are read back from the database shortly, in flushLoop. Its own
// announcements are ignored. It never blocks.
func (r *Registrar) OnBindings(payload string) {
	origin, aors, all := models.ParseBindingsPayload(payload)
	if origin == r.opt.ReplicaID {
		return
	}
	r.pendMu.Lock()
	if all {
		r.pendAll = true
	}
	for _, a := range aors {
		r.pending[a] = struct{}{}
	}
	r.pendMu.Unlock()
	r.wakeRefresh()
}

// RefreshAll has every binding read back from the database shortly: after
// announcements may have been missed (a listener's reconnect).
func (r *Registrar) RefreshAll() {
	r.pendMu.Lock()
	r.pendAll = true
	r.pendMu.Unlock()
	r.wakeRefresh()
}

func (r *Registrar) wakeRefresh() {
	select {
	case r.refreshC <- struct{}{}:
	default: // pending already
	}
}

// refreshBindings reads the announced AORs' bindings and merges them into
// the index; on a failure they are tried again a second later.
func (r *Registrar) refreshBindings(ctx context.Context) {
	r.pendMu.Lock()
	all := r.pendAll
	aors := make([]string, 0, len(r.pending))
	for a := range r.pending {
		aors = append(aors, a)
	}
	clear(r.pending)
	r.pendAll = false
	r.pendMu.Unlock()
	if !all && len(aors) == 0 {
		return
	}
	var rows []models.Binding
	var err error
	if all {
		rows, err = r.store.Bindings(ctx, r.now())
	} else {
		rows, err = r.store.BindingsOfAORs(ctx, aors, r.now())
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("registrar: reading other replicas' bindings failed; retrying", "err", err)
		r.pendMu.Lock()
		r.pendAll = r.pendAll || all
		for _, a := range aors {
			r.pending[a] = struct{}{}
		}
		r.pendMu.Unlock()
		time.AfterFunc(time.Second, r.wakeRefresh)
		return
	}
	r.loc.refresh(aors, all, rows)
	r.m.refreshes.Inc()
}

// flush writes the contacts changed here; a failure keeps them marked
// for the next round.
func (r *Registrar) flush(ctx context.Context) error { return r.flushAll(ctx, false) }

// flushAll is flush; with all, deferred refreshes are written too.
func (r *Registrar) flushAll(ctx context.Context, all bool) error {
	ups, dels := r.loc.takeDirtyAt(all)
	if ups == nil && dels == nil {
		return nil
	}
	if err := r.store.WriteBindings(ctx, r.opt.ReplicaID, ups, dels); err != nil {
		r.m.writeErrors.Inc()
		r.loc.markDirty(ups, dels)
		r.log.Warn("registrar: writing bindings failed; retrying with the next flush", "bindings", len(ups)+len(dels), "err", err)
		return err
	}
	if aors := r.loc.takeRecheck(); len(aors) > 0 {
		r.pendMu.Lock()
		for _, a := range aors {
			r.pending[a] = struct{}{}
		}
		r.pendMu.Unlock()
		r.wakeRefresh()
	}
	return nil
}

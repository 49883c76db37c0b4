package registrar

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/fsplane/fsplane/models"
)

// The index writes each contact with the time its REGISTER was accepted,
// not the flush's, and deletes a removed contact naming the REGISTER that
// removed it (Call-ID, CSeq, time), also after a failed write: what
// models.WriteBindings orders replicas' writes by.
func TestLocationWritesCarryRegistration(t *testing.T) {
	t1 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := t1
	l := newLocation(func() time.Time { return now }, 0)
	const aor = "1001@example.com"
	b := binding{raw: "sip:1001@10.0.0.1", q: 1000, expires: t1.Add(time.Hour), callID: "X", cseq: 18, received: "127.0.0.1:5060", transport: "udp"}
	l.mu.Lock()
	l.setLocked(aor, []binding{b})
	l.mu.Unlock()
	now = t1.Add(time.Minute) // the flush comes later
	ups, dels := l.takeDirty()
	if len(ups) != 1 || len(dels) != 0 || !ups[0].RegisteredAt.Equal(t1) || ups[0].CallID != "X" || ups[0].CSeq != 18 {
		t.Fatalf("upserts %+v, deletes %+v", ups, dels)
	}
	// Removed by a REGISTER (Expires: 0, CSeq 21): the delete names that
	// request and when it was accepted, so another replica's row of the
	// same Call-ID up to CSeq 21 goes too, not only up to the 18 this
	// replica saw.
	l.mu.Lock()
	l.setLockedBy(aor, nil, &removal{callID: "X", cseq: 21})
	l.mu.Unlock()
	want := models.BindingKey{AOR: aor, Contact: b.raw, CallID: "X", CSeq: 21, RegisteredAt: now}
	ups, dels = l.takeDirty()
	if len(ups) != 0 || len(dels) != 1 || dels[0] != want {
		t.Fatalf("after removal: upserts %+v, deletes %+v, want %+v", ups, dels, want)
	}
	l.markDirty(ups, dels) // the write failed
	if ups, dels = l.takeDirty(); len(ups) != 0 || len(dels) != 1 || dels[0] != want {
		t.Fatalf("after a failed write: upserts %+v, deletes %+v, want %+v", ups, dels, want)
	}
	// Bound again before a failed delete is retried: the binding is what
	// gets written.
	l.mu.Lock()
	l.setLocked(aor, []binding{b})
	l.mu.Unlock()
	l.markDirty(nil, dels)
	if ups, dels = l.takeDirty(); len(ups) != 1 || len(dels) != 0 || !ups[0].RegisteredAt.Equal(now) {
		t.Fatalf("bound again: upserts %+v, deletes %+v", ups, dels)
	}
	// Removed by an operator (Unregister): whatever registration the
	// contact has up to now.
	now = now.Add(time.Minute)
	if !l.remove(aor, b.raw, now) {
		t.Fatal("not removed")
	}
	want = models.BindingKey{AOR: aor, Contact: b.raw, RegisteredAt: now}
	if ups, dels = l.takeDirty(); len(ups) != 0 || len(dels) != 1 || dels[0] != want {
		t.Fatalf("after Unregister: upserts %+v, deletes %+v, want %+v", ups, dels, want)
	}
}

// byContact finds an in-dialog request's binding through the address
// index, which follows every change: a new contact, a contact that moved,
// a removal, a restore from the database.
func TestByContactIndex(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l := newLocation(func() time.Time { return now }, 0)
	bind := func(raw string) binding {
		t.Helper()
		var u sip.Uri
		if err := sip.ParseUri(raw, &u); err != nil {
			t.Fatal(err)
		}
		return binding{uri: u, key: contactKey(&u), raw: raw, q: 1000, expires: now.Add(time.Hour), callID: "c", cseq: 1}
	}
	find := func(raw string) (string, bool) {
		t.Helper()
		var u sip.Uri
		if err := sip.ParseUri(raw, &u); err != nil {
			t.Fatal(err)
		}
		b, ok := l.byContact(&u, now)
		return b.raw, ok
	}
	for i := range 1000 { // others, which the old scan walked through
		l.mu.Lock()
		l.setLocked(fmt.Sprintf("u%d@example.com", i), []binding{bind(fmt.Sprintf("sip:u%d@10.1.%d.%d:5060", i, i/250, i%250))})
		l.mu.Unlock()
	}
	const aor = "1001@example.com"
	l.mu.Lock()
	l.setLocked(aor, []binding{bind("sip:1001@198.51.100.7:41234;transport=udp")})
	l.mu.Unlock()
	if raw, ok := find("sip:1001@198.51.100.7:41234"); !ok || raw != "sip:1001@198.51.100.7:41234;transport=udp" {
		t.Fatalf("registered contact: %q %v", raw, ok)
	}
	if _, ok := find("sip:1001@198.51.100.7:41235"); ok {
		t.Fatal("another port found")
	}
	// The phone's NAT mapping moved: the old address is gone, the new one
	// found; the host compares without case.
	l.mu.Lock()
	l.setLocked(aor, []binding{bind("sip:1001@198.51.100.7:50000")})
	l.mu.Unlock()
	if _, ok := find("sip:1001@198.51.100.7:41234"); ok {
		t.Fatal("the old address still found")
	}
	if _, ok := find("sip:1001@198.51.100.7:50000"); !ok {
		t.Fatal("the new address not found")
	}
	// Removed: not found, and the index holds nothing for it.
	l.mu.Lock()
	l.setLocked(aor, nil)
	l.mu.Unlock()
	if _, ok := find("sip:1001@198.51.100.7:50000"); ok {
		t.Fatal("a removed contact found")
	}
	if n := len(l.byAddr); n != 1000 {
		t.Fatalf("index holds %d addresses, want 1000", n)
	}
	// Expired: not found.
	now = now.Add(2 * time.Hour)
	if _, ok := find("sip:u7@10.1.0.7:5060"); ok {
		t.Fatal("an expired contact found")
	}
	// Restored from the database.
	l.restore([]models.Binding{{AOR: aor, Contact: "sip:1001@EXAMPLE.net:5070", QMilli: 1000, Expires: now.Add(time.Hour), CallID: "c", CSeq: 2, RegisteredAt: now}})
	if _, ok := find("sip:1001@example.net:5070"); !ok {
		t.Fatal("a restored contact not found")
	}
	if n := len(l.byAddr); n != 1 {
		t.Fatalf("index holds %d addresses after the restore, want 1", n)
	}
}

// A re-registration that changes nothing but the expiry (and which
// REGISTER renewed it) is written after the delay, or sooner when the
// stored expiry comes near, or at the last flush; anything else at once.
func TestLocationDefersRefreshes(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := t0
	l := newLocation(func() time.Time { return now }, 30*time.Second)
	const aor = "1001@example.com"
	b := binding{raw: "sip:1001@10.0.0.1", q: 1000, expires: t0.Add(time.Hour), callID: "X", cseq: 1, received: "127.0.0.1:5060", transport: "udp"}
	set := func(b binding) {
		l.mu.Lock()
		l.setLocked(aor, []binding{b})
		l.mu.Unlock()
	}
	take := func(all bool) int {
		ups, dels := l.takeDirtyAt(all)
		return len(ups) + len(dels)
	}
	set(b)
	if n := take(false); n != 1 {
		t.Fatalf("a new binding: %d written, want 1", n)
	}
	// Renewed (a new Call-ID, as SIPp sends; the same one with a higher
	// CSeq alike): deferred.
	now = now.Add(10 * time.Second)
	r := b
	r.callID, r.cseq, r.expires, r.registeredAt = "Y", 1, now.Add(time.Hour), time.Time{}
	set(r)
	if n := take(false); n != 0 {
		t.Fatalf("a refresh: %d written at once, want 0", n)
	}
	now = now.Add(29 * time.Second)
	if n := take(false); n != 0 {
		t.Fatalf("a refresh after 29 s: %d written, want 0", n)
	}
	now = now.Add(time.Second)
	ups, _ := l.takeDirtyAt(false)
	if len(ups) != 1 || ups[0].CallID != "Y" || !ups[0].Expires.Equal(r.expires) {
		t.Fatalf("a refresh after 30 s: %+v", ups)
	}
	// Written before the stored expiry comes within the delay.
	short := r
	short.cseq, short.expires = 2, now.Add(40*time.Second)
	set(short) // an earlier expiry: not a refresh, written at once
	if n := take(false); n != 1 {
		t.Fatalf("a shortened expiry: %d written, want 1", n)
	}
	now = now.Add(5 * time.Second)
	long := short
	long.cseq, long.expires = 3, now.Add(time.Hour)
	set(long)
	if n := take(false); n != 0 {
		t.Fatalf("a refresh 35 s before the stored expiry: %d written, want 0", n)
	}
	now = now.Add(6 * time.Second) // the stored expiry is 29 s away
	if n := take(false); n != 1 {
		t.Fatalf("a refresh 29 s before the stored expiry: %d written, want 1", n)
	}
	// Moved (another source): at once.
	moved := long
	moved.cseq, moved.received = 4, "127.0.0.1:6000"
	set(moved)
	if n := take(false); n != 1 {
		t.Fatalf("a moved contact: %d written, want 1", n)
	}
	// Renewed, then removed: the delete is written, nothing stays deferred.
	again := moved
	again.cseq, again.expires = 5, now.Add(2*time.Hour)
	set(again)
	l.mu.Lock()
	l.setLockedBy(aor, nil, &removal{callID: again.callID, cseq: 6})
	l.mu.Unlock()
	if ups, dels := l.takeDirtyAt(false); len(ups) != 0 || len(dels) != 1 || len(l.deferred) != 0 {
		t.Fatalf("renewed then removed: upserts %+v deletes %+v, %d deferred", ups, dels, len(l.deferred))
	}
	// The last flush takes what is deferred.
	set(b)
	take(false)
	rb := b
	rb.cseq, rb.expires = 2, now.Add(3*time.Hour)
	set(rb)
	if n := take(false); n != 0 {
		t.Fatalf("a refresh: %d written at once", n)
	}
	if n := take(true); n != 1 {
		t.Fatalf("the last flush: %d written, want 1", n)
	}
}

// A read-back of another replica's writes meets a deferred refresh: the
// row it renews keeps it; a row gone (removed at the other replica)
// takes it away instead of letting its write bring the contact back; a
// newer registration there wins; an older one there loses to ours, which
// is then written at once.
func TestDeferredRefreshMeetsReadBack(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const aor = "1001@example.com"
	const raw = "sip:1001@10.0.0.1"
	row := func(callID string, cseq int64, at time.Time) models.Binding {
		return models.Binding{AOR: aor, Contact: raw, QMilli: 1000, Expires: at.Add(time.Hour), CallID: callID, CSeq: cseq,
			Received: "127.0.0.1:5060", Transport: "udp", RegisteredAt: at}
	}
	// setup: X written at t0, renewed by Y at t0+5 s (deferred).
	setup := func() (*location, *time.Time) {
		now := t0
		l := newLocation(func() time.Time { return now }, 30*time.Second)
		b := binding{raw: raw, q: 1000, expires: t0.Add(time.Hour), callID: "X", cseq: 1, received: "127.0.0.1:5060", transport: "udp"}
		l.mu.Lock()
		l.setLocked(aor, []binding{b})
		l.mu.Unlock()
		l.takeDirtyAt(false)
		now = t0.Add(5 * time.Second)
		r := b
		r.callID, r.expires = "Y", now.Add(time.Hour)
		l.mu.Lock()
		l.setLocked(aor, []binding{r})
		l.mu.Unlock()
		if len(l.deferred) != 1 {
			t.Fatalf("%d deferred", len(l.deferred))
		}
		return l, &now
	}
	callIDs := func(l *location) []string {
		var out []string
		for _, b := range l.aors[aor] {
			out = append(out, b.callID)
		}
		return out
	}

	l, _ := setup()
	l.refresh([]string{aor}, false, []models.Binding{row("X", 1, t0)})
	if got := callIDs(l); len(got) != 1 || got[0] != "Y" || len(l.deferred) != 1 || len(l.recheck) != 0 {
		t.Fatalf("the stored row it renews: %v, %d deferred, recheck %v", got, len(l.deferred), l.recheck)
	}

	l, _ = setup()
	l.refresh([]string{aor}, false, nil)
	if ups, dels := l.takeDirtyAt(true); len(l.aors[aor]) != 0 || len(ups)+len(dels) != 0 {
		t.Fatalf("removed at the other replica: bindings %v, the last flush writes %+v %+v", callIDs(l), ups, dels)
	}

	l, _ = setup()
	l.refresh([]string{aor}, false, []models.Binding{row("Z", 1, t0.Add(8*time.Second))})
	if got := callIDs(l); len(got) != 1 || got[0] != "Z" || len(l.deferred) != 0 {
		t.Fatalf("a newer registration elsewhere: %v, %d deferred", got, len(l.deferred))
	}

	l, _ = setup()
	l.refresh([]string{aor}, false, []models.Binding{row("W", 1, t0.Add(2*time.Second))})
	ups, _ := l.takeDirtyAt(false)
	if got := callIDs(l); len(got) != 1 || got[0] != "Y" || len(ups) != 1 || ups[0].CallID != "Y" {
		t.Fatalf("an older registration elsewhere: %v, written at once %+v", got, ups)
	}
}

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
	l := newLocation(func() time.Time { return now })
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
	l := newLocation(func() time.Time { return now })
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

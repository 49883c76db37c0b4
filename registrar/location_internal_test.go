package registrar

import (
	"testing"
	"time"

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

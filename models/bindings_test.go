package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestBindingsWriteReadSweep(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		var commits int
		s := modelstest.Open(t, backend, modelstest.Options{OnCommit: func(models.ChangeEvent) { commits++ }})
		ctx := context.Background()
		if v, _ := s.SchemaVersion(ctx); v < models.MigrationBindingsUnique { // IDs sort by number
			t.Fatalf("schema version %q, want %q or later", v, models.MigrationBindingsUnique)
		}
		now := time.Now().UTC().Truncate(time.Second)
		at := now.Add(-time.Minute)
		a := []models.Binding{
			{AOR: "1001@example.com", Contact: "sip:1001@10.0.0.1:5060", QMilli: 1000, Expires: now.Add(time.Hour), CallID: "c1", CSeq: 2, Received: "127.0.0.1:5062", Transport: "udp", UserAgent: "ua", RegisteredAt: at},
			{AOR: "1001@example.com", Contact: "sip:1001@10.0.0.2:5060", QMilli: 500, Expires: now.Add(-time.Second), CallID: "c2", CSeq: 1, Received: "127.0.0.1:5063", Transport: "tcp", RegisteredAt: at},
		}
		b := models.Binding{AOR: "1002@example.com", Contact: "sip:1002@10.0.0.3", QMilli: 1000, Expires: now.Add(time.Minute), CallID: "c3", CSeq: 7, Received: "127.0.0.1:5064", Transport: "udp", RegisteredAt: at}
		if err := s.WriteBindings(ctx, "a", append(a, b), nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.Bindings(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].AOR != "1001@example.com" || got[0].Contact != a[0].Contact || got[0].QMilli != 1000 ||
			got[0].CallID != "c1" || got[0].CSeq != 2 || got[0].Received != "127.0.0.1:5062" || got[0].Transport != "udp" ||
			!got[0].Expires.Equal(a[0].Expires) || !got[0].RegisteredAt.Equal(at) || got[1].AOR != "1002@example.com" {
			t.Fatalf("bindings after write: %+v", got)
		}
		of, err := s.BindingsOf(ctx, "1001@example.com", now)
		if err != nil || len(of) != 1 || of[0].Contact != a[0].Contact {
			t.Fatalf("BindingsOf: %+v %v: want the unexpired one", of, err)
		}
		// Deleting one AOR's contact leaves the other AOR alone.
		if err := s.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: b.AOR, Contact: b.Contact, CallID: "c3", CSeq: 7, RegisteredAt: at}}); err != nil {
			t.Fatal(err)
		}
		got, err = s.Bindings(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].AOR != "1001@example.com" {
			t.Fatalf("bindings after removal: %+v", got)
		}
		n, err := s.DeleteExpiredBindings(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("swept %d, want the one expired binding", n)
		}
		var rows int64
		s.DB().Model(&models.Binding{}).Count(&rows)
		if rows != 1 {
			t.Fatalf("%d rows left, want 1", rows)
		}
		// Registration churn is not an operator's change.
		var changes, audits int64
		s.DB().Model(&models.ChangeEvent{}).Count(&changes)
		s.DB().Table("audit_events").Count(&audits)
		if changes != 0 || audits != 0 || commits != 0 {
			t.Fatalf("binding writes left %d change events, %d audit rows, %d commit hooks", changes, audits, commits)
		}
	})
}

// Replicas write one contact at a time: two of them registering different
// contacts of one AOR both keep theirs, an older REGISTER (same Call-ID,
// lower CSeq) does not overwrite a newer one, a delete removes only the
// contact it names; no change event, no audit row.
func TestWriteBindingsMerges(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		other := modelstest.Reopen(t, s, modelstest.Options{})
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		const aor = "1001@example.com"
		at := func(contact, callID string, cseq int64, exp time.Duration) models.Binding {
			return models.Binding{AOR: aor, Contact: contact, QMilli: 1000, Expires: now.Add(exp), CallID: callID, CSeq: cseq,
				Received: "127.0.0.1:5062", Transport: "udp", UserAgent: "ua", RegisteredAt: now}
		}
		if err := s.WriteBindings(ctx, "a", []models.Binding{at("sip:1001@10.0.0.1", "ca", 1, time.Hour)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := other.WriteBindings(ctx, "b", []models.Binding{at("sip:1001@10.0.0.2", "cb", 1, time.Hour)}, nil); err != nil {
			t.Fatal(err)
		}
		// A refresh by b of a's contact (a later CSeq), then a's stale view
		// of it: the later one stays.
		if err := other.WriteBindings(ctx, "b", []models.Binding{at("sip:1001@10.0.0.1", "ca", 3, 2*time.Hour)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteBindings(ctx, "a", []models.Binding{at("sip:1001@10.0.0.1", "ca", 2, time.Hour)}, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.BindingsOfAORs(ctx, []string{aor, "nobody@example.com"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Contact != "sip:1001@10.0.0.1" || got[0].CSeq != 3 || !got[0].Expires.Equal(now.Add(2*time.Hour)) ||
			got[1].Contact != "sip:1001@10.0.0.2" || got[1].CallID != "cb" {
			t.Fatalf("merged bindings: %+v", got)
		}
		// Another Call-ID replaces it whatever its CSeq (a rebooted phone).
		if err := s.WriteBindings(ctx, "a", []models.Binding{at("sip:1001@10.0.0.1", "new", 1, time.Hour)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: aor, Contact: "sip:1001@10.0.0.2", CallID: "cb", CSeq: 1, RegisteredAt: now}}); err != nil {
			t.Fatal(err)
		}
		got, err = other.BindingsOfAORs(ctx, []string{aor}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Contact != "sip:1001@10.0.0.1" || got[0].CallID != "new" || got[0].CSeq != 1 {
			t.Fatalf("after a new Call-ID and a delete: %+v", got)
		}
		var changes, audits int64
		s.DB().Model(&models.ChangeEvent{}).Count(&changes)
		s.DB().Table("audit_events").Count(&audits)
		if changes != 0 || audits != 0 {
			t.Fatalf("binding writes left %d change events, %d audit rows", changes, audits)
		}
	})
}

// On PostgreSQL a batch is announced on BindingsChannel: its origin and
// every AOR it touched, in payloads under PostgreSQL's 8000-byte limit (a
// batch of 1000 AORs takes several); nothing is sent for other schemas'
// listeners to mistake for theirs (the schema leads the payload).
func TestWriteBindingsNotifies(t *testing.T) {
	s := modelstest.Open(t, "postgres", modelstest.Options{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, modelstest.URLOf(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+models.BindingsChannel); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	var ups []models.Binding
	want := map[string]bool{}
	for i := range 1000 {
		aor := fmt.Sprintf("user-with-a-long-name-%04d@tenant-%d.example.com", i, i%7)
		want[aor] = true
		ups = append(ups, models.Binding{AOR: aor, Contact: "sip:" + aor, QMilli: 1000, Expires: exp, CallID: "c", CSeq: 1, Received: "127.0.0.1:5060", Transport: "udp", RegisteredAt: exp})
	}
	dels := []models.BindingKey{{AOR: "gone@example.com", Contact: "sip:gone@10.0.0.9", RegisteredAt: exp}}
	want["gone@example.com"] = true
	if err := s.WriteBindings(ctx, "replica-a", ups, dels); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	payloads := 0
	for len(got) < len(want) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d payloads, %d of %d AORs: %v", payloads, len(got), len(want), err)
		}
		payloads++
		if len(n.Payload) >= 8000 {
			t.Fatalf("payload of %d bytes", len(n.Payload))
		}
		rest, ok := strings.CutPrefix(n.Payload, schema+":")
		if !ok {
			t.Fatalf("payload without the schema: %.60q", n.Payload)
		}
		origin, aors, all := models.ParseBindingsPayload(rest)
		if origin != "replica-a" || all {
			t.Fatalf("origin %q, all %v", origin, all)
		}
		for _, a := range aors {
			if !want[a] || got[a] {
				t.Fatalf("AOR %q unexpected or announced twice", a)
			}
			got[a] = true
		}
	}
	if payloads < 2 {
		t.Fatalf("1001 AORs of about 50 bytes in %d payload", payloads)
	}
	// An AOR that cannot be a line of the payload: "read everything".
	if err := s.WriteBindings(ctx, "replica-a", nil, []models.BindingKey{{AOR: "a\nb@example.com", Contact: "sip:x", RegisteredAt: exp}}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, all := models.ParseBindingsPayload(strings.TrimPrefix(n.Payload, schema+":")); !all {
		t.Fatalf("payload %q, want reload-all", n.Payload)
	}
}

// Two replicas' writes of one contact are ordered by when each REGISTER
// was accepted, not by when it is flushed: (a) a delete decided on a stale
// view (same Call-ID, a CSeq between the one seen and the one stored)
// leaves the newer row; (b) a late flush of an old Call-ID's binding does
// not overwrite the binding a rebooted phone made with a new Call-ID
// since, and a late delete of it neither. What is not newer is replaced
// or deleted; a binding without RegisteredAt is refused.
func TestWriteBindingsOrdersReplicas(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		a := modelstest.Open(t, backend, modelstest.Options{})
		b := modelstest.Reopen(t, a, modelstest.Options{})
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(time.Second)
		const aor, contact = "1001@example.com", "sip:1001@10.0.0.1"
		row := func(callID string, cseq int64, at time.Time, received string) models.Binding {
			return models.Binding{AOR: aor, Contact: contact, QMilli: 1000, Expires: t0.Add(time.Hour), CallID: callID, CSeq: cseq,
				Received: received, Transport: "udp", RegisteredAt: at}
		}
		stored := func(want string) models.Binding {
			t.Helper()
			got, err := a.BindingsOfAORs(ctx, []string{aor}, t0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || fmt.Sprintf("%s/%d/%s", got[0].CallID, got[0].CSeq, got[0].Received) != want {
				t.Fatalf("stored %+v, want %s", got, want)
			}
			return got[0]
		}

		// (a) B stored (X, 20); A, which saw 18, removes on CSeq 19.
		if err := b.WriteBindings(ctx, "b", []models.Binding{row("X", 20, t0.Add(2*time.Second), "127.0.0.1:6002")}, nil); err != nil {
			t.Fatal(err)
		}
		stale := models.BindingKey{AOR: aor, Contact: contact, CallID: "X", CSeq: 18, RegisteredAt: t0.Add(time.Second)}
		if err := a.WriteBindings(ctx, "a", nil, []models.BindingKey{stale}); err != nil {
			t.Fatal(err)
		}
		stored("X/20/127.0.0.1:6002")
		// Even stamped later than B's row: same Call-ID, lower CSeq.
		stale.RegisteredAt = t0.Add(3 * time.Second)
		if err := a.WriteBindings(ctx, "a", nil, []models.BindingKey{stale}); err != nil {
			t.Fatal(err)
		}
		stored("X/20/127.0.0.1:6002")

		// (b) The phone reboots and registers at B with Call-ID Y; A's
		// flush of X (accepted before) comes late: Y stays.
		if err := b.WriteBindings(ctx, "b", []models.Binding{row("Y", 1, t0.Add(10*time.Second), "127.0.0.1:7002")}, nil); err != nil {
			t.Fatal(err)
		}
		if err := a.WriteBindings(ctx, "a", []models.Binding{row("X", 21, t0.Add(5*time.Second), "127.0.0.1:6001")}, nil); err != nil {
			t.Fatal(err)
		}
		stored("Y/1/127.0.0.1:7002")
		// Nor does a late delete of X's binding remove Y's.
		if err := a.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: aor, Contact: contact, CallID: "X", CSeq: 21, RegisteredAt: t0.Add(5 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		y := stored("Y/1/127.0.0.1:7002")
		if !y.RegisteredAt.Equal(t0.Add(10 * time.Second)) {
			t.Fatalf("registered_at %v, want %v", y.RegisteredAt, t0.Add(10*time.Second))
		}

		// Later registrations do replace it (a new Call-ID, or Y's next
		// CSeq), also when stamped at the same time, and a delete of what
		// is stored removes it.
		if err := a.WriteBindings(ctx, "a", []models.Binding{row("Y", 2, t0.Add(11*time.Second), "127.0.0.1:7003")}, nil); err != nil {
			t.Fatal(err)
		}
		stored("Y/2/127.0.0.1:7003")
		if err := b.WriteBindings(ctx, "b", []models.Binding{row("Z", 1, t0.Add(11*time.Second), "127.0.0.1:7004")}, nil); err != nil {
			t.Fatal(err)
		}
		stored("Z/1/127.0.0.1:7004")
		// An operator's removal (no Call-ID) of what was there before Z.
		if err := a.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: aor, Contact: contact, RegisteredAt: t0.Add(10 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		stored("Z/1/127.0.0.1:7004")
		if err := a.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: aor, Contact: contact, CallID: "Z", CSeq: 2, RegisteredAt: t0.Add(12 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		if got, err := a.BindingsOfAORs(ctx, []string{aor}, t0); err != nil || len(got) != 0 {
			t.Fatalf("after a delete of the stored registration: %+v %v", got, err)
		}
		// And one after the registration, whatever its Call-ID.
		if err := b.WriteBindings(ctx, "b", []models.Binding{row("V", 9, t0.Add(13*time.Second), "127.0.0.1:7006")}, nil); err != nil {
			t.Fatal(err)
		}
		if err := a.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: aor, Contact: contact, RegisteredAt: t0.Add(13 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		if got, err := a.BindingsOfAORs(ctx, []string{aor}, t0); err != nil || len(got) != 0 {
			t.Fatalf("after an operator's removal: %+v %v", got, err)
		}

		// Without the time of the REGISTER nothing can be ordered.
		if err := a.WriteBindings(ctx, "a", []models.Binding{row("W", 1, time.Time{}, "127.0.0.1:7005")}, nil); !errors.Is(err, models.ErrBindingTime) {
			t.Fatalf("upsert without registered_at: %v", err)
		}
		if err := a.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: aor, Contact: contact, CallID: "W"}}); !errors.Is(err, models.ErrBindingTime) {
			t.Fatalf("delete without registered_at: %v", err)
		}
	})
}

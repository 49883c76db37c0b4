package models_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func TestBindingsReplaceReadSweep(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		var commits int
		s := modelstest.Open(t, backend, modelstest.Options{OnCommit: func(models.ChangeEvent) { commits++ }})
		ctx := context.Background()
		if v, _ := s.SchemaVersion(ctx); v < models.MigrationBindingsUnique { // IDs sort by number
			t.Fatalf("schema version %q, want %q or later", v, models.MigrationBindingsUnique)
		}
		now := time.Now().UTC().Truncate(time.Second)
		a := []models.Binding{
			{Contact: "sip:1001@10.0.0.1:5060", QMilli: 1000, Expires: now.Add(time.Hour), CallID: "c1", CSeq: 2, Received: "127.0.0.1:5062", Transport: "udp", UserAgent: "ua"},
			{Contact: "sip:1001@10.0.0.2:5060", QMilli: 500, Expires: now.Add(-time.Second), CallID: "c2", CSeq: 1, Received: "127.0.0.1:5063", Transport: "tcp"},
		}
		b := []models.Binding{{Contact: "sip:1002@10.0.0.3", QMilli: 1000, Expires: now.Add(time.Minute), CallID: "c3", CSeq: 7, Received: "127.0.0.1:5064", Transport: "udp"}}
		if err := s.ReplaceBindings(ctx, map[string][]models.Binding{"1001@example.com": a, "1002@example.com": b}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Bindings(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].AOR != "1001@example.com" || got[0].Contact != a[0].Contact || got[0].QMilli != 1000 ||
			got[0].CallID != "c1" || got[0].CSeq != 2 || got[0].Received != "127.0.0.1:5062" || got[0].Transport != "udp" ||
			!got[0].Expires.Equal(a[0].Expires) || got[1].AOR != "1002@example.com" {
			t.Fatalf("bindings after write: %+v", got)
		}
		of, err := s.BindingsOf(ctx, "1001@example.com", now)
		if err != nil || len(of) != 1 || of[0].Contact != a[0].Contact {
			t.Fatalf("BindingsOf: %+v %v: want the unexpired one", of, err)
		}
		// Replacing one AOR leaves the other alone; an empty set removes it.
		if err := s.ReplaceBindings(ctx, map[string][]models.Binding{"1002@example.com": nil}); err != nil {
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
				Received: "127.0.0.1:5062", Transport: "udp", UserAgent: "ua"}
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
		if err := s.WriteBindings(ctx, "a", nil, []models.BindingKey{{AOR: aor, Contact: "sip:1001@10.0.0.2"}}); err != nil {
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
		ups = append(ups, models.Binding{AOR: aor, Contact: "sip:" + aor, QMilli: 1000, Expires: exp, CallID: "c", CSeq: 1, Received: "127.0.0.1:5060", Transport: "udp"})
	}
	dels := []models.BindingKey{{AOR: "gone@example.com", Contact: "sip:gone@10.0.0.9"}}
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
	if err := s.WriteBindings(ctx, "replica-a", nil, []models.BindingKey{{AOR: "a\nb@example.com", Contact: "sip:x"}}); err != nil {
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

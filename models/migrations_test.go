package models_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/schema"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// An installation at the first schema version, holding data, upgrades to
// the newest one without losing a row, and the result fits the live structs.
func TestUpgradeFromInitialSchema(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		kr := modelstest.Keyring(t)
		s := modelstest.Open(t, backend, modelstest.Options{Keys: kr, NoMigrate: true})
		ctx := context.Background()
		if err := s.MigrateTo(ctx, models.MigrationInitial); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.SchemaVersion(ctx); v != models.MigrationInitial {
			t.Fatalf("schema version %q, want %q", v, models.MigrationInitial)
		}
		if s.DB().Migrator().HasTable("change_events") {
			t.Fatal("change_events exists before its migration")
		}
		// A row as the previous version (or a Python platform) wrote it.
		tok, _ := kr.Encrypt("old-secret")
		err := s.DB().Exec(`INSERT INTO trunks (name, profile, proxy, register, username, password_enc, enabled, numbers, created_at, updated_at)
			VALUES ('einsundeins', 'internal', 'sip.1und1.de', true, '4934556', ?, true, '["+493455664337"]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`, tok).Error
		if err != nil {
			t.Fatal(err)
		}

		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		tr, err := s.TrunkByName(ctx, "einsundeins")
		if err != nil {
			t.Fatal(err)
		}
		if tr.Version != 1 || tr.Transport != "udp" || tr.ExpireSeconds != 3600 || tr.Context != "public" ||
			len(tr.Hostnames) != 0 || len(tr.Numbers) != 1 || tr.Numbers[0] != "+493455664337" {
			t.Fatalf("upgraded row: %+v", tr)
		}
		if pw, err := s.Reveal(models.KindTrunk, tr.ID, tr.Name, tr.PasswordEnc); err != nil || pw != "old-secret" {
			t.Fatalf("secret after upgrade: %q %v", pw, err)
		}
		// The upgraded row takes part in versioned writes and the change log.
		tr.Hostnames = models.StringList{"fs1"}
		if err := s.UpdateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		if evs, err := s.ChangesSince(ctx, 0, 0); err != nil || len(evs) != 1 || !evs[0].HasField("hostnames") {
			t.Fatalf("change log after upgrade: %v %+v", err, evs)
		}
		// Every column of every live struct exists.
		for _, m := range []any{&models.Trunk{}, &models.Extension{}, &models.Profile{}, &models.ProviderRange{},
			&models.APIToken{}, &models.AuditEvent{}, &models.ChangeEvent{}, &models.ConsoleSession{}, &models.Binding{}} {
			sch, err := schema.Parse(m, &sync.Map{}, s.DB().NamingStrategy)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range sch.Fields {
				if f.DBName != "" && !s.DB().Migrator().HasColumn(m, f.DBName) {
					t.Errorf("table %s lacks column %s of the live struct", sch.Table, f.DBName)
				}
			}
		}
		// Migrating again is a no-op.
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Concurrent read-modify-write cycles lose no update: each writer retries
// on ErrConflict, and the sum of all increments is what the row holds.
func TestConcurrentWritersLoseNoUpdate(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		plusnetRange(t, s)
		tr := plusnet()
		tr.RetrySeconds = 0
		if err := s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		const writers, each = 6, 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		conflicts := 0
		errs := make(chan error, writers)
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; {
					cur, err := s.GetTrunk(ctx, tr.ID)
					if err != nil {
						errs <- err
						return
					}
					cur.RetrySeconds++
					switch err := s.UpdateTrunk(ctx, cur); {
					case err == nil:
						i++
					case errors.Is(err, models.ErrConflict):
						mu.Lock()
						conflicts++
						mu.Unlock()
					default:
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, _ := s.GetTrunk(ctx, tr.ID)
		if got.RetrySeconds != writers*each || got.Version != 1+writers*each {
			t.Fatalf("retry_seconds=%d version=%d, want %d and %d (conflicts seen: %d)",
				got.RetrySeconds, got.Version, writers*each, 1+writers*each, conflicts)
		}
		t.Logf("%s: %d conflicts detected and retried", backend, conflicts)
	})
}

// TestReplicasMigrateAtOnce: replicas started at the same moment on an
// empty PostgreSQL schema all come up (the first migrates, the others wait
// for its lock and find the schema current), as an orchestrator starting
// three of them does.
func TestReplicasMigrateAtOnce(t *testing.T) {
	first := modelstest.Open(t, "postgres", modelstest.Options{NoMigrate: true})
	stores := []*models.Store{first}
	for range 2 {
		stores = append(stores, modelstest.Reopen(t, first, modelstest.Options{}))
	}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.Migrate(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	newest, err := modelstest.Open(t, "sqlite", modelstest.Options{}).SchemaVersion(context.Background())
	if err != nil || newest == "" {
		t.Fatalf("newest schema version %q: %v", newest, err)
	}
	for i, s := range stores {
		v, err := s.SchemaVersion(context.Background())
		if err != nil || v != newest {
			t.Errorf("replica %d: schema version %q (%v)", i, v, err)
		}
	}
}

// TestWideEventNames: an extension's event name (user@domain) may be
// longer than 255 characters; after 0004 PostgreSQL stores it, where it
// refused the write before.
func TestWideEventNames(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		ctx := context.Background()
		domain := strings.Repeat("a.", 125) + "de" // 252 characters, a valid DNS name
		user := "+" + strings.Repeat("1", 63)
		e := &models.Extension{Domain: domain, UserID: user, Password: ptr("long-enough"), Context: "default", Enabled: true}
		if err := s.CreateExtension(ctx, e); err != nil {
			t.Fatal(err)
		}
		evs, err := s.ChangesSince(ctx, 0, 10)
		if err != nil || len(evs) != 1 || evs[0].Name != user+"@"+domain {
			t.Fatalf("change log %+v (%v)", evs, err)
		}
		// A value longer than its column is refused by the store, naming
		// the column, on SQLite too (which would have kept it).
		e2 := &models.Extension{Domain: "pbx.example.com", UserID: strings.Repeat("u", 65), Password: ptr("long-enough"), Context: "default"}
		var se *models.SizeError
		if err := s.CreateExtension(ctx, e2); !errors.As(err, &se) || se.Column != "user_id" || se.Max != 64 {
			t.Fatalf("over-long user_id: %v", err)
		}
	})
}

// 0009 keeps the newest row of a contact written twice and dates the
// rows there were by their write (registered_at = updated_at).
func TestUpgradeBindings(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{NoMigrate: true})
		ctx := context.Background()
		if err := s.MigrateTo(ctx, models.MigrationConsoleSessions); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now().UTC().Truncate(time.Second)
		for i, callID := range []string{"old", "new"} {
			if err := s.DB().Exec("INSERT INTO sip_bindings (aor, contact, q_milli, expires, call_id, c_seq, received, transport, user_agent, updated_at) "+
				"VALUES (?,?,?,?,?,?,?,?,?,?)", "1001@example.com", "sip:1001@10.0.0.1", 1000, t0.Add(time.Hour), callID, 1,
				"127.0.0.1:5060", "udp", "", t0.Add(time.Duration(i)*time.Second)).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.Bindings(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].CallID != "new" || !got[0].RegisteredAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("upgraded bindings: %+v", got)
		}
	})
}

// Package modelstest opens real stores for tests: an SQLite file in a temp
// directory and, when FSPLANE_TEST_DATABASE_URL names a PostgreSQL server, a
// fresh schema on it. With CI=true a missing PostgreSQL fails the test
// instead of skipping it: `make test` always provides one.
package modelstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for schema setup

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/secrets"
)

// Backends are the databases every store test runs against.
var Backends = []string{"sqlite", "postgres"}

// Options tunes Open.
type Options struct {
	Keys     *secrets.Keyring
	OnCommit func(models.ChangeEvent)
	// NoMigrate leaves the schema empty.
	NoMigrate bool
}

// Keyring returns a fresh one-key ring.
func Keyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.Parse(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// Each runs fn as a subtest on every backend.
func Each(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// PostgresURL returns the test server's URL, skipping (or, under CI,
// failing) the test when there is none.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("FSPLANE_TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FSPLANE_TEST_DATABASE_URL is not set; under CI=true PostgreSQL is required (run `make test`)")
		}
		t.Skip("FSPLANE_TEST_DATABASE_URL not set; run `make test` for the PostgreSQL half")
	}
	return u
}

// Open returns a migrated store on backend, removed when the test ends.
func Open(t testing.TB, backend string, opt Options) *models.Store {
	t.Helper()
	if opt.Keys == nil {
		opt.Keys = Keyring(t)
	}
	cfg := models.Config{Keys: opt.Keys, OnCommit: opt.OnCommit}
	switch backend {
	case "sqlite":
		cfg.SQLitePath = filepath.Join(t.TempDir(), "fsplane.db")
	case "postgres":
		cfg.DatabaseURL = freshSchema(t, PostgresURL(t))
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	s := open(t, cfg)
	if !opt.NoMigrate {
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Reopen opens a second store on the data of s (another replica, or a
// restart), with opt's keys and hook; nil keys reuse s's ring.
func Reopen(t testing.TB, s *models.Store, opt Options) *models.Store {
	t.Helper()
	if opt.Keys == nil {
		opt.Keys = s.Keys()
	}
	cfg := models.Config{Keys: opt.Keys, OnCommit: opt.OnCommit}
	if s.Dialect() == "sqlite" {
		var file string
		if err := s.DB().Raw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file).Error; err != nil {
			t.Fatal(err)
		}
		cfg.SQLitePath = file
	} else {
		cfg.DatabaseURL = URLOf(t, s)
	}
	return open(t, cfg)
}

// open opens a store that is closed when the test ends, remembering its
// PostgreSQL URL for URLOf.
func open(t testing.TB, cfg models.Config) *models.Store {
	t.Helper()
	s, err := models.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DatabaseURL != "" {
		urls.Store(s, cfg.DatabaseURL)
	}
	t.Cleanup(func() { s.Close(); urls.Delete(s) })
	return s
}

var urls sync.Map // *models.Store → its PostgreSQL URL

// URLOf returns the PostgreSQL URL (with its test schema) a store from Open
// uses, to open a second store on the same data.
func URLOf(t testing.TB, s *models.Store) string {
	t.Helper()
	u, ok := urls.Load(s)
	if !ok {
		t.Fatal("modelstest: store was not opened on PostgreSQL by Open")
	}
	return u.(string)
}

// freshSchema creates an empty schema and returns base with its
// search_path set to it; the schema is dropped at cleanup.
func freshSchema(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		db.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, base, schema string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + schema
}

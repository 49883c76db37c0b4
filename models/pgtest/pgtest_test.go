package pgtest_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/fsplane/fsplane/models/pgtest"
)

// The cluster answers, refuses connections once stopped, and answers again
// on the same URL once started.
func TestStopStart(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "probe")
	ping := func() error {
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return db.PingContext(context.Background())
	}
	if err := ping(); err != nil {
		t.Fatalf("fresh cluster: %v", err)
	}
	pg.Stop(t)
	if err := ping(); err == nil {
		t.Fatal("a stopped cluster answered")
	}
	pg.Start(t)
	if err := ping(); err != nil {
		t.Fatalf("restarted cluster: %v", err)
	}
}

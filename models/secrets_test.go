package models_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/secrets"
)

func ring(t *testing.T, keys ...string) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.Parse(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newKey(t *testing.T) string {
	t.Helper()
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// seedSecrets writes n trunks and n extensions with distinct passwords and
// returns the passwords by trunk name / user.
func seedSecrets(t *testing.T, s *models.Store, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	want := map[string]string{}
	plusnetRange(t, s)
	for i := range n {
		pw := fmt.Sprintf("Plain-Text-Secret-%03d", i)
		tr := plusnet()
		tr.Name, tr.Password = fmt.Sprintf("trunk-%03d", i), ptr(pw)
		if err := s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		want["trunk:"+tr.Name] = pw
		epw := fmt.Sprintf("Ext-Secret-%03d", i)
		ext := &models.Extension{Domain: "pbx.example", UserID: fmt.Sprintf("1%03d", i), Password: ptr(epw), Enabled: true, Context: "default"}
		if err := s.CreateExtension(ctx, ext); err != nil {
			t.Fatal(err)
		}
		want["ext:"+ext.UserID] = epw
	}
	return want
}

func checkSecrets(t *testing.T, s *models.Store, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	trunks, _, err := s.ListTrunks(ctx, models.TrunkFilter{Page: models.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trunks {
		got, err := s.Reveal(models.KindTrunk, tr.ID, tr.Name, tr.PasswordEnc)
		if err != nil || got != want["trunk:"+tr.Name] {
			t.Fatalf("trunk %s: %q %v", tr.Name, got, err)
		}
	}
	exts, _, err := s.ListExtensions(ctx, models.ExtensionFilter{Page: models.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exts {
		got, err := s.Reveal(models.KindExtension, e.ID, e.UserID, e.PasswordEnc)
		if err != nil || got != want["ext:"+e.UserID] {
			t.Fatalf("extension %s: %q %v", e.UserID, got, err)
		}
	}
}

// countCurrent counts sealed passwords under kr's newest key.
func countCurrent(t *testing.T, s *models.Store, kr *secrets.Keyring) (current, total int) {
	t.Helper()
	trunks, _, _ := s.ListTrunks(context.Background(), models.TrunkFilter{Page: models.Page{Limit: 1000}})
	exts, _, _ := s.ListExtensions(context.Background(), models.ExtensionFilter{Page: models.Page{Limit: 1000}})
	var toks []string
	for _, tr := range trunks {
		toks = append(toks, tr.PasswordEnc)
	}
	for _, e := range exts {
		toks = append(toks, e.PasswordEnc)
	}
	for _, tok := range toks {
		if kr.IsCurrent(tok) {
			current++
		}
	}
	return current, len(toks)
}

func TestRotateSecretsInterruptedAndResumed(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		oldKey, nextKey := newKey(t), newKey(t)
		s := modelstest.Open(t, backend, modelstest.Options{Keys: ring(t, oldKey)})
		want := seedSecrets(t, s, 12) // 24 sealed rows

		// Reopen the same database with the new key in front.
		both := ring(t, nextKey, oldKey)
		s2 := reopen(t, s, both)

		// Interrupt after the second batch of 5.
		ctx, cancel := context.WithCancel(context.Background())
		n, err := s2.RotateSecrets(ctx, models.RotateOptions{BatchSize: 5, AfterBatch: func(done int) {
			if done >= 10 {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) || n != 10 {
			t.Fatalf("interrupted run: n=%d err=%v, want 10 and context.Canceled", n, err)
		}
		if cur, total := countCurrent(t, s2, both); cur != 10 || total != 24 {
			t.Fatalf("after interruption %d/%d current, want 10/24", cur, total)
		}
		checkSecrets(t, s2, want) // half-rotated data still opens with both keys

		n, err = s2.RotateSecrets(context.Background(), models.RotateOptions{BatchSize: 5})
		if err != nil || n != 14 {
			t.Fatalf("resumed run: n=%d err=%v, want 14", n, err)
		}
		n, err = s2.RotateSecrets(context.Background(), models.RotateOptions{})
		if err != nil || n != 0 {
			t.Fatalf("third run must be a no-op: n=%d err=%v", n, err)
		}
		// The old key can now go.
		s3 := reopen(t, s, ring(t, nextKey))
		if err := s3.VerifySecrets(context.Background()); err != nil {
			t.Fatal(err)
		}
		checkSecrets(t, s3, want)
	})
}

func TestWrongKeyNamesTheSecret(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		seedSecrets(t, s, 1)
		wrong := reopen(t, s, ring(t, newKey(t)))
		err := wrong.VerifySecrets(context.Background())
		var se *models.SecretError
		if !errors.As(err, &se) {
			t.Fatalf("VerifySecrets with a wrong key: %v, want *SecretError", err)
		}
		msg := err.Error()
		for _, want := range []string{`trunk "trunk-000"`, `extension "1000@pbx.example"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not name %s", msg, want)
			}
		}
		if strings.Contains(msg, "Plain-Text-Secret") || strings.Contains(msg, "gAAAA") {
			t.Errorf("error leaks a secret or token: %s", msg)
		}
		if _, err := wrong.RotateSecrets(context.Background(), models.RotateOptions{}); !errors.As(err, &se) {
			t.Fatalf("rotation with a wrong key must stop with a SecretError: %v", err)
		}
	})
}

func TestNoPlaintextPasswordInDatabase(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{})
		want := seedSecrets(t, s, 3)
		ctx := models.WithActor(context.Background(), models.Actor{Name: "tester"})
		// An update with a new password, and audit rows, must not leak either.
		tr, err := s.TrunkByName(ctx, "trunk-000")
		if err != nil {
			t.Fatal(err)
		}
		tr.Password = ptr("Rotated-Plain-Text-Secret")
		if err := s.UpdateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		want["trunk:rotated"] = "Rotated-Plain-Text-Secret"

		var haystack []byte
		switch backend {
		case "sqlite":
			// Fold the WAL into the main file, then read every byte on disk.
			if err := s.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
				t.Fatal(err)
			}
			var file string
			if err := s.DB().Raw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file).Error; err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{file, file + "-wal", file + "-journal"} {
				b, err := os.ReadFile(p)
				if err == nil {
					haystack = append(haystack, b...)
				}
			}
			if len(haystack) == 0 {
				t.Fatalf("read nothing from %s", filepath.Base(file))
			}
		case "postgres":
			var tables []string
			if err := s.DB().Raw("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").Scan(&tables).Error; err != nil {
				t.Fatal(err)
			}
			if len(tables) < 7 {
				t.Fatalf("found only tables %v", tables)
			}
			for _, tbl := range tables {
				var rows []string
				if err := s.DB().Raw(fmt.Sprintf("SELECT row_to_json(x)::text FROM %q x", tbl)).Scan(&rows).Error; err != nil {
					t.Fatal(err)
				}
				haystack = append(haystack, strings.Join(rows, "\n")...)
			}
		}
		if !bytes.Contains(haystack, []byte("trunk-000")) {
			t.Fatal("the scan does not see the rows at all; it would prove nothing")
		}
		for k, pw := range want {
			if bytes.Contains(haystack, []byte(pw)) {
				t.Errorf("plaintext password of %s found in the %s database", k, backend)
			}
		}
	})
}

func reopen(t *testing.T, s *models.Store, kr *secrets.Keyring) *models.Store {
	return modelstest.Reopen(t, s, modelstest.Options{Keys: kr})
}

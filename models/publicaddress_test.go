package models_test

import (
	"context"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// profiles.use_public_address comes with its migration; profiles that
// existed before keep their ext IPs to themselves (false).
func TestProfileUsePublicAddressMigration(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		s := modelstest.Open(t, backend, modelstest.Options{NoMigrate: true})
		ctx := context.Background()
		if err := s.MigrateTo(ctx, models.MigrationESLOutbox); err != nil {
			t.Fatal(err)
		}
		if s.DB().Migrator().HasColumn(&models.Profile{}, "use_public_address") {
			t.Fatal("use_public_address exists before its migration")
		}
		if err := s.DB().Exec(`INSERT INTO profiles (version, created_at, updated_at, name, family, bind_ip) VALUES (1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'old', 'ipv4', '127.0.0.1')`).Error; err != nil {
			t.Fatal(err)
		}
		if err := s.MigrateTo(ctx, models.MigrationProfilePublicAddress); err != nil {
			t.Fatal(err)
		}
		p, err := s.ProfileByName(ctx, "old")
		if err != nil || p.UsePublicAddress {
			t.Fatalf("old profile after the migration: %+v, %v", p, err)
		}
		p.UsePublicAddress = true
		if err := s.UpdateProfile(ctx, p); err != nil {
			t.Fatal(err)
		}
		if p, err = s.ProfileByName(ctx, "old"); err != nil || !p.UsePublicAddress {
			t.Fatalf("not stored: %+v, %v", p, err)
		}
	})
}

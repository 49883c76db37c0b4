package models

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// sealedTables are the tables with a password_enc column, and how to name
// a row of each in an error.
var sealedTables = []struct {
	kind, table, label string
}{
	{KindTrunk, "trunks", "name"},
	{KindExtension, "extensions", "user_id || '@' || domain"},
}

type sealedRow struct {
	ID          uint
	Label       string
	PasswordEnc string
}

// RotateOptions tunes RotateSecrets.
type RotateOptions struct {
	// BatchSize is the number of rows re-sealed per transaction (default 100).
	BatchSize int
	// AfterBatch, when set, is called after each committed batch with the
	// number of rows re-sealed so far.
	AfterBatch func(done int)
}

// RotateSecrets re-seals every password that is not yet under the ring's
// newest key. Each batch commits on its own and each row is swapped only if
// it still holds the token that was read, so the run may be interrupted at
// any point (cancel ctx) and re-run, and concurrent edits are never undone.
// It returns the number of rows re-sealed.
func (s *Store) RotateSecrets(ctx context.Context, opt RotateOptions) (int, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 100
	}
	done := 0
	for _, t := range sealedTables {
		var lastID uint
		for {
			if err := ctx.Err(); err != nil {
				return done, err
			}
			var rows []sealedRow
			err := s.db.WithContext(ctx).Table(t.table).
				Select("id, "+t.label+" AS label, password_enc").
				Where("id > ? AND password_enc <> ''", lastID).Order("id").Limit(opt.BatchSize).
				Scan(&rows).Error
			if err != nil {
				return done, fmt.Errorf("models: rotate: read %s: %w", t.table, err)
			}
			if len(rows) == 0 {
				break
			}
			lastID = rows[len(rows)-1].ID
			n := 0
			err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				for _, r := range rows {
					if s.keys.IsCurrent(r.PasswordEnc) {
						continue
					}
					plain, err := s.keys.Decrypt(r.PasswordEnc)
					if err != nil {
						return &SecretError{Kind: t.kind, ID: r.ID, Name: r.Label, Err: err}
					}
					tok, err := s.keys.Encrypt(plain)
					if err != nil {
						return err
					}
					res := tx.Table(t.table).Where("id = ? AND password_enc = ?", r.ID, r.PasswordEnc).
						Update("password_enc", tok)
					if res.Error != nil {
						return res.Error
					}
					n += int(res.RowsAffected)
				}
				return nil
			})
			if err != nil {
				return done, err
			}
			done += n
			if n > 0 && opt.AfterBatch != nil {
				opt.AfterBatch(done)
			}
		}
	}
	if done > 0 {
		_ = s.Audit(ctx, AuditEvent{Action: ActionRotateKeys, Kind: KindSecrets, Fields: StringList{fmt.Sprintf("resealed=%d", done)}})
	}
	return done, nil
}

// VerifySecrets opens every stored password with the ring and returns a
// *SecretError for each one that does not open (joined), so a wrong or
// missing key is found at start-up, not at the first call.
func (s *Store) VerifySecrets(ctx context.Context) error {
	var errs []error
	for _, t := range sealedTables {
		var rows []sealedRow
		err := s.db.WithContext(ctx).Table(t.table).
			Select("id, " + t.label + " AS label, password_enc").
			Where("password_enc <> ''").Order("id").Scan(&rows).Error
		if err != nil {
			return fmt.Errorf("models: verify secrets: read %s: %w", t.table, err)
		}
		for _, r := range rows {
			if _, err := s.keys.Decrypt(r.PasswordEnc); err != nil {
				errs = append(errs, &SecretError{Kind: t.kind, ID: r.ID, Name: r.Label, Err: err})
				if len(errs) >= 10 {
					errs = append(errs, errors.New("… and possibly more"))
					return errors.Join(errs...)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Reveal opens a sealed password, naming the row on failure.
func (s *Store) Reveal(kind string, id uint, name, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	plain, err := s.keys.Decrypt(sealed)
	if err != nil {
		return "", &SecretError{Kind: kind, ID: id, Name: name, Err: err}
	}
	return plain, nil
}

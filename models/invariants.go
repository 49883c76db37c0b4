package models

import (
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrInvariant is matched by an InvariantError: a write refused because it
// would break a rule that spans rows.
var ErrInvariant = errors.New("would break a rule that spans rows")

// InvariantError says which rule a write would break. Field is the JSON
// field of the row being written that the rule concerns ("" when the write
// is a delete).
type InvariantError struct {
	Field string
	Msg   string
}

func (e *InvariantError) Error() string { return e.Msg }

// Is makes every InvariantError match ErrInvariant.
func (e *InvariantError) Is(target error) bool { return target == ErrInvariant }

// invariant is a row whose write must keep rules across rows. check runs
// inside the write's transaction, after the write (deleted: the row is
// gone), so that the rule holds at commit whatever else commits meanwhile.
type invariant interface {
	check(tx *gorm.DB, deleted bool) error
}

// The rules across rows:
//   - An IP-authenticated trunk (register false) is admitted by its
//     provider's source ranges (acl.conf, the firewall): its provider has
//     at least one range.
//
// On PostgreSQL the check locks what it reads (FOR SHARE on the ranges, a
// row lock on the deleted range): a concurrent delete of the last range
// and a concurrent IP-authenticated trunk wait for each other, and the one
// that commits second sees the first and is refused. SQLite serialises
// writers.

func (t *Trunk) check(tx *gorm.DB, deleted bool) error {
	if deleted || t.Register {
		return nil
	}
	if t.Provider == "" {
		return &InvariantError{Field: "provider", Msg: "required when register is false: IP authentication admits the provider by its source ranges"}
	}
	ids, err := lockRanges(tx, t.Provider)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return &InvariantError{Field: "provider", Msg: fmt.Sprintf(
			"provider %q has no source ranges; IP authentication (register: false) needs them: POST /api/v1/providers/%s/ranges", t.Provider, t.Provider)}
	}
	return nil
}

func (r *ProviderRange) check(tx *gorm.DB, deleted bool) error {
	if !deleted {
		return nil
	}
	left, err := lockRanges(tx, r.Provider)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return nil
	}
	var names []string
	if err := tx.Model(&Trunk{}).Where("provider = ? AND register = ?", r.Provider, false).
		Order("name").Limit(1).Pluck("name", &names).Error; err != nil {
		return err
	}
	if len(names) > 0 {
		return &InvariantError{Msg: fmt.Sprintf(
			"range %s is the last one of provider %q and IP-authenticated trunk %q needs it", r.CIDR, r.Provider, names[0])}
	}
	return nil
}

// lockRanges returns the ids of a provider's ranges, share-locked on
// PostgreSQL until the transaction ends.
func lockRanges(tx *gorm.DB, provider string) ([]uint, error) {
	var ids []uint
	q := tx.Model(&ProviderRange{}).Where("provider = ?", provider)
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "SHARE"})
	}
	err := q.Pluck("id", &ids).Error
	return ids, err
}

// checkInvariant runs r's rules, if it has any.
func checkInvariant(tx *gorm.DB, r any, deleted bool) error {
	if inv, ok := r.(invariant); ok {
		return inv.check(tx, deleted)
	}
	return nil
}

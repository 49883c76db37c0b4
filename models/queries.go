package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// Page bounds a list. Limit 0 means the default (100); the maximum is 1000.
type Page struct {
	Limit  int
	Offset int
}

func (p Page) apply(q *gorm.DB) *gorm.DB {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > 1000 {
		limit = 1000
	}
	return q.Limit(limit).Offset(max(p.Offset, 0))
}

// TrunkFilter narrows ListTrunks; zero fields match everything.
type TrunkFilter struct {
	Provider string
	Profile  string
	Enabled  *bool
	Page
}

// CreateTrunk inserts t (ID and Version are assigned). A non-nil
// t.Password is sealed.
func (s *Store) CreateTrunk(ctx context.Context, t *Trunk) error { return create(s, ctx, t) }

// UpdateTrunk replaces trunk t.ID if t.Version is current; on success
// t.Version is the new version.
func (s *Store) UpdateTrunk(ctx context.Context, t *Trunk) error { return update(s, ctx, t) }

// DeleteTrunk removes a trunk; version 0 skips the version check.
func (s *Store) DeleteTrunk(ctx context.Context, id uint, version int64) error {
	return remove[Trunk](s, ctx, id, version)
}

// GetTrunk returns one trunk.
func (s *Store) GetTrunk(ctx context.Context, id uint) (*Trunk, error) { return get[Trunk](s, ctx, id) }

// TrunkByName returns the trunk with that gateway name.
func (s *Store) TrunkByName(ctx context.Context, name string) (*Trunk, error) {
	var t Trunk
	if err := s.db.WithContext(ctx).Where("name = ?", name).First(&t).Error; err != nil {
		return nil, mapErr(err)
	}
	return &t, nil
}

// ListTrunks returns a page of trunks ordered by name, and the total count.
func (s *Store) ListTrunks(ctx context.Context, f TrunkFilter) ([]Trunk, int64, error) {
	q := s.db.WithContext(ctx).Model(&Trunk{})
	if f.Provider != "" {
		q = q.Where("provider = ?", f.Provider)
	}
	if f.Profile != "" {
		q = q.Where("profile = ?", f.Profile)
	}
	if f.Enabled != nil {
		q = q.Where("enabled = ?", *f.Enabled)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, err
	}
	var out []Trunk
	err := f.Page.apply(q.Order("name")).Find(&out).Error
	return out, total, err
}

// EnabledTrunks returns every enabled trunk of a profile ("" for all),
// ordered by name: what FreeSWITCH should load.
func (s *Store) EnabledTrunks(ctx context.Context, profile string) ([]Trunk, error) {
	q := s.db.WithContext(ctx).Where("enabled = ?", true)
	if profile != "" {
		q = q.Where("profile = ?", profile)
	}
	var out []Trunk
	return out, q.Order("name").Find(&out).Error
}

// ExtensionFilter narrows ListExtensions.
type ExtensionFilter struct {
	Domain string
	Page
}

// CreateExtension inserts e; a non-nil e.Password is sealed.
func (s *Store) CreateExtension(ctx context.Context, e *Extension) error { return create(s, ctx, e) }

// UpdateExtension replaces extension e.ID if e.Version is current.
func (s *Store) UpdateExtension(ctx context.Context, e *Extension) error { return update(s, ctx, e) }

// DeleteExtension removes an extension; version 0 skips the check.
func (s *Store) DeleteExtension(ctx context.Context, id uint, version int64) error {
	return remove[Extension](s, ctx, id, version)
}

// GetExtension returns one extension.
func (s *Store) GetExtension(ctx context.Context, id uint) (*Extension, error) {
	return get[Extension](s, ctx, id)
}

// ExtensionByUser returns the extension user@domain.
func (s *Store) ExtensionByUser(ctx context.Context, domain, user string) (*Extension, error) {
	var e Extension
	if err := s.db.WithContext(ctx).Where("domain = ? AND user_id = ?", domain, user).First(&e).Error; err != nil {
		return nil, mapErr(err)
	}
	return &e, nil
}

// ListExtensions returns a page of extensions and the total count.
func (s *Store) ListExtensions(ctx context.Context, f ExtensionFilter) ([]Extension, int64, error) {
	q := s.db.WithContext(ctx).Model(&Extension{})
	if f.Domain != "" {
		q = q.Where("domain = ?", f.Domain)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, err
	}
	var out []Extension
	err := f.Page.apply(q.Order("domain, user_id")).Find(&out).Error
	return out, total, err
}

// CreateProfile inserts p.
func (s *Store) CreateProfile(ctx context.Context, p *Profile) error { return create(s, ctx, p) }

// UpdateProfile replaces profile p.ID if p.Version is current.
func (s *Store) UpdateProfile(ctx context.Context, p *Profile) error { return update(s, ctx, p) }

// DeleteProfile removes a profile; version 0 skips the check.
func (s *Store) DeleteProfile(ctx context.Context, id uint, version int64) error {
	return remove[Profile](s, ctx, id, version)
}

// GetProfile returns one profile.
func (s *Store) GetProfile(ctx context.Context, id uint) (*Profile, error) {
	return get[Profile](s, ctx, id)
}

// ProfileByName returns the named profile.
func (s *Store) ProfileByName(ctx context.Context, name string) (*Profile, error) {
	var p Profile
	if err := s.db.WithContext(ctx).Where("name = ?", name).First(&p).Error; err != nil {
		return nil, mapErr(err)
	}
	return &p, nil
}

// ListProfiles returns every profile ordered by name.
func (s *Store) ListProfiles(ctx context.Context) ([]Profile, error) {
	var out []Profile
	return out, s.db.WithContext(ctx).Order("name").Find(&out).Error
}

// CreateRange inserts r.
func (s *Store) CreateRange(ctx context.Context, r *ProviderRange) error { return create(s, ctx, r) }

// UpdateRange replaces range r.ID if r.Version is current.
func (s *Store) UpdateRange(ctx context.Context, r *ProviderRange) error { return update(s, ctx, r) }

// DeleteRange removes a range; version 0 skips the check.
func (s *Store) DeleteRange(ctx context.Context, id uint, version int64) error {
	return remove[ProviderRange](s, ctx, id, version)
}

// GetRange returns one provider range.
func (s *Store) GetRange(ctx context.Context, id uint) (*ProviderRange, error) {
	return get[ProviderRange](s, ctx, id)
}

// ListRanges returns the ranges of one provider ("" for all), ordered by
// provider and CIDR.
func (s *Store) ListRanges(ctx context.Context, provider string) ([]ProviderRange, error) {
	q := s.db.WithContext(ctx)
	if provider != "" {
		q = q.Where("provider = ?", provider)
	}
	var out []ProviderRange
	return out, q.Order("provider, cidr").Find(&out).Error
}

// CreateToken stores a token's digest with its scopes.
func (s *Store) CreateToken(ctx context.Context, t *APIToken) error {
	return s.write(ctx, func(tx *gorm.DB) (*ChangeEvent, error) {
		t.ID = 0
		if err := tx.Create(t).Error; err != nil {
			return nil, err
		}
		a := ActorFrom(ctx)
		return nil, tx.Create(&AuditEvent{At: s.now().UTC(), Actor: a.Name, RemoteIP: a.RemoteIP,
			Action: OpCreate, Kind: KindToken, ObjectID: t.ID, Name: t.Name, Fields: StringList(t.Scopes)}).Error
	})
}

// TokenByHash returns the unexpired token with that digest.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*APIToken, error) {
	var t APIToken
	if err := s.db.WithContext(ctx).Where("hash = ?", hash).First(&t).Error; err != nil {
		return nil, mapErr(err)
	}
	if t.ExpiresAt != nil && !t.ExpiresAt.After(s.now()) {
		return nil, ErrNotFound
	}
	return &t, nil
}

// tokenTouchEvery bounds how often a token's LastUsedAt is written: a
// write per request would serialise every API call on SQLite.
const tokenTouchEvery = time.Minute

// TouchToken records that token id was used at t, at most once per
// tokenTouchEvery; it never changes anything else.
func (s *Store) TouchToken(ctx context.Context, id uint, t time.Time) error {
	t = t.UTC()
	return s.db.WithContext(ctx).Model(&APIToken{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, t.Add(-tokenTouchEvery)).
		Update("last_used_at", t).Error
}

// ListTokens returns every token (digests are never serialised).
func (s *Store) ListTokens(ctx context.Context) ([]APIToken, error) {
	var out []APIToken
	return out, s.db.WithContext(ctx).Order("id").Find(&out).Error
}

// DeleteToken revokes a token, and ends the console sessions logged in
// with it in the same transaction (on every replica at once).
func (s *Store) DeleteToken(ctx context.Context, id uint) error {
	return s.write(ctx, func(tx *gorm.DB) (*ChangeEvent, error) {
		var t APIToken
		if err := tx.First(&t, id).Error; err != nil {
			return nil, err
		}
		if err := tx.Delete(&t).Error; err != nil {
			return nil, err
		}
		if err := tx.Where("token_hash = ?", t.Hash).Delete(&ConsoleSession{}).Error; err != nil {
			return nil, err
		}
		a := ActorFrom(ctx)
		return nil, tx.Create(&AuditEvent{At: s.now().UTC(), Actor: a.Name, RemoteIP: a.RemoteIP,
			Action: OpDelete, Kind: KindToken, ObjectID: id, Name: t.Name}).Error
	})
}

// CountTokens returns how many tokens exist (first start creates one).
func (s *Store) CountTokens(ctx context.Context) (int64, error) {
	var n int64
	return n, s.db.WithContext(ctx).Model(&APIToken{}).Count(&n).Error
}

// Audit appends an audit event that is not a row change, such as a read
// of SIP credentials.
func (s *Store) Audit(ctx context.Context, ev AuditEvent) error {
	a := ActorFrom(ctx)
	if ev.Actor == "" {
		ev.Actor = a.Name
	}
	if ev.RemoteIP == "" {
		ev.RemoteIP = a.RemoteIP
	}
	if ev.At.IsZero() {
		ev.At = s.now().UTC()
	}
	ev.ID = 0
	return s.db.WithContext(ctx).Create(&ev).Error
}

// ListAudit returns audit events newest first; beforeID 0 starts at the
// newest.
func (s *Store) ListAudit(ctx context.Context, beforeID uint, limit int) ([]AuditEvent, error) {
	return s.FindAudit(ctx, AuditFilter{Before: beforeID, Limit: limit})
}

// AuditFilter narrows FindAudit; zero fields match everything.
type AuditFilter struct {
	// Before keeps events with a smaller id (the next page's cursor).
	Before uint
	// Limit is the page size (default 100, at most 1000).
	Limit  int
	Kind   string
	Action string
	// ObjectID is the row's id within its kind.
	ObjectID uint
	// Name keeps events whose name contains this text (case-sensitive).
	Name string
}

// FindAudit returns the audit events that match f, newest first.
func (s *Store) FindAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := s.db.WithContext(ctx)
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.ObjectID > 0 {
		q = q.Where("object_id = ?", f.ObjectID)
	}
	if f.Name != "" {
		// A plain substring: LIKE would give % and _ a meaning, and its
		// case rules differ between SQLite and PostgreSQL.
		fn := "instr(name, ?) > 0"
		if s.Dialect() == "postgres" {
			fn = "strpos(name, ?) > 0"
		}
		q = q.Where(fn, f.Name)
	}
	var out []AuditEvent
	if err := (Page{Limit: f.Limit}).apply(q.Order("id DESC")).Find(&out).Error; err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// ChangesSince returns up to limit change events with ID > after, oldest
// first.
func (s *Store) ChangesSince(ctx context.Context, after uint64, limit int) ([]ChangeEvent, error) {
	var out []ChangeEvent
	err := Page{Limit: limit}.apply(s.db.WithContext(ctx).Where("id > ?", after).Order("id")).Find(&out).Error
	return out, err
}

// LastChangeID returns the newest change event's ID, 0 for none.
func (s *Store) LastChangeID(ctx context.Context) (uint64, error) {
	var id *uint64
	err := s.db.WithContext(ctx).Model(&ChangeEvent{}).Select("MAX(id)").Scan(&id).Error
	if err != nil || id == nil {
		return 0, err
	}
	return *id, nil
}

// IsNotFound reports whether err means a missing row.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// TxHorizon returns the xmin and xmax of a fresh PostgreSQL snapshot (see
// events.Horizon); ok is false on SQLite, whose writers commit in order.
func (s *Store) TxHorizon(ctx context.Context) (xmin, xmax uint64, ok bool, err error) {
	if s.dialect != "postgres" {
		return 0, 0, false, nil
	}
	var h struct{ Xmin, Xmax string }
	err = s.db.WithContext(ctx).Raw("SELECT pg_snapshot_xmin(s)::text AS xmin, pg_snapshot_xmax(s)::text AS xmax FROM pg_current_snapshot() AS s").Scan(&h).Error
	if err != nil {
		return 0, 0, false, fmt.Errorf("models: read the transaction horizon: %w", err)
	}
	if xmin, err = strconv.ParseUint(h.Xmin, 10, 64); err == nil {
		xmax, err = strconv.ParseUint(h.Xmax, 10, 64)
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("models: transaction horizon %q/%q: %w", h.Xmin, h.Xmax, err)
	}
	return xmin, xmax, true, nil
}

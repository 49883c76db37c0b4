package models

import (
	"context"
	"fmt"
	"time"
)

// Console sessions (package console) live here so that a restart keeps
// operators logged in and every replica on one PostgreSQL knows every
// session. Like registrar bindings they are written outside the audited
// write path: a login is not a change to the platform.

// ConsoleSession is one operator's login to the web console.
//
// It holds no secret in plain text: the row is keyed by the SHA-256 of the
// session id the browser's cookie carries (auth.Hash, as for API tokens),
// and names the API token the operator logged in with by its digest (as
// api_tokens holds it), never its text. The CSRF token is stored as is: it is worthless without the cookie,
// and the pages must show it.
type ConsoleSession struct {
	IDHash string `gorm:"column:id_hash;primaryKey;size:64"`
	// TokenHash is the digest of the API token the operator logged in
	// with, as api_tokens.hash holds it.
	TokenHash string `gorm:"size:64;not null;index"`
	// TokenName is the token's name, for the page header of an error page
	// shown before the token was checked again.
	TokenName string    `gorm:"size:128;not null"`
	CSRF      string    `gorm:"column:csrf;size:64;not null"`
	CreatedAt time.Time `gorm:"not null"`
	// ExpiresAt is the absolute end (login + the console's MaxAge);
	// IdleUntil the end for want of activity, moved on as requests come.
	ExpiresAt time.Time `gorm:"not null;index"`
	IdleUntil time.Time `gorm:"not null;index"`
	// Notices is what the console shows once on the next page (JSON, the
	// console's own format): messages after a write, warnings by trunk.
	Notices string `gorm:"type:text;not null"`
}

// TableName keeps the table name stable whatever gorm's naming strategy.
func (ConsoleSession) TableName() string { return "console_sessions" }

// CreateConsoleSession stores a new session.
func (s *Store) CreateConsoleSession(ctx context.Context, cs *ConsoleSession) error {
	if err := s.checkSizes(cs); err != nil {
		return err
	}
	row := *cs
	row.CreatedAt, row.ExpiresAt, row.IdleUntil = row.CreatedAt.UTC(), row.ExpiresAt.UTC(), row.IdleUntil.UTC()
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("models: create console session: %w", mapErr(err))
	}
	return nil
}

// ConsoleSessionByHash returns the session with that id digest that is live
// at now; ErrNotFound when there is none or it ended (the row of an ended
// one is deleted).
func (s *Store) ConsoleSessionByHash(ctx context.Context, idHash string, now time.Time) (*ConsoleSession, error) {
	var cs ConsoleSession
	if err := s.db.WithContext(ctx).Where("id_hash = ?", idHash).First(&cs).Error; err != nil {
		return nil, mapErr(err)
	}
	if !now.Before(cs.ExpiresAt) || !now.Before(cs.IdleUntil) {
		if err := s.DeleteConsoleSession(ctx, idHash); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	return &cs, nil
}

// TouchConsoleSession moves the session's idle end to idleUntil, never
// back (replicas touching at once leave the latest).
func (s *Store) TouchConsoleSession(ctx context.Context, idHash string, idleUntil time.Time) error {
	idleUntil = idleUntil.UTC()
	err := s.db.WithContext(ctx).Model(&ConsoleSession{}).
		Where("id_hash = ? AND idle_until < ?", idHash, idleUntil).
		Update("idle_until", idleUntil).Error
	if err != nil {
		return fmt.Errorf("models: touch console session: %w", mapErr(err))
	}
	return nil
}

// SwapConsoleNotices sets the session's notices to next if they are still
// old, and reports whether they were (a compare-and-swap: a message added
// by one request is not lost to another that took the notices meanwhile).
// It reports false for a session that no longer exists.
func (s *Store) SwapConsoleNotices(ctx context.Context, idHash, old, next string) (bool, error) {
	res := s.db.WithContext(ctx).Model(&ConsoleSession{}).
		Where("id_hash = ? AND notices = ?", idHash, old).
		Update("notices", next)
	if res.Error != nil {
		return false, fmt.Errorf("models: write console notices: %w", mapErr(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// ConsoleNotices returns the session's notices as stored now.
func (s *Store) ConsoleNotices(ctx context.Context, idHash string) (string, error) {
	var cs ConsoleSession
	if err := s.db.WithContext(ctx).Select("notices").Where("id_hash = ?", idHash).First(&cs).Error; err != nil {
		return "", mapErr(err)
	}
	return cs.Notices, nil
}

// DeleteConsoleSession ends a session (logout); ending one that does not
// exist is no error.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash string) error {
	if err := s.db.WithContext(ctx).Where("id_hash = ?", idHash).Delete(&ConsoleSession{}).Error; err != nil {
		return fmt.Errorf("models: delete console session: %w", mapErr(err))
	}
	return nil
}

// DeleteExpiredConsoleSessions removes the sessions that ended at or
// before now and says how many.
func (s *Store) DeleteExpiredConsoleSessions(ctx context.Context, now time.Time) (int64, error) {
	now = now.UTC()
	res := s.db.WithContext(ctx).Where("expires_at <= ? OR idle_until <= ?", now, now).Delete(&ConsoleSession{})
	if res.Error != nil {
		return 0, fmt.Errorf("models: sweep console sessions: %w", mapErr(res.Error))
	}
	return res.RowsAffected, nil
}

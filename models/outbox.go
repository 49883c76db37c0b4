package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The ESL outbox. change_events is written in the same transaction as the
// row it describes (a transactional outbox), so it already holds every
// change FreeSWITCH must hear about; what is left to persist is how far each
// FreeSWITCH node has been brought: one cursor per node. Commands are derived
// from the change log after the cursor, so a change made while a node or
// fsplane itself was down is applied when both are back.

// ESLCursor records, for one FreeSWITCH node (its event socket host:port),
// the change event up to which every command has been applied.
type ESLCursor struct {
	Node      string    `gorm:"primaryKey;size:255"`
	ChangeID  uint64    `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

// TableName keeps the table name stable whatever gorm's naming strategy.
func (ESLCursor) TableName() string { return "esl_cursors" }

// ESLCursor returns the node's cursor; ok is false when the node has none
// yet (it was never brought up to date).
func (s *Store) ESLCursor(ctx context.Context, node string) (id uint64, ok bool, err error) {
	var c ESLCursor
	err = s.db.WithContext(ctx).Where("node = ?", node).Limit(1).Find(&c).Error
	if err != nil {
		return 0, false, fmt.Errorf("models: read ESL cursor of %s: %w", node, err)
	}
	if c.Node == "" {
		return 0, false, nil
	}
	return c.ChangeID, true, nil
}

// SaveESLCursor moves the node's cursor forward to id. It never moves a
// cursor back, so two writers (two replicas, or a slow one) cannot undo each
// other's progress.
func (s *Store) SaveESLCursor(ctx context.Context, node string, id uint64) error {
	now := s.now().UTC()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&ESLCursor{}).Where("node = ? AND change_id < ?", node, id).
			Updates(map[string]any{"change_id": id, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected > 0 {
			return nil
		}
		// No row, or a row already at or past id: insert, and let an
		// existing row win.
		return tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&ESLCursor{Node: node, ChangeID: id, UpdatedAt: now}).Error
	})
	if err != nil {
		return fmt.Errorf("models: save ESL cursor of %s: %w", node, err)
	}
	return nil
}

// ESLCursors returns every node's cursor, ordered by node.
func (s *Store) ESLCursors(ctx context.Context) ([]ESLCursor, error) {
	var out []ESLCursor
	return out, s.db.WithContext(ctx).Order("node").Find(&out).Error
}

// ChangesIn returns the change events with these IDs that exist, oldest
// first: a consumer that saw a gap in the IDs (a PostgreSQL transaction that
// took its ID before a later one committed) asks for the missing ones.
func (s *Store) ChangesIn(ctx context.Context, ids []uint64) ([]ChangeEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []ChangeEvent
	return out, s.db.WithContext(ctx).Where("id IN ?", ids).Order("id").Find(&out).Error
}

package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The registrar's location service (package registrar). Bindings are
// written outside the audited write path on purpose: a REGISTER every few
// minutes per phone is not an operator's change, so it appends no
// ChangeEvent and no audit row. The registrar keeps an in-memory index
// and writes its changes through here, in batches: one contact at a time
// (WriteBindings), so that replicas writing one AOR merge rather than
// overwrite each other, with one NOTIFY per batch on PostgreSQL naming the
// AORs written (BindingsChannel) for the other replicas to read back.

// Binding is one contact registered for an address of record.
type Binding struct {
	ID uint `gorm:"primaryKey"`
	// AOR is user@domain.
	AOR     string `gorm:"column:aor;size:320;not null;uniqueIndex:idx_binding_aor_contact,priority:1"`
	Contact string `gorm:"size:1024;not null;uniqueIndex:idx_binding_aor_contact,priority:2"`
	// QMilli is the contact's q value times 1000 (q=0.5 is 500).
	QMilli  int       `gorm:"column:q_milli;not null;default:1000"`
	Expires time.Time `gorm:"not null;index:idx_binding_expires"`
	CallID  string    `gorm:"column:call_id;size:255;not null"`
	CSeq    int64     `gorm:"column:c_seq;not null"`
	// Received is the source address (ip:port) the REGISTER came from,
	// Transport its transport (udp, tcp, tls).
	Received  string `gorm:"size:64;not null"`
	Transport string `gorm:"size:8;not null"`
	UserAgent string `gorm:"size:255;not null"`
	// RegisteredAt is when the REGISTER that made the binding was
	// accepted (by whichever replica), not when it was written: what
	// orders the writes of replicas whose flushes arrive late.
	RegisteredAt time.Time `gorm:"column:registered_at;not null"`
	UpdatedAt    time.Time `gorm:"not null"`
}

// TableName keeps the table name stable whatever gorm's naming strategy.
func (Binding) TableName() string { return "sip_bindings" }

// BindingKey names one stored binding to delete, with the registration
// that was removed: its Call-ID, CSeq and RegisteredAt, so that a delete
// based on a stale view leaves a later registration (another replica's)
// alone. Without a CallID it removes any registration up to RegisteredAt
// (an operator's removal).
type BindingKey struct {
	AOR, Contact string
	CallID       string
	CSeq         int64
	RegisteredAt time.Time
}

// ErrBindingTime is returned by WriteBindings for a binding or delete key
// without RegisteredAt: it could not be ordered against other replicas'.
var ErrBindingTime = errors.New("models: binding without registered_at")

// BindingsChannel is the PostgreSQL NOTIFY channel on which WriteBindings
// announces the AORs it wrote. A payload is "schema:origin" and then one
// AOR per line, or the single line BindingsReloadAll when the AORs are not
// named (too many for one payload line, or a name with a line break); a
// batch too large for one payload (PostgreSQL's limit is 8000 bytes) is
// announced in several.
const BindingsChannel = "fsplane_bindings"

// BindingsReloadAll, as a payload's AOR line, means "read every binding".
const BindingsReloadAll = "*"

// notifyPayloadMax keeps a payload under PostgreSQL's 8000 bytes with room
// for the schema name (at most 63 bytes).
const notifyPayloadMax = 7800

// WriteBindings stores one replica's changes in one transaction. Each of
// upserts (AOR, Contact and RegisteredAt set) is inserted or replaces the
// stored row of its AOR and contact, unless that row is newer: registered
// later (another replica took a later REGISTER, perhaps with a new
// Call-ID after a reboot), or the same Call-ID with a higher CSeq (RFC
// 3261 §10.3 step 7). Each of deletes removes its row unless that row is
// newer than the registration the key names, in the same sense. The rows
// of other contacts, which other replicas may have written, are left
// alone. upserts must not name one AOR and contact twice. On PostgreSQL
// the AORs touched are announced on BindingsChannel with origin (the
// writing replica, which ignores its own announcements) at commit.
func (s *Store) WriteBindings(ctx context.Context, origin string, upserts []Binding, deletes []BindingKey) error {
	if len(upserts) == 0 && len(deletes) == 0 {
		return nil
	}
	for i := range upserts {
		if upserts[i].RegisteredAt.IsZero() {
			return fmt.Errorf("%w: %s %s", ErrBindingTime, upserts[i].AOR, upserts[i].Contact)
		}
	}
	for i := range deletes {
		if deletes[i].RegisteredAt.IsZero() {
			return fmt.Errorf("%w: delete of %s %s", ErrBindingTime, deletes[i].AOR, deletes[i].Contact)
		}
	}
	now := s.now().UTC()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		const delChunk = 100
		for start := 0; start < len(deletes); start += delChunk {
			part := deletes[start:min(start+delChunk, len(deletes))]
			var q strings.Builder
			q.WriteString("DELETE FROM sip_bindings WHERE ")
			args := make([]any, 0, len(part)*5)
			for i, k := range part {
				if i > 0 {
					q.WriteString(" OR ")
				}
				q.WriteString("(aor = ? AND contact = ? AND registered_at <= ? AND NOT (call_id = ? AND c_seq > ?))")
				args = append(args, k.AOR, k.Contact, k.RegisteredAt.UTC(), k.CallID, k.CSeq)
			}
			if err := tx.Exec(q.String(), args...).Error; err != nil {
				return err
			}
		}
		// Multi-row upserts without gorm's per-row reflection: this runs
		// for every registration (BenchmarkWriteBindings). On SQLite 25
		// rows each, not more: its driver re-parses a statement per
		// execution and binds its parameters in quadratic time. On
		// PostgreSQL 100, for fewer round trips.
		chunk := 100
		if s.dialect == "sqlite" {
			chunk = 25
		}
		for start := 0; start < len(upserts); start += chunk {
			part := upserts[start:min(start+chunk, len(upserts))]
			var q strings.Builder
			q.WriteString("INSERT INTO sip_bindings (aor, contact, q_milli, expires, call_id, c_seq, received, transport, user_agent, registered_at, updated_at) VALUES ")
			args := make([]any, 0, len(part)*11)
			for i, b := range part {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
				args = append(args, b.AOR, b.Contact, b.QMilli, b.Expires.UTC(), b.CallID, b.CSeq, b.Received, b.Transport, b.UserAgent,
					b.RegisteredAt.UTC(), now)
			}
			q.WriteString(" ON CONFLICT (aor, contact) DO UPDATE SET q_milli = excluded.q_milli, expires = excluded.expires, " +
				"call_id = excluded.call_id, c_seq = excluded.c_seq, received = excluded.received, transport = excluded.transport, " +
				"user_agent = excluded.user_agent, registered_at = excluded.registered_at, updated_at = excluded.updated_at " +
				"WHERE excluded.registered_at >= sip_bindings.registered_at " +
				"AND NOT (sip_bindings.call_id = excluded.call_id AND sip_bindings.c_seq > excluded.c_seq)")
			if err := tx.Exec(q.String(), args...).Error; err != nil {
				return err
			}
		}
		if s.dialect != "postgres" {
			return nil
		}
		for _, p := range bindingPayloads(origin, upserts, deletes) {
			if err := tx.Exec("SELECT pg_notify(?, current_schema() || ':' || ?)", BindingsChannel, p).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("models: write bindings: %w", mapErr(err))
	}
	return nil
}

// bindingPayloads are the notification payloads (after "schema:") naming
// the AORs of a batch: "origin\naor\naor…", each within notifyPayloadMax.
func bindingPayloads(origin string, upserts []Binding, deletes []BindingKey) []string {
	seen := make(map[string]struct{}, len(upserts)+len(deletes))
	var out []string
	var cur strings.Builder
	add := func(aor string) {
		if _, dup := seen[aor]; dup {
			return
		}
		seen[aor] = struct{}{}
		if cur.Len() > 0 && cur.Len()+1+len(aor) > notifyPayloadMax {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() == 0 {
			cur.WriteString(origin)
		}
		cur.WriteByte('\n')
		cur.WriteString(aor)
	}
	for _, b := range upserts {
		if strings.ContainsAny(b.AOR, "\r\n") || len(origin)+1+len(b.AOR) > notifyPayloadMax || b.AOR == BindingsReloadAll {
			return []string{origin + "\n" + BindingsReloadAll}
		}
		add(b.AOR)
	}
	for _, k := range deletes {
		if strings.ContainsAny(k.AOR, "\r\n") || len(origin)+1+len(k.AOR) > notifyPayloadMax || k.AOR == BindingsReloadAll {
			return []string{origin + "\n" + BindingsReloadAll}
		}
		add(k.AOR)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// ParseBindingsPayload splits a BindingsChannel payload (after
// "schema:") into its origin and AORs; all is true for BindingsReloadAll.
func ParseBindingsPayload(p string) (origin string, aors []string, all bool) {
	origin, rest, _ := strings.Cut(p, "\n")
	if rest == BindingsReloadAll {
		return origin, nil, true
	}
	if rest == "" {
		return origin, nil, false
	}
	return origin, strings.Split(rest, "\n"), false
}

// Bindings returns every binding that has not expired at now, by AOR and
// contact.
func (s *Store) Bindings(ctx context.Context, now time.Time) ([]Binding, error) {
	var out []Binding
	err := s.db.WithContext(ctx).Where("expires > ?", now.UTC()).Order("aor, contact").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: read bindings: %w", mapErr(err))
	}
	return out, nil
}

// DeleteExpiredBindings removes the bindings that expired at or before now
// and says how many.
func (s *Store) DeleteExpiredBindings(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires <= ?", now.UTC()).Delete(&Binding{})
	if res.Error != nil {
		return 0, fmt.Errorf("models: sweep bindings: %w", mapErr(res.Error))
	}
	return res.RowsAffected, nil
}

// BindingsOfAORs returns the unexpired bindings at now of the given AORs
// (as other replicas wrote them), by AOR and contact.
func (s *Store) BindingsOfAORs(ctx context.Context, aors []string, now time.Time) ([]Binding, error) {
	var out []Binding
	for start := 0; start < len(aors); start += 500 {
		var part []Binding
		err := s.db.WithContext(ctx).Where("aor IN ? AND expires > ?", aors[start:min(start+500, len(aors))], now.UTC()).
			Order("aor, contact").Find(&part).Error
		if err != nil {
			return nil, fmt.Errorf("models: read bindings: %w", mapErr(err))
		}
		out = append(out, part...)
	}
	return out, nil
}

// BindingsOf returns the AOR's bindings that have not expired at now (as
// another replica wrote them).
func (s *Store) BindingsOf(ctx context.Context, aor string, now time.Time) ([]Binding, error) {
	var out []Binding
	err := s.db.WithContext(ctx).Where("aor = ? AND expires > ?", aor, now.UTC()).Order("q_milli DESC, contact").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: read bindings of %s: %w", aor, mapErr(err))
	}
	return out, nil
}

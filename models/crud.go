package models

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// row is implemented by the pointer types of the editable tables, so one
// generic create/update/delete serves them all.
type row interface {
	rowID() uint
	rowVersion() int64
	setMeta(id uint, version int64, created time.Time)
	// secret returns the transient plaintext and the sealed column, or
	// nils for tables without a secret.
	secret() (plain *string, sealed *string)
	info() eventInfo
}

type eventInfo struct {
	kind, name, profile string
	enabled, register   bool
	cosmetic            []string // fields FreeSWITCH never sees
}

var metaFields = []string{"id", "version", "created_at", "updated_at"}

var schemaCache sync.Map

// diff names the columns whose values differ between a and b.
func diff(a, b any, ns schema.Namer) ([]string, error) {
	sch, err := schema.Parse(a, &schemaCache, ns)
	if err != nil {
		return nil, err
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for _, f := range sch.Fields {
		if f.DBName == "" || slices.Contains(metaFields, f.DBName) {
			continue
		}
		x, _ := f.ValueOf(context.Background(), va)
		y, _ := f.ValueOf(context.Background(), vb)
		if !sameValue(x, y) {
			name := f.DBName
			if name == "password_enc" {
				name = "password"
			}
			out = append(out, name)
		}
	}
	return out, nil
}

func sameValue(x, y any) bool {
	if vx, ok := x.(driver.Valuer); ok {
		if vy, ok := y.(driver.Valuer); ok {
			a, errA := vx.Value()
			b, errB := vy.Value()
			return errA == nil && errB == nil && reflect.DeepEqual(a, b)
		}
	}
	return reflect.DeepEqual(x, y)
}

// write runs fn in a transaction, appends the change and audit events, and
// publishes the change after commit.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) (*ChangeEvent, error)) error {
	var ev *ChangeEvent
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		ev, err = fn(tx)
		if err != nil || ev == nil {
			return err
		}
		actor := ActorFrom(ctx)
		ev.At = s.now().UTC()
		ev.Actor = actor.Name
		if s.dialect == "postgres" {
			// The transaction has its ID before it takes a change ID, which
			// readers' gap handling relies on (events.Horizon); fn may have
			// written nothing yet.
			if err := tx.Exec("SELECT pg_current_xact_id()").Error; err != nil {
				return fmt.Errorf("models: take a transaction ID: %w", err)
			}
		}
		if err := tx.Create(ev).Error; err != nil {
			return fmt.Errorf("models: append change event: %w", err)
		}
		if s.Dialect() == "postgres" {
			// Delivered at commit, to every replica's events.Listen.
			if err := tx.Exec("SELECT pg_notify(?, current_schema() || ':' || ?)", ChangeChannel, strconv.FormatUint(ev.ID, 10)).Error; err != nil {
				return fmt.Errorf("models: notify the change: %w", err)
			}
		}
		audit := AuditEvent{
			At: ev.At, Actor: actor.Name, RemoteIP: actor.RemoteIP,
			Action: ev.Op, Kind: ev.Kind, ObjectID: ev.ObjectID, Name: ev.Name, Fields: ev.Fields,
		}
		if err := tx.Create(&audit).Error; err != nil {
			return fmt.Errorf("models: append audit event: %w", err)
		}
		return nil
	})
	if err != nil {
		return mapErr(err)
	}
	if ev != nil && s.onCommit != nil {
		s.onCommit(*ev)
	}
	return nil
}

func (s *Store) seal(r row) error {
	plain, sealed := r.secret()
	if plain == nil || sealed == nil {
		return nil
	}
	if *plain == "" {
		*sealed = ""
		return nil
	}
	tok, err := s.keys.Encrypt(*plain)
	if err != nil {
		return err
	}
	*sealed = tok
	return nil
}

func create[T any, P interface {
	*T
	row
}](s *Store, ctx context.Context, r P) error {
	if err := s.seal(r); err != nil {
		return err
	}
	if err := s.checkSizes(r); err != nil {
		return err
	}
	return s.write(ctx, func(tx *gorm.DB) (*ChangeEvent, error) {
		r.setMeta(0, 1, time.Time{})
		if err := tx.Create(r).Error; err != nil {
			return nil, err
		}
		if err := checkInvariant(tx, r, false); err != nil {
			return nil, err
		}
		in := r.info()
		var fields StringList
		if plain, _ := r.secret(); plain != nil && *plain != "" {
			fields = StringList{"password"}
		}
		return &ChangeEvent{
			Kind: in.kind, Op: OpCreate, ObjectID: r.rowID(), Name: in.name,
			NewProfile: in.profile, NewEnabled: in.enabled, Register: in.register, Fields: fields,
		}, nil
	})
}

// update replaces the row r.ID with r, provided r.Version is still the
// stored version. The sealed password is kept unless r carries a new one.
func update[T any, P interface {
	*T
	row
}](s *Store, ctx context.Context, r P) error {
	if err := s.seal(r); err != nil {
		return err
	}
	if err := s.checkSizes(r); err != nil {
		return err
	}
	return s.write(ctx, func(tx *gorm.DB) (*ChangeEvent, error) {
		old := P(new(T))
		if err := tx.First(old, r.rowID()).Error; err != nil {
			return nil, err
		}
		expect := r.rowVersion()
		if old.rowVersion() != expect {
			return nil, ErrConflict
		}
		if plain, sealed := r.secret(); sealed != nil && plain == nil {
			_, oldSealed := old.secret()
			*sealed = *oldSealed
		}
		var created time.Time
		if c, ok := any(old).(interface{ created() time.Time }); ok {
			created = c.created()
		}
		fields, err := diff(old, r, tx.NamingStrategy)
		if err != nil {
			return nil, err
		}
		plain, _ := r.secret()
		if plain != nil && !slices.Contains(fields, "password") {
			fields = append(fields, "password")
		}
		// An update that changes nothing is no change: no new version (which
		// would fail other clients' If-Match for nothing), no event, no audit.
		if len(fields) == 0 {
			*(*T)(r) = *(*T)(old) // the caller sees the stored row, timestamps included
			return nil, nil
		}
		r.setMeta(old.rowID(), expect+1, created)
		res := tx.Model(P(new(T))).Where("id = ? AND version = ?", old.rowID(), expect).
			Select("*").Omit("id", "created_at").Updates(r)
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected == 0 {
			return nil, ErrConflict
		}
		if err := checkInvariant(tx, r, false); err != nil {
			return nil, err
		}
		was, is := old.info(), r.info()
		ev := &ChangeEvent{
			Kind: is.kind, Op: OpUpdate, ObjectID: r.rowID(), Name: is.name,
			OldProfile: was.profile, NewProfile: is.profile,
			OldEnabled: was.enabled, NewEnabled: is.enabled, Register: is.register,
			Fields: fields, Cosmetic: allIn(fields, is.cosmetic),
		}
		if was.name != is.name {
			ev.OldName = was.name
		}
		return ev, nil
	})
}

func allIn(fields, set []string) bool {
	for _, f := range fields {
		if !slices.Contains(set, f) {
			return false
		}
	}
	return true
}

// remove deletes row id; version 0 deletes whatever version is stored.
func remove[T any, P interface {
	*T
	row
}](s *Store, ctx context.Context, id uint, version int64) error {
	return s.write(ctx, func(tx *gorm.DB) (*ChangeEvent, error) {
		old := P(new(T))
		if err := tx.First(old, id).Error; err != nil {
			return nil, err
		}
		if version != 0 && old.rowVersion() != version {
			return nil, ErrConflict
		}
		res := tx.Where("id = ? AND version = ?", id, old.rowVersion()).Delete(P(new(T)))
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected == 0 {
			return nil, ErrConflict
		}
		if err := checkInvariant(tx, old, true); err != nil {
			return nil, err
		}
		in := old.info()
		return &ChangeEvent{
			Kind: in.kind, Op: OpDelete, ObjectID: id, Name: in.name,
			OldProfile: in.profile, OldEnabled: in.enabled, Register: in.register,
		}, nil
	})
}

func get[T any](s *Store, ctx context.Context, id uint) (*T, error) {
	out := new(T)
	if err := s.db.WithContext(ctx).First(out, id).Error; err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

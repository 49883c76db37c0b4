package models

import (
	"context"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// The schema's history. Each migration uses its own frozen copy of the
// tables as they were at that version, so an old database always upgrades
// through the same steps, whatever the live structs look like today. Never
// edit a released migration; add a new one.

// v1: the tables a platform had before fsplane added its change log.

type trunkV1 struct {
	ID                                  uint  `gorm:"primaryKey"`
	Version                             int64 `gorm:"not null;default:1"`
	CreatedAt, UpdatedAt                time.Time
	Name                                string `gorm:"size:63;not null;uniqueIndex"`
	Provider                            string `gorm:"size:64;not null;default:'';index"`
	Description                         string `gorm:"size:512;not null;default:''"`
	Profile                             string `gorm:"size:63;not null;index"`
	Proxy, OutboundProxy, RegisterProxy string `gorm:"size:255;not null;default:''"`
	Register                            bool   `gorm:"not null;default:false"`
	Realm                               string `gorm:"size:255;not null;default:''"`
	Username, AuthUsername              string `gorm:"size:128;not null;default:''"`
	PasswordEnc                         string `gorm:"column:password_enc;size:1024;not null;default:''"`
	FromUser                            string `gorm:"size:128;not null;default:''"`
	FromDomain                          string `gorm:"size:255;not null;default:''"`
	Transport                           string `gorm:"size:8;not null;default:'udp'"`
	CallerID                            string `gorm:"size:32;not null;default:''"`
	CallerIDInFrom                      bool   `gorm:"not null;default:false"`
	ExpireSeconds                       int    `gorm:"not null;default:3600"`
	RetrySeconds                        int    `gorm:"not null;default:30"`
	PingSeconds                         int    `gorm:"not null;default:0"`
	Extension                           string `gorm:"size:64;not null;default:''"`
	Context                             string `gorm:"size:64;not null;default:'public'"`
	Enabled                             bool   `gorm:"not null;default:true;index"`
	Numbers                             string `gorm:"type:text;not null;default:'[]'"`
}

func (trunkV1) TableName() string { return "trunks" }

type extensionV1 struct {
	ID                   uint  `gorm:"primaryKey"`
	Version              int64 `gorm:"not null;default:1"`
	CreatedAt, UpdatedAt time.Time
	Domain               string `gorm:"size:255;not null;uniqueIndex:idx_extension_user"`
	UserID               string `gorm:"size:64;not null;uniqueIndex:idx_extension_user"`
	PasswordEnc          string `gorm:"column:password_enc;size:1024;not null;default:''"`
	DisplayName          string `gorm:"size:128;not null;default:''"`
	CallerID             string `gorm:"size:32;not null;default:''"`
	Context              string `gorm:"size:64;not null;default:'default'"`
	Enabled              bool   `gorm:"not null;default:true"`
	Description          string `gorm:"size:512;not null;default:''"`
}

func (extensionV1) TableName() string { return "extensions" }

type profileV1 struct {
	ID                   uint  `gorm:"primaryKey"`
	Version              int64 `gorm:"not null;default:1"`
	CreatedAt, UpdatedAt time.Time
	Name                 string `gorm:"size:63;not null;uniqueIndex"`
	Description          string `gorm:"size:512;not null;default:''"`
	Family               string `gorm:"size:8;not null;default:'ipv4'"`
	BindIP               string `gorm:"column:bind_ip;size:64;not null"`
	SIPPort              int    `gorm:"column:sip_port;not null;default:5060"`
	RTPIP                string `gorm:"column:rtp_ip;size:64;not null;default:''"`
	ExtSIPIP             string `gorm:"column:ext_sip_ip;size:255;not null;default:''"`
	ExtRTPIP             string `gorm:"column:ext_rtp_ip;size:255;not null;default:''"`
	RTPPortMin           int    `gorm:"column:rtp_port_min;not null;default:0"`
	RTPPortMax           int    `gorm:"column:rtp_port_max;not null;default:0"`
	TLS                  bool   `gorm:"column:tls;not null;default:false"`
	TLSPort              int    `gorm:"column:tls_port;not null;default:0"`
	TLSCertDir           string `gorm:"column:tls_cert_dir;size:255;not null;default:''"`
	WSSBinding           string `gorm:"column:wss_binding;size:64;not null;default:''"`
	InboundACL           string `gorm:"column:inbound_acl;size:63;not null;default:''"`
	AuthCalls            bool   `gorm:"not null;default:true"`
	Context              string `gorm:"size:64;not null;default:'public'"`
	Params               string `gorm:"type:text;not null;default:'{}'"`
}

func (profileV1) TableName() string { return "profiles" }

type profileV6 struct {
	UsePublicAddress bool `gorm:"column:use_public_address;not null;default:false"`
}

func (profileV6) TableName() string { return "profiles" }

type providerRangeV1 struct {
	ID                   uint  `gorm:"primaryKey"`
	Version              int64 `gorm:"not null;default:1"`
	CreatedAt, UpdatedAt time.Time
	Provider             string `gorm:"size:64;not null;uniqueIndex:idx_range_provider_cidr"`
	CIDR                 string `gorm:"column:cidr;size:64;not null;uniqueIndex:idx_range_provider_cidr"`
	Ports                string `gorm:"type:text;not null;default:'[]'"`
	Description          string `gorm:"size:512;not null;default:''"`
}

func (providerRangeV1) TableName() string { return "provider_ranges" }

type apiTokenV1 struct {
	ID         uint `gorm:"primaryKey"`
	CreatedAt  time.Time
	Name       string `gorm:"size:128;not null;default:''"`
	Hash       string `gorm:"size:64;not null;uniqueIndex"`
	Scopes     string `gorm:"type:text;not null;default:'[]'"`
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
}

func (apiTokenV1) TableName() string { return "api_tokens" }

type auditEventV1 struct {
	ID       uint      `gorm:"primaryKey"`
	At       time.Time `gorm:"not null;index"`
	Actor    string    `gorm:"size:128;not null;default:''"`
	RemoteIP string    `gorm:"size:64;not null;default:''"`
	Action   string    `gorm:"size:32;not null"`
	Kind     string    `gorm:"size:32;not null"`
	ObjectID uint      `gorm:"not null;default:0"`
	Name     string    `gorm:"size:255;not null;default:''"`
	Fields   string    `gorm:"type:text;not null;default:'[]'"`
}

func (auditEventV1) TableName() string { return "audit_events" }

// v2: node scoping for trunks and the change log that feeds the xml-curl
// cache, the ESL planner and other replicas.

type trunkV2 struct {
	Hostnames string `gorm:"type:text;not null;default:'[]'"`
}

func (trunkV2) TableName() string { return "trunks" }

type changeEventV2 struct {
	ID         uint64    `gorm:"primaryKey"`
	At         time.Time `gorm:"not null"`
	Kind       string    `gorm:"size:32;not null"`
	Op         string    `gorm:"size:16;not null"`
	ObjectID   uint      `gorm:"not null"`
	Name       string    `gorm:"size:255;not null;default:''"`
	OldName    string    `gorm:"size:255;not null;default:''"`
	OldProfile string    `gorm:"size:63;not null;default:''"`
	NewProfile string    `gorm:"size:63;not null;default:''"`
	OldEnabled bool      `gorm:"not null;default:false"`
	NewEnabled bool      `gorm:"not null;default:false"`
	Register   bool      `gorm:"not null;default:false"`
	Fields     string    `gorm:"type:text;not null;default:'[]'"`
	Cosmetic   bool      `gorm:"not null;default:false"`
	Actor      string    `gorm:"size:128;not null;default:''"`
}

func (changeEventV2) TableName() string { return "change_events" }

// v3: how far each FreeSWITCH node has been brought along the change log
// (the ESL outbox is change_events itself; see outbox.go).

type eslCursorV3 struct {
	Node      string    `gorm:"primaryKey;size:255"`
	ChangeID  uint64    `gorm:"not null;default:0"`
	UpdatedAt time.Time `gorm:"not null"`
}

func (eslCursorV3) TableName() string { return "esl_cursors" }

// v5: federation settings, one row (issue 13).

type federationV5 struct {
	ID                   uint  `gorm:"primaryKey"`
	Version              int64 `gorm:"not null;default:1"`
	CreatedAt, UpdatedAt time.Time
	Enabled              bool   `gorm:"not null;default:false"`
	Domain               string `gorm:"size:253;not null;default:''"`
	FQDN                 string `gorm:"column:fqdn;size:253;not null;default:''"`
	CertFile             string `gorm:"size:1024;not null;default:''"`
	KeyFile              string `gorm:"size:1024;not null;default:''"`
	CAFile               string `gorm:"column:ca_file;size:1024;not null;default:''"`
	Profile              string `gorm:"size:63;not null;default:''"`
	BindAddress          string `gorm:"size:64;not null;default:''"`
	Port                 int    `gorm:"not null;default:5061"`
	Mode                 string `gorm:"size:8;not null;default:'open'"`
	Routes               string `gorm:"type:text;not null;default:'[]'"`
	UsePublicAddress     bool   `gorm:"not null;default:false"`
	PublicAddress        string `gorm:"size:64;not null;default:''"`
	NATType              string `gorm:"column:nat_type;size:64;not null;default:''"`
}

func (federationV5) TableName() string { return "federation_settings" }

// v4: the registrar's location service (registrar package). Bindings are
// written outside the audited write path: registration churn is not an
// operator's change.

type bindingV7 struct {
	ID        uint      `gorm:"primaryKey"`
	AOR       string    `gorm:"column:aor;size:320;not null;index:idx_binding_aor"`
	Contact   string    `gorm:"size:1024;not null"`
	QMilli    int       `gorm:"column:q_milli;not null;default:1000"`
	Expires   time.Time `gorm:"not null;index:idx_binding_expires"`
	CallID    string    `gorm:"column:call_id;size:255;not null"`
	CSeq      int64     `gorm:"column:c_seq;not null"`
	Received  string    `gorm:"size:64;not null"`
	Transport string    `gorm:"size:8;not null"`
	UserAgent string    `gorm:"size:255;not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

func (bindingV7) TableName() string { return "sip_bindings" }

// v9: when the REGISTER that made a binding was accepted (0009).

type bindingV9 struct {
	RegisteredAt time.Time `gorm:"column:registered_at;not null;default:'1970-01-01 00:00:00+00:00'"`
}

func (bindingV9) TableName() string { return "sip_bindings" }

// v8: console sessions, shared by every replica and kept across restarts.

type consoleSessionV8 struct {
	IDHash    string    `gorm:"column:id_hash;primaryKey;size:64"`
	TokenHash string    `gorm:"size:64;not null;index"`
	TokenName string    `gorm:"size:128;not null;default:''"`
	CSRF      string    `gorm:"column:csrf;size:64;not null"`
	CreatedAt time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null;index"`
	IdleUntil time.Time `gorm:"not null;index"`
	Notices   string    `gorm:"type:text;not null;default:''"`
}

func (consoleSessionV8) TableName() string { return "console_sessions" }

// Migration IDs, oldest first.
const (
	MigrationInitial   = "0001_initial"
	MigrationChangeLog = "0002_change_log"
	MigrationESLOutbox = "0003_esl_outbox"
	MigrationWideNames = "0004_wide_event_names"
	// MigrationFederation may be renumbered at merge (another branch adds
	// 0005 too); the ID, not its position, is what gormigrate records.
	MigrationFederation = "0005_federation"
	// MigrationProfilePublicAddress adds profiles.use_public_address.
	MigrationProfilePublicAddress = "0006_profile_use_public_address"
	MigrationBindings             = "0007_sip_bindings"
	MigrationConsoleSessions      = "0008_console_sessions"
	// MigrationBindingsUnique makes (aor, contact) unique in sip_bindings:
	// replicas write one contact at a time (an upsert), not whole AORs;
	// and adds registered_at, which orders replicas' writes of a contact.
	MigrationBindingsUnique = "0009_sip_bindings_unique"
)

func migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		{
			ID: MigrationInitial,
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateTable(&trunkV1{}, &extensionV1{}, &profileV1{},
					&providerRangeV1{}, &apiTokenV1{}, &auditEventV1{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable("audit_events", "api_tokens", "provider_ranges",
					"profiles", "extensions", "trunks")
			},
		},
		{
			ID: MigrationChangeLog,
			Migrate: func(tx *gorm.DB) error {
				if err := tx.Migrator().AddColumn(&trunkV2{}, "Hostnames"); err != nil {
					return err
				}
				return tx.Migrator().CreateTable(&changeEventV2{})
			},
			Rollback: func(tx *gorm.DB) error {
				if err := tx.Migrator().DropTable("change_events"); err != nil {
					return err
				}
				return tx.Migrator().DropColumn(&trunkV2{}, "Hostnames")
			},
		},
		{
			ID: MigrationESLOutbox,
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateTable(&eslCursorV3{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable("esl_cursors")
			},
		},
		{
			// An extension's event name is user@domain: up to 64 + 1 + 253
			// characters, more than the 255 of 0001/0002 (PostgreSQL refused
			// such writes; SQLite does not enforce lengths).
			ID: MigrationWideNames,
			Migrate: func(tx *gorm.DB) error {
				return widenNames(tx, 512)
			},
			Rollback: func(tx *gorm.DB) error {
				return widenNames(tx, 255)
			},
		},
		{
			ID: MigrationFederation,
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateTable(&federationV5{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable("federation_settings")
			},
		},
		{
			ID: MigrationProfilePublicAddress,
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().AddColumn(&profileV6{}, "UsePublicAddress")
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropColumn(&profileV6{}, "UsePublicAddress")
			},
		},
		{
			ID: MigrationBindings,
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateTable(&bindingV7{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable("sip_bindings")
			},
		},
		{
			ID: MigrationConsoleSessions,
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateTable(&consoleSessionV8{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable("console_sessions")
			},
		},
		{
			ID: MigrationBindingsUnique,
			Migrate: func(tx *gorm.DB) error {
				// Two replicas replacing one AOR at once could both insert
				// a contact: keep its newest row.
				if err := tx.Exec("DELETE FROM sip_bindings WHERE id NOT IN (SELECT MAX(id) FROM sip_bindings GROUP BY aor, contact)").Error; err != nil {
					return err
				}
				// The unique index leads with aor: it serves the AOR
				// look-ups the old index did.
				if err := tx.Exec("CREATE UNIQUE INDEX idx_binding_aor_contact ON sip_bindings (aor, contact)").Error; err != nil {
					return err
				}
				if err := tx.Exec("DROP INDEX idx_binding_aor").Error; err != nil {
					return err
				}
				// When the REGISTER was accepted: for the rows already
				// there, the write's time is the best there is.
				if err := tx.Migrator().AddColumn(&bindingV9{}, "RegisteredAt"); err != nil {
					return err
				}
				return tx.Exec("UPDATE sip_bindings SET registered_at = updated_at").Error
			},
			Rollback: func(tx *gorm.DB) error {
				if err := tx.Migrator().DropColumn(&bindingV9{}, "RegisteredAt"); err != nil {
					return err
				}
				if err := tx.Exec("CREATE INDEX idx_binding_aor ON sip_bindings (aor)").Error; err != nil {
					return err
				}
				return tx.Exec("DROP INDEX idx_binding_aor_contact").Error
			},
		},
	}
}

// widenNames sets the length of the event and audit name columns.
func widenNames(tx *gorm.DB, n int) error {
	if tx.Dialector.Name() != "postgres" {
		return nil
	}
	for _, c := range [][2]string{{"change_events", "name"}, {"change_events", "old_name"}, {"audit_events", "name"}} {
		if err := tx.Exec(fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE varchar(%d)", c[0], c[1], n)).Error; err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) migrator(ctx context.Context) *gormigrate.Gormigrate {
	opts := *gormigrate.DefaultOptions
	opts.TableName = "schema_migrations"
	// Each step in its own transaction: a failed step leaves the schema at
	// the last complete version.
	opts.UseTransaction = true
	return gormigrate.New(s.db.WithContext(ctx), &opts, migrations())
}

// Migrate brings the schema to the newest version. On PostgreSQL it holds
// an advisory lock meanwhile: replicas started at once migrate one after
// the other, the first for real, the rest finding the schema current
// (gormigrate takes no lock; two of them creating the same table at once
// fail on pg_type's unique index).
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.withMigrationLock(ctx, func() error { return s.migrator(ctx).Migrate() }); err != nil {
		return fmt.Errorf("models: migrate: %w", err)
	}
	return nil
}

// MigrateTo brings the schema to the given migration ID (for upgrade
// tests and staged rollouts), under the same lock as Migrate.
func (s *Store) MigrateTo(ctx context.Context, id string) error {
	if err := s.withMigrationLock(ctx, func() error { return s.migrator(ctx).MigrateTo(id) }); err != nil {
		return fmt.Errorf("models: migrate to %s: %w", id, err)
	}
	return nil
}

// withMigrationLock runs fn holding a session advisory lock keyed by the
// schema in use, on a connection of its own (fn uses the pool).
func (s *Store) withMigrationLock(ctx context.Context, fn func() error) error {
	if s.Dialect() != "postgres" {
		return fn() // SQLite serialises writers itself
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer conn.Close()
	const key = "hashtext('fsplane schema_migrations ' || current_schema())"
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock("+key+")"); err != nil {
		return mapErr(err)
	}
	defer func() {
		// Closing the session would release it too; unlock so that the
		// pooled connection goes back clean.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+key+")")
	}()
	return fn()
}

// SchemaVersion returns the newest applied migration ID, "" for none.
func (s *Store) SchemaVersion(ctx context.Context) (string, error) {
	if !s.db.Migrator().HasTable("schema_migrations") {
		return "", nil
	}
	var id string
	err := s.db.WithContext(ctx).Table("schema_migrations").Select("id").Order("id DESC").Limit(1).Scan(&id).Error
	return id, err
}

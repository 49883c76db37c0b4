package models

import "time"

// Kinds of rows that emit change events.
const (
	KindTrunk         = "trunk"
	KindExtension     = "extension"
	KindProfile       = "profile"
	KindProviderRange = "provider_range"
	KindToken         = "token"
)

// Ops of a change event.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Kinds and actions that appear in the audit log besides the ones above.
const (
	KindFederation   = "federation"   // settings changed before a profile was named
	KindSecrets      = "secrets"      // the keyring (rotate-keys)
	KindRegistration = "registration" // a binding of fsplane's registrar
	// KindFreeSWITCHRegistration is a registration held by FreeSWITCH
	// itself (flush_inbound_reg).
	KindFreeSWITCHRegistration = "freeswitch_registration"

	ActionReadSecret = "read-secret"
	ActionUnregister = "unregister"
	ActionRotateKeys = "rotate-keys"
)

// AuditKinds and AuditActions are every kind and action an audit event can
// have: the API's audit filters accept these and no other. A new kind or
// action of audit event belongs here.
var (
	AuditKinds   = []string{KindTrunk, KindExtension, KindProfile, KindProviderRange, KindToken, KindFederation, KindSecrets, KindRegistration, KindFreeSWITCHRegistration}
	AuditActions = []string{OpCreate, OpUpdate, OpDelete, ActionReadSecret, ActionUnregister, ActionRotateKeys}
)

// Profile families.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
	FamilyDual = "dual"
)

// Column defaults live in the migrations; the structs carry none, because
// gorm would silently replace a deliberate zero (Enabled: false) with them.

// Trunk is a FreeSWITCH gateway: one SIP trunk to a provider.
type Trunk struct {
	ID        uint      `gorm:"primaryKey"`
	Version   int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`

	// Name is the gateway name, unique across all profiles.
	Name        string `gorm:"size:63;not null;uniqueIndex"`
	Provider    string `gorm:"size:64;not null;index"`
	Description string `gorm:"size:512;not null"`
	Profile     string `gorm:"size:63;not null;index"`

	Proxy         string `gorm:"size:255;not null"`
	OutboundProxy string `gorm:"size:255;not null"`
	RegisterProxy string `gorm:"size:255;not null"`
	Register      bool   `gorm:"not null"`
	Realm         string `gorm:"size:255;not null"`
	Username      string `gorm:"size:128;not null"`
	AuthUsername  string `gorm:"size:128;not null"`
	// PasswordEnc is the Fernet token of the SIP password; "" means none.
	PasswordEnc string `gorm:"column:password_enc;size:1024;not null" json:"-"`
	// Password, when non-nil on a create or update, is sealed into
	// PasswordEnc by the store. It is never persisted or serialised.
	Password *string `gorm:"-" json:"-"`

	FromUser       string `gorm:"size:128;not null"`
	FromDomain     string `gorm:"size:255;not null"`
	Transport      string `gorm:"size:8;not null"`
	CallerID       string `gorm:"size:32;not null"`
	CallerIDInFrom bool   `gorm:"not null"`
	ExpireSeconds  int    `gorm:"not null"`
	RetrySeconds   int    `gorm:"not null"`
	PingSeconds    int    `gorm:"not null"`
	Extension      string `gorm:"size:64;not null"`
	Context        string `gorm:"size:64;not null"`
	Enabled        bool   `gorm:"not null;index"`
	// Numbers are the trunk's DIDs in E.164.
	Numbers StringList `gorm:"type:text;not null"`
	// Hostnames limits the trunk to these FreeSWITCH hosts; empty means all.
	Hostnames StringList `gorm:"type:text;not null"`
}

// Extension is a SIP user in the FreeSWITCH directory.
type Extension struct {
	ID        uint      `gorm:"primaryKey"`
	Version   int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`

	Domain      string  `gorm:"size:255;not null;uniqueIndex:idx_extension_user"`
	UserID      string  `gorm:"size:64;not null;uniqueIndex:idx_extension_user"`
	PasswordEnc string  `gorm:"column:password_enc;size:1024;not null" json:"-"`
	Password    *string `gorm:"-" json:"-"`
	DisplayName string  `gorm:"size:128;not null"`
	CallerID    string  `gorm:"size:32;not null"`
	Context     string  `gorm:"size:64;not null"`
	Enabled     bool    `gorm:"not null"`
	Description string  `gorm:"size:512;not null"`
}

// Profile is a sofia profile.
type Profile struct {
	ID        uint      `gorm:"primaryKey"`
	Version   int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`

	Name        string `gorm:"size:63;not null;uniqueIndex"`
	Description string `gorm:"size:512;not null"`
	// Family is ipv4, ipv6 or dual.
	Family     string `gorm:"size:8;not null"`
	BindIP     string `gorm:"column:bind_ip;size:64;not null"` // sip-ip
	SIPPort    int    `gorm:"column:sip_port;not null"`
	RTPIP      string `gorm:"column:rtp_ip;size:64;not null"`
	ExtSIPIP   string `gorm:"column:ext_sip_ip;size:255;not null"`
	ExtRTPIP   string `gorm:"column:ext_rtp_ip;size:255;not null"`
	RTPPortMin int    `gorm:"column:rtp_port_min;not null"`
	RTPPortMax int    `gorm:"column:rtp_port_max;not null"`
	TLS        bool   `gorm:"column:tls;not null"`
	TLSPort    int    `gorm:"column:tls_port;not null"`
	TLSCertDir string `gorm:"column:tls_cert_dir;size:255;not null"`
	WSSBinding string `gorm:"column:wss_binding;size:64;not null"`
	InboundACL string `gorm:"column:inbound_acl;size:63;not null"`
	AuthCalls  bool   `gorm:"not null"`
	Context    string `gorm:"size:64;not null"`
	// Params are further sofia settings, name to value.
	Params StringMap `gorm:"type:text;not null"`
	// UsePublicAddress: fsplane keeps ExtSIPIP and ExtRTPIP at the public
	// address its STUN probe finds (FSPLANE_STUN_PROBE_SERVER).
	UsePublicAddress bool `gorm:"column:use_public_address;not null"`
}

// ProviderRange is a network a provider sends SIP from, and the ports and
// protocols it may reach ("5060/udp", "5061/tcp").
type ProviderRange struct {
	ID        uint      `gorm:"primaryKey"`
	Version   int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`

	Provider    string     `gorm:"size:64;not null;uniqueIndex:idx_range_provider_cidr"`
	CIDR        string     `gorm:"column:cidr;size:64;not null;uniqueIndex:idx_range_provider_cidr"`
	Ports       StringList `gorm:"type:text;not null"`
	Description string     `gorm:"size:512;not null"`
}

// APIToken is a bearer token, stored as the SHA-256 digest of its text.
type APIToken struct {
	ID         uint       `gorm:"primaryKey"`
	CreatedAt  time.Time  `gorm:"not null"`
	Name       string     `gorm:"size:128;not null"`
	Hash       string     `gorm:"size:64;not null;uniqueIndex" json:"-"`
	Scopes     StringList `gorm:"type:text;not null"`
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
}

// AuditEvent records who changed what and when. It never holds a secret:
// Fields names the changed fields, not their values.
type AuditEvent struct {
	ID       uint       `gorm:"primaryKey"`
	At       time.Time  `gorm:"not null;index"`
	Actor    string     `gorm:"size:128;not null"`
	RemoteIP string     `gorm:"size:64;not null"`
	Action   string     `gorm:"size:32;not null"` // create, update, delete, read-secret, …
	Kind     string     `gorm:"size:32;not null"`
	ObjectID uint       `gorm:"not null"`
	Name     string     `gorm:"size:512;not null"`
	Fields   StringList `gorm:"type:text;not null"`
}

// ChangeEvent is one committed write, appended in the write's own
// transaction. IDs increase monotonically: a consumer that remembers the last
// ID it applied can catch up with ChangesSince after any outage.
type ChangeEvent struct {
	ID   uint64    `gorm:"primaryKey"`
	At   time.Time `gorm:"not null"`
	Kind string    `gorm:"size:32;not null"`
	Op   string    `gorm:"size:16;not null"`
	// ObjectID and Name identify the row: trunk and profile name,
	// user@domain for extensions, provider name for ranges.
	ObjectID uint   `gorm:"not null"`
	Name     string `gorm:"size:512;not null"`
	// OldName is set when a rename changed Name.
	OldName string `gorm:"size:512;not null"`
	// OldProfile and NewProfile are the trunk's profile before and after
	// ("" for a create's old or a delete's new side).
	OldProfile string `gorm:"size:63;not null"`
	NewProfile string `gorm:"size:63;not null"`
	// OldEnabled and NewEnabled are the trunk's or extension's enabled flag.
	OldEnabled bool `gorm:"not null"`
	NewEnabled bool `gorm:"not null"`
	// Register is true when the trunk registers (after the change, or
	// before a delete).
	Register bool `gorm:"not null"`
	// Fields names the fields that changed (never their values).
	Fields StringList `gorm:"type:text;not null"`
	// Cosmetic is true when only fields that FreeSWITCH never sees changed
	// (descriptions, DIDs, provider label).
	Cosmetic bool   `gorm:"not null"`
	Actor    string `gorm:"size:128;not null"`
}

// HasField reports whether the named field changed.
func (e ChangeEvent) HasField(name string) bool {
	for _, f := range e.Fields {
		if f == name {
			return true
		}
	}
	return false
}

// ChangeChannel is the PostgreSQL NOTIFY channel on which every committed
// change is announced, with "schema:id" as payload (see events.Listen).
const ChangeChannel = "fsplane_changes"

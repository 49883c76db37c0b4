package models

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Federation is the one row of federation settings (ID 1). Package
// federation owns their meaning and validation; Routes is its JSON list of
// direct-federation routes.
type Federation struct {
	ID        uint      `gorm:"primaryKey"`
	Version   int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`

	Enabled          bool   `gorm:"not null"`
	Domain           string `gorm:"size:253;not null"`
	FQDN             string `gorm:"column:fqdn;size:253;not null"`
	CertFile         string `gorm:"size:1024;not null"`
	KeyFile          string `gorm:"size:1024;not null"`
	CAFile           string `gorm:"column:ca_file;size:1024;not null"`
	Profile          string `gorm:"size:63;not null"`
	BindAddress      string `gorm:"size:64;not null"`
	Port             int    `gorm:"not null"`
	Mode             string `gorm:"size:8;not null"`
	Routes           string `gorm:"type:text;not null"`
	UsePublicAddress bool   `gorm:"not null"`
	PublicAddress    string `gorm:"size:64;not null"`
	NATType          string `gorm:"column:nat_type;size:64;not null"`
}

// TableName keeps the table name stable whatever gorm's naming strategy.
func (Federation) TableName() string { return "federation_settings" }

// federationTLSFields are the profile settings a federation change may
// render differently: they are binding fields to the ESL planner, so the
// profile restarts (when allowed) or "restart needed" is reported.
var federationTLSFields = []string{"enabled", "profile", "port"}

// Federation returns the stored settings, ErrNotFound when none were ever
// stored.
func (s *Store) Federation(ctx context.Context) (*Federation, error) {
	var f Federation
	err := s.db.WithContext(ctx).Limit(1).Find(&f, 1).Error
	if err != nil {
		return nil, mapErr(err)
	}
	if f.ID == 0 {
		return nil, ErrNotFound
	}
	return &f, nil
}

// PutFederation stores f as the settings, provided f.Version is the stored
// version (0: none stored yet); on success f carries the new version. The
// change event is a profile update of the profile that carries federation
// (fields "federation" and, when the rendering may differ, tls, tls_port
// and tls_cert_dir), so xml-curl renders it again and the ESL planner
// restarts it or reports that it must be restarted.
func (s *Store) PutFederation(ctx context.Context, f *Federation) error {
	if err := s.checkSizes(f); err != nil {
		return err
	}
	return s.write(ctx, func(tx *gorm.DB) (*ChangeEvent, error) {
		var old Federation
		if err := tx.Limit(1).Find(&old, 1).Error; err != nil {
			return nil, err
		}
		if old.Version != f.Version {
			return nil, ErrConflict
		}
		now := s.now().UTC()
		f.ID, f.UpdatedAt = 1, now
		changed, err := diff(&old, f, tx.NamingStrategy)
		if err != nil {
			return nil, err
		}
		if old.ID == 0 {
			f.Version, f.CreatedAt = 1, now
			if err := tx.Create(f).Error; err != nil {
				return nil, err
			}
		} else {
			if len(changed) == 0 {
				return nil, nil
			}
			f.Version, f.CreatedAt = old.Version+1, old.CreatedAt
			res := tx.Model(&Federation{}).Where("id = 1 AND version = ?", old.Version).Select("*").Updates(f)
			if res.Error != nil {
				return nil, res.Error
			}
			if res.RowsAffected != 1 {
				return nil, ErrConflict
			}
		}
		ev := &ChangeEvent{Kind: KindProfile, Op: OpUpdate, Name: f.Profile, OldProfile: old.Profile,
			NewProfile: f.Profile, OldEnabled: old.Enabled, NewEnabled: f.Enabled, Fields: StringList{"federation"}}
		if ev.Name == "" {
			ev.Name = old.Profile
		}
		for _, c := range changed {
			for _, t := range federationTLSFields {
				if c == t && (f.Enabled || old.Enabled) {
					ev.Fields = StringList{"federation", "tls", "tls_port", "tls_cert_dir"}
				}
			}
		}
		if ev.Name == "" {
			// No profile named yet: nothing FreeSWITCH renders changed.
			ev.Kind = KindFederation
		}
		if old.Enabled && old.Profile != "" && old.Profile != f.Profile {
			// The profile that carried federation loses its TLS side.
			moved := ChangeEvent{At: now, Actor: ActorFrom(ctx).Name, Kind: KindProfile, Op: OpUpdate, Name: old.Profile,
				OldProfile: old.Profile, NewProfile: old.Profile, OldEnabled: true, NewEnabled: true,
				Fields: StringList{"federation", "tls", "tls_port", "tls_cert_dir"}}
			if err := tx.Create(&moved).Error; err != nil {
				return nil, fmt.Errorf("models: append change event: %w", err)
			}
		}
		// A route gateway that is no longer rendered as it was must be
		// killed (a rescan only adds gateways): one gateway delete each, in
		// the same transaction, which the ESL planner turns into killgw.
		for _, name := range goneRoutes(&old, f) {
			gone := ChangeEvent{At: now, Actor: ActorFrom(ctx).Name, Kind: KindTrunk, Op: OpDelete, Name: name,
				OldProfile: old.Profile, OldEnabled: true, Fields: StringList{"federation"}}
			if err := tx.Create(&gone).Error; err != nil {
				return nil, fmt.Errorf("models: append change event: %w", err)
			}
		}
		return ev, nil
	})
}

// FederationRouteGateway is the sofia gateway a direct-federation route
// to a peer domain is rendered as.
func FederationRouteGateway(domain string) string { return "federation-" + domain }

type federationRoute struct {
	Domain string `json:"domain"`
	FQDN   string `json:"fqdn"`
	Port   int    `json:"port"`
}

// renderedRoutes are the route gateways of f as xml-curl renders them
// (only for an enabled, direct federation), by gateway name.
func renderedRoutes(f *Federation) map[string]string {
	out := map[string]string{}
	if !f.Enabled || f.Mode != "direct" || f.Profile == "" {
		return out
	}
	var rs []federationRoute
	_ = json.Unmarshal([]byte(f.Routes), &rs) // the caller validated it; unreadable means none
	for _, r := range rs {
		out[FederationRouteGateway(r.Domain)] = fmt.Sprintf("%s %s:%d", f.Profile, r.FQDN, r.Port)
	}
	return out
}

// goneRoutes are the gateways old rendered that f renders differently or
// not at all, sorted.
func goneRoutes(old, f *Federation) []string {
	now := renderedRoutes(f)
	var out []string
	for name, was := range renderedRoutes(old) {
		if now[name] != was {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// CertificateRenewed records that the federation certificate files of
// profile were replaced in its tls-cert-dir: a profile change with field
// "tls_cert", from which the ESL planner sends `reloadcert` (or restarts
// the profile, or reports that it must be restarted). first is the first
// installation on this host: the profile was rendered without TLS until
// now, so it is a binding change (tls, tls_port, tls_cert_dir) instead.
func (s *Store) CertificateRenewed(ctx context.Context, profile string, first bool) error {
	fields := StringList{"tls_cert"}
	if first {
		fields = StringList{"tls", "tls_port", "tls_cert_dir"}
	}
	return s.write(ctx, func(*gorm.DB) (*ChangeEvent, error) {
		return &ChangeEvent{Kind: KindProfile, Op: OpUpdate, Name: profile, OldProfile: profile, NewProfile: profile,
			OldEnabled: true, NewEnabled: true, Fields: fields}, nil
	})
}

package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fsplane/fsplane/models"
)

// FromModel reads the stored row.
func FromModel(m *models.Federation) (Settings, error) {
	s := Settings{
		Enabled: m.Enabled, Domain: m.Domain, FQDN: m.FQDN, CertFile: m.CertFile, KeyFile: m.KeyFile,
		CAFile: m.CAFile, Profile: m.Profile, BindAddress: m.BindAddress, Port: m.Port, Mode: m.Mode,
		UsePublicAddress: m.UsePublicAddress, PublicAddress: m.PublicAddress, NATType: m.NATType,
	}
	if m.Routes != "" {
		if err := json.Unmarshal([]byte(m.Routes), &s.Routes); err != nil {
			return s, fmt.Errorf("federation: stored routes: %w", err)
		}
	}
	if s.Routes == nil {
		s.Routes = []Route{}
	}
	return s, nil
}

// ToModel is the row for s (validated by the caller) at version.
func (s Settings) ToModel(version int64) *models.Federation {
	routes := s.Routes
	if routes == nil {
		routes = []Route{}
	}
	rj, _ := json.Marshal(routes)
	return &models.Federation{
		Version: version, Enabled: s.Enabled, Domain: s.Domain, FQDN: s.FQDN, CertFile: s.CertFile,
		KeyFile: s.KeyFile, CAFile: s.CAFile, Profile: s.Profile, BindAddress: s.BindAddress, Port: s.Port,
		Mode: s.Mode, Routes: string(rj), UsePublicAddress: s.UsePublicAddress, PublicAddress: s.PublicAddress,
		NATType: s.NATType,
	}
}

// Load returns the stored settings and their version; configured is false
// (with defaults) when none were ever stored.
func Load(ctx context.Context, st *models.Store) (s Settings, version int64, configured bool, err error) {
	m, err := st.Federation(ctx)
	if errors.Is(err, models.ErrNotFound) {
		s = Settings{Routes: []Route{}}
		s.Normalize()
		return s, 0, false, nil
	}
	if err != nil {
		return s, 0, false, err
	}
	s, err = FromModel(m)
	s.Normalize()
	return s, m.Version, true, err
}

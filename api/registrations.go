package api

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/registrar"
)

// Registrations is what the API needs from fsplane's own registrar
// (*registrar.Registrar implements it).
type Registrations interface {
	List() []registrar.Binding
	Unregister(aor, contact string) error
}

// RegistrationOut is one binding of fsplane's registrar as GET
// /api/v1/sip/registrations lists it (the console reads it too).
type RegistrationOut struct {
	AOR       string  `json:"aor"`
	Contact   string  `json:"contact"`
	Q         float64 `json:"q"`
	Received  string  `json:"received"`
	Transport string  `json:"transport"`
	UserAgent string  `json:"user_agent"`
	// Expires is the seconds left, as the registrar's 200 states them.
	Expires   int       `json:"expires"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RegistrationList is GET /api/v1/sip/registrations' answer.
type RegistrationList struct {
	// Enabled is false when the registrar does not run
	// (FSPLANE_REGISTRAR_LISTEN unset).
	Enabled bool `json:"enabled"`
	// RegisteredDevices is the number of current bindings (read-only, as
	// in the seed's Proxy Registrar).
	RegisteredDevices int               `json:"registered_devices"`
	Items             []RegistrationOut `json:"items"`
}

func (s *server) listRegistrations(c echo.Context) error {
	out := RegistrationList{Items: []RegistrationOut{}}
	if s.registrations == nil {
		return c.JSON(http.StatusOK, out)
	}
	out.Enabled = true
	now := time.Now()
	for _, b := range s.registrations.List() {
		left := int(math.Ceil(b.Expires.Sub(now).Seconds()))
		if left <= 0 {
			continue
		}
		out.Items = append(out.Items, RegistrationOut{AOR: b.AOR, Contact: b.Contact, Q: b.Q, Received: b.Received,
			Transport: b.Transport, UserAgent: b.UserAgent, Expires: left, ExpiresAt: b.Expires.UTC()})
	}
	out.RegisteredDevices = len(out.Items)
	return c.JSON(http.StatusOK, out)
}

// deleteRegistration unregisters one binding named by aor and contact as
// listed. It is an operator's action on live state, not on configuration:
// no change event, but an audit event, written first (no audit, no
// effect).
func (s *server) deleteRegistration(c echo.Context) error {
	aor, contact := c.QueryParam("aor"), c.QueryParam("contact")
	fe := fieldErrors{}
	if aor == "" {
		fe.add("aor", "required: the address of record (user@domain) as listed")
	}
	if contact == "" {
		fe.add("contact", "required: the contact URI as listed")
	}
	if err := fe.err(); err != nil {
		return err
	}
	if s.registrations == nil {
		return about(models.ErrNotFound, "registration")
	}
	found := false
	for _, b := range s.registrations.List() {
		if b.AOR == aor && b.Contact == contact {
			found = true
			break
		}
	}
	if !found {
		return about(models.ErrNotFound, "registration of %q", aor)
	}
	if err := s.store.Audit(c.Request().Context(), models.AuditEvent{Action: models.ActionUnregister, Kind: models.KindRegistration,
		Name: aor, Fields: models.StringList{"contact"}}); err != nil {
		return err
	}
	if err := s.registrations.Unregister(aor, contact); err != nil {
		if errors.Is(err, registrar.ErrNotFound) {
			return about(models.ErrNotFound, "registration of %q", aor)
		}
		return about(err, "registration of %q", aor) // registrar.ErrNotWritten: 503
	}
	return c.NoContent(http.StatusNoContent)
}

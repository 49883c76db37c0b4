package api

import (
	"github.com/fsplane/fsplane/names"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/models"
)

type extensionIn struct {
	Version     *int64  `json:"version"`
	Domain      *string `json:"domain"`
	UserID      *string `json:"user_id"`
	Password    *string `json:"password"`
	DisplayName *string `json:"display_name"`
	CallerID    *string `json:"caller_id"`
	Context     *string `json:"context"`
	Enabled     *bool   `json:"enabled"`
	Description *string `json:"description"`
}

type extensionOut struct {
	ID          uint      `json:"id"`
	Version     int64     `json:"version"`
	Domain      string    `json:"domain"`
	UserID      string    `json:"user_id"`
	HasPassword bool      `json:"has_password"`
	DisplayName string    `json:"display_name"`
	CallerID    string    `json:"caller_id"`
	Context     string    `json:"context"`
	Enabled     bool      `json:"enabled"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// RenderError says why FreeSWITCH does not get this user as stored
	// (a row written past the API's validation); absent when it does.
	RenderError string `json:"render_error,omitempty"`
}

type extensionList struct {
	Items  []extensionOut `json:"items"`
	Total  int64          `json:"total"`
	Limit  int            `json:"limit"`
	Offset int            `json:"offset"`
}

// extensionConfigOut is what a SIP client needs to register: the only
// response that carries a password.
type extensionConfigOut struct {
	ID          uint   `json:"id"`
	Domain      string `json:"domain"`
	UserID      string `json:"user_id"`
	Username    string `json:"username"`
	Password    string `json:"password"`
	Realm       string `json:"realm"`
	DisplayName string `json:"display_name"`
	CallerID    string `json:"caller_id"`
	Context     string `json:"context"`
	Enabled     bool   `json:"enabled"`
}

func toExtensionOut(e *models.Extension) extensionOut {
	return extensionOut{ID: e.ID, Version: e.Version, Domain: e.Domain, UserID: e.UserID,
		HasPassword: e.PasswordEnc != "", DisplayName: e.DisplayName, CallerID: e.CallerID,
		Context: e.Context, Enabled: e.Enabled, Description: e.Description,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

// extensionOut is toExtensionOut with render_error.
func (s *server) extensionOut(e *models.Extension) extensionOut {
	out := toExtensionOut(e)
	if s.render != nil {
		out.RenderError = s.render.ExtensionProblem(e)
	}
	return out
}

func (in *extensionIn) apply(e *models.Extension) {
	set(&e.Domain, in.Domain)
	set(&e.UserID, in.UserID)
	set(&e.DisplayName, in.DisplayName)
	set(&e.CallerID, in.CallerID)
	set(&e.Context, in.Context)
	set(&e.Enabled, in.Enabled)
	set(&e.Description, in.Description)
	if in.Password != nil {
		p := *in.Password
		e.Password = &p
	}
}

func extensionDefaults() models.Extension {
	return models.Extension{Context: "default", Enabled: true}
}

// minExtensionPassword: extension passwords are chosen here, not by a
// provider, so a floor is enforced.
const minExtensionPassword = 8

func validateExtension(e *models.Extension, fe fieldErrors) {
	if h, err := names.ParseHost(e.Domain, false); err != nil {
		fe.addErr("domain", err)
	} else {
		e.Domain = h.String()
	}
	fe.addErr("user_id", names.User(e.UserID))
	if e.Password != nil {
		if *e.Password == "" {
			// A directory user without a password authenticates without one.
			fe.add("password", "must not be empty: a user without a password would register without one")
		} else {
			fe.addErr("password", names.Password(*e.Password, minExtensionPassword))
		}
	}
	if e.DisplayName != "" {
		fe.addErr("display_name", names.DisplayName(e.DisplayName))
	}
	if e.CallerID != "" {
		fe.addErr("caller_id", names.E164(e.CallerID))
	}
	fe.addErr("context", names.Context(e.Context))
	fe.addErr("description", names.Text(e.Description, 512))
}

func (s *server) listExtensions(c echo.Context) error {
	fe := fieldErrors{}
	pg := pageParams(c, fe)
	if err := fe.err(); err != nil {
		return err
	}
	rows, total, err := s.store.ListExtensions(c.Request().Context(), models.ExtensionFilter{Domain: c.QueryParam("domain"), Page: pg})
	if err != nil {
		return err
	}
	out := extensionList{Items: make([]extensionOut, 0, len(rows)), Total: total, Limit: pg.Limit, Offset: pg.Offset}
	for i := range rows {
		out.Items = append(out.Items, s.extensionOut(&rows[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) createExtension(c echo.Context) error {
	var in extensionIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	fe := fieldErrors{}
	if in.Version != nil {
		fe.add("version", "not allowed on create")
	}
	required(fe, map[string]bool{"domain": in.Domain != nil, "user_id": in.UserID != nil, "password": in.Password != nil})
	e := extensionDefaults()
	in.apply(&e)
	if len(fe) == 0 {
		validateExtension(&e, fe)
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.store.CreateExtension(c.Request().Context(), &e); err != nil {
		return about(err, "extension %s@%s", e.UserID, e.Domain)
	}
	return created(c, "/api/v1/sip/extensions/"+strconv.FormatUint(uint64(e.ID), 10), e.Version, s.extensionOut(&e))
}

func (s *server) extensionParam(c echo.Context) (*models.Extension, error) {
	ref := c.Param("id")
	id, ok := parseID(ref)
	if !ok {
		return nil, about(models.ErrNotFound, "extension %q", ref)
	}
	e, err := s.store.GetExtension(c.Request().Context(), id)
	return e, about(err, "extension %d", id)
}

func (s *server) getExtension(c echo.Context) error {
	e, err := s.extensionParam(c)
	if err != nil {
		return err
	}
	setETag(c, e.Version)
	return c.JSON(http.StatusOK, s.extensionOut(e))
}

func (s *server) putExtension(c echo.Context) error   { return s.updateExtension(c, false) }
func (s *server) patchExtension(c echo.Context) error { return s.updateExtension(c, true) }

func (s *server) updateExtension(c echo.Context, patch bool) error {
	old, err := s.extensionParam(c)
	if err != nil {
		return err
	}
	var in extensionIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	version, err := checkVersion(c, in.Version, old.Version)
	if err != nil {
		return about(err, "extension %d", old.ID)
	}
	fe := fieldErrors{}
	e := *old
	if !patch {
		e = extensionDefaults()
		required(fe, map[string]bool{"domain": in.Domain != nil, "user_id": in.UserID != nil})
	}
	e.ID, e.Version, e.CreatedAt, e.PasswordEnc, e.Password = old.ID, version, old.CreatedAt, old.PasswordEnc, nil
	in.apply(&e)
	if len(fe) == 0 {
		validateExtension(&e, fe)
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.store.UpdateExtension(c.Request().Context(), &e); err != nil {
		return about(err, "extension %d", old.ID)
	}
	setETag(c, e.Version)
	return c.JSON(http.StatusOK, s.extensionOut(&e))
}

func (s *server) deleteExtension(c echo.Context) error {
	e, err := s.extensionParam(c)
	if err != nil {
		return err
	}
	version, err := checkVersion(c, nil, e.Version)
	if err != nil {
		return about(err, "extension %d", e.ID)
	}
	if err := s.store.DeleteExtension(c.Request().Context(), e.ID, version); err != nil {
		return about(err, "extension %d", e.ID)
	}
	return c.NoContent(http.StatusNoContent)
}

// extensionConfig hands out the decrypted credentials. The read is
// audited before the answer is sent: no audit record, no secret.
func (s *server) extensionConfig(c echo.Context) error {
	e, err := s.extensionParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	name := e.UserID + "@" + e.Domain
	plain, err := s.store.Reveal(models.KindExtension, e.ID, name, e.PasswordEnc)
	if err != nil {
		return err
	}
	if err := s.store.Audit(ctx, models.AuditEvent{Action: models.ActionReadSecret, Kind: models.KindExtension,
		ObjectID: e.ID, Name: name, Fields: models.StringList{"password"}}); err != nil {
		return err
	}
	s.metrics.secretReads.Inc()
	c.Response().Header().Set("Cache-Control", "no-store")
	setETag(c, e.Version)
	return c.JSON(http.StatusOK, extensionConfigOut{ID: e.ID, Domain: e.Domain, UserID: e.UserID,
		Username: e.UserID, Password: plain, Realm: e.Domain, DisplayName: e.DisplayName,
		CallerID: e.CallerID, Context: e.Context, Enabled: e.Enabled})
}

package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/providers"
)

// trunkIn is the body of POST, PUT and PATCH. Every field is optional in
// the type; which are required depends on the method and on preset.
type trunkIn struct {
	// Preset (create only) fills every field but name, numbers and
	// credentials from a built-in provider preset.
	Preset *string `json:"preset"`
	// Version is the version the client read (like If-Match).
	Version        *int64    `json:"version"`
	Name           *string   `json:"name"`
	Provider       *string   `json:"provider"`
	Description    *string   `json:"description"`
	Profile        *string   `json:"profile"`
	Proxy          *string   `json:"proxy"`
	OutboundProxy  *string   `json:"outbound_proxy"`
	RegisterProxy  *string   `json:"register_proxy"`
	Register       *bool     `json:"register"`
	Realm          *string   `json:"realm"`
	Username       *string   `json:"username"`
	AuthUsername   *string   `json:"auth_username"`
	Password       *string   `json:"password"`
	FromUser       *string   `json:"from_user"`
	FromDomain     *string   `json:"from_domain"`
	Transport      *string   `json:"transport"`
	CallerID       *string   `json:"caller_id"`
	CallerIDInFrom *bool     `json:"caller_id_in_from"`
	ExpireSeconds  *int      `json:"expire_seconds"`
	RetrySeconds   *int      `json:"retry_seconds"`
	PingSeconds    *int      `json:"ping_seconds"`
	Extension      *string   `json:"extension"`
	Context        *string   `json:"context"`
	Enabled        *bool     `json:"enabled"`
	Numbers        *[]string `json:"numbers"`
	Hostnames      *[]string `json:"hostnames"`
}

// TrunkOut is a trunk as the API shows it: never the password.
type TrunkOut struct {
	ID             uint      `json:"id"`
	Version        int64     `json:"version"`
	Name           string    `json:"name"`
	Provider       string    `json:"provider"`
	Description    string    `json:"description"`
	Profile        string    `json:"profile"`
	Proxy          string    `json:"proxy"`
	OutboundProxy  string    `json:"outbound_proxy"`
	RegisterProxy  string    `json:"register_proxy"`
	Register       bool      `json:"register"`
	Realm          string    `json:"realm"`
	Username       string    `json:"username"`
	AuthUsername   string    `json:"auth_username"`
	HasPassword    bool      `json:"has_password"`
	FromUser       string    `json:"from_user"`
	FromDomain     string    `json:"from_domain"`
	Transport      string    `json:"transport"`
	CallerID       string    `json:"caller_id"`
	CallerIDInFrom bool      `json:"caller_id_in_from"`
	ExpireSeconds  int       `json:"expire_seconds"`
	RetrySeconds   int       `json:"retry_seconds"`
	PingSeconds    int       `json:"ping_seconds"`
	Extension      string    `json:"extension"`
	Context        string    `json:"context"`
	Enabled        bool      `json:"enabled"`
	Numbers        []string  `json:"numbers"`
	Hostnames      []string  `json:"hostnames"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// RenderError says why FreeSWITCH does not get this trunk as stored
	// (a row written past the API's validation); absent when it does.
	RenderError string `json:"render_error,omitempty"`
}

// TrunkWriteOut answers a successful write: the trunk and the warnings.
type TrunkWriteOut struct {
	TrunkOut
	Warnings []Warning `json:"warnings"`
}

type trunkList struct {
	Items  []TrunkOut `json:"items"`
	Total  int64      `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
}

type trunkStatusOut struct {
	Trunk    string              `json:"trunk"`
	Register bool                `json:"register"`
	Gateways []esl.GatewayStatus `json:"gateways"`
}

func toTrunkOut(t *models.Trunk) TrunkOut {
	return TrunkOut{
		ID: t.ID, Version: t.Version, Name: t.Name, Provider: t.Provider, Description: t.Description,
		Profile: t.Profile, Proxy: t.Proxy, OutboundProxy: t.OutboundProxy, RegisterProxy: t.RegisterProxy,
		Register: t.Register, Realm: t.Realm, Username: t.Username, AuthUsername: t.AuthUsername,
		HasPassword: t.PasswordEnc != "", FromUser: t.FromUser, FromDomain: t.FromDomain,
		Transport: t.Transport, CallerID: t.CallerID, CallerIDInFrom: t.CallerIDInFrom,
		ExpireSeconds: t.ExpireSeconds, RetrySeconds: t.RetrySeconds, PingSeconds: t.PingSeconds,
		Extension: t.Extension, Context: t.Context, Enabled: t.Enabled,
		Numbers: nonNil(t.Numbers), Hostnames: nonNil(t.Hostnames),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

// trunkOut is toTrunkOut with render_error.
func (s *server) trunkOut(ctx context.Context, t *models.Trunk) (TrunkOut, error) {
	outs, err := s.trunkOuts(ctx, []models.Trunk{*t})
	if err != nil {
		return TrunkOut{}, err
	}
	return outs[0], nil
}

// trunkOuts is toTrunkOut with render_error for a page of trunks, the
// rendering's reads done once for all.
func (s *server) trunkOuts(ctx context.Context, rows []models.Trunk) ([]TrunkOut, error) {
	outs := make([]TrunkOut, len(rows))
	for i := range rows {
		outs[i] = toTrunkOut(&rows[i])
	}
	if s.render == nil {
		return outs, nil
	}
	whys, err := s.render.TrunkProblems(ctx, rows)
	if err != nil {
		return nil, err
	}
	for i, why := range whys {
		outs[i].RenderError = why
	}
	return outs, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// trunkDefaults are what an omitted field means on create and PUT:
// FreeSWITCH's own defaults where it has them.
func trunkDefaults() models.Trunk {
	return models.Trunk{Transport: "udp", ExpireSeconds: 3600, RetrySeconds: 30, Context: "public",
		Enabled: true, Numbers: models.StringList{}, Hostnames: models.StringList{}}
}

// apply copies the given fields onto t.
func (in *trunkIn) apply(t *models.Trunk) {
	set(&t.Name, in.Name)
	set(&t.Provider, in.Provider)
	set(&t.Description, in.Description)
	set(&t.Profile, in.Profile)
	set(&t.Proxy, in.Proxy)
	set(&t.OutboundProxy, in.OutboundProxy)
	set(&t.RegisterProxy, in.RegisterProxy)
	set(&t.Register, in.Register)
	set(&t.Realm, in.Realm)
	set(&t.Username, in.Username)
	set(&t.AuthUsername, in.AuthUsername)
	set(&t.FromUser, in.FromUser)
	set(&t.FromDomain, in.FromDomain)
	set(&t.Transport, in.Transport)
	set(&t.CallerID, in.CallerID)
	set(&t.CallerIDInFrom, in.CallerIDInFrom)
	set(&t.ExpireSeconds, in.ExpireSeconds)
	set(&t.RetrySeconds, in.RetrySeconds)
	set(&t.PingSeconds, in.PingSeconds)
	set(&t.Extension, in.Extension)
	set(&t.Context, in.Context)
	set(&t.Enabled, in.Enabled)
	if in.Numbers != nil {
		t.Numbers = models.StringList(*in.Numbers)
	}
	if in.Hostnames != nil {
		t.Hostnames = models.StringList(*in.Hostnames)
	}
	if in.Password != nil {
		p := *in.Password
		t.Password = &p
	}
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// required adds an error for each required field the body lacks.
func required(fe fieldErrors, given map[string]bool) {
	for f, ok := range given {
		if !ok {
			fe.add(f, "required")
		}
	}
}

func (s *server) listTrunks(c echo.Context) error {
	q := c.QueryParams()
	fe := fieldErrors{}
	pg := pageParams(c, fe)
	f := models.TrunkFilter{Provider: q.Get("provider"), Profile: q.Get("profile"), Page: pg}
	if v := q.Get("enabled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fe.add("enabled", "must be true or false")
		}
		f.Enabled = &b
	}
	if err := fe.err(); err != nil {
		return err
	}
	rows, total, err := s.store.ListTrunks(c.Request().Context(), f)
	if err != nil {
		return err
	}
	items, err := s.trunkOuts(c.Request().Context(), rows)
	if err != nil {
		return err
	}
	out := trunkList{Items: items, Total: total, Limit: pg.Limit, Offset: pg.Offset}
	return c.JSON(http.StatusOK, out)
}

func (s *server) createTrunk(c echo.Context) error {
	var in trunkIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	fe := fieldErrors{}
	if in.Version != nil {
		fe.add("version", "not allowed on create")
	}
	t := trunkDefaults()
	if in.Preset != nil {
		p, err := providers.ByName(*in.Preset)
		if err != nil {
			fe.add("preset", "unknown preset %q (known: %s)", *in.Preset, presetNames())
		} else {
			t = p.Trunk()
			if in.Provider != nil && *in.Provider != p.Name {
				fe.add("provider", "%q conflicts with preset %q", *in.Provider, p.Name)
			}
		}
		required(fe, map[string]bool{"name": in.Name != nil})
	} else {
		required(fe, map[string]bool{"name": in.Name != nil, "profile": in.Profile != nil,
			"proxy": in.Proxy != nil, "register": in.Register != nil})
	}
	in.apply(&t)
	if err := fe.err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	warnings, err := s.validateTrunk(ctx, &t, t.Password != nil && *t.Password != "", in.Preset)
	if err != nil {
		return err
	}
	if err := s.store.CreateTrunk(ctx, &t); err != nil {
		return about(err, "trunk %q", t.Name)
	}
	o, err := s.trunkOut(ctx, &t)
	if err != nil {
		return err
	}
	return created(c, "/api/v1/sip/trunks/"+strconv.FormatUint(uint64(t.ID), 10), t.Version,
		TrunkWriteOut{TrunkOut: o, Warnings: warnings})
}

func presetNames() string {
	var out string
	for i, p := range providers.Builtin() {
		if i > 0 {
			out += ", "
		}
		out += p.Name
	}
	return out
}

// trunkParam reads the trunk named by :id, a numeric id or a gateway name.
func (s *server) trunkParam(c echo.Context) (*models.Trunk, error) {
	ref := c.Param("id")
	ctx := c.Request().Context()
	var (
		t   *models.Trunk
		err error
	)
	if id, ok := parseID(ref); ok {
		t, err = s.store.GetTrunk(ctx, id)
	} else {
		t, err = s.store.TrunkByName(ctx, ref)
	}
	return t, about(err, "trunk %q", ref)
}

func (s *server) getTrunk(c echo.Context) error {
	t, err := s.trunkParam(c)
	if err != nil {
		return err
	}
	setETag(c, t.Version)
	o, err := s.trunkOut(c.Request().Context(), t)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

func (s *server) putTrunk(c echo.Context) error   { return s.updateTrunk(c, false) }
func (s *server) patchTrunk(c echo.Context) error { return s.updateTrunk(c, true) }

func (s *server) updateTrunk(c echo.Context, patch bool) error {
	old, err := s.trunkParam(c)
	if err != nil {
		return err
	}
	var in trunkIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	version, err := checkVersion(c, in.Version, old.Version)
	if err != nil {
		return about(err, "trunk %q", old.Name)
	}
	fe := fieldErrors{}
	if in.Preset != nil {
		fe.add("preset", "only allowed on create")
	}
	t := *old
	if !patch {
		t = trunkDefaults()
		required(fe, map[string]bool{"name": in.Name != nil, "profile": in.Profile != nil,
			"proxy": in.Proxy != nil, "register": in.Register != nil})
	}
	t.ID, t.Version, t.CreatedAt, t.PasswordEnc, t.Password = old.ID, version, old.CreatedAt, old.PasswordEnc, nil
	in.apply(&t)
	if err := fe.err(); err != nil {
		return err
	}
	hasPassword := old.PasswordEnc != ""
	if t.Password != nil {
		hasPassword = *t.Password != ""
	}
	ctx := c.Request().Context()
	warnings, err := s.validateTrunk(ctx, &t, hasPassword, nil)
	if err != nil {
		return err
	}
	if err := s.store.UpdateTrunk(ctx, &t); err != nil {
		return about(err, "trunk %q", old.Name)
	}
	setETag(c, t.Version)
	o, err := s.trunkOut(ctx, &t)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TrunkWriteOut{TrunkOut: o, Warnings: warnings})
}

func (s *server) deleteTrunk(c echo.Context) error {
	t, err := s.trunkParam(c)
	if err != nil {
		return err
	}
	version, err := checkVersion(c, nil, t.Version)
	if err != nil {
		return about(err, "trunk %q", t.Name)
	}
	if err := s.store.DeleteTrunk(c.Request().Context(), t.ID, version); err != nil {
		return about(err, "trunk %q", t.Name)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *server) trunkStatus(c echo.Context) error {
	t, err := s.trunkParam(c)
	if err != nil {
		return err
	}
	if s.esl == nil {
		return ErrNoESL
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	gws, err := s.esl.GatewayStatus(ctx, *t)
	if err != nil {
		return about(errors.Join(ErrUpstream, err), "gateway %q", t.Name)
	}
	if gws == nil {
		gws = []esl.GatewayStatus{}
	}
	return c.JSON(http.StatusOK, trunkStatusOut{Trunk: t.Name, Register: t.Register, Gateways: gws})
}

// parseID reads a positive decimal row id.
func parseID(s string) (uint, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint(n), true
}

// pageParams reads limit and offset.
func pageParams(c echo.Context, fe fieldErrors) models.Page {
	p := models.Page{Limit: 100}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fe.add("limit", "must be an integer 1-1000")
		} else {
			p.Limit = n
		}
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fe.add("offset", "must be an integer >= 0")
		} else {
			p.Offset = n
		}
	}
	return p
}

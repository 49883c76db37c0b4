package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/models"
)

// Federation is what the API needs of federation (a *federation.Service).
type Federation interface {
	Settings(ctx context.Context) (federation.Settings, int64, bool, error)
	Check(ctx context.Context) (federation.Report, error)
	// Apply checks and installs the certificate of enabled settings.
	Apply(s federation.Settings) error
	Warnings(ctx context.Context) ([]string, error)
	// ProfileWarnings are the warnings about single profiles, by name.
	ProfileWarnings(ctx context.Context) (map[string]string, error)
	TLSDir() string
}

type federationIn struct {
	Version *int64 `json:"version"`
	federation.Settings
}

type federationOut struct {
	Version int64 `json:"version"`
	federation.Settings
	// TLSCertDir is where fsplane puts agent.pem and cafile.pem: the
	// profile's tls-cert-dir once both are there.
	TLSCertDir string   `json:"tls_cert_dir"`
	Warnings   []string `json:"warnings"`
}

func (s *server) federationRoutes() []route {
	if s.federation == nil {
		return nil
	}
	const path = "/api/v1/federation"
	return []route{
		{method: http.MethodGet, path: path, scope: auth.ScopeSIPRead, summary: "Federation settings, with warnings (TLS profiles without a certificate, expiry, restart needed)",
			handler: s.getFederation, out: federationOut{}, status: 200},
		// admin: the settings name files on this host (certificate, key, CA).
		{method: http.MethodPut, path: path, scope: auth.ScopeAdmin, summary: "Replace the federation settings (admin: they name certificate and key files on this host); an enabled federation's certificate is checked and put in place first",
			handler: s.putFederation, in: federationIn{}, out: federationOut{}, status: 200, errors: []int{400, 409, 412, 413, 415, 422}},
		{method: http.MethodGet, path: path + "/check", scope: auth.ScopeSIPRead, summary: "Run the federation checklist on the stored settings",
			handler: s.checkFederation, out: federation.Report{}, status: 200},
	}
}

func (s *server) federationOut(ctx context.Context) (federationOut, error) {
	set, version, _, err := s.federation.Settings(ctx)
	if err != nil {
		return federationOut{}, err
	}
	ws, err := s.federation.Warnings(ctx)
	if err != nil {
		return federationOut{}, err
	}
	if ws == nil {
		ws = []string{}
	}
	return federationOut{Version: version, Settings: set, TLSCertDir: s.federation.TLSDir(), Warnings: ws}, nil
}

func (s *server) getFederation(c echo.Context) error {
	out, err := s.federationOut(c.Request().Context())
	if err != nil {
		return err
	}
	setETag(c, out.Version)
	return c.JSON(http.StatusOK, out)
}

func (s *server) putFederation(c echo.Context) error {
	ctx := c.Request().Context()
	_, stored, _, err := s.federation.Settings(ctx)
	if err != nil {
		return err
	}
	var in federationIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	version, err := checkVersion(c, in.Version, stored)
	if err != nil {
		return about(err, "federation settings")
	}
	set := in.Settings
	set.Defaults()
	fe := fieldErrors(set.FieldErrors())
	if set.Profile != "" && fe["profile"] == "" {
		if _, err := s.store.ProfileByName(ctx, set.Profile); errors.Is(err, models.ErrNotFound) {
			fe.add("profile", "no profile named %q", set.Profile)
		} else if err != nil {
			return err
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.federation.Apply(set); err != nil {
		if errors.Is(err, federation.ErrRefused) {
			return &ValidationError{Fields: map[string]string{"cert_file": strings.TrimPrefix(err.Error(), federation.ErrRefused.Error()+": ")}}
		}
		return err
	}
	if err := s.store.PutFederation(ctx, set.ToModel(version)); err != nil {
		return err
	}
	out, err := s.federationOut(ctx)
	if err != nil {
		return err
	}
	setETag(c, out.Version)
	return c.JSON(http.StatusOK, out)
}

func (s *server) checkFederation(c echo.Context) error {
	rep, err := s.federation.Check(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

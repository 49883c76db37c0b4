// Package api is fsplane's platform API (echo v4, /api/v1): CRUD for
// trunks, extensions, profiles and provider ranges, tokens with scopes,
// the audit log, health and readiness. Other capabilities mount their
// handlers through Options.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/models"
)

// Check is one readiness probe.
type Check func(ctx context.Context) CheckResult

// CheckResult is a probe's answer: Status is "ok", "degraded" or "down".
type CheckResult struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Options are the server's dependencies.
type Options struct {
	Store  *models.Store
	Logger *slog.Logger
	// XMLCurl serves POST /api/v1/sip/xml-curl and does its own
	// authentication (Basic or an xmlcurl-scoped token).
	XMLCurl http.Handler
	// Checks are added to /readyz by name.
	Checks map[string]Check
}

// New builds the echo server with every route.
func New(opt Options) *echo.Echo {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		checks := map[string]CheckResult{}
		overall := "ok"
		db := CheckResult{Status: "ok"}
		if err := opt.Store.Ping(ctx); err != nil {
			db = CheckResult{Status: "down", Detail: "database unreachable"}
		}
		checks["database"] = db
		for name, chk := range opt.Checks {
			checks[name] = chk(ctx)
		}
		code := http.StatusOK
		for _, r := range checks {
			switch r.Status {
			case "down":
				overall, code = "down", http.StatusServiceUnavailable
			case "degraded":
				if overall == "ok" {
					overall = "degraded"
				}
			}
		}
		return c.JSON(code, map[string]any{"status": overall, "checks": checks})
	})
	if opt.XMLCurl != nil {
		e.POST("/api/v1/sip/xml-curl", echo.WrapHandler(opt.XMLCurl))
	}
	return e
}

package api

import (
	"errors"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
)

const ctxKeyToken = "fsplane.token"

// require authenticates the bearer token and checks that it carries
// scope (admin carries every scope). The token's name and the client's
// address become the actor of every audit event the request causes.
func (s *server) require(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			tok, err := s.authenticate(c)
			if err != nil {
				return err
			}
			if !auth.Allows(tok.Scopes, scope) {
				s.metrics.authFailures.WithLabelValues("scope").Inc()
				return about(ErrForbidden, "scope %s required", scope)
			}
			r := c.Request()
			ctx := models.WithActor(r.Context(), models.Actor{Name: tok.Name, RemoteIP: c.RealIP()})
			c.SetRequest(r.WithContext(ctx))
			c.Set(ctxKeyToken, tok)
			return next(c)
		}
	}
}

func (s *server) authenticate(c echo.Context) (*models.APIToken, error) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	if h == "" {
		s.metrics.authFailures.WithLabelValues("missing").Inc()
		return nil, ErrUnauthorized
	}
	scheme, text, ok := strings.Cut(h, " ")
	text = strings.TrimSpace(text)
	if !ok || !strings.EqualFold(scheme, "Bearer") || text == "" {
		s.metrics.authFailures.WithLabelValues("malformed").Inc()
		return nil, about(ErrUnauthorized, "Authorization must be \"Bearer TOKEN\"")
	}
	tok, err := s.store.TokenByHash(c.Request().Context(), auth.Hash(text))
	if errors.Is(err, models.ErrNotFound) {
		s.metrics.authFailures.WithLabelValues("unknown").Inc()
		return nil, about(ErrUnauthorized, "unknown or expired token")
	}
	if err != nil {
		return nil, err
	}
	if tok.LastUsedAt == nil || time.Since(*tok.LastUsedAt) > time.Minute {
		// Best effort: a failed bookkeeping write must not refuse the call.
		_ = s.store.TouchToken(c.Request().Context(), tok.ID, time.Now())
	}
	return tok, nil
}

// tokenOf is the authenticated token of the request.
func tokenOf(c echo.Context) *models.APIToken {
	t, _ := c.Get(ctxKeyToken).(*models.APIToken)
	return t
}

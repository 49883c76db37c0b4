package api

import (
	"errors"
	"strings"

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
			if !tok.Allows(scope) {
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

// authenticate parses the Authorization header and hands the token to the
// verifier shared with xml-curl. A database outage is the verifier's error
// as is (models.ErrUnavailable: 503), not a 401. A request made in-process
// for a principal its maker verified (auth.WithPrincipal: the console's) is
// that principal.
func (s *server) authenticate(c echo.Context) (auth.Principal, error) {
	if p, ok := auth.PrincipalFrom(c.Request().Context()); ok {
		return p, nil
	}
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	if h == "" {
		s.metrics.authFailures.WithLabelValues("missing").Inc()
		return auth.Principal{}, ErrUnauthorized
	}
	scheme, text, ok := strings.Cut(h, " ")
	text = strings.TrimSpace(text)
	if !ok || !strings.EqualFold(scheme, "Bearer") || text == "" {
		s.metrics.authFailures.WithLabelValues("malformed").Inc()
		return auth.Principal{}, about(ErrUnauthorized, "Authorization must be \"Bearer TOKEN\"")
	}
	p, err := s.verifier.Verify(c.Request().Context(), text)
	if errors.Is(err, auth.ErrUnknownToken) {
		s.metrics.authFailures.WithLabelValues("unknown").Inc()
		return auth.Principal{}, about(ErrUnauthorized, "unknown or expired token")
	}
	return p, err
}

// tokenOf is the authenticated principal of the request.
func tokenOf(c echo.Context) auth.Principal {
	p, _ := c.Get(ctxKeyToken).(auth.Principal)
	return p
}

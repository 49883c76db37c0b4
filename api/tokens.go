package api

import (
	"github.com/fsplane/fsplane/names"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
)

type tokenIn struct {
	Name             *string   `json:"name"`
	Scopes           *[]string `json:"scopes"`
	ExpiresInSeconds *int64    `json:"expires_in_seconds"`
}

// tokenOut never carries the token or its digest.
type tokenOut struct {
	ID         uint       `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// tokenCreatedOut carries the token's text: the only time it is shown.
type tokenCreatedOut struct {
	tokenOut
	Token string `json:"token"`
}

type tokenList struct {
	Items []tokenOut `json:"items"`
	Total int64      `json:"total"`
}

func toTokenOut(t *models.APIToken) tokenOut {
	return tokenOut{ID: t.ID, Name: t.Name, Scopes: nonNil(t.Scopes), CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
}

func (s *server) listTokens(c echo.Context) error {
	rows, err := s.store.ListTokens(c.Request().Context())
	if err != nil {
		return err
	}
	out := tokenList{Items: make([]tokenOut, 0, len(rows)), Total: int64(len(rows))}
	for i := range rows {
		out.Items = append(out.Items, toTokenOut(&rows[i]))
	}
	return c.JSON(http.StatusOK, out)
}

const maxTokenTTL = 10 * 365 * 24 * time.Hour

func (s *server) createToken(c echo.Context) error {
	var in tokenIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	fe := fieldErrors{}
	required(fe, map[string]bool{"name": in.Name != nil, "scopes": in.Scopes != nil})
	row := &models.APIToken{}
	if in.Name != nil {
		row.Name = *in.Name
		if row.Name == "" {
			fe.add("name", "must not be empty")
		}
		fe.addErr("name", names.Text(row.Name, 100))
	}
	if in.Scopes != nil {
		if len(*in.Scopes) == 0 {
			fe.add("scopes", "at least one of %v", auth.AllScopes)
		}
		for _, sc := range *in.Scopes {
			if !auth.ValidScope(sc) {
				fe.add("scopes", "unknown scope %q (valid: %v)", sc, auth.AllScopes)
			} else if !slices.Contains(row.Scopes, sc) {
				row.Scopes = append(row.Scopes, sc)
			}
		}
	}
	if in.ExpiresInSeconds != nil {
		ttl := time.Duration(*in.ExpiresInSeconds) * time.Second
		if *in.ExpiresInSeconds < 60 || ttl > maxTokenTTL {
			fe.add("expires_in_seconds", "must be between 60 and %d", int64(maxTokenTTL/time.Second))
		} else {
			exp := time.Now().Add(ttl).UTC()
			row.ExpiresAt = &exp
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	text, err := auth.NewToken()
	if err != nil {
		return err
	}
	row.Hash = auth.Hash(text)
	if err := s.store.CreateToken(c.Request().Context(), row); err != nil {
		return about(err, "token %q", row.Name)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, tokenCreatedOut{tokenOut: toTokenOut(row), Token: text})
}

func (s *server) deleteToken(c echo.Context) error {
	ref := c.Param("id")
	id, ok := parseID(ref)
	if !ok {
		return about(models.ErrNotFound, "token %q", ref)
	}
	if err := s.store.DeleteToken(c.Request().Context(), id); err != nil {
		return about(err, "token %d", id)
	}
	// Immediate here; other replicas drop it within the cache TTL.
	s.verifier.Revoked(id)
	return c.NoContent(http.StatusNoContent)
}

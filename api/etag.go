package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// etag renders a row version as a strong ETag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

func setETag(c echo.Context, version int64) {
	c.Response().Header().Set("ETag", etag(version))
}

// expectedVersion returns the version the client says it read, from
// If-Match or the body's version field; ok is false when it stated none
// (or If-Match: *). Both given and different is a bad request.
func expectedVersion(c echo.Context, body *int64) (v int64, ok bool, err error) {
	hv, hok, err := ifMatch(c.Request().Header.Values("If-Match"))
	if err != nil {
		return 0, false, err
	}
	switch {
	case hok && body != nil && *body != hv:
		return 0, false, about(ErrBadRequest, "If-Match %s and version %d disagree", etag(hv), *body)
	case hok:
		v, ok = hv, true
	case body != nil:
		v, ok = *body, true
	}
	if ok {
		c.Set(ctxKeyPrecondition, true)
	}
	return v, ok, nil
}

// ifMatch parses If-Match. Several ETags are allowed; fsplane rows have
// one version, so a list of more than one is only useful with "*".
func ifMatch(vals []string) (int64, bool, error) {
	var tags []string
	for _, v := range vals {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	if len(tags) == 0 {
		return 0, false, nil
	}
	if len(tags) == 1 && tags[0] == "*" {
		return 0, false, nil
	}
	if len(tags) > 1 {
		return 0, false, about(ErrBadRequest, "If-Match must name one ETag")
	}
	t := tags[0]
	if strings.HasPrefix(t, "W/") {
		return 0, false, about(ErrBadRequest, "If-Match needs a strong ETag such as \"3\", not %s", t)
	}
	if len(t) < 3 || t[0] != '"' || t[len(t)-1] != '"' {
		return 0, false, about(ErrBadRequest, "If-Match must be a quoted ETag such as \"3\"")
	}
	n, err := strconv.ParseInt(t[1:len(t)-1], 10, 64)
	if err != nil || n < 1 {
		return 0, false, about(ErrBadRequest, "If-Match %s is not an fsplane ETag", t)
	}
	return n, true, nil
}

// checkVersion fails with ErrPrecondition when the client's version is
// stale; it returns the version the write must name.
func checkVersion(c echo.Context, body *int64, stored int64) (int64, error) {
	v, ok, err := expectedVersion(c, body)
	if err != nil {
		return 0, err
	}
	if ok && v != stored {
		return 0, ErrPrecondition
	}
	return stored, nil
}

// created answers 201 with Location and ETag.
func created(c echo.Context, loc string, version int64, body any) error {
	c.Response().Header().Set(echo.HeaderLocation, loc)
	setETag(c, version)
	return c.JSON(http.StatusCreated, body)
}

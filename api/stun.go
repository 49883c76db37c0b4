package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/stun"
)

// STUNProbeOut is GET /api/v1/stun/probe: the last probe of the
// configured STUN server, as `fsplane stun probe --json` prints it, with
// when it ran; IPv6 when the server also has an IPv6 address.
type STUNProbeOut struct {
	stun.ProbeResult
	CheckedAt time.Time         `json:"checked_at"`
	IPv6      *stun.ProbeResult `json:"ipv6,omitempty"`
}

var errNoSTUNProbe = about(models.ErrNotFound, "STUN probe (none configured: set FSPLANE_STUN_PROBE_SERVER)")

func (s *server) stunProbe(c echo.Context) error {
	if s.stunProbeFn == nil {
		return errNoSTUNProbe
	}
	last := s.stunProbeFn()
	if last == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the first STUN probe has not finished yet")
	}
	return c.JSON(http.StatusOK, last)
}

package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// eslNodes lists the FreeSWITCH connections; none configured is an
// empty list, not an error.
func (s *server) eslNodes(c echo.Context) error {
	if s.esl == nil {
		return c.JSON(http.StatusOK, []any{})
	}
	nodes := s.esl.Nodes()
	if nodes == nil {
		return c.JSON(http.StatusOK, []any{})
	}
	return c.JSON(http.StatusOK, nodes)
}

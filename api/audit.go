package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// AuditOut is one audit event as GET /api/v1/audit lists it (the console
// reads it too).
type AuditOut struct {
	ID       uint      `json:"id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	RemoteIP string    `json:"remote_ip"`
	Action   string    `json:"action"`
	Kind     string    `json:"kind"`
	ObjectID uint      `json:"object_id"`
	Name     string    `json:"name"`
	Fields   []string  `json:"fields"`
}

// AuditList is GET /api/v1/audit's answer.
type AuditList struct {
	Items []AuditOut `json:"items"`
	// NextBefore is the before= of the next (older) page; 0 at the end.
	NextBefore uint `json:"next_before"`
}

func (s *server) listAudit(c echo.Context) error {
	fe := fieldErrors{}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fe.add("limit", "must be an integer 1-1000")
		}
		limit = n
	}
	f := models.AuditFilter{Limit: limit}
	if v := c.QueryParam("before"); v != "" {
		n, ok := parseID(v)
		if !ok {
			fe.add("before", "must be a positive event id")
		}
		f.Before = n
	}
	if v := c.QueryParam("kind"); v != "" {
		if !slices.Contains(models.AuditKinds, v) {
			fe.add("kind", "must be one of %s", strings.Join(models.AuditKinds, ", "))
		}
		f.Kind = v
	}
	if v := c.QueryParam("action"); v != "" {
		if !slices.Contains(models.AuditActions, v) {
			fe.add("action", "must be one of %s", strings.Join(models.AuditActions, ", "))
		}
		f.Action = v
	}
	if v := c.QueryParam("object_id"); v != "" {
		n, ok := parseID(v)
		switch {
		case !ok:
			fe.add("object_id", "must be a positive id")
		case f.Kind == "":
			// Ids are per kind: trunk 3 and extension 3 are not one thing.
			fe.add("object_id", "needs kind: ids are numbered per kind")
		}
		f.ObjectID = n
	}
	if v := c.QueryParam("name"); v != "" {
		// The rules of the names searched for: a NUL or another control
		// character is in no stored name (and PostgreSQL cannot compare it).
		fe.addErr("name", names.Text(v, 512))
		f.Name = v
	}
	if err := fe.err(); err != nil {
		return err
	}
	rows, err := s.store.FindAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := AuditList{Items: make([]AuditOut, 0, len(rows))}
	for _, r := range rows {
		out.Items = append(out.Items, AuditOut{ID: r.ID, At: r.At, Actor: r.Actor, RemoteIP: r.RemoteIP,
			Action: r.Action, Kind: r.Kind, ObjectID: r.ObjectID, Name: r.Name, Fields: nonNil(r.Fields)})
	}
	if len(rows) == limit && rows[len(rows)-1].ID > 1 {
		out.NextBefore = rows[len(rows)-1].ID
	}
	return c.JSON(http.StatusOK, out)
}

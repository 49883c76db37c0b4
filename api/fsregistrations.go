package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// ErrNotDriven: this replica does not drive the FreeSWITCH node (another
// one leads), or the node is not connected: the write cannot be made here
// and now.
var ErrNotDriven = errors.New("FreeSWITCH node not reachable from this replica")

// FSRegistrationList is GET /api/v1/sip/freeswitch-registrations' answer
// (the console reads it too).
type FSRegistrationList struct {
	// Configured is false when no FreeSWITCH node is configured.
	Configured bool `json:"configured"`
	// RegisteredDevices counts the registrations listed.
	RegisteredDevices int `json:"registered_devices"`
	// Items: one per node and profile (fsplane's sofia profiles), each
	// with its registrations or why they could not be read.
	Items []esl.ProfileRegistrations `json:"items"`
}

// fsProfiles are the profiles to ask about: fsplane's, or the one named
// by ?profile=.
func (s *server) fsProfiles(c echo.Context, only string) ([]string, error) {
	if only != "" {
		if err := names.Profile(only); err != nil {
			return nil, &ValidationError{Fields: map[string]string{"profile": err.Error()}}
		}
		if _, err := s.store.ProfileByName(c.Request().Context(), only); err != nil {
			return nil, about(err, "profile %q", only)
		}
		return []string{only}, nil
	}
	ps, err := s.store.ListProfiles(c.Request().Context())
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out, nil
}

// listFSRegistrations lists FreeSWITCH's own registrations of fsplane's
// profiles on each node, through ESL.
func (s *server) listFSRegistrations(c echo.Context) error {
	out := FSRegistrationList{Items: []esl.ProfileRegistrations{}}
	profiles, err := s.fsProfiles(c, c.QueryParam("profile"))
	if err != nil {
		return err
	}
	if s.esl == nil {
		return c.JSON(http.StatusOK, out)
	}
	out.Configured = true
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	items, err := s.esl.Registrations(ctx, profiles)
	if err != nil && len(items) == 0 {
		return about(errors.Join(ErrUpstream, err), "registrations")
	}
	for _, it := range items {
		out.RegisteredDevices += len(it.Registrations)
	}
	if items != nil {
		out.Items = items
	}
	return c.JSON(http.StatusOK, out)
}

// deleteFSRegistration flushes one of FreeSWITCH's registrations, named
// by node, profile and call_id as listed: `sofia profile P
// flush_inbound_reg <call-id> [reboot]`. Like the registrar's DELETE it is
// an operator's action on live state: audited first (no audit, no
// effect), no change event.
func (s *server) deleteFSRegistration(c echo.Context) error {
	node, profile, callID := c.QueryParam("node"), c.QueryParam("profile"), c.QueryParam("call_id")
	fe := fieldErrors{}
	if node == "" {
		fe.add("node", "required: the FreeSWITCH node (host:port) as listed")
	}
	if profile == "" {
		fe.add("profile", "required: the sofia profile as listed")
	} else {
		fe.addErr("profile", names.Profile(profile))
	}
	if callID == "" {
		fe.add("call_id", "required: the Call-ID as listed")
	} else if err := names.SofiaArg(callID); err != nil {
		fe.add("call_id", "cannot be sent on a FreeSWITCH command line: %s", err.Error())
	}
	reboot := false
	switch c.QueryParam("reboot") {
	case "", "false":
	case "true":
		reboot = true
	default:
		fe.add("reboot", "must be true or false")
	}
	if err := fe.err(); err != nil {
		return err
	}
	if s.esl == nil {
		return ErrNoESL
	}
	all, err := s.fsProfiles(c, "")
	if err != nil {
		return err
	}
	others := make([]string, 0, len(all))
	known := false
	for _, p := range all {
		if p == profile {
			known = true
		} else {
			others = append(others, p)
		}
	}
	if !known {
		return about(models.ErrNotFound, "profile %q", profile)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	// The row as FreeSWITCH lists it now: the audit names its user, and a
	// Call-ID it does not list is a 404 before anything is written.
	lists, err := s.esl.Registrations(ctx, []string{profile})
	if err != nil && len(lists) == 0 {
		return about(errors.Join(ErrUpstream, err), "registrations")
	}
	var user string
	found := false
	for _, l := range lists {
		if l.Node != node {
			continue
		}
		if !l.OK && l.State != esl.StateConnected {
			return about(ErrNotDriven, "node %q (%s)", node, l.Detail)
		}
		if !l.OK {
			return about(ErrUpstream, "node %q (%s)", node, l.Detail)
		}
		for _, r := range l.Registrations {
			if r.CallID == callID {
				user, found = r.User, true
			}
		}
		if !found {
			return about(models.ErrNotFound, "registration with this Call-ID on node %q, profile %q", node, profile)
		}
	}
	if !found {
		return about(models.ErrNotFound, "FreeSWITCH node %q", node)
	}
	fields := models.StringList{"node", "profile", "call_id"}
	if reboot {
		fields = append(fields, "reboot")
	}
	if err := s.store.Audit(c.Request().Context(), models.AuditEvent{Action: models.ActionUnregister, Kind: models.KindFreeSWITCHRegistration,
		Name: user, Fields: fields}); err != nil {
		return err
	}
	_, err = s.esl.Unregister(ctx, esl.Unregistration{Node: node, Profile: profile, CallID: callID, Reboot: reboot, Others: others})
	switch {
	case err == nil:
		return c.NoContent(http.StatusNoContent)
	case errors.Is(err, esl.ErrUnknownNode), errors.Is(err, esl.ErrNoSuchRegistration):
		return about(models.ErrNotFound, "registration with this Call-ID on node %q, profile %q", node, profile)
	case errors.Is(err, esl.ErrWouldFlushOthers):
		return about(ErrInUse, "registration of %q: %s", user, err.Error())
	case errors.Is(err, esl.ErrStandby), errors.Is(err, esl.ErrNotConnected):
		return about(ErrNotDriven, "node %q", node)
	}
	return about(errors.Join(ErrUpstream, err), "registration of %q", user)
}

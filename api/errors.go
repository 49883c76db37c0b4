package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/registrar"
)

var (
	// ErrUnauthorized: no bearer token, or one that is unknown or expired.
	ErrUnauthorized = errors.New("a valid bearer token is required")
	// ErrForbidden: the token lacks the route's scope.
	ErrForbidden = errors.New("the token lacks the required scope")
	// ErrPrecondition: If-Match (or the body's version) names a version
	// that is not the stored one.
	ErrPrecondition = errors.New("the resource changed since you read it (If-Match / version mismatch)")
	// ErrInUse: the row is referenced and cannot be renamed or deleted.
	ErrInUse = errors.New("in use")
	// ErrBodyTooLarge: the request body exceeds the limit.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrMediaType: a body that is not JSON.
	ErrMediaType = errors.New("request body must be application/json")
	// ErrBadRequest: a malformed request (syntax, parameters).
	ErrBadRequest = errors.New("bad request")
	// ErrNoESL: no FreeSWITCH node is configured.
	ErrNoESL = errors.New("no FreeSWITCH node configured")
	// ErrUpstream: FreeSWITCH did not answer a status query.
	ErrUpstream = errors.New("FreeSWITCH did not answer")
)

// ValidationError names each invalid field (by its JSON name) and why. It
// is answered 422. Messages never carry a secret's value.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// fieldOfColumn names a column by the JSON field that sets it: the same
// name but for these.
func fieldOfColumn(col string) string {
	switch col {
	case "bind_ip":
		return "sip_ip"
	case "password_enc":
		return "password"
	}
	return col
}

// EncodingError is a body that is not UTF-8: answered 400, naming the
// fields whose values hold the bad bytes where they can be told.
type EncodingError struct {
	Offset int
	Fields map[string]string
}

func (e *EncodingError) Error() string {
	return fmt.Sprintf("the request body is not valid UTF-8 JSON (first bad byte at offset %d)", e.Offset)
}

// fieldErrors collects validation errors field by field; the first error
// of a field wins.
type fieldErrors map[string]string

func (f fieldErrors) add(field, format string, args ...any) {
	if _, ok := f[field]; !ok {
		f[field] = fmt.Sprintf(format, args...)
	}
}

func (f fieldErrors) addErr(field string, err error) {
	if err != nil {
		f.add(field, "%s", err.Error())
	}
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &ValidationError{Fields: map[string]string(f)}
}

// Warning is a finding that does not stop a write.
type Warning struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ErrorBody is every error response.
type ErrorBody struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

// publicError carries a message that is safe to show: the subject
// ("trunk \"plusnet\"") and a sentinel; the handler never shows the text of
// whatever else the chain wraps.
type publicError struct {
	subject string
	err     error
}

func (e *publicError) Error() string { return e.subject + ": " + e.err.Error() }
func (e *publicError) Unwrap() error { return e.err }

// about wraps err with the subject it concerns.
func about(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &publicError{subject: fmt.Sprintf(format, args...), err: err}
}

// retryAfterUnavailable is the Retry-After of a 503 for a database that
// cannot be reached, in seconds: about one reconnect attempt.
const retryAfterUnavailable = "5"

// ctxKeyPrecondition marks a request that stated the version it expects.
const ctxKeyPrecondition = "fsplane.precondition"

// errorHandler is the one place errors become responses and are logged.
func (s *server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := s.classify(err, c)
	if status >= 500 {
		s.log.Error("api request failed", "request_id", requestIDOf(c), "method", c.Request().Method, "route", c.Path(),
			"status", status, "err", err)
	} else {
		s.log.Debug("api request refused", "request_id", requestIDOf(c), "method", c.Request().Method, "route", c.Path(),
			"status", status, "error", body.Error)
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fsplane"`)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		s.log.Error("api: write error response", "err", err)
	}
}

func (s *server) classify(err error, c echo.Context) (int, ErrorBody) {
	var (
		ve  *ValidationError
		pe  *publicError
		he  *echo.HTTPError
		sec *models.SecretError
	)
	msg := func(fallback string) string {
		if errors.As(err, &pe) {
			return pe.subject + ": " + fallback
		}
		return fallback
	}
	var (
		ee *EncodingError
		ie *models.InvariantError
		sz *models.SizeError
	)
	switch {
	case errors.As(err, &sz):
		return http.StatusUnprocessableEntity, ErrorBody{Error: "validation failed",
			Fields: map[string]string{fieldOfColumn(sz.Column): fmt.Sprintf("must be at most %d characters", sz.Max)}}
	case errors.As(err, &ie) && ie.Field != "":
		return http.StatusUnprocessableEntity, ErrorBody{Error: "validation failed", Fields: map[string]string{ie.Field: ie.Msg}}
	case errors.As(err, &ie):
		return http.StatusConflict, ErrorBody{Error: msg(ie.Msg)}
	case errors.As(err, &ee):
		return http.StatusBadRequest, ErrorBody{Error: ee.Error(), Fields: ee.Fields}
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, ErrorBody{Error: "validation failed", Fields: ve.Fields}
	case errors.Is(err, models.ErrUnavailable):
		// Whatever the request was about: the answer is "not now".
		c.Response().Header().Set("Retry-After", retryAfterUnavailable)
		return http.StatusServiceUnavailable, ErrorBody{Error: "database unavailable"}
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, ErrorBody{Error: msg(ErrUnauthorized.Error())}
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, ErrorBody{Error: msg(ErrForbidden.Error())}
	case errors.Is(err, ErrPrecondition):
		return http.StatusPreconditionFailed, ErrorBody{Error: msg(ErrPrecondition.Error())}
	case errors.Is(err, models.ErrConflict):
		// The client stated a version: its precondition failed. Otherwise
		// another writer won between our read and our write: retry.
		if v, _ := c.Get(ctxKeyPrecondition).(bool); v {
			return http.StatusPreconditionFailed, ErrorBody{Error: msg(ErrPrecondition.Error())}
		}
		return http.StatusConflict, ErrorBody{Error: msg("changed concurrently by another writer; read it again and retry")}
	case errors.Is(err, models.ErrNotFound):
		return http.StatusNotFound, ErrorBody{Error: msg("not found")}
	case errors.Is(err, models.ErrDuplicate):
		return http.StatusConflict, ErrorBody{Error: msg("already exists")}
	case errors.Is(err, ErrInUse):
		if errors.As(err, &pe) {
			return http.StatusConflict, ErrorBody{Error: pe.Error()}
		}
		return http.StatusConflict, ErrorBody{Error: "in use"}
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, ErrorBody{Error: fmt.Sprintf("request body exceeds %d bytes", maxBody)}
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType, ErrorBody{Error: ErrMediaType.Error()}
	case errors.Is(err, ErrBadRequest):
		if errors.As(err, &pe) {
			return http.StatusBadRequest, ErrorBody{Error: pe.Error()}
		}
		return http.StatusBadRequest, ErrorBody{Error: "bad request"}
	case errors.Is(err, registrar.ErrNotWritten):
		// Removed in this process, not yet in the database the other
		// replicas read (the write is retried): not done, try later.
		c.Response().Header().Set("Retry-After", retryAfterUnavailable)
		return http.StatusServiceUnavailable, ErrorBody{Error: msg("removed here but not yet written to the database (retried); other replicas may still list it")}
	case errors.Is(err, ErrNoESL):
		return http.StatusServiceUnavailable, ErrorBody{Error: ErrNoESL.Error()}
	case errors.Is(err, ErrNotDriven):
		return http.StatusServiceUnavailable, ErrorBody{Error: msg(ErrNotDriven.Error())}
	case errors.Is(err, ErrUpstream):
		return http.StatusBadGateway, ErrorBody{Error: msg(ErrUpstream.Error())}
	case errors.As(err, &sec):
		return http.StatusInternalServerError, ErrorBody{Error: "a stored password cannot be decrypted with the configured Fernet keys"}
	case errors.As(err, &he):
		// echo's own errors: unknown route, wrong method.
		m, ok := he.Message.(string)
		if !ok || he.Code >= 500 {
			m = http.StatusText(he.Code)
		}
		return he.Code, ErrorBody{Error: strings.ToLower(m)}
	case errors.Is(err, context.Canceled):
		return 499, ErrorBody{Error: "request cancelled"}
	}
	return http.StatusInternalServerError, ErrorBody{Error: "internal error"}
}

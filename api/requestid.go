package api

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/labstack/echo/v4"
)

// ctxKeyRequestID holds the request's id for the logs.
const ctxKeyRequestID = "fsplane.request_id"

// requestID gives every request an id of fsplane's own, answered in
// X-Request-Id and written into every log line about the request, so that
// a client's report and the log meet. An id a client sends is not taken
// over: it would be a way to put arbitrary text into the log.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		id := hex.EncodeToString(b[:])
		c.Set(ctxKeyRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func requestIDOf(c echo.Context) string {
	id, _ := c.Get(ctxKeyRequestID).(string)
	return id
}

package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	secretReads  prometheus.Counter
}

// newMetrics registers with reg; nil keeps the metrics unregistered.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fsplane", Subsystem: "api", Name: "requests_total",
			Help: "Platform API requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "fsplane", Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Platform API request latency by method and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		authFailures: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fsplane", Subsystem: "api", Name: "auth_failures_total",
			Help: "Refused requests by reason: missing, malformed, unknown token, or scope.",
		}, []string{"reason"}),
		secretReads: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fsplane", Subsystem: "api", Name: "secret_reads_total",
			Help: "Extension credentials handed out by GET /api/v1/sip/extensions/{id}/config.",
		}),
	}
}

// middleware counts every request with its final status: it runs the
// error handler itself so that the status is known.
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := recovered(next, c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := metricMethod(c.Request().Method)
		m.requests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// metricMethod is the method as a label: the standard ones, "other" for
// anything a client invents (a label per invented method would grow the
// series without bound).
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// recovered runs next and turns a panic into an error, so that it is
// answered 500 and logged by the error handler like any other failure.
func recovered(next echo.HandlerFunc, c echo.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			err = fmt.Errorf("api: panic in %s %s: %v", c.Request().Method, c.Path(), r)
		}
	}()
	return next(c)
}

package console

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	logins  *prometheus.CounterVec
	refused *prometheus.CounterVec
	streams prometheus.Gauge
}

// newMetrics registers with reg; nil keeps the metrics unregistered.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		logins: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fsplane", Subsystem: "console", Name: "logins_total",
			Help: "Console login attempts by result: ok, unknown (token), csrf, scope, unavailable, throttled (too many failures from the source).",
		}, []string{"result"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fsplane", Subsystem: "console", Name: "refused_total",
			Help: "Console requests refused by reason: session (none or expired), csrf, token (no longer valid), scope.",
		}, []string{"reason"}),
		streams: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "fsplane", Subsystem: "console", Name: "live_streams",
			Help: "Browsers listening for live updates; gateway states are polled while it is above zero.",
		}),
	}
}

package leader

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	leading   prometheus.Gauge
	elections *prometheus.CounterVec
}

// newMetrics registers with reg; nil gives working, unregistered metrics.
func newMetrics(reg prometheus.Registerer, task, replica string) *metrics {
	f := promauto.With(reg)
	const ns, sub = "fsplane", "leader"
	labels := prometheus.Labels{"task": task, "replica": replica}
	return &metrics{
		leading: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "leading",
			Help:        "1 while this replica leads the task (holds its lock and runs it), else 0.",
			ConstLabels: labels}),
		elections: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "elections_total",
			Help:        "Leadership changes of this replica, by event (acquired, lost, released).",
			ConstLabels: labels}, []string{"event"}),
	}
}

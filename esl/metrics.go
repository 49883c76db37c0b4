package esl

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	up           *prometheus.GaugeVec
	connects     *prometheus.CounterVec
	probes       *prometheus.CounterVec
	commands     *prometheus.CounterVec
	cmdSeconds   *prometheus.HistogramVec
	pending      *prometheus.GaugeVec
	applied      *prometheus.GaugeVec
	applyDelay   prometheus.Histogram
	deleteWaits  *prometheus.CounterVec
	refused      *prometheus.CounterVec
	notices      *prometheus.CounterVec
	events       *prometheus.CounterVec
	panics       prometheus.Counter
	healthChecks *prometheus.CounterVec
}

// newMetrics registers with reg; a nil reg gives working, unregistered
// metrics (promauto.With(nil)).
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	const ns, sub = "fsplane", "esl"
	return &metrics{
		up: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "node_up",
			Help: "1 while the node's event socket is connected and authenticated."}, []string{"node"}),
		connects: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connects_total",
			Help: "Connection attempts by result (ok, refused, timeout, auth, rejected, error)."}, []string{"node", "result"}),
		probes: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "probes_total",
			Help: "TCP connect probes of a node that was not accepting connections, by result (open, closed)."}, []string{"node", "result"}),
		commands: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commands_total",
			Help: "Commands sent, by result: ok, failed (FreeSWITCH said no) or error (no answer)."}, []string{"node", "command", "result"}),
		cmdSeconds: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "command_seconds",
			Help: "Time from writing a command to its reply.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"command"}),
		pending: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "pending_commands",
			Help: "Commands owed to the node and not yet confirmed."}, []string{"node"}),
		applied: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "applied_change_id",
			Help: "The change event up to which everything reached the node (its cursor)."}, []string{"node"}),
		applyDelay: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "apply_delay_seconds",
			Help: "Time from a change's commit to the first command sent for it.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}),
		deleteWaits: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "gateway_delete_waits_total",
			Help: "Waits for sofia::gateway_delete before a rescan, by outcome (event, timeout)."}, []string{"node", "outcome"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "refused_values_total",
			Help: "Names that could not be put on a command line and were dropped."}, []string{"node"}),
		notices: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "operator_actions_needed_total",
			Help: "Changes fsplane will not apply by itself (a profile restart while restarts are not allowed, …)."}, []string{"node"}),
		events: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "FreeSWITCH events received, by subclass."}, []string{"node", "subclass"}),
		panics: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "panics_recovered_total",
			Help: "Panics recovered in a node's loop or connection reader."}),
		healthChecks: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "health_checks_total",
			Help: "Periodic `api status` checks, by result (ok, failed)."}, []string{"node", "result"}),
	}
}

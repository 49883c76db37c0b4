package xmlcurl

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Answer kinds, the "kind" label.
const (
	kindSofia    = "sofia"
	kindACL      = "acl"
	kindGateways = "gateways"
	kindUser     = "user"
	kindOther    = "other" // not fsplane's: answered not-found without the database
	kindDenied   = "denied"
)

// How an answer was produced, the "result" label.
const (
	resultHit      = "hit"      // from the cache
	resultMiss     = "miss"     // rendered from the database
	resultStale    = "stale"    // database failed: the last good render
	resultError    = "error"    // database failed and nothing to fall back on
	resultNotFound = "notfound" // not fsplane's business
	resultDenied   = "denied"   // authentication or source network refused
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	skipped  *prometheus.CounterVec
	degraded prometheus.Gauge

	// The children of the hot path, resolved once: WithLabelValues hashes
	// and locks on every call. Read-only after newMetrics.
	counters  map[[2]string]prometheus.Counter
	observers map[string]prometheus.Observer
}

var (
	allKinds   = []string{kindSofia, kindACL, kindGateways, kindUser, kindOther, kindDenied}
	allResults = []string{resultHit, resultMiss, resultStale, resultError, resultNotFound, resultDenied}
)

// observe counts one answer and its duration.
func (m *metrics) observe(kind, result string, d time.Duration) {
	c, ok := m.counters[[2]string{kind, result}]
	if !ok {
		c = m.requests.WithLabelValues(kind, result)
	}
	c.Inc()
	o, ok := m.observers[kind]
	if !ok {
		o = m.duration.WithLabelValues(kind)
	}
	o.Observe(d.Seconds())
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg) // a nil Registerer makes unregistered collectors
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fsplane", Subsystem: "xmlcurl", Name: "requests_total",
			Help: "mod_xml_curl requests by answer kind and how the answer was produced.",
		}, []string{"kind", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "fsplane", Subsystem: "xmlcurl", Name: "request_duration_seconds",
			Help:    "Time to answer a mod_xml_curl request.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5, 1, 2.5},
		}, []string{"kind"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fsplane", Subsystem: "xmlcurl", Name: "skipped_total",
			Help: "Rows left out of an answer because they cannot be rendered faithfully (undecryptable password, invalid value).",
		}, []string{"kind"}),
		degraded: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "fsplane", Subsystem: "xmlcurl", Name: "degraded",
			Help: "1 while the database is unreachable and answers come from the last good renders.",
		}),
		counters:  map[[2]string]prometheus.Counter{},
		observers: map[string]prometheus.Observer{},
	}
	for _, k := range allKinds {
		m.observers[k] = m.duration.WithLabelValues(k)
		for _, r := range allResults {
			m.counters[[2]string{k, r}] = m.requests.WithLabelValues(k, r)
		}
	}
	return m
}

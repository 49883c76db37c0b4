package xmlcurl

import (
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
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg) // a nil Registerer makes unregistered collectors
	return &metrics{
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
	}
}

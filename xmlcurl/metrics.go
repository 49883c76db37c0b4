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
	// unrenderable counts the rows known not to render, by kind.
	unrenderable *prometheus.GaugeVec

	// The children of the hot path, resolved once: WithLabelValues hashes
	// and locks on every call. Indexed like allKinds and allResults;
	// read-only after newMetrics.
	counters  [len(allKinds)][len(allResults)]prometheus.Counter
	observers [len(allKinds)]prometheus.Observer
}

var (
	allKinds   = [...]string{kindSofia, kindACL, kindGateways, kindUser, kindOther, kindDenied}
	allResults = [...]string{resultHit, resultMiss, resultStale, resultError, resultNotFound, resultDenied}
)

// index returns the position of v in names, or -1.
func index(names []string, v string) int {
	for i, n := range names {
		if n == v {
			return i
		}
	}
	return -1
}

// observe counts one answer and its duration.
func (m *metrics) observe(kind, result string, d time.Duration) {
	k, r := index(allKinds[:], kind), index(allResults[:], result)
	if k < 0 || r < 0 {
		m.requests.WithLabelValues(kind, result).Inc()
		m.duration.WithLabelValues(kind).Observe(d.Seconds())
		return
	}
	m.counters[k][r].Inc()
	m.observers[k].Observe(d.Seconds())
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
		unrenderable: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "fsplane", Subsystem: "xmlcurl", Name: "unrenderable_rows",
			Help: "Stored rows (trunk, extension, profile) that cannot be rendered exactly and so are not, or only partly, in FreeSWITCH.",
		}, []string{"kind"}),
		degraded: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "fsplane", Subsystem: "xmlcurl", Name: "degraded",
			Help: "1 while the database is unreachable and answers come from the last good renders.",
		}),
	}
	for i, k := range allKinds {
		m.observers[i] = m.duration.WithLabelValues(k)
		for j, r := range allResults {
			m.counters[i][j] = m.requests.WithLabelValues(k, r)
		}
	}
	return m
}

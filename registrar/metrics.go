package registrar

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	devices     prometheus.GaugeFunc
	responses   *prometheus.CounterVec
	writeErrors prometheus.Counter
	// refreshes counts reads of bindings other replicas announced.
	refreshes prometheus.Counter
	auths     *prometheus.CounterVec
	// streamRefused counts TCP/TLS connections closed at accept for the
	// connection limits.
	streamRefused prometheus.Counter
	// udpDropped counts datagrams the fast path left for sipgo that were
	// dropped: its queue was full, or they were larger than its buffer.
	udpDropped prometheus.Counter

	// The counters by label, looked up once: WithLabelValues hashes its
	// labels (and strconv.Itoa allocates the code) on every call, twice
	// per registration. The label values are bounded (methodLabel, status
	// codes, two algorithms, three results).
	mu       sync.RWMutex
	byCode   map[responseLabels]prometheus.Counter
	byResult map[[2]string]prometheus.Counter
}

type responseLabels struct {
	method string
	code   int
}

// response counts a final response to a method (methodLabel).
func (m *metrics) response(method string, code int) {
	k := responseLabels{method, code}
	m.mu.RLock()
	c := m.byCode[k]
	m.mu.RUnlock()
	if c == nil {
		c = m.responses.WithLabelValues(method, strconv.Itoa(code))
		m.mu.Lock()
		m.byCode[k] = c
		m.mu.Unlock()
	}
	c.Inc()
}

// auth counts a digest check by algorithm and result.
func (m *metrics) auth(alg, result string) {
	k := [2]string{alg, result}
	m.mu.RLock()
	c := m.byResult[k]
	m.mu.RUnlock()
	if c == nil {
		c = m.auths.WithLabelValues(alg, result)
		m.mu.Lock()
		m.byResult[k] = c
		m.mu.Unlock()
	}
	c.Inc()
}

// newMetrics registers the registrar's metrics with reg (nil: unregistered).
// devices reads the location service's current binding count.
func newMetrics(reg prometheus.Registerer, devices func() float64) *metrics {
	m := &metrics{
		byCode:   map[responseLabels]prometheus.Counter{},
		byResult: map[[2]string]prometheus.Counter{},
		devices: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fsplane_registrar_registered_devices",
			Help: "Contacts currently registered with the fsplane registrar (unexpired bindings).",
		}, devices),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsplane_registrar_responses_total",
			Help: "Final responses the registrar sent, by request method and status code.",
		}, []string{"method", "code"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsplane_registrar_location_write_errors_total",
			Help: "Failed batch writes of bindings to the database (retried with the next flush).",
		}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsplane_registrar_location_refreshes_total",
			Help: "Reads of bindings other replicas wrote and announced (PostgreSQL), merged into the in-memory index.",
		}),
		auths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsplane_registrar_digest_checks_total",
			Help: "Digest credentials checked, by algorithm (MD5, SHA-256) and result (ok, rejected, replayed).",
		}, []string{"algorithm", "result"}),
		streamRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsplane_registrar_stream_connections_refused_total",
			Help: "TCP and TLS connections closed at accept: over the total or the per-source limit.",
		}),
		udpDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsplane_registrar_udp_dropped_total",
			Help: "UDP datagrams other than REGISTER dropped before parsing: the queue to the SIP stack was full (a flood; senders retransmit), or a datagram was larger than its buffer.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.devices, m.responses, m.writeErrors, m.refreshes, m.auths, m.streamRefused, m.udpDropped)
	}
	return m
}

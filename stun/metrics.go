package stun

import "github.com/prometheus/client_golang/prometheus"

// metrics holds every counter resolved once, per socket, so the hot path
// increments without a label lookup.
type metrics struct {
	requests  [numSockets][2]prometheus.Counter // [socket][kind: rfc5389, rfc3489]
	responses [numSockets][2]prometheus.Counter // [socket][class: success, error]
	drops     [numSockets][len(dropReasons)]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "fsplane", Subsystem: "stun", Name: "requests_total",
		Help: "Binding requests received, by socket and kind (rfc5389: with the magic cookie; rfc3489: without).",
	}, []string{"socket", "transport", "kind"})
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "fsplane", Subsystem: "stun", Name: "responses_total",
		Help: "Responses sent, by the socket they left from and class (success, error).",
	}, []string{"socket", "transport", "class"})
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "fsplane", Subsystem: "stun", Name: "dropped_total",
		Help: "Packets dropped without a reply, by receiving socket and reason (malformed, not_request, method, rate_limited, send_error).",
	}, []string{"socket", "transport", "reason"})
	if reg != nil {
		reg.MustRegister(requests, responses, drops)
	}
	m := &metrics{}
	for s := range numSockets {
		name, tr := socketNames[s], socketTransports[s]
		m.requests[s][0] = requests.WithLabelValues(name, tr, "rfc5389")
		m.requests[s][1] = requests.WithLabelValues(name, tr, "rfc3489")
		m.responses[s][0] = responses.WithLabelValues(name, tr, "success")
		m.responses[s][1] = responses.WithLabelValues(name, tr, "error")
		for r, reason := range dropReasons {
			m.drops[s][r] = drops.WithLabelValues(name, tr, reason)
		}
	}
	return m
}

// count records what handle decided for one packet received on socket
// sock; a reply is counted on the socket it leaves from.
func (m *metrics) count(sock int, v verdict) {
	switch v.out {
	case answeredSuccess, answeredError:
		kind := 0
		if v.classic {
			kind = 1
		}
		m.requests[sock][kind].Inc()
		from := v.from
		if sock == sockTCP {
			from = sockTCP
		}
		class := 0
		if v.out == answeredError {
			class = 1
		}
		m.responses[from][class].Inc()
	default:
		m.drops[sock][v.out].Inc()
	}
}

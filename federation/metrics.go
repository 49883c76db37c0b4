package federation

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	expiry   prometheus.Gauge
	renewals *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsplane_federation_certificate_expiry_timestamp_seconds",
			Help: "When the federation certificate in place expires (Unix time); 0 when none is in place.",
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsplane_federation_certificate_renewals_total",
			Help: "Replaced certificate files seen, by result: installed or refused.",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.expiry, m.renewals)
	}
	return m
}

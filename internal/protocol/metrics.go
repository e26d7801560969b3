package protocol

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts requests per api key. A nil *metrics records nothing.
type metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	sasl     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnel", Subsystem: "kafka", Name: "requests_total",
			Help: "Kafka requests received, by api key.",
		}, []string{"api_key"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnel", Subsystem: "kafka", Name: "request_errors_total",
			Help: "Kafka requests that failed to decode or closed the connection, by api key.",
		}, []string{"api_key"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "runnel", Subsystem: "kafka", Name: "request_duration_seconds",
			Help:    "Time from decoding a Kafka request to its response being ready, by api key.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api_key"}),
		sasl: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnel", Subsystem: "kafka", Name: "sasl_authentications_total",
			Help: "SASL authentications (re-authentications included), by mechanism and result (success, failure).",
		}, []string{"mechanism", "result"}),
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.sasl)
	return m
}

func (m *metrics) observe(key int16, start time.Time, failed bool) {
	if m == nil {
		return
	}
	k := strconv.Itoa(int(key))
	m.requests.WithLabelValues(k).Inc()
	if failed {
		m.errors.WithLabelValues(k).Inc()
	}
	m.latency.WithLabelValues(k).Observe(time.Since(start).Seconds())
}

func (m *metrics) saslResult(mechanism string, ok bool) {
	if m == nil {
		return
	}
	result := "failure"
	if ok {
		result = "success"
	}
	m.sasl.WithLabelValues(mechanism, result).Inc()
}

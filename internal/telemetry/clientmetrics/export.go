package clientmetrics

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxSeriesPerInstance bounds the metric names kept for one client.
const maxSeriesPerInstance = 1000

// seriesKey names one re-exported series of an instance.
type seriesKey struct {
	name string
	kind sampleKind
}

// point is a series' latest value.
type point struct{ value float64 }

// record applies a push's samples to in, within the per-instance and
// total series caps. Callers hold mu.
func (m *Manager) record(in *instance, samples []sample) {
	for _, s := range samples {
		k := seriesKey{s.name, s.kind}
		pt, ok := in.series[k]
		if !ok {
			if len(in.series) >= maxSeriesPerInstance || m.nseries >= m.opts.MaxSeries {
				m.stats.droppedSeries++
				continue
			}
			pt = &point{}
			in.series[k] = pt
			m.nseries++
		}
		if s.delta {
			pt.value += s.value
		} else {
			pt.value = s.value
		}
	}
}

// stats are the Manager's own counters.
type stats struct {
	dropped       uint64            // instances refused
	droppedSeries uint64            // series refused
	pushes        map[string]uint64 // by result
}

func (s *stats) count(err error) {
	if s.pushes == nil {
		s.pushes = map[string]uint64{}
	}
	s.pushes[resultOf(err)]++
}

func resultOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrThrottled):
		return "throttled"
	case errors.Is(err, ErrUnknownSubscription):
		return "unknown_subscription"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrInvalidRecord):
		return "invalid_record"
	case errors.Is(err, ErrUnsupportedCompression):
		return "unsupported_compression"
	}
	return "invalid_request"
}

var (
	clientLabels  = []string{"client_instance_id", "client_id", "client_software_name", "client_software_version", "principal"}
	descInstances = prometheus.NewDesc("runnel_client_metrics_instances",
		"Client instances tracked for KIP-714 client metrics.", nil, nil)
	descDropped = prometheus.NewDesc("runnel_client_metrics_dropped_instances_total",
		"Client instances refused because the instance table was full.", nil, nil)
	descDroppedSeries = prometheus.NewDesc("runnel_client_metrics_dropped_series_total",
		"Pushed metrics not re-exported because a series cap was reached.", nil, nil)
	descPushes = prometheus.NewDesc("runnel_client_metrics_pushes_total",
		"PushTelemetry requests by result.", []string{"result"}, nil)
)

// PromName is the Prometheus name of a re-exported OTLP metric.
func PromName(otlp string, counter bool) string {
	var b strings.Builder
	b.WriteString("runnel_client_")
	for _, r := range otlp {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if counter && !strings.HasSuffix(name, "_total") {
		name += "_total"
	}
	return name
}

// Describe sends nothing: the re-exported series are only known when
// collected (an unchecked collector).
func (m *Manager) Describe(chan<- *prometheus.Desc) {}

// Collect exports the latest value of every live series. Series of a client
// that has not pushed for 2 × its interval + EvictSlack are dropped first.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(len(m.inst)))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(m.stats.dropped))
	ch <- prometheus.MustNewConstMetric(descDroppedSeries, prometheus.CounterValue, float64(m.stats.droppedSeries))
	for r, n := range m.stats.pushes {
		ch <- prometheus.MustNewConstMetric(descPushes, prometheus.CounterValue, float64(n), r)
	}
	kinds := map[string]sampleKind{} // one type per name, or the scrape fails
	descs := map[string]*prometheus.Desc{}
	for id, in := range m.inst {
		if len(in.series) > 0 && now.Sub(in.lastPush) > m.evictAfter(in.plan.interval) {
			m.nseries -= len(in.series)
			clear(in.series)
		}
		labels := []string{uuidString(id), in.meta.ClientID, in.meta.SoftwareName, in.meta.SoftwareVersion, in.meta.Principal}
		emitted := map[string]bool{}
		for k, pt := range in.series {
			name := PromName(k.name, k.kind == kindCounter)
			if kd, ok := kinds[name]; ok && kd != k.kind || emitted[name] {
				continue
			}
			kinds[name], emitted[name] = k.kind, true
			d, ok := descs[name]
			if !ok {
				d = prometheus.NewDesc(name, "KIP-714 client metric "+name+".", clientLabels, nil)
				descs[name] = d
			}
			vt := prometheus.GaugeValue
			if k.kind == kindCounter {
				vt = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(d, vt, pt.value, labels...)
		}
	}
}

// evictAfter is how long a series outlives its client's last push.
func (m *Manager) evictAfter(interval time.Duration) time.Duration {
	return 2*interval + m.opts.EvictSlack
}

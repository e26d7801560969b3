package share

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors, labelled by group only
// (plus the acknowledgement type or archive reason, both bounded).
type metrics struct {
	acquired     *prometheus.CounterVec
	acknowledged *prometheus.CounterVec
	redelivered  *prometheus.CounterVec
	lockTimeouts *prometheus.CounterVec
	archived     *prometheus.CounterVec
}

var ackTypeLabels = [AckRenew + 1]string{"gap", "accept", "release", "reject", "renew"}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		acquired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_share_records_acquired_total",
			Help: "Records acquired by share consumers (each delivery counts)."}, []string{"group"}),
		acknowledged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_share_records_acknowledged_total",
			Help: "Records acknowledged by share consumers, by acknowledgement type."}, []string{"group", "type"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_share_records_redelivered_total",
			Help: "Records acquired again after a release or a lock timeout."}, []string{"group"}),
		lockTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_share_lock_timeouts_total",
			Help: "Acquired records whose acquisition lock timed out."}, []string{"group"}),
		archived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_share_records_archived_total",
			Help: "Records archived without being accepted, by reason (rejected, delivery_limit, gap, not_delivered)."}, []string{"group", "reason"}),
	}
	if reg != nil {
		m.acquired = register(reg, m.acquired)
		m.acknowledged = register(reg, m.acknowledged)
		m.redelivered = register(reg, m.redelivered)
		m.lockTimeouts = register(reg, m.lockTimeouts)
		m.archived = register(reg, m.archived)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (two engines on one registry, in tests, share the series).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if old, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}

// record adds what one persisted change did.
func (m *metrics) record(group string, st Stats) {
	if st.Acquired > 0 {
		m.acquired.WithLabelValues(group).Add(float64(st.Acquired))
	}
	if st.Redelivered > 0 {
		m.redelivered.WithLabelValues(group).Add(float64(st.Redelivered))
	}
	if st.Timeouts > 0 {
		m.lockTimeouts.WithLabelValues(group).Add(float64(st.Timeouts))
	}
	for t, n := range st.Acked {
		if n > 0 {
			m.acknowledged.WithLabelValues(group, ackTypeLabels[t]).Add(float64(n))
		}
	}
	for r, n := range st.Archived {
		if n > 0 {
			m.archived.WithLabelValues(group, archReasonNames[r]).Add(float64(n))
		}
	}
}

package stream

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors.
type metrics struct {
	reg          prometheus.Registerer
	all          []prometheus.Collector
	replayed     prometheus.Counter
	applied      prometheus.Counter
	appliedRev   prometheus.Gauge
	flushSeconds prometheus.Histogram
	flushBytes   prometheus.Counter
	putSeconds   prometheus.Histogram
	ackSeconds   prometheus.Histogram
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	archived     prometheus.Counter
	checkpoints  prometheus.Counter
	collected    prometheus.Counter
	unarchived   prometheus.Gauge
	// limitHits counts requests refused by a memory cap (DESIGN §5a rule
	// 10), by limit; producerIDs and unarchivedMax show how near they are.
	limitHits     *prometheus.CounterVec
	producerIDs   prometheus.Gauge
	unarchivedMax prometheus.Gauge
	// archiveFailures counts partitions whose archival failed in a pass.
	archiveFailures prometheus.Counter
	// digestChecks and digestMismatches count checkpoint digests compared
	// with this broker's own state, and those that differed.
	digestChecks     prometheus.Counter
	digestMismatches prometheus.Counter
	// checkpointMs is the log clock (ms) of the newest checkpoint this
	// broker knows: the clock at its digest entry, or of the checkpoint
	// loaded at start; 0 before any. unarchivedAge is the age of the
	// oldest intake extent not yet archived, on the log clock.
	checkpointMs  atomic.Int64
	checkpointAge prometheus.GaugeFunc
	unarchivedAge prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg:        reg,
		replayed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_log_entries_replayed_total", Help: "Log entries replayed at start-up (after the checkpoint loaded)."}),
		applied:    prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_log_entries_applied_total", Help: "Log entries applied by the sequencer since start, start-up replay included."}),
		appliedRev: prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_log_applied_revision", Help: "etcd revision up to which this broker has replayed the log."}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "runnel_intake_flush_seconds", Help: "Time to write one intake object to the object store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "runnel_intake_put_seconds", Help: "Time to append one group of intake entries to the log in etcd.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "runnel_produce_sequenced_seconds", Help: "Time from a batch entering the intake buffer to its sequencing.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		flushBytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_intake_bytes_total", Help: "Bytes written to intake objects."}),
		cacheHits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_read_cache_hits_total", Help: "Extent reads served from memory."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_read_cache_misses_total", Help: "Extent reads served by the object store."}),
		archived:    prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_archived_bytes_total", Help: "Bytes rewritten from intake objects into segments."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_checkpoints_total", Help: "Checkpoints of sequencer state written by this broker."}),
		collected:   prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_objects_collected_total", Help: "Objects deleted from the store by garbage collection."}),
		unarchived:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_unarchived_bytes", Help: "Bytes still in intake objects (archival lag)."}),
		unarchivedAge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_unarchived_oldest_age_seconds",
			Help: "Age of the oldest record data still in intake objects, on the log clock (archival lag in time; 0 when all is archived)."}),
		limitHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_limit_rejections_total",
			Help: "Requests refused because a cap was reached (limit: producer_ids, unarchived_extents, unarchived_bytes)."}, []string{"limit"}),
		producerIDs:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_producer_ids", Help: "Producer ids the sequencer holds (capped)."}),
		unarchivedMax: prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_unarchived_extents_max", Help: "Unarchived extents of the partition with the most (produce to a partition at the cap is refused)."}),
		archiveFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_archive_failures_total",
			Help: "Partitions whose archival failed in a pass (the pass goes on with the others)."}),
		digestChecks: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_state_digest_checks_total",
			Help: "Checkpoint state digests compared with this broker's own state at the same revision."}),
		digestMismatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_state_digest_mismatch_total",
			Help: "Checkpoint state digests that differed from this broker's own state: its state diverged (alarm)."}),
	}
	m.checkpointAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "runnel_checkpoint_age_seconds",
		Help: "Time since the newest checkpoint of sequencer state this broker knows was taken (0 before any)."},
		func() float64 {
			ms := m.checkpointMs.Load()
			if ms == 0 {
				return 0
			}
			return max(time.Since(time.UnixMilli(ms)).Seconds(), 0)
		})
	m.all = []prometheus.Collector{m.checkpointAge, m.unarchivedAge, m.replayed, m.applied, m.appliedRev, m.flushSeconds, m.putSeconds, m.ackSeconds, m.flushBytes, m.cacheHits, m.cacheMisses, m.archived, m.checkpoints, m.collected, m.unarchived,
		m.archiveFailures, m.digestChecks, m.digestMismatches, m.limitHits, m.producerIDs, m.unarchivedMax}
	if reg != nil {
		for _, c := range m.all {
			_ = reg.Register(c)
		}
	}
	return m
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
}

package tableflow

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tableMetrics are Tableflow's metrics, labelled by table
// ("<namespace>.<name>"); a nil *tableMetrics records nothing.
type tableMetrics struct {
	lagRecords *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	commitSecs prometheus.Histogram
	commits    *prometheus.CounterVec
	errs       *prometheus.CounterVec
	records    *prometheus.CounterVec
	files      *prometheus.GaugeVec
	bytes      *prometheus.GaugeVec
}

// Reasons of runnel_table_errors_total (a fixed set): skipped,
// dead_lettered, suspended (records that could not be converted),
// commit_conflict (a commit lost to another writer), commit (a commit
// with an unknown outcome), dlq (writing dead letters failed), schema (a
// schema change the table cannot take), records_lost (retention deleted
// records before they were materialised), maintenance (a maintenance run
// failed).
func newTableMetrics(reg prometheus.Registerer) *tableMetrics {
	if reg == nil {
		return nil
	}
	m := &tableMetrics{
		lagRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runnel_table_lag_records",
			Help: "Records of the topic not yet in its table."}, []string{"table"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runnel_table_lag_seconds",
			Help: "Seconds since the table last held every committed record of its topic (0 when it does)."}, []string{"table"}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "runnel_table_commit_seconds",
			Help: "Time to write and commit one snapshot.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_table_commits_total",
			Help: "Snapshots committed by the materialiser."}, []string{"table"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_table_errors_total",
			Help: "Materialiser errors by reason."}, []string{"table", "reason"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_table_records_total",
			Help: "Records committed to tables as rows."}, []string{"table"}),
		files: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runnel_table_files",
			Help: "Data files of the table's current snapshot."}, []string{"table"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runnel_table_bytes",
			Help: "Bytes of the table's current snapshot's files."}, []string{"table"}),
	}
	reg.MustRegister(m.lagRecords, m.lagSeconds, m.commitSecs, m.commits, m.errs, m.records, m.files, m.bytes)
	return m
}

func (m *tableMetrics) lag(table string, records int64, secs float64) {
	if m == nil {
		return
	}
	m.lagRecords.WithLabelValues(table).Set(float64(records))
	m.lagSeconds.WithLabelValues(table).Set(secs)
}

func (m *tableMetrics) committed(table string, took time.Duration, rows int) {
	if m == nil {
		return
	}
	m.commitSecs.Observe(took.Seconds())
	m.commits.WithLabelValues(table).Inc()
	m.records.WithLabelValues(table).Add(float64(rows))
}

func (m *tableMetrics) errors(table, reason string) {
	if m == nil {
		return
	}
	m.errs.WithLabelValues(table, reason).Inc()
}

func (m *tableMetrics) size(table string, files, bytes int64) {
	if m == nil {
		return
	}
	m.files.WithLabelValues(table).Set(float64(files))
	m.bytes.WithLabelValues(table).Set(float64(bytes))
}

// forget drops a table's series (its materialiser stopped here).
func (m *tableMetrics) forget(table string) {
	if m == nil {
		return
	}
	m.lagRecords.DeleteLabelValues(table)
	m.lagSeconds.DeleteLabelValues(table)
	m.commits.DeleteLabelValues(table)
	m.records.DeleteLabelValues(table)
	m.files.DeleteLabelValues(table)
	m.bytes.DeleteLabelValues(table)
	m.errs.DeletePartialMatch(prometheus.Labels{"table": table})
}

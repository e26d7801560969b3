package lag

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics, per group and topic (labels group, topic):
//
//	runnel_group_lag_offsets{agg="max"|"sum"}         lag against the high watermark
//	runnel_group_stable_lag_offsets{agg="max"|"sum"}  lag against the last stable offset (read_committed)
//	runnel_group_lag_seconds                          largest age of a partition's first unconsumed record
//	runnel_group_commit_age_seconds                   largest time since a partition's offset was committed
//	runnel_group_consume_rate_offsets_per_second      committed offsets advance, summed over partitions
//	runnel_group_catch_up_seconds                     largest lag / (consume rate − produce rate); +Inf when a partition is not catching up
//	runnel_group_status                               worst partition status: 0 OK, 1 WARN, 2 REWIND, 3 STALLED, 4 STOPPED
//
// and with Options.Partitions, per partition (labels group, topic,
// partition): runnel_group_partition_lag_offsets,
// runnel_group_partition_stable_lag_offsets,
// runnel_group_partition_lag_seconds,
// runnel_group_partition_commit_age_seconds and
// runnel_group_partition_status.
var (
	topicLabels = []string{"group", "topic"}
	aggLabels   = []string{"group", "topic", "agg"}
	partLabels  = []string{"group", "topic", "partition"}

	descLag        = prometheus.NewDesc("runnel_group_lag_offsets", "Consumer group lag in offsets against the high watermark, max or sum over the topic's partitions (agg).", aggLabels, nil)
	descStableLag  = prometheus.NewDesc("runnel_group_stable_lag_offsets", "Consumer group lag in offsets against the last stable offset (what a read_committed consumer can still read), max or sum over the topic's partitions (agg).", aggLabels, nil)
	descLagSeconds = prometheus.NewDesc("runnel_group_lag_seconds", "Largest age over the topic's partitions of the first record the group has not consumed (0 when caught up), from the partition index's batch timestamps.", topicLabels, nil)
	descCommitAge  = prometheus.NewDesc("runnel_group_commit_age_seconds", "Largest time over the topic's partitions since the group last committed the partition's offset.", topicLabels, nil)
	descRate       = prometheus.NewDesc("runnel_group_consume_rate_offsets_per_second", "Rate at which the group's committed offsets advance over the evaluation window, summed over the topic's partitions.", topicLabels, nil)
	descCatchUp    = prometheus.NewDesc("runnel_group_catch_up_seconds", "Largest estimated time over the topic's partitions for the group to catch up at the current consume and produce rates; +Inf when a lagging partition is not catching up.", topicLabels, nil)
	descStatus     = prometheus.NewDesc("runnel_group_status", "Worst status over the topic's partitions after Burrow's rules: 0 OK, 1 WARN, 2 REWIND, 3 STALLED, 4 STOPPED.", topicLabels, nil)

	descPartLag        = prometheus.NewDesc("runnel_group_partition_lag_offsets", "Consumer group lag in offsets against the high watermark, per partition.", partLabels, nil)
	descPartStableLag  = prometheus.NewDesc("runnel_group_partition_stable_lag_offsets", "Consumer group lag in offsets against the last stable offset, per partition.", partLabels, nil)
	descPartLagSeconds = prometheus.NewDesc("runnel_group_partition_lag_seconds", "Age of the first record the group has not consumed, per partition.", partLabels, nil)
	descPartCommitAge  = prometheus.NewDesc("runnel_group_partition_commit_age_seconds", "Time since the group last committed the partition's offset.", partLabels, nil)
	descPartStatus     = prometheus.NewDesc("runnel_group_partition_status", "Partition status after Burrow's rules: 0 OK, 1 WARN, 2 REWIND, 3 STALLED, 4 STOPPED.", partLabels, nil)
)

// TopicFigures is one group's figures for one topic, aggregated over its
// partitions as the default metrics export them.
type TopicFigures struct {
	Group, Topic               string
	MaxLag, SumLag             int64
	MaxStableLag, SumStableLag int64
	LagSeconds                 float64
	HasLagSeconds              bool
	CommitAge                  float64
	ConsumeRate                float64
	CatchUp                    float64 // NaN when unknown
	Status                     Status
}

// ByTopic aggregates rows (sorted by group, topic, partition, as Evaluate
// returns them) per group and topic.
func ByTopic(rows []Row) []TopicFigures {
	var out []TopicFigures
	for i := 0; i < len(rows); {
		f := TopicFigures{Group: rows[i].Group, Topic: rows[i].Topic, CatchUp: math.NaN()}
		j := i
		for ; j < len(rows) && rows[j].Group == f.Group && rows[j].Topic == f.Topic; j++ {
			r := rows[j]
			f.MaxLag, f.SumLag = max(f.MaxLag, r.Lag), f.SumLag+r.Lag
			f.MaxStableLag, f.SumStableLag = max(f.MaxStableLag, r.StableLag), f.SumStableLag+r.StableLag
			if r.HasLagSeconds {
				f.LagSeconds, f.HasLagSeconds = max(f.LagSeconds, r.LagSeconds), true
			}
			f.CommitAge = max(f.CommitAge, r.CommitAge)
			f.ConsumeRate += r.ConsumeRate
			if !math.IsNaN(r.CatchUp) && (math.IsNaN(f.CatchUp) || r.CatchUp > f.CatchUp) {
				f.CatchUp = r.CatchUp
			}
			f.Status = max(f.Status, r.Status)
		}
		out = append(out, f)
		i = j
	}
	return out
}

// collector exports the last evaluation; series of groups and partitions
// that are gone disappear with it.
type collector struct{ t *Tracker }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descStableLag, descLagSeconds, descCommitAge, descRate, descCatchUp, descStatus} {
		ch <- d
	}
	if c.t.opts.Partitions {
		for _, d := range []*prometheus.Desc{descPartLag, descPartStableLag, descPartLagSeconds, descPartCommitAge, descPartStatus} {
			ch <- d
		}
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	rows := c.t.Rows()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, f := range ByTopic(rows) {
		gauge(descLag, float64(f.MaxLag), f.Group, f.Topic, "max")
		gauge(descLag, float64(f.SumLag), f.Group, f.Topic, "sum")
		gauge(descStableLag, float64(f.MaxStableLag), f.Group, f.Topic, "max")
		gauge(descStableLag, float64(f.SumStableLag), f.Group, f.Topic, "sum")
		if f.HasLagSeconds {
			gauge(descLagSeconds, f.LagSeconds, f.Group, f.Topic)
		}
		gauge(descCommitAge, f.CommitAge, f.Group, f.Topic)
		gauge(descRate, f.ConsumeRate, f.Group, f.Topic)
		if !math.IsNaN(f.CatchUp) {
			gauge(descCatchUp, f.CatchUp, f.Group, f.Topic)
		}
		gauge(descStatus, float64(f.Status), f.Group, f.Topic)
	}
	if !c.t.opts.Partitions {
		return
	}
	for _, r := range rows {
		p := strconv.Itoa(int(r.Partition))
		gauge(descPartLag, float64(r.Lag), r.Group, r.Topic, p)
		gauge(descPartStableLag, float64(r.StableLag), r.Group, r.Topic, p)
		if r.HasLagSeconds {
			gauge(descPartLagSeconds, r.LagSeconds, r.Group, r.Topic, p)
		}
		gauge(descPartCommitAge, r.CommitAge, r.Group, r.Topic, p)
		gauge(descPartStatus, float64(r.Status), r.Group, r.Topic, p)
	}
}

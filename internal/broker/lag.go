package broker

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/internal/groups"
	"github.com/runnel-dev/runnel/internal/stream"
	"github.com/runnel-dev/runnel/internal/telemetry/lag"
)

// startLag evaluates consumer lag for the groups this broker coordinates
// until ctx ends. Only the coordinator exports a group's lag: every broker
// could compute it (offsets are in etcd, the index is replayed everywhere),
// but identical series from every broker would make sum() in PromQL count
// each group once per broker, and only the coordinator holds the group's
// offsets in memory with their commit times.
func (b *Broker) startLag(ctx context.Context) error {
	if err := b.cfg.Telemetry.Validate(); err != nil {
		return err
	}
	if !b.cfg.Telemetry.MetricsOn() {
		return nil
	}
	b.lag = lag.New(lag.Options{
		Log:        lagLog{b.engine},
		Groups:     lagGroups{b.groups},
		Interval:   b.cfg.Telemetry.LagInterval,
		Partitions: b.cfg.Telemetry.LagPartitionMetrics,
	})
	if err := b.lag.Register(b.registry); err != nil {
		return err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.lag.Run(ctx)
	}()
	return nil
}

// metrics is the registry the broker's services register their metrics
// on, nil (they then keep none or keep them unexported) when
// telemetry.metrics is false.
func (b *Broker) metrics() prometheus.Registerer {
	if !b.cfg.Telemetry.MetricsOn() {
		return nil
	}
	return b.registry
}

// lagLog is the log as the lag tracker reads it.
type lagLog struct{ e *stream.Engine }

func (l lagLog) Ends(topic string, partition int32) (int64, int64, bool) {
	st, err := l.e.State(topic, partition)
	return st.HighWatermark, st.LastStableOffset, err == nil
}

func (l lagLog) TimeAt(topic string, partition int32, offset int64) (int64, bool) {
	t, ok := l.e.TimeAt(topic, partition, offset)
	return t.MaxTimestamp, ok
}

// lagGroups lists the committed offsets of the groups this broker
// coordinates.
type lagGroups struct{ c *groups.Coordinator }

func (g lagGroups) Committed() []lag.Group {
	owned := g.c.OwnedOffsets()
	out := make([]lag.Group, 0, len(owned))
	for _, o := range owned {
		lg := lag.Group{ID: o.Group, Offsets: make([]lag.Committed, 0, len(o.Offsets))}
		for _, c := range o.Offsets {
			lg.Offsets = append(lg.Offsets, lag.Committed{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset, CommitMs: c.CommitMs})
		}
		out = append(out, lg)
	}
	return out
}

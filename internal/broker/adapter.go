package broker

import (
	"context"

	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/stream"
)

// logAdapter presents the storage engine as the protocol layer's Log.
type logAdapter struct{ e *stream.Engine }

var _ protocol.Log = logAdapter{}

func topicInfo(t stream.TopicInfo) protocol.TopicInfo {
	return protocol.TopicInfo{Name: t.Name, ID: t.ID, Partitions: t.Partitions, Configs: t.Configs, Internal: t.Internal}
}

func (a logAdapter) Topics() []protocol.TopicInfo {
	ts := a.e.Topics()
	out := make([]protocol.TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = topicInfo(t)
	}
	return out
}

func (a logAdapter) Topic(name string) (protocol.TopicInfo, bool) {
	t, ok := a.e.Topic(name)
	return topicInfo(t), ok
}

func (a logAdapter) TopicByID(id protocol.TopicID) (protocol.TopicInfo, bool) {
	t, ok := a.e.TopicByID(id)
	return topicInfo(t), ok
}

func (a logAdapter) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (protocol.TopicInfo, error) {
	t, err := a.e.CreateTopic(ctx, name, partitions, configs, validateOnly)
	return topicInfo(t), err
}

func (a logAdapter) DeleteTopic(ctx context.Context, name string) error {
	return a.e.DeleteTopic(ctx, name)
}

func (a logAdapter) CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error {
	return a.e.CreatePartitions(ctx, name, count, validateOnly)
}

func (a logAdapter) AlterTopicConfigs(ctx context.Context, name string, changes []protocol.ConfigChange, replace, validateOnly bool) error {
	cs := make([]stream.ConfigChange, len(changes))
	for i, c := range changes {
		cs[i] = stream.ConfigChange{Name: c.Name, Value: c.Value}
	}
	return a.e.AlterTopicConfigs(ctx, name, cs, replace, validateOnly)
}

func (a logAdapter) Produce(ctx context.Context, batches []protocol.ProduceBatch) func() []protocol.ProduceResult {
	in := make([]stream.ProduceBatch, len(batches))
	for i, b := range batches {
		in[i] = stream.ProduceBatch{Topic: b.Topic, Partition: b.Partition, Records: b.Records}
	}
	pd := a.e.Enqueue(in)
	return func() []protocol.ProduceResult {
		rs := pd.Wait(ctx)
		out := make([]protocol.ProduceResult, len(rs))
		for i, r := range rs {
			out[i] = protocol.ProduceResult{BaseOffset: r.BaseOffset, LogAppendTime: r.LogAppendTime, LogStartOffset: r.LogStartOffset, Err: r.Err}
			if r.Err != nil {
				out[i].ErrMessage = r.Err.Error()
			}
			for _, re := range r.RecordErrors {
				out[i].RecordErrors = append(out[i].RecordErrors, protocol.RecordError{Index: re.Index, Message: re.Message})
			}
		}
		return out
	}
}

func (a logAdapter) Fetch(ctx context.Context, p protocol.FetchPartition) (protocol.FetchResult, error) {
	r, err := a.e.Fetch(ctx, stream.FetchPartition{TopicID: p.TopicID, Partition: p.Partition, Offset: p.Offset, MaxBytes: p.MaxBytes, ReadCommitted: p.ReadCommitted})
	out := protocol.FetchResult{HighWatermark: r.HighWatermark, LastStableOffset: r.LastStableOffset, LogStartOffset: r.LogStartOffset, Records: r.Records}
	for _, t := range r.Aborted {
		out.Aborted = append(out.Aborted, protocol.AbortedTxn{ProducerID: t.ProducerID, FirstOffset: t.FirstOffset})
	}
	return out, err
}

func (a logAdapter) Changed() <-chan struct{}           { return a.e.Changed() }
func (a logAdapter) SyncRead(ctx context.Context) error { return a.e.SyncRead(ctx) }

func (a logAdapter) State(topic string, partition int32) (protocol.PartitionState, error) {
	s, err := a.e.State(topic, partition)
	return protocol.PartitionState{LogStartOffset: s.LogStartOffset, HighWatermark: s.HighWatermark, LastStableOffset: s.LastStableOffset, LeaderEpoch: s.LeaderEpoch, SizeBytes: s.SizeBytes}, err
}

func (a logAdapter) OffsetForTimestamp(ctx context.Context, topic string, partition int32, ts int64) (int64, int64, error) {
	return a.e.OffsetForTimestamp(ctx, topic, partition, ts)
}

func (a logAdapter) DeleteRecords(ctx context.Context, topic string, partition int32, before int64) (int64, error) {
	return a.e.DeleteRecords(ctx, topic, partition, before)
}

func (a logAdapter) EndOffsetForEpoch(ctx context.Context, topic string, partition int32, epoch int32) (int32, int64, error) {
	return a.e.EndOffsetForEpoch(ctx, topic, partition, epoch)
}

func (a logAdapter) InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error) {
	return a.e.InitProducerID(ctx, producerID, epoch)
}

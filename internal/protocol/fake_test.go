package protocol

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// fakeLog is a small but real in-memory log: offsets are assigned, batches
// are stored with their base offsets rewritten, reads return whole batches.
type fakeLog struct {
	mu        sync.Mutex
	topics    map[string]*fakeTopic
	changed   chan struct{}
	syncReads int
	nextPID   int64
	// syncRead, when set, is what SyncRead does (a failing read barrier).
	syncRead func(context.Context) error
	// prefetches records the Prefetch calls.
	prefetches []prefetchCall
}

type prefetchCall struct {
	parts    []FetchPartition
	maxBytes int64
}

type fakeTopic struct {
	info  TopicInfo
	parts []*fakePart
}

type fakeBatch struct {
	base, last int64
	maxTS      int64
	data       []byte
}

type fakePart struct {
	batches  []fakeBatch
	logStart int64
	hwm      int64
	size     int64
}

func newFakeLog() *fakeLog {
	return &fakeLog{topics: make(map[string]*fakeTopic), changed: make(chan struct{}), nextPID: 1000}
}

// applied wakes Changed waiters; callers hold mu.
func (l *fakeLog) applied() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *fakeLog) Topics() []TopicInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []TopicInfo
	for _, t := range l.topics {
		out = append(out, t.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (l *fakeLog) Topic(name string) (TopicInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return TopicInfo{}, false
	}
	return t.info, true
}

func (l *fakeLog) TopicByID(id TopicID) (TopicInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.topics {
		if t.info.ID == id {
			return t.info, true
		}
	}
	return TopicInfo{}, false
}

func (l *fakeLog) CreateTopic(_ context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (TopicInfo, error) {
	if !validTopicName(name) {
		return TopicInfo{}, fmt.Errorf("%w: %q", stream.ErrInvalidTopic, name)
	}
	if partitions <= 0 {
		partitions = 1
	}
	if partitions > 10000 {
		return TopicInfo{}, stream.ErrInvalidPartitions
	}
	if err := config.ValidateTopicConfigs(configs); err != nil {
		return TopicInfo{}, fmt.Errorf("%w: %v", stream.ErrInvalidConfig, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.topics[name]; ok {
		return TopicInfo{}, stream.ErrTopicExists
	}
	info := TopicInfo{Name: name, Partitions: partitions, Configs: map[string]string{}}
	_, _ = rand.Read(info.ID[:])
	for k, v := range configs {
		info.Configs[k] = v
	}
	if validateOnly {
		return info, nil
	}
	t := &fakeTopic{info: info}
	for i := int32(0); i < partitions; i++ {
		t.parts = append(t.parts, &fakePart{})
	}
	l.topics[name] = t
	l.applied()
	return info, nil
}

func (l *fakeLog) DeleteTopic(_ context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.topics[name]; !ok {
		return stream.ErrUnknownTopicOrPartition
	}
	delete(l.topics, name)
	l.applied()
	return nil
}

func (l *fakeLog) CreatePartitions(_ context.Context, name string, count int32, validateOnly bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return stream.ErrUnknownTopicOrPartition
	}
	if count <= t.info.Partitions || count > 10000 {
		return fmt.Errorf("%w: %d <= %d", stream.ErrInvalidPartitions, count, t.info.Partitions)
	}
	if validateOnly {
		return nil
	}
	for int32(len(t.parts)) < count {
		t.parts = append(t.parts, &fakePart{})
	}
	t.info.Partitions = count
	l.applied()
	return nil
}

func (l *fakeLog) AlterTopicConfigs(_ context.Context, name string, changes []ConfigChange, replace, validateOnly bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return stream.ErrUnknownTopicOrPartition
	}
	next := map[string]string{}
	if !replace {
		for k, v := range t.info.Configs {
			next[k] = v
		}
	}
	for _, c := range changes {
		if c.Value == nil {
			delete(next, c.Name)
		} else {
			next[c.Name] = *c.Value
		}
	}
	if err := config.ValidateTopicConfigs(next); err != nil {
		return fmt.Errorf("%w: %v", stream.ErrInvalidConfig, err)
	}
	if !validateOnly {
		t.info.Configs = next
		l.applied()
	}
	return nil
}

func (l *fakeLog) part(topic string, p int32) (*fakePart, error) {
	t, ok := l.topics[topic]
	if !ok || p < 0 || int(p) >= len(t.parts) {
		return nil, stream.ErrUnknownTopicOrPartition
	}
	return t.parts[p], nil
}

func (l *fakeLog) Produce(_ context.Context, batches []ProduceBatch) func() []ProduceResult {
	out := l.produce(batches)
	return func() []ProduceResult { return out }
}

func (l *fakeLog) produce(batches []ProduceBatch) []ProduceResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ProduceResult, len(batches))
	for i, b := range batches {
		out[i] = ProduceResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
		p, err := l.part(b.Topic, b.Partition)
		if err != nil {
			out[i].Err = err
			continue
		}
		base := p.hwm
		rest := b.Records
		var parsed []fakeBatch
		for len(rest) > 0 {
			if len(rest) < 61 {
				err = stream.ErrCorruptMessage
				break
			}
			blen := int(int32(binary.BigEndian.Uint32(rest[8:])))
			if blen < 49 || blen+12 > len(rest) || rest[16] != 2 {
				err = stream.ErrCorruptMessage
				break
			}
			data := append([]byte(nil), rest[:blen+12]...)
			delta := int64(int32(binary.BigEndian.Uint32(data[23:])))
			if delta < 0 {
				err = stream.ErrCorruptMessage
				break
			}
			off := base
			if len(parsed) > 0 {
				off = parsed[len(parsed)-1].last + 1
			}
			binary.BigEndian.PutUint64(data, uint64(off))
			parsed = append(parsed, fakeBatch{base: off, last: off + delta, maxTS: int64(binary.BigEndian.Uint64(data[35:])), data: data})
			rest = rest[blen+12:]
		}
		if err == nil && len(parsed) == 0 {
			err = stream.ErrInvalidRecord
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		for _, fb := range parsed {
			p.batches = append(p.batches, fb)
			p.size += int64(len(fb.data))
		}
		p.hwm = parsed[len(parsed)-1].last + 1
		out[i].BaseOffset, out[i].LogStartOffset = base, p.logStart
	}
	l.applied()
	return out
}

func (l *fakeLog) Fetch(_ context.Context, fp FetchPartition) (FetchResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var name string
	for _, t := range l.topics {
		if t.info.ID == fp.TopicID {
			name = t.info.Name
		}
	}
	if name == "" {
		return FetchResult{}, stream.ErrUnknownTopicID
	}
	p, err := l.part(name, fp.Partition)
	if err != nil {
		return FetchResult{}, err
	}
	if fp.Offset < p.logStart || fp.Offset > p.hwm {
		return FetchResult{}, stream.ErrOffsetOutOfRange
	}
	res := FetchResult{HighWatermark: p.hwm, LastStableOffset: p.hwm, LogStartOffset: p.logStart}
	for _, b := range p.batches {
		if b.last < fp.Offset || b.last < p.logStart {
			continue
		}
		if len(res.Records) > 0 && len(res.Records)+len(b.data) > int(fp.MaxBytes) {
			break
		}
		res.Records = append(res.Records, b.data...)
	}
	return res, nil
}

func (l *fakeLog) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *fakeLog) Prefetch(_ context.Context, ps []FetchPartition, maxBytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prefetches = append(l.prefetches, prefetchCall{append([]FetchPartition(nil), ps...), maxBytes})
}

func (l *fakeLog) SyncRead(ctx context.Context) error {
	l.mu.Lock()
	l.syncReads++
	fn := l.syncRead
	l.mu.Unlock()
	if fn != nil {
		return fn(ctx)
	}
	return nil
}

func (l *fakeLog) State(topic string, partition int32) (PartitionState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.part(topic, partition)
	if err != nil {
		return PartitionState{}, err
	}
	return PartitionState{LogStartOffset: p.logStart, HighWatermark: p.hwm, LastStableOffset: p.hwm, SizeBytes: p.size}, nil
}

func (l *fakeLog) OffsetForTimestamp(_ context.Context, topic string, partition int32, ts int64) (int64, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.part(topic, partition)
	if err != nil {
		return -1, -1, err
	}
	switch ts {
	case -1:
		return p.hwm, -1, nil
	case -2, -4, -5:
		return p.logStart, -1, nil
	case -3:
		best, bestTS := int64(-1), int64(-1)
		for _, b := range p.batches {
			if b.maxTS > bestTS {
				best, bestTS = b.last, b.maxTS
			}
		}
		return best, bestTS, nil
	}
	for _, b := range p.batches {
		if b.last >= p.logStart && b.maxTS >= ts {
			return max(b.base, p.logStart), b.maxTS, nil
		}
	}
	return -1, -1, nil
}

func (l *fakeLog) DeleteRecords(_ context.Context, topic string, partition int32, before int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.part(topic, partition)
	if err != nil {
		return -1, err
	}
	if before == -1 {
		before = p.hwm
	}
	if before < 0 || before > p.hwm {
		return -1, stream.ErrOffsetOutOfRange
	}
	if before > p.logStart {
		p.logStart = before
		l.applied()
	}
	return p.logStart, nil
}

func (l *fakeLog) EndOffsetForEpoch(_ context.Context, topic string, partition int32, epoch int32) (int32, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.part(topic, partition)
	if err != nil {
		return -1, -1, err
	}
	if epoch > 0 {
		return -1, -1, nil
	}
	return 0, p.hwm, nil
}

func (l *fakeLog) InitProducerID(_ context.Context, pid int64, epoch int16) (int64, int16, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pid >= 0 {
		return pid, epoch + 1, nil
	}
	l.nextPID++
	return l.nextPID, 0, nil
}

// fakeCluster is one broker, leader of every partition; others, when set,
// are more live brokers, and leader, when set, picks partition leaders.
type fakeCluster struct {
	self   Broker
	others []Broker
	leader func(TopicID, int32) int32
}

func (c *fakeCluster) ClusterID() string { return "fake-cluster" }
func (c *fakeCluster) Self() Broker      { return c.self }
func (c *fakeCluster) Brokers() []Broker { return append([]Broker{c.self}, c.others...) }
func (c *fakeCluster) Leader(id TopicID, p int32) int32 {
	if c.leader != nil {
		return c.leader(id, p)
	}
	return c.self.NodeID
}
func (c *fakeCluster) ControllerID() int32 { return c.self.NodeID }

// fakeGroups answers coordinator lookups and returns empty, valid answers;
// group semantics are internal/groups' to test.
type fakeGroups struct{ c *fakeCluster }

func (g *fakeGroups) Coordinator(_ context.Context, key string, _ int8) (Broker, int16) {
	if key == "" {
		return Broker{}, kerr.InvalidRequest.Code
	}
	return g.c.self, 0
}
func (g *fakeGroups) JoinGroup(_ context.Context, r *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	return resp
}
func (g *fakeGroups) SyncGroup(_ context.Context, r *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	return r.ResponseKind().(*kmsg.SyncGroupResponse)
}
func (g *fakeGroups) Heartbeat(_ context.Context, r *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	return r.ResponseKind().(*kmsg.HeartbeatResponse)
}
func (g *fakeGroups) LeaveGroup(_ context.Context, r *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	return r.ResponseKind().(*kmsg.LeaveGroupResponse)
}
func (g *fakeGroups) OffsetCommit(_ context.Context, r *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	return r.ResponseKind().(*kmsg.OffsetCommitResponse)
}
func (g *fakeGroups) OffsetFetch(_ context.Context, r *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	return r.ResponseKind().(*kmsg.OffsetFetchResponse)
}
func (g *fakeGroups) OffsetDelete(_ context.Context, r *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	return r.ResponseKind().(*kmsg.OffsetDeleteResponse)
}
func (g *fakeGroups) DescribeGroups(_ context.Context, r *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	return r.ResponseKind().(*kmsg.DescribeGroupsResponse)
}
func (g *fakeGroups) ListGroups(_ context.Context, r *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	return r.ResponseKind().(*kmsg.ListGroupsResponse)
}
func (g *fakeGroups) DeleteGroups(_ context.Context, r *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	return r.ResponseKind().(*kmsg.DeleteGroupsResponse)
}

// The fake log has no transactions: every transactional call is refused as
// the sequencer refuses an unknown transactional id. Transactions are tested
// against the real engine (internal/broker, test/clients, test/system).
func (l *fakeLog) InitTxnProducer(context.Context, string, int32, int64, int16) (int64, int16, error) {
	return 0, 0, stream.ErrInvalidProducerIDMapping
}
func (l *fakeLog) AddPartitionsToTxn(context.Context, string, int64, int16, []TxnPartition) error {
	return stream.ErrInvalidProducerIDMapping
}
func (l *fakeLog) AddOffsetsToTxn(context.Context, string, int64, int16, string) error {
	return stream.ErrInvalidProducerIDMapping
}
func (l *fakeLog) EndTxn(context.Context, string, int64, int16, bool, bool) (int64, int16, error) {
	return 0, 0, stream.ErrInvalidProducerIDMapping
}
func (l *fakeLog) Transactions() []TxnInfo { return nil }
func (l *fakeLog) Producers(topic string, partition int32) ([]ProducerInfo, error) {
	if _, err := l.part(topic, partition); err != nil {
		return nil, err
	}
	return nil, nil
}
func (g *fakeGroups) TxnOffsetCommit(_ context.Context, r *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	return resp
}
func (g *fakeGroups) ConsumerGroupHeartbeat(_ context.Context, r *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.ErrorCode = kerr.GroupIDNotFound.Code
	return resp
}
func (g *fakeGroups) ConsumerGroupDescribe(_ context.Context, r *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	return r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
}

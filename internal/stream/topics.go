package stream

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"

	"github.com/runnel-dev/runnel/internal/config"
)

// TopicInfo describes one live topic.
type TopicInfo struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string // explicit overrides only
	Internal   bool
}

// Kafka's internal topics. Runnel keeps group offsets in the group stores
// and transaction state in the log, so these topics hold no records; they
// exist (created on the first coordinator look-up, as Kafka does) because
// clients and tools expect them in Metadata, flagged internal. Regex
// subscriptions resolved by clients skip them by that flag.
const (
	ConsumerOffsetsTopic  = "__consumer_offsets"
	TransactionStateTopic = "__transaction_state"
	ShareGroupStateTopic  = "__share_group_state"
	// InternalTopicPartitions is Kafka's offsets.topic.num.partitions
	// and transaction.state.log.num.partitions default.
	InternalTopicPartitions = 50
)

// isInternalTopic reports the topics Kafka treats as internal: exactly its
// own, not every name that starts with "__".
func isInternalTopic(name string) bool {
	return name == ConsumerOffsetsTopic || name == TransactionStateTopic || name == ShareGroupStateTopic
}

func (t *topicState) info() TopicInfo {
	return TopicInfo{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Parts)), Configs: copyMap(t.Configs), Internal: isInternalTopic(t.Name)}
}

// Topics returns every live topic sorted by name.
func (e *Engine) Topics() []TopicInfo {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]TopicInfo, 0, len(e.st.Topics))
	for _, t := range e.st.Topics {
		out = append(out, t.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Topic looks a topic up by name.
func (e *Engine) Topic(name string) (TopicInfo, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	id, ok := e.st.ByName[name]
	if !ok {
		return TopicInfo{}, false
	}
	return e.st.Topics[id].info(), true
}

// TopicByID looks a topic up by id.
func (e *Engine) TopicByID(id TopicID) (TopicInfo, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, ok := e.st.Topics[id]
	if !ok {
		return TopicInfo{}, false
	}
	return t.info(), true
}

// CreateTopic validates and, unless validateOnly, creates a topic.
func (e *Engine) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (TopicInfo, error) {
	if partitions == -1 || partitions == 0 {
		partitions = e.opts.DefaultPartitions
	}
	if err := validTopicName(name); err != nil {
		return TopicInfo{}, err
	}
	if partitions < 1 || partitions > maxPartitions {
		return TopicInfo{}, fmt.Errorf("%w: %d (must be between 1 and %d)", ErrInvalidPartitions, partitions, maxPartitions)
	}
	if err := config.ValidateTopicConfigs(configs); err != nil {
		return TopicInfo{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if _, err := config.ResolveTopic(configs, e.opts.TopicDefaults); err != nil {
		return TopicInfo{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if t, ok := e.Topic(name); ok {
		return t, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	var id TopicID
	if _, err := rand.Read(id[:]); err != nil {
		return TopicInfo{}, err
	}
	id[6] = id[6]&0x0f | 0x40 // UUID v4
	id[8] = id[8]&0x3f | 0x80
	info := TopicInfo{Name: name, ID: id, Partitions: partitions, Configs: copyMap(configs), Internal: isInternalTopic(name)}
	if validateOnly {
		return info, nil
	}
	res, err := e.propose(ctx, &entry{Kind: kindCreateTopic, Topic: id, Name: name, Partitions: partitions, Configs: configs})
	if err != nil {
		return TopicInfo{}, err
	}
	if res.Err != nil {
		return TopicInfo{}, res.Err
	}
	return info, nil
}

// DeleteTopic deletes a topic; its objects are collected later.
func (e *Engine) DeleteTopic(ctx context.Context, name string) error {
	t, ok := e.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	res, err := e.propose(ctx, &entry{Kind: kindDeleteTopic, Topic: t.ID, Name: name})
	if err != nil {
		return err
	}
	return res.Err
}

// CreatePartitions grows a topic to count partitions.
func (e *Engine) CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error {
	t, ok := e.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	if count <= t.Partitions {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger, got %d", ErrInvalidPartitions, name, t.Partitions, count)
	}
	if count > maxPartitions {
		return fmt.Errorf("%w: %d is more than %d", ErrInvalidPartitions, count, maxPartitions)
	}
	if validateOnly {
		return nil
	}
	res, err := e.propose(ctx, &entry{Kind: kindCreatePartitions, Topic: t.ID, Partitions: count})
	if err != nil {
		return err
	}
	return res.Err
}

// ConfigChange is one topic config change; Value nil deletes the override.
type ConfigChange struct {
	Name  string
	Value *string
}

// AlterTopicConfigs applies config changes to a topic. With replace, every
// override not named in changes is removed (AlterConfigs semantics).
func (e *Engine) AlterTopicConfigs(ctx context.Context, name string, changes []ConfigChange, replace, validateOnly bool) error {
	t, ok := e.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	next := map[string]string{}
	if !replace {
		next = copyMap(t.Configs)
	}
	set := map[string]string{}
	var dels []string
	for _, c := range changes {
		if _, ok := config.LookupTopic(c.Name); !ok {
			return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, c.Name)
		}
		if c.Value == nil {
			delete(next, c.Name)
			dels = append(dels, c.Name)
			continue
		}
		if err := config.ValidateTopicConfig(c.Name, *c.Value); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
		next[c.Name] = *c.Value
		set[c.Name] = *c.Value
	}
	if _, err := config.ResolveTopic(next, e.opts.TopicDefaults); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if validateOnly {
		return nil
	}
	ent := &entry{Kind: kindAlterConfigs, Topic: t.ID, Configs: set, Deletes: dels}
	if replace {
		ent.Configs, ent.Deletes, ent.Replace = next, nil, true
	}
	res, err := e.propose(ctx, ent)
	if err != nil {
		return err
	}
	return res.Err
}

// PartitionState is the current shape of one partition's log.
type PartitionState struct {
	LogStartOffset   int64
	HighWatermark    int64
	LastStableOffset int64
	LeaderEpoch      int32
	SizeBytes        int64
}

// State returns a partition's offsets.
func (e *Engine) State(topic string, partition int32) (PartitionState, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	p, err := e.partByName(topic, partition)
	if err != nil {
		return PartitionState{}, err
	}
	return PartitionState{LogStartOffset: p.LogStart, HighWatermark: p.Next, LastStableOffset: max(p.lastStable(), p.LogStart), LeaderEpoch: p.Epoch, SizeBytes: p.Bytes}, nil
}

func (e *Engine) partByName(topic string, partition int32) (*partState, error) {
	id, ok := e.st.ByName[topic]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, topic)
	}
	return e.st.partition(id, partition)
}

// InitProducerID allocates a producer id (producerID -1) or bumps the epoch
// of a current one (KIP-360).
func (e *Engine) InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error) {
	if producerID < 0 {
		producerID = -1
	}
	res, err := e.propose(ctx, &entry{Kind: kindInitProducer, ProducerID: producerID, Epoch: epoch})
	if err != nil {
		return 0, 0, err
	}
	if res.Err != nil {
		e.countProducerIDLimit(res.Err)
		return 0, 0, res.Err
	}
	return res.ProducerID, res.Epoch, nil
}

// DeleteRecords moves a partition's log start offset to before (-1 = the
// high watermark) and returns the new low watermark.
func (e *Engine) DeleteRecords(ctx context.Context, topic string, partition int32, before int64) (int64, error) {
	e.mu.RLock()
	id, ok := e.st.ByName[topic]
	var hwm int64
	if ok {
		p, err := e.st.partition(id, partition)
		if err != nil {
			e.mu.RUnlock()
			return 0, err
		}
		hwm = p.Next
	}
	e.mu.RUnlock()
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, topic)
	}
	if before < -1 || before > hwm {
		return 0, fmt.Errorf("%w: offset %d is not between 0 and the high watermark %d", ErrOffsetOutOfRange, before, hwm)
	}
	res, err := e.propose(ctx, &entry{Kind: kindTrim, Topic: id, Partition: partition, Offset: before})
	if err != nil {
		return 0, err
	}
	return res.Offset, res.Err
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch. Leader epochs come from
// the log; every partition is at epoch 0 until leadership changes are
// logged, so any epoch at or below the current one ends at the high
// watermark.
func (e *Engine) EndOffsetForEpoch(ctx context.Context, topic string, partition int32, epoch int32) (int32, int64, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	p, err := e.partByName(topic, partition)
	if err != nil {
		return 0, 0, err
	}
	if epoch > p.Epoch {
		return -1, -1, nil
	}
	return p.Epoch, p.Next, nil
}

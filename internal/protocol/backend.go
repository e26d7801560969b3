package protocol

import (
	"context"

	"github.com/runnel-dev/runnel/internal/peer"
	"github.com/runnel-dev/runnel/internal/stream"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The interfaces below are what the Kafka handlers need from the rest of the
// broker. They are defined here, by their consumer; internal/stream,
// internal/groups and internal/cluster implement them. Errors returned by Log
// methods are the sentinel errors of internal/stream (wrapped with %w); the
// handlers map them to Kafka codes through the table in errors.go.

// TopicID is a topic's 16-byte UUID, as carried on the wire.
type TopicID = [16]byte

// The values the Log exchanges are the storage engine's own types, so the
// engine serves the handlers without copying them field by field:
// TopicInfo (a topic; Configs holds only explicit overrides), ProduceBatch
// (one partition's record batch as the client sent it), ProduceResult (its
// base offset or a stream sentinel error, with KIP-467 RecordErrors),
// FetchPartition and FetchResult (whole batches with final base offsets;
// the first batch is returned whole even past MaxBytes), AbortedTxn,
// PartitionState and ConfigChange (Value nil deletes an override;
// IncrementalAlterConfigs APPEND/SUBTRACT are resolved by the caller).
type (
	TopicInfo      = stream.TopicInfo
	ProduceBatch   = stream.ProduceBatch
	ProduceResult  = stream.ProduceResult
	RecordError    = stream.RecordError
	FetchPartition = stream.FetchPartition
	FetchResult    = stream.FetchResult
	AbortedTxn     = stream.AbortedTxn
	PartitionState = stream.PartitionState
	ConfigChange   = stream.ConfigChange
	TxnPartition   = stream.TxnPartition
	TxnOffset      = stream.TxnOffset
	TxnInfo        = stream.TxnInfo
	ProducerInfo   = stream.ProducerInfo
)

// Log is the partitioned log: topics, produce, fetch, offsets. It is
// implemented by internal/stream's Engine. Every method that writes appends an
// entry to the intake log and returns once the local sequencer has applied it.
type Log interface {
	// Topics returns every live topic, sorted by name.
	Topics() []TopicInfo
	Topic(name string) (TopicInfo, bool)
	TopicByID(id TopicID) (TopicInfo, bool)

	// CreateTopic validates and (unless validateOnly) creates a topic.
	// partitions <= 0 means the broker default. Errors: ErrTopicExists,
	// ErrInvalidTopic, ErrInvalidPartitions, ErrInvalidConfig.
	CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (TopicInfo, error)
	// DeleteTopic deletes a topic and, later, its data.
	DeleteTopic(ctx context.Context, name string) error
	// CreatePartitions grows a topic to count partitions.
	CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error
	// AlterTopicConfigs applies changes. With replace=true (AlterConfigs)
	// every override not named in changes is removed.
	AlterTopicConfigs(ctx context.Context, name string, changes []ConfigChange, replace, validateOnly bool) error

	// Produce validates the batches and queues them in the intake buffer
	// before it returns, so calls are sequenced in call order. The returned
	// function waits (bounded by ctx) until they are flushed and sequenced
	// and returns one result per batch, in order. acks=0 callers may
	// ignore it.
	Produce(ctx context.Context, batches []ProduceBatch) (wait func() []ProduceResult)
	// Fetch reads one partition. It never blocks for new data; long polling
	// uses Changed.
	Fetch(ctx context.Context, p FetchPartition) (FetchResult, error)
	// Prefetch reads ahead, concurrently, what Fetch calls for ps (in
	// order, maxBytes in all) would read from a remote store, so that
	// they find it in memory. It may do nothing.
	Prefetch(ctx context.Context, ps []FetchPartition, maxBytes int64)
	// Changed returns a channel that is closed the next time the sequencer
	// applies anything. Callers re-check their condition and call again.
	Changed() <-chan struct{}
	// SyncRead waits until this broker has replayed everything committed to
	// the metadata store at the moment of the call (DESIGN §5a rule 7).
	SyncRead(ctx context.Context) error

	// State returns a partition's current offsets. Errors:
	// ErrUnknownTopicOrPartition.
	State(topic string, partition int32) (PartitionState, error)
	// OffsetForTimestamp returns the first offset whose batch max timestamp
	// is >= ts, with that batch's timestamp; offset -1 when none.
	// Special ts: -1 latest, -2 earliest, -3 max timestamp (KIP-734),
	// -4 earliest-local (KIP-405), -5 earliest-pending-upload.
	OffsetForTimestamp(ctx context.Context, topic string, partition int32, ts int64) (offset int64, timestamp int64, err error)
	// DeleteRecords moves the log start offset to before (-1 = high
	// watermark) and returns the new low watermark.
	DeleteRecords(ctx context.Context, topic string, partition int32, before int64) (int64, error)
	// EndOffsetForEpoch answers OffsetForLeaderEpoch.
	EndOffsetForEpoch(ctx context.Context, topic string, partition int32, epoch int32) (leaderEpoch int32, endOffset int64, err error)
	// InitProducerID allocates a producer id for a non-transactional
	// idempotent producer, or bumps the epoch when pid/epoch name a current
	// producer (KIP-360).
	InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error)

	// Transactions (DESIGN §5a rule 4); errors include
	// ErrInvalidProducerIDMapping, ErrProducerFenced, ErrInvalidTxnState and
	// ErrInvalidTxnTimeout.
	//
	// InitTxnProducer allocates or re-initialises the producer of a
	// transactional id (pid -1 unless recovering, KIP-360).
	InitTxnProducer(ctx context.Context, txnID string, timeoutMs int32, pid int64, epoch int16) (int64, int16, error)
	AddPartitionsToTxn(ctx context.Context, txnID string, pid int64, epoch int16, parts []TxnPartition) error
	AddOffsetsToTxn(ctx context.Context, txnID string, pid int64, epoch int16, group string) error
	// EndTxn commits or aborts; bump (EndTxn v5+) returns a new epoch.
	EndTxn(ctx context.Context, txnID string, pid int64, epoch int16, commit, bump bool) (int64, int16, error)
	// Transactions returns every transactional id, sorted.
	Transactions() []TxnInfo
	// Producers returns the producers with state on a partition.
	Producers(topic string, partition int32) ([]ProducerInfo, error)
}

// Broker is a live broker as seen in Metadata; its type lives in
// internal/peer, shared with the packages that implement Cluster and Groups.
type Broker = peer.Broker

// Endpoint is one listener's advertised address of a Broker.
type Endpoint = peer.Endpoint

// Cluster answers what Metadata and DescribeCluster need about membership.
type Cluster interface {
	ClusterID() string
	// Self is this broker.
	Self() Broker
	// Brokers returns the live brokers sorted by node id.
	Brokers() []Broker
	// Leader returns the node id of the leader broker for a partition.
	Leader(topic TopicID, partition int32) int32
	// ControllerID is the node id reported as controller.
	ControllerID() int32
}

// Groups is the group coordinator (classic protocol). Requests and responses
// are the kmsg types; the handler sets the response version. Each call
// returns a complete response with per-item error codes filled in; JoinGroup
// and SyncGroup block until the rebalance step completes or ctx ends.
type Groups interface {
	// Coordinator returns the broker that coordinates key (a group id for
	// keyType 0), or an error code (e.g. COORDINATOR_NOT_AVAILABLE).
	Coordinator(ctx context.Context, key string, keyType int8) (Broker, int16)
	JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse
	SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse
	Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse
	LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse
	OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse
	OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse
	OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse
	DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse
	ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse
	DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse
	// TxnOffsetCommit checks the member and generation (KIP-447) and adds
	// the offsets to the producer's transaction.
	TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse
	// ConsumerGroupHeartbeat and ConsumerGroupDescribe serve KIP-848 groups.
	ConsumerGroupHeartbeat(ctx context.Context, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse
	ConsumerGroupDescribe(ctx context.Context, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse
}

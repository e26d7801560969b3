package stream

import "errors"

// Sentinel errors returned by the Engine. Callers match them with errors.Is;
// internal/protocol maps each one to a Kafka error code.
var (
	ErrUnknownTopicOrPartition     = errors.New("stream: unknown topic or partition")
	ErrUnknownTopicID              = errors.New("stream: unknown topic id")
	ErrTopicExists                 = errors.New("stream: topic already exists")
	ErrInvalidTopic                = errors.New("stream: invalid topic name")
	ErrInvalidPartitions           = errors.New("stream: invalid number of partitions")
	ErrInvalidReplication          = errors.New("stream: invalid replication factor")
	ErrInvalidConfig               = errors.New("stream: invalid config")
	ErrPolicyViolation             = errors.New("stream: policy violation")
	ErrOffsetOutOfRange            = errors.New("stream: offset out of range")
	ErrCorruptMessage              = errors.New("stream: corrupt message")
	ErrInvalidRecord               = errors.New("stream: invalid record")
	ErrInvalidTimestamp            = errors.New("stream: invalid timestamp")
	ErrMessageTooLarge             = errors.New("stream: message too large")
	ErrUnsupportedForMessageFormat = errors.New("stream: unsupported for message format")
	ErrUnsupportedCompression      = errors.New("stream: unsupported compression type")
	ErrOutOfOrderSequence          = errors.New("stream: out of order sequence number")
	ErrInvalidProducerEpoch        = errors.New("stream: invalid producer epoch")
	ErrUnknownProducerID           = errors.New("stream: unknown producer id")
	ErrInvalidTxnState             = errors.New("stream: invalid transaction state")
	ErrInvalidProducerIDMapping    = errors.New("stream: producer id does not match the transactional id")
	ErrProducerFenced              = errors.New("stream: producer fenced by a newer epoch")
	ErrInvalidTxnTimeout           = errors.New("stream: invalid transaction timeout")
	ErrInvalidGroupID              = errors.New("stream: invalid group id")
	ErrNotReady                    = errors.New("stream: broker not ready")
	ErrStorage                     = errors.New("stream: storage error")
	ErrTimeout                     = errors.New("stream: request timed out")
	ErrStaleEntry                  = errors.New("stream: stale maintenance entry")
	// ErrUnknownOutcome: the entry was put but this broker skipped it (a
	// reload from a newer checkpoint), so its result is not known here.
	ErrUnknownOutcome = errors.New("stream: outcome unknown; retry")
	// ErrProducerIDLimit: the cluster holds as many producer ids as it
	// may (DESIGN §5a rule 10); ids free up as idle ones expire.
	ErrProducerIDLimit = errors.New("stream: producer id limit reached")
	// ErrBackpressure: a partition has as many unarchived extents as it
	// may, or all partitions together as many unarchived bytes; produce
	// resumes once archival catches up.
	ErrBackpressure = errors.New("stream: over a limit on data not yet archived")
)

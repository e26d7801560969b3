package share

import (
	"errors"

	"github.com/runnel-dev/runnel/internal/stream"
)

// Key names one share partition: a share group's view of one partition.
type Key struct {
	Group     string
	Topic     stream.TopicID
	Partition int32
}

// Acknowledgement types of KIP-932 (and RENEW of KIP-1222), as carried in
// ShareFetch and ShareAcknowledge. AckGap marks offsets that hold no record
// (compacted away, or control records).
const (
	AckGap     int8 = 0
	AckAccept  int8 = 1
	AckRelease int8 = 2
	AckReject  int8 = 3
	AckRenew   int8 = 4
)

// AckBatch acknowledges the offsets First..Last. Types holds either one
// type for the whole range or one type per offset.
type AckBatch struct {
	First, Last int64
	Types       []int8
}

// AcquiredRange is a run of offsets acquired by one ShareFetch, all with the
// same delivery count, as the response's AcquiredRecords carries them.
type AcquiredRange struct {
	First, Last   int64
	DeliveryCount int16
}

// AcquireRequest asks for records of one share partition for a member.
type AcquireRequest struct {
	Key
	Member string
	// MaxRecords bounds the records acquired (ShareFetch v1+ MaxRecords;
	// <= 0 means the default of 500). In batch_optimized mode whole batches
	// are acquired and the bound may be exceeded by the last batch.
	MaxRecords int32
	// MaxBytes bounds the record bytes returned (the first batch is always
	// whole).
	MaxBytes int32
	// RecordLimit asks for record_limit acquisition whatever the group's
	// share.acquire.mode (ShareFetch v2 ShareAcquireMode 1, KIP-1206):
	// never more than MaxRecords records.
	RecordLimit bool
}

// AcquireResult is what one acquisition returned: whole record batches
// (final offsets) covering the acquired ranges; the client delivers only
// the offsets in Acquired.
type AcquireResult struct {
	Records  []byte
	Acquired []AcquiredRange
}

// PartitionOffset is a share partition's start offset as
// DescribeShareGroupOffsets reports it; Lag is the records from the start
// offset to the high watermark not yet acknowledged (-1 when unknown).
type PartitionOffset struct {
	Topic       stream.TopicID
	Partition   int32
	StartOffset int64
	LeaderEpoch int32
	Lag         int64
}

// Errors; the Kafka front end maps them to error codes in its one table.
var (
	// ErrInvalidRecordState: an acknowledgement names a record that is not
	// acquired by this member (lock timed out, or already acknowledged);
	// INVALID_RECORD_STATE.
	ErrInvalidRecordState = errors.New("share: record is not acquired by this member")
	// ErrInvalidRequest: malformed acknowledgement batches (overlapping,
	// out of order, First > Last, wrong number of types, unknown type);
	// INVALID_REQUEST.
	ErrInvalidRequest = errors.New("share: invalid acknowledgement")
	// ErrRenewDisabled: RENEW while share.renew.acknowledge.enable=false;
	// INVALID_REQUEST.
	ErrRenewDisabled = errors.New("share: renew acknowledgements are disabled for this group")
	// ErrUnknownTopicOrPartition: the partition does not exist.
	ErrUnknownTopicOrPartition = errors.New("share: unknown topic or partition")
	// ErrGroupNotEmpty: offsets can be altered or deleted only while the
	// group has no members; NON_EMPTY_GROUP.
	ErrGroupNotEmpty = errors.New("share: group is not empty")
	// ErrUnavailable: etcd could not be reached in time;
	// the request is retriable (REQUEST_TIMED_OUT or COORDINATOR_NOT_AVAILABLE).
	ErrUnavailable = errors.New("share: state store unavailable")
)

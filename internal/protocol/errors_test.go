package protocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *kerr.Error
	}{
		{"unknown topic", stream.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
		{"unknown topic id", stream.ErrUnknownTopicID, kerr.UnknownTopicID},
		{"exists", stream.ErrTopicExists, kerr.TopicAlreadyExists},
		{"invalid topic", stream.ErrInvalidTopic, kerr.InvalidTopicException},
		{"partitions", stream.ErrInvalidPartitions, kerr.InvalidPartitions},
		{"replication", stream.ErrInvalidReplication, kerr.InvalidReplicationFactor},
		{"stream config", stream.ErrInvalidConfig, kerr.InvalidConfig},
		{"policy", stream.ErrPolicyViolation, kerr.PolicyViolation},
		{"out of range", stream.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{"corrupt", stream.ErrCorruptMessage, kerr.CorruptMessage},
		{"invalid record", stream.ErrInvalidRecord, kerr.InvalidRecord},
		{"timestamp", stream.ErrInvalidTimestamp, kerr.InvalidTimestamp},
		{"too large", stream.ErrMessageTooLarge, kerr.MessageTooLarge},
		{"format", stream.ErrUnsupportedForMessageFormat, kerr.UnsupportedForMessageFormat},
		{"compression", stream.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},
		{"sequence", stream.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{"epoch", stream.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
		{"producer id", stream.ErrUnknownProducerID, kerr.UnknownProducerID},
		{"txn state", stream.ErrInvalidTxnState, kerr.InvalidTxnState},
		{"not ready", stream.ErrNotReady, kerr.LeaderNotAvailable},
		{"storage", stream.ErrStorage, kerr.KafkaStorageError},
		{"timeout", stream.ErrTimeout, kerr.RequestTimedOut},
		{"config invalid", config.ErrInvalidConfig, kerr.InvalidConfig},
		{"config unknown", config.ErrUnknownConfig, kerr.InvalidConfig},
		{"deadline", context.DeadlineExceeded, kerr.RequestTimedOut},
		{"read barrier: storage", fmt.Errorf("%w: %w", ErrReadBarrier, stream.ErrStorage), kerr.NotLeaderForPartition},
		{"read barrier: deadline", fmt.Errorf("%w: %w", ErrReadBarrier, context.DeadlineExceeded), kerr.NotLeaderForPartition},
		{"wrapped", fmt.Errorf("reading x: %w", stream.ErrOffsetOutOfRange), kerr.OffsetOutOfRange},
		{"kerr passthrough", kerr.NotController, kerr.NotController},
		{"unknown", errors.New("boom"), kerr.UnknownServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorCode(slog.New(slog.DiscardHandler), tt.err); got != tt.want.Code {
				t.Fatalf("errorCode(%v) = %d, want %d (%s)", tt.err, got, tt.want.Code, tt.want.Message)
			}
		})
	}
	if errorCode(nil, nil) != 0 {
		t.Fatal("nil error must map to 0")
	}
}

// TestErrorTableCoversStream fails when a stream sentinel has no row.
func TestErrorTableCoversStream(t *testing.T) {
	for _, e := range []error{
		stream.ErrUnknownTopicOrPartition, stream.ErrUnknownTopicID, stream.ErrTopicExists,
		stream.ErrInvalidTopic, stream.ErrInvalidPartitions, stream.ErrInvalidReplication,
		stream.ErrInvalidConfig, stream.ErrPolicyViolation, stream.ErrOffsetOutOfRange,
		stream.ErrCorruptMessage, stream.ErrInvalidRecord, stream.ErrInvalidTimestamp,
		stream.ErrMessageTooLarge, stream.ErrUnsupportedForMessageFormat,
		stream.ErrUnsupportedCompression, stream.ErrOutOfOrderSequence,
		stream.ErrInvalidProducerEpoch, stream.ErrUnknownProducerID, stream.ErrInvalidTxnState,
		stream.ErrNotReady, stream.ErrStorage, stream.ErrTimeout,
	} {
		found := false
		for _, row := range errorTable {
			if row.err == e {
				found = true
			}
		}
		if !found {
			t.Errorf("no error table row for %v", e)
		}
	}
}

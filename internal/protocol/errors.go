package protocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics"
)

// errorTable maps domain sentinel errors to Kafka error codes. It is the
// only place that mapping lives; errors_test.go checks every row and that
// every sentinel internal/stream declares has one.
var errorTable = []struct {
	err  error
	kerr *kerr.Error
}{
	// A failed read barrier: retriable, and the client keeps its position.
	{ErrReadBarrier, kerr.NotLeaderForPartition},
	{stream.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{stream.ErrUnknownTopicID, kerr.UnknownTopicID},
	{stream.ErrTopicExists, kerr.TopicAlreadyExists},
	{stream.ErrInvalidTopic, kerr.InvalidTopicException},
	{stream.ErrInvalidPartitions, kerr.InvalidPartitions},
	{stream.ErrInvalidReplication, kerr.InvalidReplicationFactor},
	{stream.ErrInvalidConfig, kerr.InvalidConfig},
	{stream.ErrPolicyViolation, kerr.PolicyViolation},
	{stream.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{stream.ErrCorruptMessage, kerr.CorruptMessage},
	{stream.ErrInvalidRecord, kerr.InvalidRecord},
	{stream.ErrInvalidTimestamp, kerr.InvalidTimestamp},
	{stream.ErrMessageTooLarge, kerr.MessageTooLarge},
	{stream.ErrUnsupportedForMessageFormat, kerr.UnsupportedForMessageFormat},
	{stream.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},
	{stream.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{stream.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{stream.ErrUnknownProducerID, kerr.UnknownProducerID},
	{stream.ErrInvalidTxnState, kerr.InvalidTxnState},
	{stream.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
	{stream.ErrProducerFenced, kerr.ProducerFenced},
	{stream.ErrInvalidTxnTimeout, kerr.InvalidTransactionTimeout},
	{stream.ErrInvalidGroupID, kerr.InvalidGroupID},
	// Not ready (catching up, or cut off from etcd): retriable, and makes
	// clients refresh metadata.
	{stream.ErrNotReady, kerr.LeaderNotAvailable},
	{stream.ErrStorage, kerr.KafkaStorageError},
	{stream.ErrTimeout, kerr.RequestTimedOut},
	// The entry may or may not have been sequenced: a retry finds out
	// (an idempotent one is answered with its original offset).
	{stream.ErrUnknownOutcome, kerr.RequestTimedOut},
	// Memory caps (DESIGN §5a rule 10): retriable, the message says which.
	{stream.ErrProducerIDLimit, kerr.ThrottlingQuotaExceeded},
	{stream.ErrBackpressure, kerr.NotEnoughReplicas},
	// A maintenance entry (archival, compaction, a timeout abort) planned
	// on state that has since changed, which the sequencer refused: like
	// a KRaft AlterPartition naming a stale partition epoch. Clients
	// do not send maintenance entries; the row keeps a stray one mapped.
	{stream.ErrStaleEntry, kerr.InvalidUpdateVersion},
	{config.ErrInvalidConfig, kerr.InvalidConfig},
	{config.ErrUnknownConfig, kerr.InvalidConfig},
	// KIP-714 client metrics (telemetry.go).
	{clientmetrics.ErrInvalidRequest, kerr.InvalidRequest},
	{clientmetrics.ErrInvalidConfig, kerr.InvalidConfig},
	{clientmetrics.ErrThrottled, kerr.ThrottlingQuotaExceeded},
	{clientmetrics.ErrUnknownSubscription, kerr.UnknownSubscriptionID},
	{clientmetrics.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},
	{clientmetrics.ErrTooLarge, kerr.TelemetryTooLarge},
	{clientmetrics.ErrInvalidRecord, kerr.InvalidRecord},
	// SCRAM credentials (scram.go) and client quotas (quotas.go).
	{errClusterAuthorization, kerr.ClusterAuthorizationFailed},
	{errSCRAMAlteredTwice, kerr.DuplicateResource},
	{auth.ErrUnacceptableCredential, kerr.UnacceptableCredential},
	{auth.ErrUnsupportedMechanism, kerr.UnsupportedSaslMechanism},
	{auth.ErrCredentialNotFound, kerr.ResourceNotFound},
	{auth.ErrInvalidQuota, kerr.InvalidRequest},
	{auth.ErrUnsupportedQuotaEntity, kerr.UnsupportedVersion},
	// Share groups (sharefetch.go): per partition, in ErrorCode or
	// AcknowledgeErrorCode.
	{share.ErrInvalidRecordState, kerr.InvalidRecordState},
	{share.ErrInvalidRequest, kerr.InvalidRequest},
	{share.ErrRenewDisabled, kerr.InvalidRequest},
	{share.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{share.ErrGroupNotEmpty, kerr.NonEmptyGroup},
	// etcd out of reach: retriable, the client retries the same broker.
	{share.ErrUnavailable, kerr.RequestTimedOut},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}

// errClusterAuthorization answers what a principal without the needed
// cluster permission asked for, where the answer carries an error per item
// (AlterUserScramCredentials users, AlterClientQuotas entries).
var errClusterAuthorization = errors.New(kerr.ClusterAuthorizationFailed.Description)

// errorCode maps err to a Kafka error code: 0 for nil, the table's code for
// a known error, UNKNOWN_SERVER_ERROR (logged on log) otherwise.
func errorCode(log *slog.Logger, err error) int16 {
	if err == nil {
		return 0
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.kerr.Code
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if log != nil {
		log.Error("unmapped error", "err", err)
	}
	return kerr.UnknownServerError.Code
}

// errorMessage returns err's text for responses that carry a message, or
// nil for no error.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

func strp(s string) *string { return &s }

// errInvalidIsolation is a request no client should send; it closes the
// connection, as Kafka fails to parse it.
func errInvalidIsolation(level int8) error {
	return fmt.Errorf("protocol: invalid isolation level %d", level)
}

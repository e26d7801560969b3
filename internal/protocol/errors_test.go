package protocol

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
)

// TestErrorCode checks the errors that are not stream sentinels (those are
// TestStreamErrors') and the fallbacks.
func TestErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *kerr.Error
	}{
		{"config invalid", config.ErrInvalidConfig, kerr.InvalidConfig},
		{"config unknown", config.ErrUnknownConfig, kerr.InvalidConfig},
		{"deadline", context.DeadlineExceeded, kerr.RequestTimedOut},
		{"canceled", context.Canceled, kerr.RequestTimedOut},
		{"read barrier: storage", fmt.Errorf("%w: %w", ErrReadBarrier, stream.ErrStorage), kerr.NotLeaderForPartition},
		{"read barrier: deadline", fmt.Errorf("%w: %w", ErrReadBarrier, context.DeadlineExceeded), kerr.NotLeaderForPartition},
		{"wrapped", fmt.Errorf("reading x: %w", stream.ErrOffsetOutOfRange), kerr.OffsetOutOfRange},
		{"kerr passthrough", kerr.NotController, kerr.NotController},
		{"cluster authorization", errClusterAuthorization, kerr.ClusterAuthorizationFailed},
		{"SCRAM user altered twice", errSCRAMAlteredTwice, kerr.DuplicateResource},
		{"SCRAM credential refused", fmt.Errorf("x: %w", auth.ErrUnacceptableCredential), kerr.UnacceptableCredential},
		{"SCRAM mechanism", auth.ErrUnsupportedMechanism, kerr.UnsupportedSaslMechanism},
		{"SCRAM credential missing", auth.ErrCredentialNotFound, kerr.ResourceNotFound},
		{"invalid quota", fmt.Errorf("%w: Quota producer_byte_rate must be greater than 0", auth.ErrInvalidQuota), kerr.InvalidRequest},
		{"quota entity", auth.ErrUnsupportedQuotaEntity, kerr.UnsupportedVersion},
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

// streamErrors is every exported sentinel of internal/stream with the
// Kafka code a client gets for it. TestStreamErrorsAllListed keeps it equal
// to what the package declares, so a new sentinel needs a row here and one
// in errorTable.
var streamErrors = []struct {
	name string
	err  error
	want *kerr.Error
}{
	{"ErrUnknownTopicOrPartition", stream.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{"ErrUnknownTopicID", stream.ErrUnknownTopicID, kerr.UnknownTopicID},
	{"ErrTopicExists", stream.ErrTopicExists, kerr.TopicAlreadyExists},
	{"ErrInvalidTopic", stream.ErrInvalidTopic, kerr.InvalidTopicException},
	{"ErrInvalidPartitions", stream.ErrInvalidPartitions, kerr.InvalidPartitions},
	{"ErrInvalidReplication", stream.ErrInvalidReplication, kerr.InvalidReplicationFactor},
	{"ErrInvalidConfig", stream.ErrInvalidConfig, kerr.InvalidConfig},
	{"ErrPolicyViolation", stream.ErrPolicyViolation, kerr.PolicyViolation},
	{"ErrOffsetOutOfRange", stream.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{"ErrCorruptMessage", stream.ErrCorruptMessage, kerr.CorruptMessage},
	{"ErrInvalidRecord", stream.ErrInvalidRecord, kerr.InvalidRecord},
	{"ErrInvalidTimestamp", stream.ErrInvalidTimestamp, kerr.InvalidTimestamp},
	{"ErrMessageTooLarge", stream.ErrMessageTooLarge, kerr.MessageTooLarge},
	{"ErrUnsupportedForMessageFormat", stream.ErrUnsupportedForMessageFormat, kerr.UnsupportedForMessageFormat},
	{"ErrUnsupportedCompression", stream.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},
	{"ErrOutOfOrderSequence", stream.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{"ErrInvalidProducerEpoch", stream.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{"ErrUnknownProducerID", stream.ErrUnknownProducerID, kerr.UnknownProducerID},
	{"ErrInvalidTxnState", stream.ErrInvalidTxnState, kerr.InvalidTxnState},
	{"ErrInvalidProducerIDMapping", stream.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
	{"ErrProducerFenced", stream.ErrProducerFenced, kerr.ProducerFenced},
	{"ErrInvalidTxnTimeout", stream.ErrInvalidTxnTimeout, kerr.InvalidTransactionTimeout},
	{"ErrInvalidGroupID", stream.ErrInvalidGroupID, kerr.InvalidGroupID},
	{"ErrNotReady", stream.ErrNotReady, kerr.LeaderNotAvailable},
	{"ErrStorage", stream.ErrStorage, kerr.KafkaStorageError},
	{"ErrTimeout", stream.ErrTimeout, kerr.RequestTimedOut},
	{"ErrStaleEntry", stream.ErrStaleEntry, kerr.InvalidUpdateVersion},
	{"ErrUnknownOutcome", stream.ErrUnknownOutcome, kerr.RequestTimedOut},
	{"ErrProducerIDLimit", stream.ErrProducerIDLimit, kerr.ThrottlingQuotaExceeded},
	{"ErrBackpressure", stream.ErrBackpressure, kerr.NotEnoughReplicas},
}

// shareErrors is every exported sentinel of internal/share with the Kafka
// code a client gets for it; TestShareErrorsAllListed keeps it complete.
var shareErrors = []struct {
	name string
	err  error
	want *kerr.Error
}{
	{"ErrInvalidRecordState", share.ErrInvalidRecordState, kerr.InvalidRecordState},
	{"ErrInvalidRequest", share.ErrInvalidRequest, kerr.InvalidRequest},
	{"ErrRenewDisabled", share.ErrRenewDisabled, kerr.InvalidRequest},
	{"ErrUnknownTopicOrPartition", share.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{"ErrGroupNotEmpty", share.ErrGroupNotEmpty, kerr.NonEmptyGroup},
	{"ErrUnavailable", share.ErrUnavailable, kerr.RequestTimedOut},
}

// TestShareErrors checks each share sentinel's code, from a row of
// errorTable.
func TestShareErrors(t *testing.T) {
	for _, tt := range shareErrors {
		t.Run(tt.name, func(t *testing.T) {
			row := false
			for _, r := range errorTable {
				row = row || r.err == tt.err
			}
			if !row {
				t.Fatalf("errorTable has no row for share.%s", tt.name)
			}
			if got := errorCode(nil, fmt.Errorf("wrapped: %w", tt.err)); got != tt.want.Code {
				t.Fatalf("errorCode(share.%s) = %d, want %d (%s)", tt.name, got, tt.want.Code, tt.want.Message)
			}
		})
	}
}

// shareInternalErrors are internal/share sentinels that never reach a
// handler, with the reason; they need no row.
var shareInternalErrors = map[string]string{
	"ErrDeadLetterTopicMissing": "the dead-letter writer returns it to the engine, which keeps the letters and retries",
	"ErrDeadLetterTopicRefused": "the dead-letter writer returns it to the engine, which keeps the letters and retries",
}

// TestShareErrorsAllListed fails when internal/share declares an exported
// Err variable that shareErrors does not list (or shareInternalErrors
// does not exempt).
func TestShareErrorsAllListed(t *testing.T) {
	declared := streamSentinels(t, "../share")
	if len(declared) == 0 {
		t.Fatal("found no sentinel in ../share: the parse is broken")
	}
	listed := map[string]bool{}
	for _, e := range shareErrors {
		listed[e.name] = true
	}
	for name := range shareInternalErrors {
		if !slices.Contains(declared, name) {
			t.Errorf("shareInternalErrors exempts share.%s, which the package no longer declares", name)
		}
		listed[name] = true
	}
	for _, name := range declared {
		if !listed[name] {
			t.Errorf("share.%s has no row in shareErrors (and maybe none in errorTable)", name)
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("shareErrors lists share.%s, which the package no longer declares", name)
	}
}

// TestStreamErrors checks each stream sentinel's code, and that it comes
// from a row of errorTable rather than the unmapped fallback.
func TestStreamErrors(t *testing.T) {
	for _, tt := range streamErrors {
		t.Run(tt.name, func(t *testing.T) {
			row := false
			for _, r := range errorTable {
				row = row || r.err == tt.err
			}
			if !row {
				t.Fatalf("errorTable has no row for stream.%s", tt.name)
			}
			if got := errorCode(nil, fmt.Errorf("wrapped: %w", tt.err)); got != tt.want.Code {
				t.Fatalf("errorCode(stream.%s) = %d, want %d (%s)", tt.name, got, tt.want.Code, tt.want.Message)
			}
		})
	}
}

// TestStreamErrorsAllListed parses internal/stream and fails when it
// declares an exported Err variable that streamErrors does not list.
func TestStreamErrorsAllListed(t *testing.T) {
	declared := streamSentinels(t, "../stream")
	if len(declared) == 0 {
		t.Fatal("found no sentinel in ../stream: the parse is broken")
	}
	listed := map[string]bool{}
	for _, e := range streamErrors {
		listed[e.name] = true
	}
	for _, name := range declared {
		if !listed[name] {
			t.Errorf("stream.%s has no row in streamErrors (and maybe none in errorTable)", name)
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("streamErrors lists stream.%s, which the package no longer declares", name)
	}
}

// streamSentinels returns the exported package-level variables named Err*
// declared in the non-test Go files of dir.
func streamSentinels(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(id.Name, "Err") && id.IsExported() {
						names = append(names, id.Name)
					}
				}
			}
		}
	}
	return names
}

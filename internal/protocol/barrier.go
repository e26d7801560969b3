package protocol

// The read barrier (DESIGN §5a rule 7): before a fetch past the local high
// watermark, ListOffsets or OffsetForLeaderEpoch is answered, the broker
// waits until its replay has passed etcd's current revision (Log.SyncRead),
// so a record sequenced through another broker is seen. When the barrier
// cannot complete (etcd unreachable or slow) the broker's state may be
// stale, and no answer computed from it may make a client act on it: an
// OFFSET_OUT_OF_RANGE would make a consumer reset its position, a stale
// end offset would make it skip or re-read.
//
// The barrier waits at most Options.ReadBarrierTimeout, then the
// partitions it guards are answered NOT_LEADER_OR_FOLLOWER. Of the
// retriable codes, it is the one every client handles on all three APIs
// by keeping its position, refreshing metadata and retrying, possibly on
// another broker: franz-go strips any retriable partition error and
// refreshes metadata; librdkafka treats it as a leader change; the Java
// consumer requests a metadata update for it in Fetch, ListOffsets and
// OffsetForLeaderEpoch alike, whereas REQUEST_TIMED_OUT and
// LEADER_NOT_AVAILABLE in a Fetch response make it throw "Unexpected error
// code" (FetchCollector.handleInitializeErrors).

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrReadBarrier wraps a Log.SyncRead failure. It maps to
// NOT_LEADER_OR_FOLLOWER whatever the underlying error.
var ErrReadBarrier = errors.New("protocol: read barrier failed; this broker may be behind the log")

// DefaultReadBarrierTimeout bounds one read barrier when
// Options.ReadBarrierTimeout is not set. It is well inside every client's
// request timeout (franz-go 10 s over a fetch's max wait, Java 30 s,
// librdkafka 60 s), so the client gets an answer it can act on rather than
// timing the request out.
const DefaultReadBarrierTimeout = 5 * time.Second

// readBarrier runs Log.SyncRead, bounded by Options.ReadBarrierTimeout.
func (s *Server) readBarrier(ctx context.Context) error {
	bctx, cancel := context.WithTimeout(ctx, s.opts.ReadBarrierTimeout)
	defer cancel()
	if err := s.opts.Log.SyncRead(bctx); err != nil {
		// The cause is told, not wrapped: the answer is the barrier's, not
		// that of whatever SyncRead returned (a storage error, a deadline).
		return fmt.Errorf("%w: %v", ErrReadBarrier, err)
	}
	return nil
}

package stream

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// CommittedFilter drops from one Fetch result what a read_committed
// consumer drops: control batches, and the batches of aborted
// transactions. As Kafka's consumer does, a producer id joins the aborted
// set when its aborted transaction's first offset is reached and leaves it
// at its abort marker. Batches must be given in offset order.
type CommittedFilter struct {
	aborted []AbortedTxn
	active  map[int64]bool
}

// NewCommittedFilter returns a filter for a Fetch result with the given
// aborted transactions (FetchResult.Aborted).
func NewCommittedFilter(aborted []AbortedTxn) *CommittedFilter {
	a := slices.Clone(aborted)
	slices.SortStableFunc(a, func(x, y AbortedTxn) int { return cmp.Compare(x.FirstOffset, y.FirstOffset) })
	return &CommittedFilter{aborted: a, active: map[int64]bool{}}
}

// Skip reports whether batch b is not for a read_committed reader.
func (f *CommittedFilter) Skip(b DecodedBatch) bool {
	if b.ProducerID >= 0 {
		for len(f.aborted) > 0 && f.aborted[0].FirstOffset <= b.LastOffset {
			f.active[f.aborted[0].ProducerID] = true
			f.aborted = f.aborted[1:]
		}
		if b.Control {
			if IsAbortMarker(b) {
				delete(f.active, b.ProducerID)
			}
			return true
		}
		if b.Transactional && f.active[b.ProducerID] {
			return true
		}
	}
	return b.Control
}

// IsAbortMarker reports whether a control batch is an abort marker: its
// record's key is version (int16) and type (int16, 0 = abort).
func IsAbortMarker(b DecodedBatch) bool {
	if len(b.Records) == 0 || len(b.Records[0].Key) < 4 {
		return false
	}
	return binary.BigEndian.Uint16(b.Records[0].Key[2:4]) == 0
}

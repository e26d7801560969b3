package stream

import (
	"slices"
	"testing"
)

func TestCommittedFilter(t *testing.T) {
	marker := func(off, pid int64, typ byte) DecodedBatch {
		return DecodedBatch{BaseOffset: off, LastOffset: off, ProducerID: pid, Transactional: true, Control: true,
			Records: []DecodedRecord{{Offset: off, Key: []byte{0, 0, 0, typ}}}}
	}
	txn := func(off, pid int64) DecodedBatch {
		return DecodedBatch{BaseOffset: off, LastOffset: off, ProducerID: pid, Transactional: true,
			Records: []DecodedRecord{{Offset: off}}}
	}
	batches := []DecodedBatch{
		txn(0, 1),       // aborted below
		txn(1, 2),       // committed
		marker(2, 1, 0), // abort of producer 1
		marker(3, 2, 1), // commit of producer 2
		{BaseOffset: 4, LastOffset: 4, ProducerID: -1, Records: []DecodedRecord{{Offset: 4}}}, // not transactional
		txn(5, 1), // producer 1's next transaction, not aborted
		txn(6, 3), // aborted, its first offset given out of order
		marker(7, 3, 0),
	}
	// Kafka lists aborted transactions in any order; the filter sorts them.
	f := NewCommittedFilter([]AbortedTxn{{ProducerID: 3, FirstOffset: 6}, {ProducerID: 1, FirstOffset: 0}})
	var kept []int64
	for _, b := range batches {
		if !f.Skip(b) {
			kept = append(kept, b.BaseOffset)
		}
	}
	if want := []int64{1, 4, 5}; !slices.Equal(kept, want) {
		t.Fatalf("kept offsets %v, want %v", kept, want)
	}
}

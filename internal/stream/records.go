package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DecodedBatch is one record batch of a Fetch result, decompressed, for
// the services that read records themselves (the share groups' dead-letter
// writer, tools). Offsets and timestamps are final.
type DecodedBatch struct {
	BaseOffset    int64
	LastOffset    int64
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Transactional bool
	Control       bool
	Records       []DecodedRecord
}

// DecodedRecord is one record of a DecodedBatch. Key and Value are nil
// when null; they point into the decompressed batch.
type DecodedRecord struct {
	Offset    int64
	Timestamp int64 // ms; the batch's max timestamp for LogAppendTime topics
	Key       []byte
	Value     []byte
	Headers   []kmsg.Header
}

// DecodeBatches decodes the record batches of a Fetch result (the whole
// of FetchResult.Records). It never panics on malformed input.
func DecodeBatches(data []byte) ([]DecodedBatch, error) {
	var out []DecodedBatch
	var ferr error
	err := forEachBatch(data, func(b []byte, h batchHeader) bool {
		hh, recs, err := batchRecordsData(b)
		if err != nil {
			ferr = fmt.Errorf("%w: batch at offset %d: %v", ErrCorruptMessage, h.BaseOffset, err)
			return false
		}
		d := DecodedBatch{
			BaseOffset:    hh.BaseOffset,
			LastOffset:    hh.BaseOffset + int64(hh.LastOffsetDelta),
			ProducerID:    hh.ProducerID,
			ProducerEpoch: hh.ProducerEpoch,
			BaseSequence:  hh.BaseSequence,
			Transactional: hh.transactional(),
			Control:       hh.control(),
		}
		err = iterRecords(recs, hh.NumRecords, func(_ int32, r *rawRecord) error {
			var kr kmsg.Record
			if err := kr.ReadFrom(r.Raw); err != nil {
				return fmt.Errorf("%w: %v", ErrCorruptMessage, err)
			}
			ts := hh.FirstTimestamp + kr.TimestampDelta64
			if hh.logAppendTime() {
				ts = hh.MaxTimestamp
			}
			rec := DecodedRecord{Offset: hh.BaseOffset + int64(kr.OffsetDelta), Timestamp: ts, Headers: kr.Headers}
			if r.HasKey {
				rec.Key = r.Key
			}
			if r.HasValue {
				rec.Value = r.Value
			}
			d.Records = append(d.Records, rec)
			return nil
		})
		if err != nil {
			ferr = err
			return false
		}
		out = append(out, d)
		return true
	})
	if err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, ferr
	}
	return out, nil
}

// EncodeBatch builds an uncompressed magic-2 record batch of records for
// Produce, with final CRC: producer id, epoch and base sequence as given
// (pid -1 for a non-idempotent batch), every record stamped timestamp
// (ms). Records' offset deltas, timestamp deltas and lengths are set here.
func EncodeBatch(pid int64, epoch int16, baseSeq int32, timestamp int64, records []kmsg.Record) []byte {
	var recs []byte
	for i := range records {
		r := records[i]
		r.OffsetDelta = int32(i)
		r.TimestampDelta, r.TimestampDelta64 = 0, 0
		r.Length = 0 // encodes as one byte: the body is the rest
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	h := batchHeader{LastOffsetDelta: int32(len(records) - 1), FirstTimestamp: timestamp, MaxTimestamp: timestamp,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: baseSeq, NumRecords: int32(len(records))}
	return buildBatch(h, 0, recs)
}

// BatchReader is what FindBatch reads: a partition's offsets and its
// batches.
type BatchReader interface {
	State(topic string, partition int32) (PartitionState, error)
	Fetch(ctx context.Context, p FetchPartition) (FetchResult, error)
}

// FindBatch reports whether the partition holds a batch of producer id
// pid, epoch and base sequence seq at or past offset from. A writer that
// produced under a producer id the sequencer has since expired uses it to
// tell whether its last batch landed before producing it again.
func FindBatch(ctx context.Context, log BatchReader, t TopicInfo, partition int32, from, pid int64, epoch int16, seq int32) (bool, error) {
	ps, err := log.State(t.Name, partition)
	if err != nil {
		return false, err
	}
	for off := max(from, ps.LogStartOffset); off < ps.HighWatermark; {
		res, err := log.Fetch(ctx, FetchPartition{TopicID: t.ID, Partition: partition, Offset: off, MaxBytes: 1 << 20})
		if errors.Is(err, ErrOffsetOutOfRange) {
			if ps, err = log.State(t.Name, partition); err != nil {
				return false, err
			}
			if off >= ps.LogStartOffset {
				return false, nil
			}
			off = ps.LogStartOffset
			continue
		}
		if err != nil {
			return false, err
		}
		batches, err := DecodeBatches(res.Records)
		if err != nil {
			return false, err
		}
		if len(batches) == 0 {
			return false, nil
		}
		for _, x := range batches {
			if x.ProducerID == pid && x.ProducerEpoch == epoch && x.BaseSequence == seq {
				return true, nil
			}
			off = max(off, x.LastOffset+1)
		}
	}
	return false, nil
}

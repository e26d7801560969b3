package stream

import (
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

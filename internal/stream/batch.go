package stream

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/runnel-dev/runnel/internal/config"
)

// Record batch (magic 2) header layout. The base offset and partition leader
// epoch are outside the CRC, so the broker can stamp them on read (DESIGN §2).
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
	batchHeaderLen     = 61
)

// Batch attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
	// attrImplicitAdd is never stored in a batch: intake descriptors carry it
	// for a transactional batch whose producer relies on Transactions V2
	// adding the partition to its transaction implicitly.
	attrImplicitAdd = 0x4000
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the decoded fixed header of one record batch.
type batchHeader struct {
	BaseOffset      int64
	Length          int32 // bytes after the length field
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

func (h batchHeader) codec() Codec        { return Codec(h.Attributes & attrCodecMask) }
func (h batchHeader) transactional() bool { return h.Attributes&attrTransactional != 0 }
func (h batchHeader) control() bool       { return h.Attributes&attrControl != 0 }
func (h batchHeader) logAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }
func (h batchHeader) totalLen() int       { return int(h.Length) + 12 }
func (h batchHeader) lastSequence() int32 { return addSeq(h.BaseSequence, h.LastOffsetDelta) }
func (h batchHeader) idempotent() bool    { return h.ProducerID >= 0 }

// addSeq adds to a producer sequence number, wrapping at MaxInt32 as Kafka does.
func addSeq(seq, delta int32) int32 {
	if int64(seq)+int64(delta) > math.MaxInt32 {
		return int32(int64(seq) + int64(delta) - math.MaxInt32 - 1)
	}
	return seq + delta
}

// parseBatchHeader decodes the header at the start of b. It checks only that
// the header fits; validateBatch checks the rest.
func parseBatchHeader(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderLen {
		return batchHeader{}, fmt.Errorf("%w: batch of %d bytes is shorter than its %d-byte header", ErrCorruptMessage, len(b), batchHeaderLen)
	}
	be := binary.BigEndian
	return batchHeader{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		Length:          int32(be.Uint32(b[offBatchLength:])),
		Magic:           int8(b[offMagic]),
		CRC:             be.Uint32(b[offCRC:]),
		Attributes:      int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:  int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:      int32(be.Uint32(b[offRecordCount:])),
	}, nil
}

// setBaseOffset stamps the final base offset (outside the CRC).
func setBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// setLeaderEpoch stamps the partition leader epoch (outside the CRC).
func setLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// fixCRC recomputes the batch CRC after a rewrite.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crcTable))
}

// rawRecord is one record of a batch, pointing into the decompressed records.
type rawRecord struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil = null key
	Value          []byte // nil = null value (tombstone)
	HasKey         bool
	HasValue       bool
	Raw            []byte // the whole encoded record including its length varint
}

// iterRecords walks count records in data, calling fn for each. It checks
// every length against the data it has and never panics on malformed input.
func iterRecords(data []byte, count int32, fn func(i int32, r *rawRecord) error) error {
	var r rawRecord
	for i := int32(0); i < count; i++ {
		start := data
		length, n := binary.Varint(data)
		if n <= 0 || length < 0 || int64(len(data)-n) < length {
			return fmt.Errorf("%w: record %d has a bad length", ErrCorruptMessage, i)
		}
		body := data[n : n+int(length)]
		data = data[n+int(length):]
		r = rawRecord{Raw: start[:n+int(length)]}
		if len(body) < 1 {
			return fmt.Errorf("%w: record %d is empty", ErrCorruptMessage, i)
		}
		r.Attributes = int8(body[0])
		body = body[1:]
		var v int64
		if v, body = readVarlong(body); body == nil {
			return fmt.Errorf("%w: record %d timestamp delta", ErrCorruptMessage, i)
		}
		r.TimestampDelta = v
		if v, body = readVarlong(body); body == nil || v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("%w: record %d offset delta", ErrCorruptMessage, i)
		}
		r.OffsetDelta = int32(v)
		var ok bool
		if r.Key, r.HasKey, body, ok = readBytesField(body); !ok {
			return fmt.Errorf("%w: record %d key", ErrCorruptMessage, i)
		}
		if r.Value, r.HasValue, body, ok = readBytesField(body); !ok {
			return fmt.Errorf("%w: record %d value", ErrCorruptMessage, i)
		}
		var nh int64
		if nh, body = readVarlong(body); body == nil || nh < 0 {
			return fmt.Errorf("%w: record %d header count", ErrCorruptMessage, i)
		}
		for h := int64(0); h < nh; h++ {
			var hk []byte
			var has bool
			if hk, has, body, ok = readBytesField(body); !ok || !has {
				return fmt.Errorf("%w: record %d header key", ErrCorruptMessage, i)
			}
			_ = hk
			if _, _, body, ok = readBytesField(body); !ok {
				return fmt.Errorf("%w: record %d header value", ErrCorruptMessage, i)
			}
		}
		if len(body) != 0 {
			return fmt.Errorf("%w: record %d has %d trailing bytes", ErrCorruptMessage, i, len(body))
		}
		if err := fn(i, &r); err != nil {
			return err
		}
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrCorruptMessage, len(data))
	}
	return nil
}

// readVarlong reads a zigzag varint; rest is nil on error.
func readVarlong(b []byte) (int64, []byte) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil
	}
	rest := b[n:]
	if rest == nil {
		rest = []byte{}
	}
	return v, rest
}

// readBytesField reads a varint-length-prefixed byte field (-1 = null).
func readBytesField(b []byte) (val []byte, present bool, rest []byte, ok bool) {
	l, n := binary.Varint(b)
	if n <= 0 {
		return nil, false, nil, false
	}
	b = b[n:]
	if l < 0 {
		if l != -1 {
			return nil, false, nil, false
		}
		return nil, false, b, true
	}
	if int64(len(b)) < l {
		return nil, false, nil, false
	}
	return b[:l], true, b[l:], true
}

// validated is a produced batch after validation, ready for the intake buffer.
type validated struct {
	hdr   batchHeader
	bytes []byte
	// records is the decompressed records section of the batch as the
	// client sent it, valid while the produce request is being validated.
	records []byte
}

// validateBatch checks one produced batch the way Kafka's log validator does
// (DESIGN §5a rule 9) and applies the topic's timestamp type and compression
// rewrites. nowMs is the broker's clock. It never modifies records in place;
// a rewrite returns a new slice.
func validateBatch(records []byte, tc config.Topic, nowMs int64) (validated, []RecordError, error) {
	h, err := parseBatchHeader(records)
	if err != nil {
		return validated{}, nil, err
	}
	if h.Magic != 2 {
		return validated{}, nil, fmt.Errorf("%w: magic %d (only magic 2 is accepted)", ErrUnsupportedForMessageFormat, h.Magic)
	}
	if h.Length < batchHeaderLen-12 || h.totalLen() != len(records) {
		if h.Length >= 0 && h.totalLen() < len(records) {
			return validated{}, nil, fmt.Errorf("%w: a produce request must hold exactly one record batch per partition", ErrInvalidRecord)
		}
		return validated{}, nil, fmt.Errorf("%w: batch length %d does not match %d bytes sent", ErrCorruptMessage, h.Length, len(records))
	}
	if tc.MaxMessageBytes > 0 && len(records) > int(tc.MaxMessageBytes) {
		return validated{}, nil, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrMessageTooLarge, len(records), tc.MaxMessageBytes)
	}
	if crc32.Checksum(records[offAttributes:], crcTable) != h.CRC {
		return validated{}, nil, fmt.Errorf("%w: CRC mismatch", ErrCorruptMessage)
	}
	if h.control() {
		return validated{}, nil, fmt.Errorf("%w: clients may not produce control batches", ErrInvalidRecord)
	}
	if h.NumRecords <= 0 {
		return validated{}, nil, fmt.Errorf("%w: batch holds no records", ErrInvalidRecord)
	}
	if h.LastOffsetDelta != h.NumRecords-1 {
		return validated{}, nil, fmt.Errorf("%w: last offset delta %d with %d records", ErrInvalidRecord, h.LastOffsetDelta, h.NumRecords)
	}
	if h.idempotent() && (h.BaseSequence < 0 || h.ProducerEpoch < 0) {
		return validated{}, nil, fmt.Errorf("%w: idempotent batch with sequence %d epoch %d", ErrInvalidRecord, h.BaseSequence, h.ProducerEpoch)
	}
	codec := h.codec()
	if codec > CodecZstd {
		return validated{}, nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, codec)
	}
	data, err := decompress(codec, records[batchHeaderLen:])
	if err != nil {
		return validated{}, nil, fmt.Errorf("%w: cannot decompress records: %v", ErrCorruptMessage, err)
	}
	var recErrs []RecordError
	tsErr := false
	checkTS := h.Attributes&attrLogAppendTime == 0 && tc.TimestampType != "LogAppendTime"
	var maxTS int64 = -1
	err = iterRecords(data, h.NumRecords, func(i int32, r *rawRecord) error {
		if r.OffsetDelta != i {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, r.OffsetDelta)
		}
		ts := h.FirstTimestamp + r.TimestampDelta
		if ts > maxTS {
			maxTS = ts
		}
		if checkTS && ts >= 0 {
			if tc.TimestampBeforeMaxMs >= 0 && nowMs-ts > tc.TimestampBeforeMaxMs {
				recErrs = append(recErrs, RecordError{Index: i, Message: fmt.Sprintf("timestamp %d is more than message.timestamp.before.max.ms before the broker's time", ts)})
				tsErr = true
			} else if tc.TimestampAfterMaxMs >= 0 && ts-nowMs > tc.TimestampAfterMaxMs {
				recErrs = append(recErrs, RecordError{Index: i, Message: fmt.Sprintf("timestamp %d is more than message.timestamp.after.max.ms after the broker's time", ts)})
				tsErr = true
			}
		}
		if tc.CleanupCompact && !r.HasKey {
			recErrs = append(recErrs, RecordError{Index: i, Message: "compacted topic cannot accept a record without a key"})
		}
		return nil
	})
	if err != nil {
		return validated{}, nil, err
	}
	if len(recErrs) > 0 {
		base := ErrInvalidRecord
		if tsErr {
			base = ErrInvalidTimestamp
		}
		return validated{}, recErrs, fmt.Errorf("%w: %s", base, recErrs[0].Message)
	}
	out := records
	rewrite := false
	if target, ok := CodecByName(tc.CompressionType); ok && target != codec {
		out, err = recompress(h, data, target)
		if err != nil {
			return validated{}, nil, err
		}
		rewrite = true
	}
	if tc.TimestampType == "LogAppendTime" {
		if !rewrite {
			out = append([]byte(nil), records...)
		}
		attrs := binary.BigEndian.Uint16(out[offAttributes:]) | attrLogAppendTime
		binary.BigEndian.PutUint16(out[offAttributes:], attrs)
		binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(nowMs))
		rewrite = true
	} else if !h.logAppendTime() && maxTS != h.MaxTimestamp && maxTS >= 0 {
		// Kafka trusts the records, not the header: fix a wrong max timestamp.
		if !rewrite {
			out = append([]byte(nil), records...)
		}
		binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(maxTS))
		rewrite = true
	}
	if rewrite {
		fixCRC(out)
	}
	nh, _ := parseBatchHeader(out)
	return validated{hdr: nh, bytes: out, records: data}, nil, nil
}

// RecordError names one rejected record of a batch (KIP-467).
type RecordError struct {
	Index   int32
	Message string
}

// recompress rebuilds a batch with another codec, keeping its header fields.
func recompress(h batchHeader, data []byte, target Codec) ([]byte, error) {
	comp, err := compress(target, data)
	if err != nil {
		return nil, fmt.Errorf("%w: recompressing: %v", ErrStorage, err)
	}
	return buildBatch(h, int16(h.Attributes&^attrCodecMask)|int16(target), comp), nil
}

// buildBatch encodes a batch header with the given attributes around an
// already encoded (and possibly compressed) records section, with a fresh CRC.
func buildBatch(h batchHeader, attrs int16, records []byte) []byte {
	out := make([]byte, batchHeaderLen+len(records))
	be := binary.BigEndian
	be.PutUint64(out[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(out[offBatchLength:], uint32(len(out)-12))
	be.PutUint32(out[offLeaderEpoch:], 0xffffffff)
	out[offMagic] = 2
	be.PutUint16(out[offAttributes:], uint16(attrs))
	be.PutUint32(out[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(out[offFirstTimestamp:], uint64(h.FirstTimestamp))
	be.PutUint64(out[offMaxTimestamp:], uint64(h.MaxTimestamp))
	be.PutUint64(out[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(out[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(out[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(out[offRecordCount:], uint32(h.NumRecords))
	copy(out[batchHeaderLen:], records)
	fixCRC(out)
	return out
}

// batchRecordsData returns a stored batch's decompressed records section.
func batchRecordsData(b []byte) (batchHeader, []byte, error) {
	h, err := parseBatchHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.totalLen() > len(b) || h.Length < batchHeaderLen-12 {
		return h, nil, fmt.Errorf("%w: truncated batch", ErrCorruptMessage)
	}
	data, err := decompress(h.codec(), b[batchHeaderLen:h.totalLen()])
	return h, data, err
}

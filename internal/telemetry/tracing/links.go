package tracing

import (
	"context"
	"encoding/binary"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Bounds on what one request's records are searched for trace contexts.
const (
	// MaxLinks caps the distinct trace contexts kept per request.
	MaxLinks = 32
	// MaxScanBytes caps the (decompressed) record bytes read per request.
	MaxScanBytes = 1 << 20
)

// TraceparentHeader is the W3C Trace Context record header key.
const TraceparentHeader = "traceparent"

// Record batch v2 layout (magic 2), the offsets this file reads.
const (
	batchLengthAt = 8  // int32: bytes after this field
	magicAt       = 16 // int8
	attributesAt  = 21 // int16
	recordCountAt = 57 // int32
	recordsAt     = 61 // first record
	batchOverhead = 12 // base offset and length fields
	codecMask     = 0x07
	controlBit    = 0x20
)

// Links gathers the distinct trace contexts carried by traceparent headers
// in produced record batches, within MaxLinks and MaxScanBytes. Its zero
// value is ready; it is not safe for concurrent use.
type Links struct {
	links   []trace.Link
	scanned int
	// Unscanned counts the batches not wholly searched: past the byte
	// budget, malformed, or compressed with an unreadable codec.
	Unscanned int
	// Dropped counts distinct trace contexts found past MaxLinks.
	Dropped int
}

// Links returns the links gathered so far.
func (l *Links) Links() []trace.Link { return l.links }

// AddBatches searches the record batches in data (one or more, as a
// Produce request's partition carries them) for traceparent headers.
// Malformed input is skipped, never trusted: the batches have not been
// validated yet when a produce span is started.
func (l *Links) AddBatches(data []byte) {
	for len(data) >= recordsAt {
		n := int(int32(binary.BigEndian.Uint32(data[batchLengthAt:]))) + batchOverhead
		if n < recordsAt || n > len(data) || data[magicAt] != 2 {
			l.Unscanned++
			return
		}
		batch := data[:n]
		data = data[n:]
		attrs := binary.BigEndian.Uint16(batch[attributesAt:])
		if attrs&controlBit != 0 {
			continue
		}
		room := MaxScanBytes - l.scanned
		if room <= 0 {
			l.Unscanned++
			continue
		}
		recs, whole := batch[recordsAt:], true
		if codec := int(attrs & codecMask); codec != 0 {
			var err error
			if recs, whole, err = decompressPrefix(codec, recs, room); err != nil {
				l.Unscanned++
				continue
			}
		} else if len(recs) > room {
			recs, whole = recs[:room], false
		}
		l.scanned += len(recs)
		if !l.addRecords(recs, int32(binary.BigEndian.Uint32(batch[recordCountAt:]))) || !whole {
			l.Unscanned++
		}
	}
}

// addRecords walks count records; it reports false on malformed data.
func (l *Links) addRecords(b []byte, count int32) bool {
	for i := int32(0); i < count; i++ {
		length, ok := varint(&b)
		if !ok || length < 0 || int64(len(b)) < length {
			return false
		}
		rec := b[:length]
		b = b[length:]
		if len(rec) < 1 {
			return false
		}
		rec = rec[1:]                   // attributes
		if _, ok := varint(&rec); !ok { // timestamp delta
			return false
		}
		if _, ok := varint(&rec); !ok { // offset delta
			return false
		}
		if !skipBytes(&rec) || !skipBytes(&rec) { // key, value
			return false
		}
		nh, ok := varint(&rec)
		if !ok || nh < 0 {
			return false
		}
		for h := int64(0); h < nh; h++ {
			key, ok := bytesField(&rec)
			if !ok {
				return false
			}
			val, ok := bytesField(&rec)
			if !ok {
				return false
			}
			if string(key) == TraceparentHeader {
				l.add(val)
			}
		}
	}
	return true
}

// add keeps the trace context of one traceparent value when it is valid
// and not already kept.
func (l *Links) add(traceparent []byte) {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier(traceparent)))
	if !sc.IsValid() {
		return
	}
	for _, k := range l.links {
		if k.SpanContext.TraceID() == sc.TraceID() && k.SpanContext.SpanID() == sc.SpanID() {
			return
		}
	}
	if len(l.links) >= MaxLinks {
		l.Dropped++
		return
	}
	l.links = append(l.links, trace.Link{SpanContext: sc})
}

// carrier presents one traceparent value to the W3C propagator.
type carrier []byte

func (c carrier) Get(key string) string {
	if key == TraceparentHeader {
		return string(c)
	}
	return ""
}
func (c carrier) Set(string, string) {}
func (c carrier) Keys() []string     { return []string{TraceparentHeader} }

// varint reads a zigzag varint (Kafka's record encoding) off the front of b.
func varint(b *[]byte) (int64, bool) {
	v, n := binary.Varint(*b)
	if n <= 0 {
		return 0, false
	}
	*b = (*b)[n:]
	return v, true
}

// bytesField reads a varint-length-prefixed field; a negative length is a
// null field.
func bytesField(b *[]byte) ([]byte, bool) {
	n, ok := varint(b)
	if !ok || int64(len(*b)) < n {
		return nil, false
	}
	if n < 0 {
		return nil, true
	}
	v := (*b)[:n]
	*b = (*b)[n:]
	return v, true
}

func skipBytes(b *[]byte) bool {
	_, ok := bytesField(b)
	return ok
}

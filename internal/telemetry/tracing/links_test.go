package tracing

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compress compresses records as Kafka clients do (snappy as a raw block).
func compress(codec int, recs []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case 0:
		return recs
	case codecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	case codecSnappy:
		return snappy.Encode(nil, recs)
	case codecLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	case codecZstd:
		w, _ := zstd.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	case -codecSnappy: // snappy-java framing, in two chunks
		buf.Write(xerialMagic)
		buf.Write(make([]byte, 8))
		half := len(recs) / 2
		for _, part := range [][]byte{recs[:half], recs[half:]} {
			c := snappy.Encode(nil, part)
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(c))))
			buf.Write(c)
		}
	}
	return buf.Bytes()
}

// batch encodes a magic-2 batch of records with the given header values
// under key traceparent (nil: no header), with attributes attrs (the codec
// in attrs compresses the records).
func batch(attrs int16, values ...[]byte) []byte { return batchOf(attrs, 1, values...) }

// batchOf is batch with record values of size bytes; attrs -codecSnappy
// frames snappy as the Java client does.
func batchOf(attrs int16, size int, values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = bytes.Repeat([]byte("v"), size)
		if v != nil {
			r.Headers = []kmsg.Header{{Key: "k", Value: []byte("x")}, {Key: TraceparentHeader, Value: v}}
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // less the zero length's one byte
		recs = r.AppendTo(recs)
	}
	b := kmsg.NewRecordBatch()
	b.Magic, b.Attributes = 2, attrs
	b.NumRecords = int32(len(values))
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	codec := int(attrs & codecMask)
	if attrs == -codecSnappy {
		codec, attrs = -codecSnappy, codecSnappy
	}
	b.Attributes = attrs
	b.Records = compress(codec, recs)
	b.Length = int32(len(b.AppendTo(nil)) - batchOverhead)
	return b.AppendTo(nil)
}

func tp(trace, span int) []byte {
	return fmt.Appendf(nil, "00-%032x-%016x-01", trace, span)
}

func TestLinks(t *testing.T) {
	good := batch(0, tp(1, 1), nil, tp(2, 1), tp(1, 1), []byte("00-bad"), tp(1, 2))
	tests := []struct {
		name      string
		data      [][]byte
		links     []string // trace-id/span-id
		unscanned int
	}{
		{"distinct contexts in order", [][]byte{good}, []string{"1/1", "2/1", "1/2"}, 0},
		{"two batches in one partition", [][]byte{append(batch(0, tp(3, 3)), batch(0, tp(4, 4))...)}, []string{"3/3", "4/4"}, 0},
		{"across partitions, deduplicated", [][]byte{batch(0, tp(5, 5)), batch(0, tp(5, 5))}, []string{"5/5"}, 0},
		{"gzip", [][]byte{batch(codecGzip, tp(6, 1), tp(6, 2))}, []string{"6/1", "6/2"}, 0},
		{"snappy", [][]byte{batch(codecSnappy, tp(6, 1), tp(6, 2))}, []string{"6/1", "6/2"}, 0},
		{"snappy-java", [][]byte{batch(-codecSnappy, tp(6, 1), tp(6, 2))}, []string{"6/1", "6/2"}, 0},
		{"lz4", [][]byte{batch(codecLZ4, tp(6, 1), tp(6, 2))}, []string{"6/1", "6/2"}, 0},
		{"zstd", [][]byte{batch(codecZstd, tp(6, 1), tp(6, 2))}, []string{"6/1", "6/2"}, 0},
		{"unknown codec", [][]byte{batch(5, tp(6, 6))}, nil, 1},
		{"corrupt gzip", [][]byte{corruptRecords(batch(codecGzip, tp(6, 6)))}, nil, 1},
		{"control batch skipped", [][]byte{batch(0x20, tp(7, 7))}, nil, 0},
		{"truncated batch", [][]byte{good[:len(good)-3]}, nil, 1},
		{"records shorter than their count", [][]byte{corruptCount(batch(0, tp(8, 8)))}, []string{"8/8"}, 1},
		{"not magic 2", [][]byte{withMagic(batch(0, tp(9, 9)), 1)}, nil, 1},
		{"empty", [][]byte{nil}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Links
			for _, d := range tt.data {
				l.AddBatches(d)
			}
			var got []string
			for _, k := range l.Links() {
				got = append(got, fmt.Sprintf("%x/%x", k.SpanContext.TraceID()[15], k.SpanContext.SpanID()[7]))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.links) {
				t.Errorf("links %v, want %v", got, tt.links)
			}
			if l.Unscanned != tt.unscanned {
				t.Errorf("unscanned %d, want %d", l.Unscanned, tt.unscanned)
			}
		})
	}
}

func corruptRecords(b []byte) []byte {
	for i := recordsAt; i < len(b) && i < recordsAt+12; i++ {
		b[i] ^= 0xff
	}
	return b
}

func corruptCount(b []byte) []byte {
	b[recordCountAt+3]++ // one record more than the batch holds
	return b
}

func withMagic(b []byte, m byte) []byte {
	b[magicAt] = m
	return b
}

func TestLinksBounds(t *testing.T) {
	var vals [][]byte
	for i := 1; i <= MaxLinks+5; i++ {
		vals = append(vals, tp(i, 1))
	}
	var l Links
	l.AddBatches(batch(0, vals...))
	if len(l.Links()) != MaxLinks || l.Dropped != 5 {
		t.Fatalf("%d links, %d dropped; want %d and 5", len(l.Links()), l.Dropped, MaxLinks)
	}

	// Records past MaxScanBytes are not read, compressed or not, and a
	// compressed batch is inflated no further than the budget.
	for _, codec := range []int16{0, codecGzip, codecSnappy, -codecSnappy, codecLZ4, codecZstd} {
		var l Links
		l.AddBatches(batchOf(codec, MaxScanBytes*3/4, tp(1, 1), tp(2, 2), tp(3, 3)))
		l.AddBatches(batch(codec, tp(4, 4)))
		if len(l.Links()) != 1 || l.Links()[0].SpanContext.TraceID()[15] != 1 || l.Unscanned != 2 || l.scanned > MaxScanBytes {
			t.Errorf("codec %d: %d links, %d unscanned, %d bytes read; want 1, 2, <= %d",
				codec, len(l.Links()), l.Unscanned, l.scanned, MaxScanBytes)
		}
	}
}

// FuzzLinks: any input is handled without panic and within the bounds.
func FuzzLinks(f *testing.F) {
	f.Add(batch(0, tp(1, 1), nil, tp(2, 2)))
	f.Add(batch(0, []byte("")))
	for _, codec := range []int16{codecGzip, codecSnappy, -codecSnappy, codecLZ4, codecZstd} {
		f.Add(batch(codec, tp(1, 1)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var l Links
		l.AddBatches(data)
		if len(l.Links()) > MaxLinks {
			t.Fatalf("%d links", len(l.Links()))
		}
	})
}

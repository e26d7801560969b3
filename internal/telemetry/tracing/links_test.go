package tracing

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// batch encodes a magic-2 batch of records with the given header values
// under key traceparent (nil: no header), with attributes attrs.
func batch(attrs int16, values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte("v")
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
	b.Records = recs
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
		{"compressed batch not read", [][]byte{batch(1, tp(6, 6))}, nil, 1},
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

	// Past MaxScanBytes batches are counted, not read.
	big := batch(0, tp(1, 1))
	var l2 Links
	n := 0
	for n+len(big) <= MaxScanBytes {
		l2.AddBatches(big)
		n += len(big)
	}
	l2.AddBatches(batch(0, tp(2, 2)))
	if len(l2.Links()) != 1 || l2.Unscanned != 1 {
		t.Fatalf("%d links, %d unscanned past the byte budget; want 1 and 1", len(l2.Links()), l2.Unscanned)
	}
}

// FuzzLinks: any input is handled without panic and within the bounds.
func FuzzLinks(f *testing.F) {
	f.Add(batch(0, tp(1, 1), nil, tp(2, 2)))
	f.Add(batch(0, []byte("")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var l Links
		l.AddBatches(data)
		if len(l.Links()) > MaxLinks {
			t.Fatalf("%d links", len(l.Links()))
		}
	})
}

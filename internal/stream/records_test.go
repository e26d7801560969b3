package stream

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DecodeBatches reads back what EncodeBatch builds and what producers send
// compressed; a truncated batch is an error, not a panic.
func TestDecodeBatches(t *testing.T) {
	enc := EncodeBatch(7, 2, 40, 1000, []kmsg.Record{
		{Key: []byte("k"), Value: []byte("v"), Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}},
		{Value: []byte(string(make([]byte, 300)))}, // a length varint of two bytes
		{Key: []byte{}},
	})
	setBaseOffset(enc, 10)
	zs := makeBatch(-1, -1, -1, 3, 2000, CodecZstd)
	setBaseOffset(zs, 13)
	bs, err := DecodeBatches(append(append([]byte(nil), enc...), zs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || len(bs[0].Records) != 3 || len(bs[1].Records) != 3 {
		t.Fatalf("decoded %d batches: %+v", len(bs), bs)
	}
	b := bs[0]
	if b.BaseOffset != 10 || b.LastOffset != 12 || b.ProducerID != 7 || b.ProducerEpoch != 2 || b.BaseSequence != 40 {
		t.Fatalf("header: %+v", b)
	}
	r := b.Records
	if string(r[0].Key) != "k" || string(r[0].Value) != "v" || fmt.Sprint(r[0].Headers) != fmt.Sprint([]kmsg.Header{{Key: "h", Value: []byte("x")}}) ||
		r[0].Timestamp != 1000 || r[0].Offset != 10 {
		t.Fatalf("record 0: %+v", r[0])
	}
	if r[1].Key != nil || len(r[1].Value) != 300 || r[2].Key == nil || len(r[2].Key) != 0 || r[2].Value != nil || r[2].Offset != 12 {
		t.Fatalf("records 1-2: null key %v, value %d bytes; empty key %v, null value %v", r[1].Key == nil, len(r[1].Value), r[2].Key != nil, r[2].Value == nil)
	}
	if z := bs[1].Records[2]; z.Offset != 15 || string(z.Key) != "k2" || z.Timestamp != 2002 {
		t.Fatalf("zstd record: %+v", z)
	}
	if _, err := DecodeBatches(enc[:len(enc)-3]); err == nil {
		t.Fatal("truncated batch decoded")
	}
}

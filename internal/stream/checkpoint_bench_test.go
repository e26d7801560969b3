package stream

import (
	"fmt"
	"testing"
)

// benchState is a sequencer state like one after a minute at 50 MB/s on
// 16 partitions: per partition, a few thousand archived chunks (three per
// segment) and some unarchived intake extents; and the garbage list of two
// minutes of intake objects flushed 500 times a second.
func benchState(chunksPerPart int) *state {
	st := newState()
	var id TopicID
	copy(id[:], "0123456789abcdef")
	t := &topicState{ID: id, Name: "bench", Configs: map[string]string{"retention.ms": "604800000"}}
	for p := 0; p < 16; p++ {
		ps := newPart()
		off := int64(0)
		for c := 0; c < chunksPerPart; c++ {
			seg := fmt.Sprintf("topics/30313233343536373839616263646566/%d/%020d-01JD5Y2F3G4H5J6K7M8N9P0Q1R", p, off/3*3)
			ps.Extents = append(ps.Extents, extent{Base: off, Last: off + 999, Obj: seg, Pos: int64(c%3) << 20, Len: 1 << 20, MaxTS: 1763790000000 + off, Segment: true})
			off += 1000
		}
		for c := 0; c < 100; c++ {
			obj := fmt.Sprintf("intake/00000000/01JD5Y2F3G4H5J6K7M8N9P%04d", c)
			ps.Extents = append(ps.Extents, extent{Base: off, Last: off + 63, Obj: obj, Pos: int64(p) * 65536, Len: 65536, MaxTS: 1763790000000 + off})
			off += 64
		}
		ps.Next = off
		t.Parts = append(t.Parts, ps)
	}
	st.Topics[id] = t
	st.ByName["bench"] = id
	for i := range 60000 {
		st.Garbage = append(st.Garbage, garbageObj{Obj: fmt.Sprintf("intake/00000000/01JD5Y2F3G4H5J%012d", i), Rev: int64(1000 + i), Clock: 1763790000000 + int64(i*2)})
	}
	return st
}

func BenchmarkCheckpointEncode(b *testing.B) {
	for _, n := range []int{300, 3000} {
		st := benchState(n)
		data, err := encodeState(st)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("chunks=%dx16", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if _, err := encodeState(st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes/checkpoint")
		})
	}
}

func BenchmarkCheckpointDecode(b *testing.B) {
	data, err := encodeState(benchState(3000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := decodeState(data); err != nil {
			b.Fatal(err)
		}
	}
}

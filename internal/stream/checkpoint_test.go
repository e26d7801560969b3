package stream

import (
	"bytes"
	"compress/flate"
	"encoding/gob"
	"math/rand/v2"
	"reflect"
	"testing"
)

// encodeStateV1 is how version 1 checkpoints were written: the whole state,
// extents included, as gob in a flate stream.
func encodeStateV1(t *testing.T, st *state) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(1)
	zw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	if err := gob.NewEncoder(zw).Encode(st); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomExtents(r *rand.Rand, n int) []extent {
	xs := make([]extent, n)
	off := r.Int64N(1 << 40)
	for i := range xs {
		x := &xs[i]
		x.Base = off + r.Int64N(3) // compaction leaves gaps
		x.Last = x.Base + r.Int64N(5000)
		off = x.Last + 1
		switch r.IntN(4) {
		case 0:
			x.Obj = "intake/00000000/01JD5Y2F3G4H5J6K7M8N9P" + string(rune('A'+r.IntN(26)))
		case 1, 2:
			x.Obj, x.Segment = "topics/abc/3/"+string(rune('a'+r.IntN(3))), true
		default: // a control marker not yet archived has no object
			x.Ctl = &ctlMarker{Commit: r.IntN(2) == 0, ProducerID: r.Int64N(1 << 50), Epoch: int16(r.IntN(1 << 15))}
		}
		x.Pos, x.Len = r.Int64N(1<<32), r.Int64N(1<<24)
		x.MaxTS = 1763790000000 + r.Int64N(1<<30) - 1<<29 // timestamps go backwards too
		if r.IntN(10) == 0 {
			x.MaxTS = -1
		}
	}
	return xs
}

func TestPackExtentsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 17, 1000} {
		xs := randomExtents(r, n)
		got, err := unpackExtents(packExtents(xs))
		if err != nil {
			t.Fatalf("%d extents: %v", n, err)
		}
		if !reflect.DeepEqual(got, xs) {
			t.Fatalf("%d extents: round trip differs", n)
		}
	}
	if packExtents(nil) != nil {
		t.Fatal("no extents pack to something")
	}
}

// TestUnpackExtentsCorrupt: every truncation and a flipped byte of a packed
// list is an error or a list, never a panic; truncations are errors.
func TestUnpackExtentsCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	b := packExtents(randomExtents(r, 50))
	for n := 1; n < len(b); n++ {
		if _, err := unpackExtents(b[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		_, _ = unpackExtents(c)
	}
	if _, err := unpackExtents(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
}

func FuzzUnpackExtents(f *testing.F) {
	f.Add(packExtents(randomExtents(rand.New(rand.NewPCG(5, 6)), 8)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		xs, err := unpackExtents(b)
		if err != nil {
			return
		}
		again, err := unpackExtents(packExtents(xs))
		if err != nil || !reflect.DeepEqual(again, xs) {
			t.Fatalf("decoded extents do not round-trip: %v", err)
		}
	})
}

// TestCheckpointVersions: a state survives a version 2 round trip, a
// version 1 checkpoint (written before extents were packed) still loads,
// and encoding leaves the state it borrowed as it was.
func TestCheckpointVersions(t *testing.T) {
	st := benchState(40)
	r := rand.New(rand.NewPCG(7, 8))
	for _, tp := range st.Topics {
		tp.Parts[3].Extents = randomExtents(r, 30)
		tp.Parts[5].Extents = nil
	}
	for i := range 500 {
		st.Garbage = append(st.Garbage, garbageObj{Obj: "intake/00000000/01JD5Y2F3G4H5J6K7M8N9P" + string(rune('A'+i%26)), Rev: int64(1000 + i*3), Clock: 1763790000000 + int64(i*7)})
	}
	want := st.clone()
	data, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, want) {
		t.Fatal("encodeState changed the state it encoded")
	}
	for name, b := range map[string][]byte{"v2": data, "v1": encodeStateV1(t, st)} {
		got, err := decodeState(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got.Garbage, want.Garbage) {
			t.Fatalf("%s: garbage list differs", name)
		}
		for id, tp := range want.Topics {
			for i, p := range tp.Parts {
				if !reflect.DeepEqual(got.Topics[id].Parts[i].Extents, p.Extents) {
					t.Fatalf("%s: partition %d extents differ", name, i)
				}
			}
		}
	}
	if _, err := decodeState(append([]byte{3}, data[1:]...)); err == nil {
		t.Fatal("an unknown version decoded")
	}
	if _, err := decodeState(data[:len(data)/2]); err == nil {
		t.Fatal("a truncated checkpoint decoded")
	}
}

// TestUnpackGarbageCorrupt: the packed garbage list round-trips, and every
// truncation of it, or a trailing byte, is an error.
func TestUnpackGarbageCorrupt(t *testing.T) {
	gs := []garbageObj{{Obj: "intake/00000000/a", Rev: 10, Clock: 1763790000000}, {Obj: "topics/x/0/1", Rev: 7, Clock: 1763789999000}}
	b := packGarbage(gs)
	if got, err := unpackGarbage(b); err != nil || !reflect.DeepEqual(got, gs) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := unpackGarbage(b[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	if _, err := unpackGarbage(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
}

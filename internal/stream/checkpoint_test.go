package stream

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/gob"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/objstore/faultstore"
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
	v2, err := encodeStateAs(st, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"v3": data, "v2": v2, "v1": encodeStateV1(t, st)} {
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
	if _, err := decodeState(append([]byte{4}, data[1:]...)); err == nil {
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

// TestDecodeStateNoMessage: a checkpoint whose stream ends before the
// state's message (gob reports io.EOF) is an error, not an empty state.
func TestDecodeStateNoMessage(t *testing.T) {
	var v1 bytes.Buffer
	v1.WriteByte(1)
	zw, _ := flate.NewWriter(&v1, flate.BestSpeed)
	zw.Close()
	var v2 bytes.Buffer
	v2.WriteByte(2)
	sw := s2.NewWriter(&v2)
	sw.Close()
	for name, b := range map[string][]byte{"v1": v1.Bytes(), "v2": v2.Bytes()} {
		if st, err := decodeState(b); err == nil {
			t.Errorf("%s: an empty stream decoded as a state of %d topics", name, len(st.Topics))
		}
	}
}

// TestOpenCheckpointGoneWhileLoading: a checkpoint deleted between reading
// the pointer and loading it (a newer one replaced it) makes a starting
// broker read the pointer again; a pointer naming a missing object fails
// Open with an error that says so.
func TestOpenCheckpointGoneWhileLoading(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	ti := mustCreate(t, a, "t", 1, nil)
	for i := range 3 {
		if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 2, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	ctx := context.Background()
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	fs := faultstore.New(v.store)
	var once sync.Once
	remove := fs.Add(faultstore.Rule{Op: faultstore.OpGet, Prefix: "checkpoints/", Times: 1, Hook: func(_ context.Context, _ faultstore.Op, key string) error {
		once.Do(func() {
			// The maintainer checkpoints again and deletes the one the
			// starting broker is about to load.
			if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 2, 4000, CodecNone)); r.Err != nil {
				t.Error(r.Err)
			}
			if _, err := a.Checkpoint(ctx); err != nil {
				t.Error(err)
			}
			if err := v.store.Delete(ctx, key); err != nil {
				t.Error(err)
			}
		})
		return nil
	}})
	defer remove()
	o := v.opts
	o.Store = fs
	b, err := Open(ctx, withClient(o, v.cli, fs))
	if err != nil {
		t.Fatalf("open while the checkpoint was replaced: %v", err)
	}
	defer b.Close()
	if got := readAll(t, b, ti.ID, 0); len(got) != 8 {
		t.Fatalf("read %d records, want 8", len(got))
	}

	// The pointer's object really is gone: a clear error, not an empty log.
	resp, err := v.cli.Get(ctx, a.ptrKey)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := decodePointer(resp.Kvs[0].Value)
	if err := v.store.Delete(ctx, p.Object); err != nil {
		t.Fatal(err)
	}
	if c, err := Open(ctx, withClient(v.opts, v.cli, v.store)); err == nil {
		c.Close()
		t.Fatal("opened with the newest checkpoint missing")
	} else if !errorsIs(err, ErrStorage) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("open with the checkpoint missing: %v", err)
	}
}

func withClient(o Options, cli *clientv3.Client, store objstore.Store) Options {
	o.Client, o.Store = cli, store
	return o
}

// TestCompactionSparesLaggingWatch: etcd is compacted at the previous
// checkpoint's revision, so a watch that lags the checkpoint just written
// (but not the one before) keeps going.
func TestCompactionSparesLaggingWatch(t *testing.T) {
	v := newEnv(t)
	v.opts.CompactEtcd = true
	a := v.open(t)
	mustCreate(t, a, "t", 1, nil)
	ctx := context.Background()
	put := func() {
		if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 1, 1000, CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	watch := func(from int64) clientv3.WatchResponse {
		for resp := range v.cli.Watch(wctx, a.logKey, clientv3.WithPrefix(), clientv3.WithRev(from)) {
			return resp
		}
		t.Fatal("watch ended without a response")
		return clientv3.WatchResponse{}
	}
	put()
	lagging := a.AppliedRevision() // a broker that has applied up to here
	put()
	put()
	first, err := a.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp := watch(lagging + 1); resp.Err() != nil || len(resp.Events) == 0 {
		t.Fatalf("a watch behind the first checkpoint: %v (compacted at %d)", resp.Err(), resp.CompactRevision)
	}
	put()
	lagging = a.AppliedRevision()
	put()
	put()
	second, err := a.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !(first < lagging && lagging < second) {
		t.Fatalf("revisions %d, %d, %d out of order", first, lagging, second)
	}
	if resp := watch(lagging + 1); resp.Err() != nil || len(resp.Events) == 0 {
		t.Fatalf("a watch behind the newest checkpoint: %v (compacted at %d)", resp.Err(), resp.CompactRevision)
	}
	if resp := watch(first - 1); resp.CompactRevision != first {
		t.Fatalf("a watch behind the previous checkpoint: compacted at %d, want %d", resp.CompactRevision, first)
	}
}

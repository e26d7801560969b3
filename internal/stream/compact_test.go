package stream

import (
	"context"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// kv is one record of a test batch.
type kv struct {
	key, value string
	tomb       bool // null value
	noKey      bool // null key
	ts         int64
}

// keyedBatch builds a valid magic-2 batch of the given records.
func keyedBatch(codec Codec, recs ...kv) []byte {
	first, maxTS := recs[0].ts, recs[0].ts
	var raw []byte
	for i, r := range recs {
		rec := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: r.ts - first}
		if !r.noKey {
			rec.Key = []byte(r.key)
		}
		if !r.tomb {
			rec.Value = []byte(r.value)
		}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		raw = rec.AppendTo(raw)
		maxTS = max(maxTS, r.ts)
	}
	comp, err := compress(codec, raw)
	if err != nil {
		panic(err)
	}
	h := batchHeader{LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: first, MaxTimestamp: maxTS, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, NumRecords: int32(len(recs))}
	return buildBatch(h, int16(codec), comp)
}

// rec is one record as a consumer sees it.
type rec struct {
	Key, Value string
	Tomb       bool
}

func (r rec) String() string {
	if r.Tomb {
		return r.Key + "=<tombstone>"
	}
	return r.Key + "=" + r.Value
}

// readRecords fetches a whole partition the way a consumer does (next
// offset = last offset of the previous batch + 1) and checks every batch's
// CRC and record count.
func readRecords(t *testing.T, e *Engine, topic string, p int32) map[int64]rec {
	t.Helper()
	ti, ok := e.Topic(topic)
	if !ok {
		t.Fatalf("no topic %q", topic)
	}
	ps, err := e.State(topic, p)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]rec{}
	off := ps.LogStartOffset
	for off < ps.HighWatermark {
		res, err := e.Fetch(context.Background(), FetchPartition{TopicID: ti.ID, Partition: p, Offset: off, MaxBytes: 1})
		if err != nil {
			t.Fatalf("fetch at %d: %v", off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("empty fetch at %d below hwm %d", off, ps.HighWatermark)
		}
		err = forEachBatch(res.Records, func(b []byte, h batchHeader) bool {
			if crc32.Checksum(b[offAttributes:], crcTable) != h.CRC {
				t.Fatalf("batch at %d: bad CRC", h.BaseOffset)
			}
			_, data, err := batchRecordsData(b)
			if err != nil {
				t.Fatal(err)
			}
			n := int32(0)
			err = iterRecords(data, h.NumRecords, func(_ int32, r *rawRecord) error {
				n++
				o := h.BaseOffset + int64(r.OffsetDelta)
				if o < off {
					return nil
				}
				if _, dup := out[o]; dup {
					t.Fatalf("offset %d returned twice", o)
				}
				out[o] = rec{Key: string(r.Key), Value: string(r.Value), Tomb: !r.HasValue}
				return nil
			})
			if err != nil || n != h.NumRecords {
				t.Fatalf("batch at %d: %d of %d records: %v", h.BaseOffset, n, h.NumRecords, err)
			}
			off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func mustProduce(t *testing.T, e *Engine, topic string, b []byte) int64 {
	t.Helper()
	r := produce(t, e, topic, 0, b)
	if r.Err != nil {
		t.Fatalf("produce to %s: %v", topic, r.Err)
	}
	return r.BaseOffset
}

func compactConfig(minLag, deleteRetention string) map[string]string {
	return map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": minLag, "delete.retention.ms": deleteRetention}
}

func segmentObjects(t *testing.T, v *env) []string {
	t.Helper()
	var objs []string
	if err := v.store.List(context.Background(), "topics/", func(o objstore.ObjectInfo) error { objs = append(objs, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestCompactKeepsLastValuePerKey(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	e := v.open(t)
	base := time.Now().Add(-time.Minute).UnixMilli()
	at := func(off int64) int64 { return base + off*1000 }
	codecs := []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}
	for _, c := range codecs {
		topic := fmt.Sprintf("c%d", c)
		mustCreate(t, e, topic, 1, compactConfig("0", "3600000"))
		mustProduce(t, e, topic, keyedBatch(c, kv{key: "k1", value: "a1", ts: at(0)}, kv{key: "k2", value: "b1", ts: at(1)}, kv{key: "k3", value: "c1", ts: at(2)}))
		mustProduce(t, e, topic, keyedBatch(c, kv{key: "k1", value: "a2", ts: at(3)}, kv{key: "k3", tomb: true, ts: at(4)}))
		mustProduce(t, e, topic, keyedBatch(c, kv{key: "k2", value: "b2", ts: at(5)}, kv{key: "k5", value: "e1", ts: at(6)}))
		mustProduce(t, e, topic, keyedBatch(c, kv{key: "k4", value: "d2", ts: at(7)}))
		mustProduce(t, e, topic, keyedBatch(c, kv{key: "k6", value: "f1", ts: at(8)}))
	}
	// A delete-policy topic with overwrites is left alone.
	mustCreate(t, e, "plain", 1, nil)
	mustProduce(t, e, "plain", keyedBatch(CodecNone, kv{key: "k", value: "1", ts: at(0)}, kv{key: "k", value: "2", ts: at(1)}))
	if err := e.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	// The unarchived tail (the "active segment") supersedes k2 and k6.
	for _, c := range codecs {
		mustProduce(t, e, fmt.Sprintf("c%d", c), keyedBatch(c, kv{key: "k2", value: "b3", ts: at(9)}, kv{key: "k6", value: "f2", ts: at(10)}))
	}
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[int64]rec{
		3: {Key: "k1", Value: "a2"}, 4: {Key: "k3", Tomb: true}, 6: {Key: "k5", Value: "e1"},
		7: {Key: "k4", Value: "d2"}, 9: {Key: "k2", Value: "b3"}, 10: {Key: "k6", Value: "f2"},
	}
	for _, c := range codecs {
		topic := fmt.Sprintf("c%d", c)
		t.Run(topic, func(t *testing.T) {
			if got := readRecords(t, e, topic, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
			}
			ps, _ := e.State(topic, 0)
			if ps.HighWatermark != 11 || ps.LogStartOffset != 0 {
				t.Fatalf("offsets changed: %+v", ps)
			}
			// Offset 1 is gone: the first record at or after its time is 3.
			if off, ts, err := e.OffsetForTimestamp(ctx, topic, 0, at(1)); err != nil || off != 3 || ts != at(3) {
				t.Fatalf("offset for timestamp: %d %d %v", off, ts, err)
			}
			// A fetch inside the gap at the end of the compacted run moves on.
			ti, _ := e.Topic(topic)
			res, err := e.Fetch(ctx, FetchPartition{TopicID: ti.ID, Offset: 8, MaxBytes: 1})
			if err != nil || len(res.Records) == 0 {
				t.Fatalf("fetch at 8: %d bytes, %v", len(res.Records), err)
			}
		})
	}
	if got := readRecords(t, e, "plain", 0); len(got) != 2 {
		t.Fatalf("delete-policy topic compacted: %v", got)
	}

	// A second pass finds nothing to remove and writes nothing.
	segs := segmentObjects(t, v)
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if again := segmentObjects(t, v); len(again) != len(segs) {
		t.Fatalf("second pass wrote segments: %d -> %d", len(segs), len(again))
	}

	// The compacted state survives a restart from a checkpoint.
	if _, err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = v.open(t)
	for _, c := range codecs {
		if got := readRecords(t, e, fmt.Sprintf("c%d", c), 0); !reflect.DeepEqual(got, want) {
			t.Fatalf("after restart:\n got %v\nwant %v", got, want)
		}
	}
}

func TestCompactTombstonesAndLag(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	e := v.open(t)
	now := time.Now()
	old := now.Add(-20 * time.Minute).UnixMilli()
	tomb := now.Add(-10 * time.Minute).UnixMilli()
	cases := []struct {
		name string
		cfg  map[string]string
		want map[int64]rec
	}{
		{"tombstone within delete.retention.ms is kept", compactConfig("0", "3600000"),
			map[int64]rec{1: {Key: "k1", Tomb: true}, 2: {Key: "k2", Value: "live"}}},
		{"tombstone past delete.retention.ms is removed", compactConfig("0", "60000"),
			map[int64]rec{2: {Key: "k2", Value: "live"}}},
		{"records within min.compaction.lag.ms stay", compactConfig("3600000", "60000"),
			map[int64]rec{0: {Key: "k1", Value: "old"}, 1: {Key: "k1", Tomb: true}, 2: {Key: "k2", Value: "live"}}},
		{"lag covers the tombstone only", compactConfig("900000", "0"),
			map[int64]rec{1: {Key: "k1", Tomb: true}, 2: {Key: "k2", Value: "live"}}},
	}
	for i, c := range cases {
		topic := fmt.Sprintf("t%d", i)
		mustCreate(t, e, topic, 1, c.cfg)
		mustProduce(t, e, topic, keyedBatch(CodecNone, kv{key: "k1", value: "old", ts: old}))
		mustProduce(t, e, topic, keyedBatch(CodecNone, kv{key: "k1", tomb: true, ts: tomb}))
		mustProduce(t, e, topic, keyedBatch(CodecNone, kv{key: "k2", value: "live", ts: tomb}))
	}
	if err := e.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topic := fmt.Sprintf("t%d", i)
			if got := readRecords(t, e, topic, 0); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			if ps, _ := e.State(topic, 0); ps.HighWatermark != 3 {
				t.Fatalf("hwm %d, want 3", ps.HighWatermark)
			}
		})
	}
}

// stalePlan builds a compaction of topic's partition 0 without committing it.
func stalePlan(t *testing.T, e *Engine, topic string) (compactPlan, *compactOutput) {
	t.Helper()
	ti, _ := e.Topic(topic)
	for _, p := range e.compactPlans() {
		if p.topic != ti.ID || p.partition != 0 {
			continue
		}
		keys, err := e.compactKeys(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		groups := compactGroups(p.run)
		if len(groups) != 1 {
			t.Fatalf("%d groups", len(groups))
		}
		out, err := e.compactGroup(context.Background(), groups[0], newCleaner(keys, p, e.opts.Now().UnixMilli()))
		if err != nil {
			t.Fatal(err)
		}
		if out.removed == 0 {
			t.Fatal("plan removes nothing")
		}
		return p, out
	}
	t.Fatalf("no compaction plan for %s", topic)
	return compactPlan{}, nil
}

func TestCompactStalePlanRejected(t *testing.T) {
	ctx := context.Background()
	ts := time.Now().Add(-time.Minute).UnixMilli()
	cases := []struct {
		name   string
		change func(t *testing.T, e *Engine)
	}{
		{"delete records dropped an extent", func(t *testing.T, e *Engine) {
			if _, err := e.DeleteRecords(ctx, "t", 0, 2); err != nil {
				t.Fatal(err)
			}
		}},
		{"another compaction won", func(t *testing.T, e *Engine) {
			if err := e.Compact(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newEnv(t)
			e := v.open(t)
			mustCreate(t, e, "t", 1, compactConfig("0", "3600000"))
			// Two archival rounds: a run of two segment extents.
			mustProduce(t, e, "t", keyedBatch(CodecNone, kv{key: "k1", value: "a1", ts: ts}, kv{key: "k2", value: "b1", ts: ts}))
			if err := e.ArchiveAll(ctx); err != nil {
				t.Fatal(err)
			}
			mustProduce(t, e, "t", keyedBatch(CodecNone, kv{key: "k1", value: "a2", ts: ts}, kv{key: "k2", value: "b2", ts: ts}))
			if err := e.ArchiveAll(ctx); err != nil {
				t.Fatal(err)
			}
			p, out := stalePlan(t, e, "t")
			if len(p.run) != 2 {
				t.Fatalf("run of %d extents, want 2", len(p.run))
			}
			c.change(t, e)
			before := readRecords(t, e, "t", 0)
			e.mu.RLock()
			garbage := len(e.st.Garbage)
			e.mu.RUnlock()

			err := e.commitCompaction(ctx, p, out)
			if !errorsIs(err, errPlanRejected) || !errorsIs(err, ErrStaleEntry) {
				t.Fatalf("stale plan: %v", err)
			}
			if got := readRecords(t, e, "t", 0); !reflect.DeepEqual(got, before) {
				t.Fatalf("rejected plan changed data: %v, want %v", got, before)
			}
			want := map[int64]rec{2: {Key: "k1", Value: "a2"}, 3: {Key: "k2", Value: "b2"}}
			if !reflect.DeepEqual(before, want) {
				t.Fatalf("data %v, want %v", before, want)
			}
			// The rejected plan's segment is garbage, referenced by nothing.
			e.mu.RLock()
			defer e.mu.RUnlock()
			if len(e.st.Garbage) != garbage+1 {
				t.Fatalf("garbage %d -> %d, want one more", garbage, len(e.st.Garbage))
			}
			g := e.st.Garbage[len(e.st.Garbage)-1].Obj
			if !strings.HasPrefix(g, "topics/") || e.st.ObjRefs[g] != 0 {
				t.Fatalf("garbage %q (refs %d) is not the rejected segment", g, e.st.ObjRefs[g])
			}
		})
	}
}

func TestCompactedTopicRejectsKeylessRecords(t *testing.T) {
	v := newEnv(t)
	e := v.open(t)
	mustCreate(t, e, "t", 1, compactConfig("0", "0"))
	ts := time.Now().UnixMilli()
	r := produce(t, e, "t", 0, keyedBatch(CodecNone, kv{key: "k", value: "v", ts: ts}, kv{noKey: true, value: "v", ts: ts}))
	if !errorsIs(r.Err, ErrInvalidRecord) {
		t.Fatalf("keyless record: %v", r.Err)
	}
	if len(r.RecordErrors) != 1 || r.RecordErrors[0].Index != 1 {
		t.Fatalf("record errors %+v", r.RecordErrors)
	}
	if ps, _ := e.State("t", 0); ps.HighWatermark != 0 {
		t.Fatalf("rejected batch was stored: hwm %d", ps.HighWatermark)
	}
}

func TestCleanerKeep(t *testing.T) {
	const now = int64(1_000_000)
	keys := newKeyIndex(int64(2 * (2 + compactKeyOverhead)))
	keys.add([]byte("k1"), 10)
	keys.add([]byte("k2"), 11)
	keys.add([]byte("k3"), 12) // over the cap: not indexed
	keys.add([]byte("k1"), 20) // indexed keys keep updating
	if !keys.full || len(keys.offs) != 2 {
		t.Fatalf("key index: full=%v keys=%d", keys.full, len(keys.offs))
	}
	p := compactPlan{logStart: 5, minLagMs: 100, deleteRetentionMs: 1000, lso: 30}
	cases := []struct {
		name      string
		off, ts   int64
		r         rawRecord
		keep      bool
		recheckAt int64
	}{
		{"below the log start", 4, 0, rawRecord{Key: []byte("k1"), HasKey: true, HasValue: true}, false, math.MaxInt64},
		{"superseded", 10, 0, rawRecord{Key: []byte("k1"), HasKey: true, HasValue: true}, false, math.MaxInt64},
		{"superseded within the lag", 10, now - 50, rawRecord{Key: []byte("k1"), HasKey: true, HasValue: true}, true, now + 50},
		{"latest value", 20, 0, rawRecord{Key: []byte("k1"), HasKey: true, HasValue: true}, true, math.MaxInt64},
		{"latest tombstone within retention", 11, now - 500, rawRecord{Key: []byte("k2"), HasKey: true}, true, now + 501},
		{"latest tombstone past retention", 11, now - 1001, rawRecord{Key: []byte("k2"), HasKey: true}, false, math.MaxInt64},
		{"keyless", 13, 0, rawRecord{HasValue: true}, false, math.MaxInt64},
		{"not indexed", 12, 0, rawRecord{Key: []byte("k3"), HasKey: true}, true, math.MaxInt64},
		{"at the last stable offset", 30, 0, rawRecord{HasValue: true}, true, math.MaxInt64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newCleaner(keys, p, now)
			if got := cl.keep(c.off, c.ts, &c.r); got != c.keep {
				t.Fatalf("keep = %v, want %v", got, c.keep)
			}
			if cl.recheckAt != c.recheckAt {
				t.Fatalf("recheckAt = %d, want %d", cl.recheckAt, c.recheckAt)
			}
		})
	}
}

// benchSegment lays out about size bytes of stored batches (final offsets)
// whose keys repeat, so compaction removes most records.
func benchSegment(size int, codec Codec) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var seg []byte
	value := make([]byte, 100)
	off := int64(0)
	for len(seg) < size {
		recs := make([]kv, 100)
		for i := range recs {
			for j := range value {
				value[j] = byte('a' + rng.IntN(26))
			}
			recs[i] = kv{key: fmt.Sprintf("key-%d", rng.IntN(10000)), value: string(value), ts: 1000 + off}
		}
		b := keyedBatch(codec, recs...)
		setBaseOffset(b, off)
		seg = append(seg, b...)
		off += int64(len(recs))
	}
	return seg
}

func BenchmarkCompactSegment16MiB(b *testing.B) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		b.Run(fmt.Sprintf("codec=%d", codec), func(b *testing.B) {
			seg := benchSegment(16<<20, codec)
			keys := newKeyIndex(compactKeyBytes)
			if err := forEachBatch(seg, func(batch []byte, h batchHeader) bool {
				return keys.addBatch(batch, h.BaseOffset, 0) == nil
			}); err != nil {
				b.Fatal(err)
			}
			p := compactPlan{deleteRetentionMs: math.MaxInt64}
			b.SetBytes(int64(len(seg)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c := newCleaner(keys, p, 1<<40)
				sb := &segBuilder{chunkBytes: 1 << 20}
				removed, err := c.cleanExtent(sb, seg, true)
				if err != nil || removed == 0 {
					b.Fatalf("removed %d: %v", removed, err)
				}
				sb.finish(0)
			}
		})
	}
}

func TestCompactSmallChunks(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	v.opts.ChunkBytes = 1 // one chunk per batch: gaps fall between chunks
	e := v.open(t)
	mustCreate(t, e, "t", 1, compactConfig("0", "3600000"))
	ts := time.Now().Add(-time.Minute).UnixMilli()
	for i := 0; i < 20; i++ {
		mustProduce(t, e, "t", keyedBatch(CodecLZ4, kv{key: fmt.Sprintf("k%d", i%4), value: fmt.Sprint(i), ts: ts + int64(i)}))
	}
	if err := e.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[int64]rec{}
	for i := 16; i < 20; i++ {
		want[int64(i)] = rec{Key: fmt.Sprintf("k%d", i%4), Value: fmt.Sprint(i)}
	}
	if got := readRecords(t, e, "t", 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	e.mu.RLock()
	var bases []int64
	for _, x := range e.st.Topics[mustTopic(t, e, "t")].Parts[0].Extents {
		bases = append(bases, x.Base)
	}
	e.mu.RUnlock()
	if !reflect.DeepEqual(bases, []int64{16, 17, 18, 19}) {
		t.Fatalf("chunks start at %v, want 16..19", bases)
	}
	if off, _, err := e.OffsetForTimestamp(ctx, "t", 0, ts); err != nil || off != 16 {
		t.Fatalf("offset for timestamp: %d %v", off, err)
	}
}

func mustTopic(t *testing.T, e *Engine, name string) TopicID {
	t.Helper()
	ti, ok := e.Topic(name)
	if !ok {
		t.Fatalf("no topic %q", name)
	}
	return ti.ID
}

func TestCompactGroups(t *testing.T) {
	x := func(n int64) extent { return extent{Len: n} }
	cases := []struct {
		name string
		run  []extent
		want []int
	}{
		{"one small", []extent{x(10)}, []int{1}},
		{"merged", []extent{x(10), x(20), x(30)}, []int{3}},
		{"split at the cap", []extent{x(maxSegmentBytes - 10), x(10), x(1)}, []int{2, 1}},
		{"oversized extent alone", []extent{x(1), x(maxSegmentBytes + 1), x(1)}, []int{1, 1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []int
			for _, g := range compactGroups(c.run) {
				got = append(got, len(g))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("groups %v, want %v", got, c.want)
			}
		})
	}
}

func TestCompactRechecksWhenTombstoneExpires(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	var clock atomicTime
	clock.set(time.Now())
	v.opts.Now = clock.get
	e := v.open(t)
	mustCreate(t, e, "t", 1, compactConfig("0", "60000"))
	ts := clock.get().UnixMilli()
	mustProduce(t, e, "t", keyedBatch(CodecNone, kv{key: "k1", value: "v", ts: ts}))
	mustProduce(t, e, "t", keyedBatch(CodecNone, kv{key: "k1", tomb: true, ts: ts}, kv{key: "k2", value: "live", ts: ts}))
	if err := e.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	kept := map[int64]rec{1: {Key: "k1", Tomb: true}, 2: {Key: "k2", Value: "live"}}
	for range 2 { // the second pass finds nothing and remembers the partition
		if err := e.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readRecords(t, e, "t", 0); !reflect.DeepEqual(got, kept) {
			t.Fatalf("got %v, want %v", got, kept)
		}
	}
	plans := e.compactPlans()
	if len(plans) != 1 || !compactMemoFor(e).fresh(plans[0], clock.get().UnixMilli()) {
		t.Fatal("a partition with nothing to remove is not remembered")
	}
	clock.set(clock.get().Add(2 * time.Minute))
	if compactMemoFor(e).fresh(plans[0], clock.get().UnixMilli()) {
		t.Fatal("the memo outlives the tombstone's retention")
	}
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := readRecords(t, e, "t", 0), map[int64]rec{2: {Key: "k2", Value: "live"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete.retention.ms: got %v, want %v", got, want)
	}
}

// atomicTime is a settable clock for Options.Now.
type atomicTime struct{ ns atomic.Int64 }

func (a *atomicTime) set(t time.Time) { a.ns.Store(t.UnixNano()) }
func (a *atomicTime) get() time.Time  { return time.Unix(0, a.ns.Load()) }

// txnBatch builds a transactional batch of one producer.
func txnBatch(pid int64, epoch int16, seq int32, recs ...kv) []byte {
	b := keyedBatch(CodecNone, recs...)
	h, _ := parseBatchHeader(b)
	h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, epoch, seq
	return buildBatch(h, attrTransactional, b[batchHeaderLen:])
}

// readCommitted reads a partition as a read_committed consumer does: up to
// the last stable offset, skipping control batches and the batches of
// aborted transactions (tracked from the aborted list and abort markers).
func readCommitted(t *testing.T, e *Engine, topic string, p int32) map[int64]rec {
	t.Helper()
	ti, _ := e.Topic(topic)
	ps, err := e.State(topic, p)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]rec{}
	aborting := map[int64]bool{}
	var pending []AbortedTxn
	for off := ps.LogStartOffset; off < ps.LastStableOffset; {
		res, err := e.Fetch(context.Background(), FetchPartition{TopicID: ti.ID, Partition: p, Offset: off, MaxBytes: 1, ReadCommitted: true})
		if err != nil || len(res.Records) == 0 {
			t.Fatalf("read_committed fetch at %d (lso %d): %d bytes, %v", off, ps.LastStableOffset, len(res.Records), err)
		}
		pending = append(pending, res.Aborted...)
		err = forEachBatch(res.Records, func(b []byte, h batchHeader) bool {
			for i := 0; i < len(pending); i++ {
				if pending[i].FirstOffset <= h.BaseOffset {
					aborting[pending[i].ProducerID] = true
					pending = append(pending[:i], pending[i+1:]...)
					i--
				}
			}
			off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
			if h.control() {
				delete(aborting, h.ProducerID)
				return true
			}
			if h.transactional() && aborting[h.ProducerID] {
				return true
			}
			_, data, _ := batchRecordsData(b)
			_ = iterRecords(data, h.NumRecords, func(_ int32, r *rawRecord) error {
				out[h.BaseOffset+int64(r.OffsetDelta)] = rec{Key: string(r.Key), Value: string(r.Value), Tomb: !r.HasValue}
				return nil
			})
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestCompactTransactions checks that compaction never lets an aborted or
// still-open transaction's value replace a committed one, removes aborted
// data, and compacts a transaction's values once it commits.
func TestCompactTransactions(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	e := v.open(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	mustCreate(t, e, "ct", 1, compactConfig("0", "3600000"))
	tid := mustTopic(t, e, "ct")
	pid, epoch, err := e.InitTxnProducer(ctx, "ct-txn", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	seq := int32(0)
	txn := func(commit bool, recs ...kv) {
		t.Helper()
		if err := e.AddPartitionsToTxn(ctx, "ct-txn", pid, epoch, []TxnPartition{{Topic: tid, Partition: 0}}); err != nil {
			t.Fatal(err)
		}
		mustProduce(t, e, "ct", txnBatch(pid, epoch, seq, recs...))
		seq += int32(len(recs))
		if commit {
			if _, _, err := e.EndTxn(ctx, "ct-txn", pid, epoch, true, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	abort := func() {
		t.Helper()
		if _, _, err := e.EndTxn(ctx, "ct-txn", pid, epoch, false, false); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, kv{key: "k", value: "v1", ts: ts}, kv{key: "j", value: "j1", ts: ts})  // offsets 0-1, marker 2
	txn(false, kv{key: "k", value: "v2", ts: ts})                                    // 3
	abort()                                                                          // marker 4
	txn(false, kv{key: "k", value: "v3", ts: ts}, kv{key: "j", value: "j3", ts: ts}) // 5-6, left open
	if err := e.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[int64]rec{0: {Key: "k", Value: "v1"}, 1: {Key: "j", Value: "j1"}}
	if got := readCommitted(t, e, "ct", 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("with a transaction open, read_committed after compaction:\n got %v\nwant %v", got, want)
	}
	if got := readRecords(t, e, "ct", 0); got[3] != (rec{}) {
		t.Fatalf("the aborted value survived compaction: %v", got[3])
	}
	// Once the open transaction commits, its values supersede v1 and j1.
	if _, _, err := e.EndTxn(ctx, "ct-txn", pid, epoch, true, false); err != nil {
		t.Fatal(err)
	}
	if err := e.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	want = map[int64]rec{5: {Key: "k", Value: "v3"}, 6: {Key: "j", Value: "j3"}}
	if got := readCommitted(t, e, "ct", 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the commit and compaction:\n got %v\nwant %v", got, want)
	}
}

// hintStore records which segment objects were put with
// objstore.WithUncachedWrite.
type hintStore struct {
	objstore.Store
	mu       sync.Mutex
	uncached map[string]bool // segment name → put with the hint
}

func (s *hintStore) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "topics/") {
		s.mu.Lock()
		s.uncached[key] = objstore.UncachedWrite(ctx)
		s.mu.Unlock()
	}
	return s.Store.Put(ctx, key, data)
}

// TestSegmentsArePutPastThePageCache: archival's segments and compaction's
// both ask the store to skip the page cache (the file store then writes
// them with O_DIRECT). Before, compaction's did not.
func TestSegmentsArePutPastThePageCache(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	hs := &hintStore{Store: v.store, uncached: map[string]bool{}}
	v.store = hs
	e := v.open(t)
	mustCreate(t, e, "t", 1, compactConfig("0", "3600000"))
	ts := time.Now().Add(-time.Minute).UnixMilli()
	for i := 0; i < 8; i++ {
		mustProduce(t, e, "t", keyedBatch(CodecNone, kv{key: fmt.Sprintf("k%d", i%2), value: fmt.Sprint(i), ts: ts + int64(i)}))
	}
	if err := e.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	archived := len(hs.uncached)
	if err := e.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if archived == 0 || len(hs.uncached) == archived {
		t.Fatalf("%d segments after archival, %d after compaction: want both to write one", archived, len(hs.uncached))
	}
	for name, uncached := range hs.uncached {
		if !uncached {
			t.Errorf("segment %s was put without objstore.WithUncachedWrite", name)
		}
	}
}

package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/objstore"
)

// startEtcd runs a single embedded etcd member for a test.
func startEtcd(t *testing.T) *clientv3.Client { return clustertest.Start(t).Client() }

type env struct {
	cli   *clientv3.Client
	store objstore.Store
	opts  Options
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := objstore.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &env{cli: startEtcd(t), store: store, opts: Options{FlushLinger: time.Millisecond, DisableMaintenance: true, Grace: time.Millisecond}}
}

func (v *env) open(t *testing.T) *Engine { t.Helper(); return v.openWith(t, v.opts) }

// openWith opens an engine on v's etcd and store with options o.
func (v *env) openWith(t *testing.T, o Options) *Engine {
	t.Helper()
	o.Client, o.Store = v.cli, v.store
	e, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// makeBatch builds a valid magic-2 batch of n records.
func makeBatch(pid int64, epoch int16, seq int32, n int, ts int64, codec Codec) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d-%d", seq, i))}
		r.TimestampDelta = int32(i)
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	comp, err := compress(codec, recs)
	if err != nil {
		panic(err)
	}
	h := batchHeader{LastOffsetDelta: int32(n - 1), FirstTimestamp: ts, MaxTimestamp: ts + int64(n-1), ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, NumRecords: int32(n)}
	return buildBatch(h, int16(codec), comp)
}

func mustCreate(t *testing.T, e *Engine, name string, parts int32, cfg map[string]string) TopicInfo {
	t.Helper()
	ti, err := e.CreateTopic(context.Background(), name, parts, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

func produce(t *testing.T, e *Engine, topic string, p int32, b []byte) ProduceResult {
	t.Helper()
	r := e.Produce(context.Background(), []ProduceBatch{{Topic: topic, Partition: p, Records: b}})
	return r[0]
}

// readAll fetches a partition from offset 0 and returns record values by offset.
func readAll(t *testing.T, e *Engine, id TopicID, p int32) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	st, _ := e.TopicByID(id)
	ps, err := e.State(st.Name, p)
	if err != nil {
		t.Fatal(err)
	}
	off := ps.LogStartOffset
	for off < ps.HighWatermark {
		res, err := e.Fetch(context.Background(), FetchPartition{TopicID: id, Partition: p, Offset: off, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatalf("fetch at %d: %v", off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("empty fetch at %d below hwm %d", off, ps.HighWatermark)
		}
		err = forEachBatch(res.Records, func(b []byte, h batchHeader) bool {
			_, data, err := batchRecordsData(b)
			if err != nil {
				t.Fatal(err)
			}
			iterRecords(data, h.NumRecords, func(_ int32, r *rawRecord) error {
				o := h.BaseOffset + int64(r.OffsetDelta)
				if o >= off {
					if _, dup := out[o]; dup {
						t.Fatalf("offset %d returned twice", o)
					}
					out[o] = string(r.Value)
				}
				return nil
			})
			off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestProduceFetchRoundTrip(t *testing.T) {
	v := newEnv(t)
	e := v.open(t)
	ti := mustCreate(t, e, "orders", 2, nil)
	for i, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		r := produce(t, e, "orders", 1, makeBatch(-1, -1, -1, 3, 1000, codec))
		if r.Err != nil {
			t.Fatalf("codec %d: %v", codec, r.Err)
		}
		if r.BaseOffset != int64(i*3) {
			t.Fatalf("codec %d: base offset %d, want %d", codec, r.BaseOffset, i*3)
		}
	}
	got := readAll(t, e, ti.ID, 1)
	if len(got) != 15 {
		t.Fatalf("read %d records, want 15", len(got))
	}
	for o := int64(0); o < 15; o++ {
		if _, ok := got[o]; !ok {
			t.Fatalf("offset %d missing", o)
		}
	}
	if ps, _ := e.State("orders", 0); ps.HighWatermark != 0 {
		t.Fatalf("partition 0 hwm %d", ps.HighWatermark)
	}
}

func TestIdempotence(t *testing.T) {
	v := newEnv(t)
	e := v.open(t)
	mustCreate(t, e, "t", 1, nil)
	pid, epoch, err := e.InitProducerID(context.Background(), -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		seq     int32
		epoch   int16
		n       int
		want    int64
		wantErr error
	}{
		{"seq 0", 0, epoch, 2, 0, nil},
		{"next", 2, epoch, 3, 2, nil},
		{"duplicate of first gets its offset", 0, epoch, 2, 0, nil},
		{"duplicate of second", 2, epoch, 3, 2, nil},
		{"gap", 9, epoch, 1, 0, ErrOutOfOrderSequence},
		{"next after dup", 5, epoch, 1, 5, nil},
		{"future epoch", 0, epoch + 1, 1, 0, ErrInvalidProducerEpoch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := produce(t, e, "t", 0, makeBatch(pid, c.epoch, c.seq, c.n, 1, CodecNone))
			if c.wantErr != nil {
				if !errorsIs(r.Err, c.wantErr) {
					t.Fatalf("err %v, want %v", r.Err, c.wantErr)
				}
				return
			}
			if r.Err != nil || r.BaseOffset != c.want {
				t.Fatalf("got (%d, %v), want %d", r.BaseOffset, r.Err, c.want)
			}
		})
	}
	// Bumping the epoch fences the old one.
	_, epoch2, err := e.InitProducerID(context.Background(), pid, epoch)
	if err != nil || epoch2 != epoch+1 {
		t.Fatalf("bump: %d %v", epoch2, err)
	}
	if r := produce(t, e, "t", 0, makeBatch(pid, epoch, 6, 1, 1, CodecNone)); !errorsIs(r.Err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced epoch accepted: %v", r.Err)
	}
	if r := produce(t, e, "t", 0, makeBatch(pid, epoch2, 0, 1, 1, CodecNone)); r.Err != nil || r.BaseOffset != 6 {
		t.Fatalf("new epoch: %d %v", r.BaseOffset, r.Err)
	}
	if ps, _ := e.State("t", 0); ps.HighWatermark != 7 {
		t.Fatalf("hwm %d, want 7", ps.HighWatermark)
	}
	// With no state on a partition, any sequence is accepted (as Kafka
	// does, e.g. after the state expired).
	mustCreate(t, e, "u", 1, nil)
	if r := produce(t, e, "u", 0, makeBatch(pid, epoch2, 3, 2, 1, CodecNone)); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("first batch on a partition without state: %d %v", r.BaseOffset, r.Err)
	}
	if r := produce(t, e, "u", 0, makeBatch(pid, epoch2, 4, 1, 1, CodecNone)); !errorsIs(r.Err, ErrOutOfOrderSequence) {
		t.Fatalf("then a gap: %v", r.Err)
	}
}

func TestBadBatchesRejected(t *testing.T) {
	v := newEnv(t)
	e := v.open(t)
	mustCreate(t, e, "t", 1, map[string]string{"max.message.bytes": "200"})
	good := makeBatch(-1, -1, -1, 2, 1, CodecNone)
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	truncated := good[:len(good)-3]
	twoBatches := append(append([]byte(nil), good...), good...)
	badMagic := append([]byte(nil), good...)
	badMagic[offMagic] = 1
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad crc", badCRC, ErrCorruptMessage},
		{"truncated", truncated, ErrCorruptMessage},
		{"short", good[:10], ErrCorruptMessage},
		{"two batches", twoBatches, ErrInvalidRecord},
		{"magic 1", badMagic, ErrUnsupportedForMessageFormat},
		{"too large", makeBatch(-1, -1, -1, 40, 1, CodecNone), ErrMessageTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := produce(t, e, "t", 0, c.b); !errorsIs(r.Err, c.want) {
				t.Fatalf("err %v, want %v", r.Err, c.want)
			}
		})
	}
	if r := produce(t, e, "nope", 0, good); !errorsIs(r.Err, ErrUnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", r.Err)
	}
	if ps, _ := e.State("t", 0); ps.HighWatermark != 0 {
		t.Fatalf("bad input changed the log: hwm %d", ps.HighWatermark)
	}
}

func TestRestartCheckpointArchiveGC(t *testing.T) {
	v := newEnv(t)
	e := v.open(t)
	ti := mustCreate(t, e, "t", 3, nil)
	for i := 0; i < 30; i++ {
		if r := produce(t, e, "t", int32(i%3), makeBatch(-1, -1, -1, 2, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	before := readAll(t, e, ti.ID, 1)
	e.Close()

	// Restart without a checkpoint: everything is replayed.
	e = v.open(t)
	if got := readAll(t, e, ti.ID, 1); len(got) != len(before) {
		t.Fatalf("after restart %d records, want %d", len(got), len(before))
	}
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, e, ti.ID, 1); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("after archive: %v want %v", got, before)
	}
	if _, err := e.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	// One more entry moves the log clock past the grace period.
	produce(t, e, "t", 0, makeBatch(-1, -1, -1, 1, 5000, CodecNone))
	if err := e.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	var intake int
	v.store.List(context.Background(), "intake/", func(objstore.ObjectInfo) error { intake++; return nil })
	if intake != 1 {
		t.Fatalf("%d intake objects left after archive and gc, want 1 (the unarchived one)", intake)
	}
	if _, err := e.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Close()

	e = v.open(t)
	if n := e.Replayed(); n > 2 {
		t.Fatalf("restart after checkpoint replayed %d entries", n)
	}
	if got := readAll(t, e, ti.ID, 1); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("after checkpoint restart: %v want %v", got, before)
	}
	if ps, _ := e.State("t", 0); ps.HighWatermark != 21 {
		t.Fatalf("p0 hwm %d want 21", ps.HighWatermark)
	}
}

func TestDeleteRecordsRetentionAndTimestamps(t *testing.T) {
	v := newEnv(t)
	e := v.open(t)
	mustCreate(t, e, "t", 1, nil)
	for i := 0; i < 10; i++ {
		produce(t, e, "t", 0, makeBatch(-1, -1, -1, 2, int64(1000*(i+1)), CodecNone))
	}
	ctx := context.Background()
	off, ts, err := e.OffsetForTimestamp(ctx, "t", 0, 3001)
	if err != nil || off != 5 || ts != 3001 {
		t.Fatalf("by timestamp: %d %d %v", off, ts, err)
	}
	if off, ts, _ := e.OffsetForTimestamp(ctx, "t", 0, TimestampMax); off != 19 || ts != 10001 {
		t.Fatalf("max timestamp: %d %d", off, ts)
	}
	if off, _, _ := e.OffsetForTimestamp(ctx, "t", 0, 99999); off != -1 {
		t.Fatalf("beyond: %d", off)
	}
	low, err := e.DeleteRecords(ctx, "t", 0, 5)
	if err != nil || low != 5 {
		t.Fatalf("delete records: %d %v", low, err)
	}
	if _, err := e.DeleteRecords(ctx, "t", 0, 50); !errorsIs(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond hwm: %v", err)
	}
	ti, _ := e.Topic("t")
	if _, err := e.Fetch(ctx, FetchPartition{TopicID: ti.ID, Offset: 2, MaxBytes: 100}); !errorsIs(err, ErrOffsetOutOfRange) {
		t.Fatalf("fetch below log start: %v", err)
	}
	if off, _, _ := e.OffsetForTimestamp(ctx, "t", 0, TimestampEarliest); off != 5 {
		t.Fatalf("earliest %d", off)
	}
	// retention.ms: everything is older than one hour before now.
	if err := e.AlterTopicConfigs(ctx, "t", []ConfigChange{{Name: "retention.ms", Value: ptr("3600000")}}, false, false); err != nil {
		t.Fatal(err)
	}
	if err := e.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	ps, _ := e.State("t", 0)
	if ps.LogStartOffset != 20 || ps.HighWatermark != 20 {
		t.Fatalf("after retention: %+v", ps)
	}
	if err := e.AlterTopicConfigs(ctx, "t", []ConfigChange{{Name: "retention.ms", Value: ptr("-7")}}, false, false); !errorsIs(err, ErrInvalidConfig) {
		t.Fatalf("bad config accepted: %v", err)
	}
}

func ptr(s string) *string { return &s }

package share

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/stream"
)

// testClock is a wall clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// shareEnv is one etcd, one object store and one log, with share engines
// on top (each its own etcd client, as brokers would have).
type shareEnv struct {
	etcd  *clustertest.Etcd
	log   *stream.Engine
	topic stream.TopicInfo
	clock *testClock
	mu    sync.Mutex
	cfg   map[string]string // group config overrides for every group
}

func newShareEnv(t *testing.T, partitions int32) *shareEnv {
	t.Helper()
	etcd := clustertest.Start(t)
	store, err := objstore.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log, err := stream.Open(context.Background(), stream.Options{Client: etcd.Client(), Store: store, FlushLinger: time.Millisecond, DisableMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	ti, err := log.CreateTopic(context.Background(), "orders", partitions, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return &shareEnv{etcd: etcd, log: log, topic: ti, clock: &testClock{t: time.Now()}, cfg: map[string]string{}}
}

func (v *shareEnv) setConfig(name, value string) {
	v.mu.Lock()
	v.cfg[name] = value
	v.mu.Unlock()
}

func (v *shareEnv) groupConfig(string) config.ShareGroup {
	v.mu.Lock()
	defer v.mu.Unlock()
	return config.ResolveShareGroup(v.cfg)
}

type engineOpt func(*Options)

func (v *shareEnv) engine(t *testing.T, opts ...engineOpt) *Engine {
	t.Helper()
	return v.engineOn(t, v.etcd.Client(), opts...)
}

func (v *shareEnv) engineOn(t *testing.T, cli *clientv3.Client, opts ...engineOpt) *Engine {
	t.Helper()
	o := Options{Client: cli, Log: v.log, GroupConfig: v.groupConfig, Now: v.clock.Now, SweepInterval: 10 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	e := New(o)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// batch builds a magic-2 batch of n records with values prefix-i.
func batch(n int, prefix string, attrs int16, pid int64, epoch int16, seq int32) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	out := make([]byte, 61+len(recs))
	be := binary.BigEndian
	be.PutUint32(out[8:], uint32(len(out)-12))
	be.PutUint32(out[12:], 0xffffffff)
	out[16] = 2
	be.PutUint16(out[21:], uint16(attrs))
	be.PutUint32(out[23:], uint32(n-1))
	be.PutUint64(out[27:], uint64(now))
	be.PutUint64(out[35:], uint64(now))
	be.PutUint64(out[43:], uint64(pid))
	be.PutUint16(out[51:], uint16(epoch))
	be.PutUint32(out[53:], uint32(seq))
	be.PutUint32(out[57:], uint32(n))
	copy(out[61:], recs)
	be.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

func (v *shareEnv) produce(t *testing.T, partition int32, n int) int64 {
	t.Helper()
	r := v.log.Produce(context.Background(), []stream.ProduceBatch{{Topic: v.topic.Name, Partition: partition, Records: batch(n, "v", 0, -1, -1, -1)}})
	if r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	return r[0].BaseOffset
}

func (v *shareEnv) key(group string, partition int32) Key {
	return Key{Group: group, Topic: v.topic.ID, Partition: partition}
}

func acquire(t *testing.T, e *Engine, k Key, member string, max int32) AcquireResult {
	t.Helper()
	res, err := e.Acquire(context.Background(), AcquireRequest{Key: k, Member: member, MaxRecords: max, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return res
}

func rangesString(rs []AcquiredRange) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("%d-%d@%d ", r.First, r.Last, r.DeliveryCount)
	}
	return s
}

// batchOffsets lists the record offsets of the batches in data.
func batchOffsets(t *testing.T, data []byte) (first, last int64) {
	t.Helper()
	bs, _, err := parseBatches(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) == 0 {
		return -1, -1
	}
	return bs[0].Base, bs[len(bs)-1].Last
}

func TestEngineAcquireAcceptRelease(t *testing.T) {
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	reg := prometheus.NewRegistry()
	e := v.engine(t, func(o *Options) { o.Metrics = reg })
	k := v.key("g", 0)
	v.produce(t, 0, 5)
	v.produce(t, 0, 5)

	res := acquire(t, e, k, "a", 3)
	if got := rangesString(res.Acquired); got != "0-4@1 " {
		t.Fatalf("acquired %s, want the first batch whole", got)
	}
	if f, l := batchOffsets(t, res.Records); f != 0 || l != 4 {
		t.Fatalf("records hold %d-%d", f, l)
	}
	res = acquire(t, e, k, "b", 100)
	if got := rangesString(res.Acquired); got != "5-9@1 " {
		t.Fatalf("b acquired %s", got)
	}
	if got := acquire(t, e, k, "c", 100); len(got.Acquired) != 0 || got.Records != nil {
		t.Fatalf("c acquired %v", got.Acquired)
	}
	// b does not hold 0-4.
	err := e.Acknowledge(context.Background(), k, "b", []AckBatch{{First: 0, Last: 4, Types: []int8{AckAccept}}})
	if !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("ack by b: %v", err)
	}
	if err := e.Acknowledge(context.Background(), k, "a", []AckBatch{{First: 0, Last: 4, Types: []int8{AckAccept, AckAccept, AckRelease, AckAccept, AckAccept}}}); err != nil {
		t.Fatal(err)
	}
	res = acquire(t, e, k, "c", 100)
	if got := rangesString(res.Acquired); got != "2-2@2 " {
		t.Fatalf("c acquired %s, want the released record again", got)
	}
	if f, l := batchOffsets(t, res.Records); f != 0 || l != 4 {
		t.Fatalf("records hold %d-%d, want the batch of offset 2", f, l)
	}
	offs, err := e.StartOffsets(context.Background(), "g")
	if err != nil || len(offs) != 1 || offs[0].StartOffset != 2 || offs[0].Lag != 6 {
		t.Fatalf("start offsets %+v, %v", offs, err)
	}
	states, err := e.States(context.Background(), "g")
	if err != nil || len(states) != 1 || dumpState(states[k]) != "start=2 end=10\n  2-2 acquired count=2 member=c deadline="+fmt.Sprint(v.clock.Now().UnixMilli()+30000)+"\n  3-4 acknowledged\n  5-9 acquired count=1 member=b deadline="+fmt.Sprint(v.clock.Now().UnixMilli()+30000)+"\n" {
		t.Fatalf("states %v %v", states, err)
	}
	if got := testutil.ToFloat64(e.m.acknowledged.WithLabelValues("g", "accept")); got != 4 {
		t.Fatalf("accepted counter %v", got)
	}
	if got := testutil.ToFloat64(e.m.acknowledged.WithLabelValues("g", "release")); got != 1 {
		t.Fatalf("released counter %v", got)
	}
	if got := counterSum(t, reg, "runnel_share_records_acquired_total"); got != 11 {
		t.Fatalf("acquired counter %v", got)
	}
	// Tools' reads leave another broker's cache (and so its sweep) alone.
	other := v.engine(t)
	if _, err := other.States(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.StartOffsets(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.store.cachedState(k); ok {
		t.Fatal("reading a group's states cached them")
	}
	// A malformed batch is refused before anything is read.
	err = e.Acknowledge(context.Background(), k, "c", []AckBatch{{First: 3, Last: 2, Types: []int8{AckAccept}}})
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("malformed ack: %v", err)
	}
}

func TestEngineInitialize(t *testing.T) {
	v := newShareEnv(t, 3)
	v.produce(t, 0, 4)
	v.produce(t, 1, 4)
	e := v.engine(t)
	// latest (the default): only records produced after initialisation.
	if err := e.Initialize(context.Background(), []Key{v.key("latest", 0)}); err != nil {
		t.Fatal(err)
	}
	v.produce(t, 0, 2)
	if got := rangesString(acquire(t, e, v.key("latest", 0), "a", 100).Acquired); got != "4-5@1 " {
		t.Fatalf("latest acquired %s", got)
	}
	// Initialize again leaves the state alone.
	if err := e.Initialize(context.Background(), []Key{v.key("latest", 0)}); err != nil {
		t.Fatal(err)
	}
	if got := rangesString(acquire(t, e, v.key("latest", 0), "a", 100).Acquired); got != "" {
		t.Fatalf("re-initialised: acquired %s", got)
	}
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	// Acquire initialises lazily.
	if got := rangesString(acquire(t, e, v.key("earliest", 1), "a", 100).Acquired); got != "0-3@1 " {
		t.Fatalf("earliest acquired %s", got)
	}
	v.setConfig(config.GroupShareAutoOffsetReset, "by_duration:PT1H")
	if err := e.Initialize(context.Background(), []Key{v.key("dur", 0), v.key("dur", 2)}); err != nil {
		t.Fatal(err)
	}
	offs, err := e.StartOffsets(context.Background(), "dur")
	if err != nil || len(offs) != 2 || offs[0].StartOffset != 0 || offs[1].StartOffset != 0 || offs[0].Lag != 6 {
		t.Fatalf("by_duration start offsets %+v, %v", offs, err)
	}
	// by_duration with no record that recent starts at the high watermark.
	v.clock.Add(2 * time.Hour)
	if err := e.Initialize(context.Background(), []Key{v.key("recent", 0)}); err != nil {
		t.Fatal(err)
	}
	if offs, err := e.StartOffsets(context.Background(), "recent"); err != nil || len(offs) != 1 || offs[0].StartOffset != 6 {
		t.Fatalf("by_duration past every record: %+v, %v", offs, err)
	}
	// A partition that does not exist (any more) is skipped; existing
	// states are kept, the others created together.
	if err := e.SetStartOffset(context.Background(), v.key("multi", 1), 1); err != nil {
		t.Fatal(err)
	}
	v.setConfig(config.GroupShareAutoOffsetReset, "latest")
	if err := e.Initialize(context.Background(), []Key{v.key("multi", 7), v.key("multi", 0), v.key("multi", 1), v.key("multi", 2), v.key("multi", 0)}); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	offs, err = e.StartOffsets(context.Background(), "multi")
	if err != nil || len(offs) != 3 || offs[0].StartOffset != 6 || offs[1].StartOffset != 1 || offs[2].StartOffset != 0 {
		t.Fatalf("start offsets %+v, %v", offs, err)
	}
}

func TestEngineLockTimeout(t *testing.T) {
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupShareRecordLockDuration, "1000")
	v.setConfig(config.GroupShareDeliveryCountLimit, "2")
	reg := prometheus.NewRegistry()
	e := v.engine(t, func(o *Options) { o.Metrics = reg })
	k := v.key("g", 0)
	v.produce(t, 0, 3)
	if got := rangesString(acquire(t, e, k, "a", 100).Acquired); got != "0-2@1 " {
		t.Fatalf("acquired %s", got)
	}
	changed := e.Changed()
	v.clock.Add(1001 * time.Millisecond)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("the sweep did not expire the locks")
	}
	// The expiry is persisted: a's acknowledgement fails.
	err := e.Acknowledge(context.Background(), k, "a", []AckBatch{{First: 0, Last: 2, Types: []int8{AckAccept}}})
	if !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("ack after expiry: %v", err)
	}
	if got := rangesString(acquire(t, e, k, "b", 100).Acquired); got != "0-2@2 " {
		t.Fatalf("redelivery %s", got)
	}
	// The second timeout reaches the delivery limit: archived.
	v.clock.Add(1001 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(e.m.archived.WithLabelValues("g", "delivery_limit")) != 3 {
		if time.Now().After(deadline) {
			t.Fatal("records not archived at the delivery limit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := acquire(t, e, k, "c", 100); len(got.Acquired) != 0 {
		t.Fatalf("archived records delivered: %v", got.Acquired)
	}
	offs, _ := e.StartOffsets(context.Background(), "g")
	if offs[0].StartOffset != 3 {
		t.Fatalf("start offset %d", offs[0].StartOffset)
	}
	for name, want := range map[string]float64{
		"runnel_share_records_acquired_total":    6,
		"runnel_share_records_redelivered_total": 3,
		"runnel_share_lock_timeouts_total":       6,
	} {
		if got := counterSum(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestEngineReleaseMemberAndSetStart(t *testing.T) {
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	e := v.engine(t)
	k := v.key("g", 0)
	v.produce(t, 0, 4)
	acquire(t, e, k, "a", 100)
	changed := e.Changed()
	if err := e.ReleaseMember(context.Background(), k, "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire on release")
	}
	if got := rangesString(acquire(t, e, k, "b", 100).Acquired); got != "0-3@2 " {
		t.Fatalf("after release: %s", got)
	}
	if err := e.SetStartOffset(context.Background(), k, 2); err != nil {
		t.Fatal(err)
	}
	if got := rangesString(acquire(t, e, k, "b", 100).Acquired); got != "2-3@1 " {
		t.Fatalf("after set start: %s", got)
	}
	if err := e.DeleteState(context.Background(), "g", nil); err != nil {
		t.Fatal(err)
	}
	if offs, err := e.StartOffsets(context.Background(), "g"); err != nil || len(offs) != 0 {
		t.Fatalf("after delete: %+v %v", offs, err)
	}
	// Acquire initialises again from earliest.
	if got := rangesString(acquire(t, e, k, "b", 100).Acquired); got != "0-3@1 " {
		t.Fatalf("after delete: %s", got)
	}
}

// Two engines (two brokers) on one etcd serve one share partition at once:
// their changes race on the key's revision, and still no record is accepted
// twice and every record is accepted.
func TestEnginesRaceOnOnePartition(t *testing.T) {
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupShareRecordLockDuration, "1000")
	v.setConfig(config.GroupShareDeliveryCountLimit, "10")
	realTime := func(o *Options) { o.Now = time.Now }
	engines := []*Engine{v.engine(t, realTime), v.engine(t, realTime)}
	k := v.key("g", 0)
	const total = 200
	for i := 0; i < total/5; i++ {
		v.produce(t, 0, 5)
	}
	var mu sync.Mutex
	accepted := map[int64]string{}
	var failures []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		e := engines[i%2]
		member := fmt.Sprintf("m%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				mu.Lock()
				finished := len(accepted) == total || len(failures) > 0
				mu.Unlock()
				if finished {
					return
				}
				res, err := e.Acquire(ctx, AcquireRequest{Key: k, Member: member, MaxRecords: 7, MaxBytes: 1 << 20})
				if err != nil {
					continue // lost too many races: ask again
				}
				var acks []AckBatch
				for _, r := range res.Acquired {
					typ := AckAccept
					if (n+int(r.First))%4 == 0 {
						typ = AckRelease
					}
					acks = append(acks, AckBatch{First: r.First, Last: r.Last, Types: []int8{typ}})
				}
				if len(acks) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				if err := e.Acknowledge(ctx, k, member, acks); err != nil {
					continue
				}
				mu.Lock()
				for _, a := range acks {
					if a.Types[0] != AckAccept {
						continue
					}
					for off := a.First; off <= a.Last; off++ {
						if prev, ok := accepted[off]; ok {
							failures = append(failures, fmt.Sprintf("offset %d accepted by %s and %s", off, prev, member))
						}
						accepted[off] = member
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatal(failures)
	}
	if len(accepted) != total {
		t.Fatalf("%d of %d records accepted", len(accepted), total)
	}
	offs, err := engines[1].StartOffsets(context.Background(), "g")
	if err != nil || offs[0].StartOffset != total {
		t.Fatalf("start offsets %+v %v", offs, err)
	}
}

// read_committed delivers neither aborted transactions nor open ones (it
// stops at the last stable offset); control batches are never delivered.
func TestEngineReadCommitted(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	e := v.engine(t)
	pid, epoch, err := v.log.InitTxnProducer(ctx, "tx", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	seq := int32(0)
	txn := func(n int, end, commit bool) {
		t.Helper()
		if err := v.log.AddPartitionsToTxn(ctx, "tx", pid, epoch, []stream.TxnPartition{{Topic: v.topic.ID, Partition: 0}}); err != nil {
			t.Fatal(err)
		}
		r := v.log.Produce(ctx, []stream.ProduceBatch{{Topic: v.topic.Name, Partition: 0, Records: batch(n, "t", 0x10, pid, epoch, seq)}})
		if r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
		seq += int32(n)
		if end {
			if _, _, err := v.log.EndTxn(ctx, "tx", pid, epoch, commit, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	v.produce(t, 0, 2)   // 0-1
	txn(2, true, true)   // 2-3, commit marker 4
	txn(2, true, false)  // 5-6, abort marker 7
	txn(2, false, false) // 8-9, open
	committed := v.key("rc", 0)
	v.setConfig(config.GroupShareIsolationLevel, "read_committed")
	if got := rangesString(acquire(t, e, committed, "a", 100).Acquired); got != "0-3@1 " {
		t.Fatalf("read_committed acquired %s", got)
	}
	if got := rangesString(acquire(t, e, committed, "a", 100).Acquired); got != "" {
		t.Fatalf("read_committed acquired the open transaction: %s", got)
	}
	if _, _, err := v.log.EndTxn(ctx, "tx", pid, epoch, true, false); err != nil { // marker 10
		t.Fatal(err)
	}
	v.produce(t, 0, 1) // 11
	if got := rangesString(acquire(t, e, committed, "a", 100).Acquired); got != "8-9@1 11-11@1 " {
		t.Fatalf("read_committed after the commit acquired %s", got)
	}
	v.setConfig(config.GroupShareIsolationLevel, "read_uncommitted")
	if got := rangesString(acquire(t, e, v.key("ru", 0), "a", 100).Acquired); got != "0-3@1 5-6@1 8-9@1 11-11@1 " {
		t.Fatalf("read_uncommitted acquired %s", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A broker that acquired records and died: the next one honours the locks
// until their deadline (the holder can still acknowledge) and keeps the
// delivery counts.
func TestEngineRestartKeepsLocks(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupShareRecordLockDuration, "5000")
	e1 := v.engine(t)
	k := v.key("g", 0)
	v.produce(t, 0, 3)
	v.produce(t, 0, 3)
	acquire(t, e1, k, "a", 1) // 0-2
	if got := rangesString(acquire(t, e1, k, "b", 1).Acquired); got != "3-5@1 " {
		t.Fatalf("b acquired %s", got)
	}
	e1.Close()
	e2 := v.engineOn(t, v.etcd.Client())
	if got := acquire(t, e2, k, "c", 100); len(got.Acquired) != 0 {
		t.Fatalf("locked records acquired again: %v", got.Acquired)
	}
	if err := e2.Acknowledge(ctx, k, "a", []AckBatch{{First: 0, Last: 2, Types: []int8{AckAccept}}}); err != nil {
		t.Fatal(err)
	}
	v.clock.Add(5 * time.Second)
	if got := rangesString(acquire(t, e2, k, "c", 100).Acquired); got != "3-5@2 " {
		t.Fatalf("after b's locks expired: %s", got)
	}
}

// The contracts of the Kafka front end (Shares) and of the share group
// coordinator (ShareStates), as they declare them; the engine must satisfy
// both.
var (
	_ interface {
		Acquire(ctx context.Context, req AcquireRequest) (AcquireResult, error)
		Acknowledge(ctx context.Context, key Key, member string, acks []AckBatch) error
		ReleaseMember(ctx context.Context, key Key, member string) error
		LockDuration(group string) time.Duration
		Changed() <-chan struct{}
	} = (*Engine)(nil)
	_ interface {
		Initialize(ctx context.Context, keys []Key) error
		StartOffsets(ctx context.Context, group string) ([]PartitionOffset, error)
		SetStartOffset(ctx context.Context, key Key, offset int64) error
		DeleteState(ctx context.Context, group string, topic *stream.TopicID) error
	} = (*Engine)(nil)
)

// A ShareFetch that asks for record_limit gets no more than MaxRecords in a
// batch_optimized group.
func TestEngineRequestRecordLimit(t *testing.T) {
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	e := v.engine(t)
	k := v.key("g", 0)
	v.produce(t, 0, 5)
	res, err := e.Acquire(context.Background(), AcquireRequest{Key: k, Member: "a", MaxRecords: 2, MaxBytes: 1 << 20, RecordLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := rangesString(res.Acquired); got != "0-1@1 " {
		t.Fatalf("acquired %s", got)
	}
}

// A change made by another broker reaches this one's cache through the
// watch and fires Changed: records another broker released can be
// acquired here at once.
func TestEngineRemoteChangeFiresChanged(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	e1, e2 := v.engine(t), v.engine(t)
	k := v.key("g", 0)
	v.produce(t, 0, 2)
	acquire(t, e1, k, "a", 100)
	if got := acquire(t, e2, k, "b", 100); len(got.Acquired) != 0 {
		t.Fatalf("b acquired %v", got.Acquired)
	}
	changed := e2.Changed()
	if err := e1.Acknowledge(ctx, k, "a", []AckBatch{{First: 0, Last: 1, Types: []int8{AckRelease}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("e2's Changed did not fire")
	}
	st, ok := e2.store.cachedState(k)
	if !ok || len(st.Runs) != 1 || st.Runs[0].State != Available {
		t.Fatalf("e2's cache after the release: %+v", st)
	}
	if got := rangesString(acquire(t, e2, k, "b", 100).Acquired); got != "0-1@2 " {
		t.Fatalf("b acquired %s", got)
	}
}

// A change whose etcd write fails has an unknown outcome (the in-process
// client may still apply a transaction whose context is cancelled): it is
// applied whole or not at all, and the engine forgets what it cached, so
// its next change starts from what etcd holds.
func TestEngineFailedWriteAllOrNothing(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	e := v.engine(t)
	k := v.key("g", 0)
	v.produce(t, 0, 2)
	acquire(t, e, k, "m", 100)
	dead, cancel := context.WithCancel(ctx)
	cancel()
	err := e.Acknowledge(dead, k, "m", []AckBatch{{First: 0, Last: 1, Types: []int8{AckAccept}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ack with a dead context: %v", err)
	}
	if _, ok := e.store.cachedState(k); ok {
		t.Fatal("the engine kept its cache of a write with an unknown outcome")
	}
	states, err := v.engine(t).States(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	untouched := fmt.Sprintf("start=0 end=2\n  0-1 acquired count=1 member=m deadline=%d\n", v.clock.Now().UnixMilli()+30000)
	if got := dumpState(states[k]); got != untouched && got != "start=2 end=2\n" {
		t.Fatalf("state after the failed ack:\n%s", got)
	}
	// Acknowledging again lands exactly once: either this one applies (the
	// first did not, and now never will: its compare-and-swap is stale) or
	// it finds the records acknowledged.
	err = e.Acknowledge(ctx, k, "m", []AckBatch{{First: 0, Last: 1, Types: []int8{AckAccept}}})
	if err != nil && !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("ack again: %v", err)
	}
	states, err = v.engine(t).States(ctx, "g")
	if got := dumpState(states[k]); err != nil || got != "start=2 end=2\n" {
		t.Fatalf("state after acknowledging again: %s %v", got, err)
	}
}

// Store errors other than the caller's own context are the retriable
// ErrUnavailable.
func TestUnavailable(t *testing.T) {
	if err := unavailable(errors.New("etcdserver: request timed out")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("%v", err)
	}
	if err := unavailable(context.DeadlineExceeded); errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
}

// A redelivery between batches other members hold returns only the batches
// with acquired offsets.
func TestRecordsFor(t *testing.T) {
	var data []byte
	var batches []Batch
	var spans [][2]int
	for i, n := range []int{2, 3, 1, 4} {
		base := int64(len(batches) * 10)
		b := batch(n, fmt.Sprint(i), 0, -1, -1, -1)
		binary.BigEndian.PutUint64(b, uint64(base))
		spans = append(spans, [2]int{len(data), len(data) + len(b)})
		data = append(data, b...)
		batches = append(batches, Batch{Base: base, Last: base + int64(n) - 1})
	}
	for _, c := range []struct {
		name   string
		ranges []AcquiredRange
		want   []int64 // base offsets of the batches returned
	}{
		{"one", []AcquiredRange{{First: 11, Last: 11}}, []int64{10}},
		{"adjacent", []AcquiredRange{{First: 1, Last: 1}, {First: 10, Last: 12}}, []int64{0, 10}},
		{"apart", []AcquiredRange{{First: 0, Last: 0}, {First: 31, Last: 33}}, []int64{0, 30}},
		{"none", []AcquiredRange{{First: 5, Last: 9}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := parseBatches(recordsFor(data, batches, spans, c.ranges))
			if err != nil {
				t.Fatal(err)
			}
			var bases []int64
			for _, b := range got {
				bases = append(bases, b.Base)
			}
			if fmt.Sprint(bases) != fmt.Sprint(c.want) {
				t.Fatalf("batches %v, want %v", bases, c.want)
			}
		})
	}
}

// A share partition this engine has not served for a while leaves its
// cache (its sweep stops expiring locks there), unless it has dead letters
// to write; serving it again reads it back.
func TestEngineEvictsIdlePartitions(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 2)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupDLQTopicName, "dlq.g")
	w := &fakeLetters{failing: true, written: map[int64]int{}}
	e := New(Options{Client: v.etcd.Client(), Log: v.log, GroupConfig: v.groupConfig, Now: v.clock.Now, SweepInterval: 5 * time.Millisecond, DeadLetters: w})
	e.cacheIdle = time.Minute
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	idle, lettered := v.key("g", 0), v.key("g", 1)
	v.produce(t, 0, 1)
	v.produce(t, 1, 1)
	acquire(t, e, idle, "m", 10)
	acquire(t, e, lettered, "m", 10)
	if err := e.Acknowledge(ctx, lettered, "m", []AckBatch{{First: 0, Last: 0, Types: []int8{AckReject}}}); err != nil {
		t.Fatal(err)
	}
	v.clock.Add(30 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if _, ok := e.store.cachedState(idle); !ok {
		t.Fatal("evicted before it was idle for cacheIdle")
	}
	v.clock.Add(31 * time.Second)
	waitFor(t, "the idle partition evicted", func() bool { _, ok := e.store.cachedState(idle); return !ok })
	if _, ok := e.store.cachedState(lettered); !ok {
		t.Fatal("a partition with letters to write was evicted")
	}
	// Served again: read back, with its locks (expired by now).
	if got := rangesString(acquire(t, e, idle, "n", 10).Acquired); got != "0-0@2 " {
		t.Fatalf("after eviction acquired %s", got)
	}
}

// Records deleted from the log while a member held them: its
// acknowledgement of them is skipped (they are gone), and the records
// still there are acknowledged.
func TestEngineAckAfterDeleteRecords(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	e := v.engine(t)
	k := v.key("g", 0)
	v.produce(t, 0, 4)
	acquire(t, e, k, "m", 10)
	if _, err := v.log.DeleteRecords(ctx, v.topic.Name, 0, 2); err != nil {
		t.Fatal(err)
	}
	// Another member's fetch meanwhile drops the deleted records.
	if got := acquire(t, e, k, "n", 10); len(got.Acquired) != 0 {
		t.Fatalf("n acquired %v", got.Acquired)
	}
	if err := e.Acknowledge(ctx, k, "m", []AckBatch{{First: 0, Last: 3, Types: []int8{AckAccept, AckReject, AckAccept, AckRelease}}}); err != nil {
		t.Fatalf("ack across the new log start: %v", err)
	}
	states, err := e.States(ctx, "g")
	if got := dumpState(states[k]); err != nil || got != "start=3 end=4\n  3-3 available count=1\n" {
		t.Fatalf("state:\n%s %v", got, err)
	}
	if got := testutil.ToFloat64(e.m.acknowledged.WithLabelValues("g", "accept")); got != 1 {
		t.Fatalf("accepted %v records, want the one still in the log", got)
	}
	// Entirely below the log start: nothing to do.
	if err := e.Acknowledge(ctx, k, "m", []AckBatch{{First: 0, Last: 1, Types: []int8{AckAccept}}}); err != nil {
		t.Fatal(err)
	}
}

func TestClipAcks(t *testing.T) {
	acks := []AckBatch{{First: 0, Last: 1, Types: []int8{1}}, {First: 3, Last: 6, Types: []int8{1, 2, 3, 1}}, {First: 8, Last: 9, Types: []int8{2}}}
	got := ClipAcks(acks, 5)
	want := []AckBatch{{First: 5, Last: 6, Types: []int8{3, 1}}, {First: 8, Last: 9, Types: []int8{2}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("clipped %v, want %v", got, want)
	}
	if fmt.Sprint(acks[1]) != "{3 6 [1 2 3 1]}" {
		t.Fatalf("the input changed: %v", acks)
	}
}

// sizedLog records how many bytes each Fetch returned.
type sizedLog struct {
	Log
	mu   sync.Mutex
	read []int
}

func (l *sizedLog) Fetch(ctx context.Context, p stream.FetchPartition) (stream.FetchResult, error) {
	fr, err := l.Log.Fetch(ctx, p)
	l.mu.Lock()
	l.read = append(l.read, len(fr.Records))
	l.mu.Unlock()
	return fr, err
}

// TestEngineAcquireReadsWhatItNeeds: an acquisition of a few records reads
// about that many from the log, not the request's whole byte budget (a
// client's 50 MiB), which copied the partition's backlog on every
// ShareFetch.
func TestEngineAcquireReadsWhatItNeeds(t *testing.T) {
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	big := strings.Repeat("x", 1000)
	for i := 0; i < 100; i++ { // 1000 records of about 1 KB
		r := v.log.Produce(context.Background(), []stream.ProduceBatch{{Topic: v.topic.Name, Partition: 0, Records: batch(10, big, 0, -1, -1, -1)}})
		if r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
	}
	sl := &sizedLog{Log: v.log}
	e := v.engine(t, func(o *Options) { o.Log = sl })
	k := v.key("g", 0)
	for i := 0; i < 3; i++ {
		res, err := e.Acquire(context.Background(), AcquireRequest{Key: k, Member: "m", MaxRecords: 20, MaxBytes: 50 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Acquired) == 0 {
			t.Fatalf("acquisition %d got nothing", i)
		}
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	for i, n := range sl.read {
		// 20 records of ~1 KB plus the slack and a batch: well under
		// 200 KB; the whole backlog is about 1 MB.
		if n > 200<<10 {
			t.Fatalf("acquisition %d of 20 records read %d bytes from the log (reads %v)", i, n, sl.read)
		}
	}
}

// Under a retry policy a released record is acquirable only after its
// delay; records after it flow meanwhile. A long poll (waiting on Changed)
// is woken when the record becomes due, with no new log data, also by an
// engine that only loaded the waiting record after a restart.
func TestEngineRetryDelayWakesLongPoll(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupRetryDelays, "300,600")
	realClock := func(o *Options) { o.Now = time.Now }
	e1 := v.engine(t, realClock)
	// e2 is the broker the partition moves to later; it has not read the
	// share partition yet.
	e2 := v.engine(t, realClock)
	k := v.key("g", 0)
	v.produce(t, 0, 1)
	v.produce(t, 0, 1)
	if got := rangesString(acquire(t, e1, k, "a", 100).Acquired); got != "0-1@1 " {
		t.Fatalf("acquired %s", got)
	}
	// waitDue long-polls like ShareFetch until member acquires want; every
	// look is made after Changed fired.
	waitDue := func(e *Engine, member, want string, notBefore time.Time) {
		t.Helper()
		for i := 0; ; i++ {
			changed := e.Changed()
			got := rangesString(acquire(t, e, k, member, 100).Acquired)
			if got == want {
				if now := time.Now(); now.Before(notBefore) {
					t.Fatalf("%s acquired %v before it was due", got, notBefore.Sub(now))
				}
				return
			}
			if got != "" || i > 10 {
				t.Fatalf("acquired %q waiting for %s", got, want)
			}
			select {
			case <-changed:
			case <-time.After(5 * time.Second):
				t.Fatalf("no wake-up while waiting for %s", want)
			}
		}
	}
	released := time.Now()
	if err := e1.Acknowledge(ctx, k, "a", []AckBatch{{First: 0, Last: 1, Types: []int8{AckRelease, AckAccept}}}); err != nil {
		t.Fatal(err)
	}
	if got := acquire(t, e1, k, "b", 100); len(got.Acquired) != 0 {
		t.Fatalf("acquired %v before the delay", got.Acquired)
	}
	v.produce(t, 0, 1)
	if got := rangesString(acquire(t, e1, k, "b", 100).Acquired); got != "2-2@1 " {
		t.Fatalf("the record after the waiting one: %s", got)
	}
	waitDue(e1, "b", "0-0@2 ", released.Add(300*time.Millisecond))

	// Released after the second delivery: the second delay, kept when the
	// partition moves to another broker (which wakes its long polls too,
	// having only loaded the waiting record).
	released = time.Now()
	if err := e1.Acknowledge(ctx, k, "b", []AckBatch{{First: 0, Last: 0, Types: []int8{AckRelease}}}); err != nil {
		t.Fatal(err)
	}
	e1.Close()
	waitDue(e2, "c", "0-0@3 ", released.Add(600*time.Millisecond))
}

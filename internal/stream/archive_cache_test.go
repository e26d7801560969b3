package stream

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// readCounter counts the reads that reach a store.
type readCounter struct {
	objstore.Store
	segments, intake atomic.Int64
}

func (s *readCounter) count(key string) {
	if strings.HasPrefix(key, "topics/") {
		s.segments.Add(1)
	} else {
		s.intake.Add(1)
	}
}

func (s *readCounter) Get(ctx context.Context, key string) ([]byte, error) {
	s.count(key)
	return s.Store.Get(ctx, key)
}

func (s *readCounter) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.count(key)
	return s.Store.GetRange(ctx, key, off, n)
}

// TestRecentArchivesAreReadFromMemory: archival moves the index of data
// flushed moments ago from intake objects to a segment; a consumer reading
// those offsets next must get them from memory, as it did a moment before,
// not from the object store, and the intake objects archived whole leave
// the cache to the segments. Data the cache no longer held when it was
// archived is not put into it.
func TestRecentArchivesAreReadFromMemory(t *testing.T) {
	v := newEnv(t)
	rc := &readCounter{Store: v.store}
	v.store = rc
	e := v.open(t)
	ti := mustCreate(t, e, "t", 2, nil)
	for i := range 6 {
		if r := produce(t, e, "t", int32(i%2), makeBatch(-1, -1, -1, 3, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	want := fmt.Sprint(readAll(t, e, ti.ID, 0), readAll(t, e, ti.ID, 1))
	if n := rc.intake.Load() + rc.segments.Load(); n != 0 {
		t.Fatalf("reading just-flushed data reached the store %d times", n)
	}
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(readAll(t, e, ti.ID, 0), readAll(t, e, ti.ID, 1)); got != want {
		t.Fatalf("after archival: %s, want %s", got, want)
	}
	if n := rc.segments.Load(); n != 0 {
		t.Fatalf("reading just-archived data read segments from the store %d times", n)
	}
	// The intake objects archived whole left the cache to the segments.
	e.cache.mu.Lock()
	for k := range e.cache.items {
		if strings.HasPrefix(k, "intake/") {
			e.cache.mu.Unlock()
			t.Fatalf("archived intake object %s still cached", k)
		}
	}
	e.cache.mu.Unlock()

	// Data no longer cached when it is archived stays out of the cache.
	for i := range 4 {
		if r := produce(t, e, "t", int32(i%2), makeBatch(-1, -1, -1, 3, int64(2000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	e.cache.mu.Lock()
	var keys []string
	for k := range e.cache.items {
		keys = append(keys, k)
	}
	e.cache.mu.Unlock()
	for _, k := range keys {
		e.cache.remove(k)
	}
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.cache.mu.Lock()
	defer e.cache.mu.Unlock()
	for k := range e.cache.items {
		if strings.HasPrefix(k, "topics/") {
			t.Fatalf("segment %s of data archived from the store was cached", k)
		}
	}
}

// produceAcross writes n produce requests of one batch to each of parts
// partitions of topic; each request is flushed as one intake object.
func produceAcross(t *testing.T, e *Engine, topic string, parts int32, n int) {
	t.Helper()
	for i := range n {
		var batches []ProduceBatch
		for p := range parts {
			batches = append(batches, ProduceBatch{Topic: topic, Partition: p,
				Records: makeBatch(-1, -1, -1, 5, int64(1000+i), CodecNone)})
		}
		for _, r := range e.Produce(context.Background(), batches) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
}

// otherBroker sets up what another broker of a cluster meets: broker a
// creates topic "t" with parts partitions and produces requests requests
// across them (one intake object each); then broker 2 opens over the same
// etcd and the store wrap(v.store) and replays it all, none of it in its
// cache. want is each partition's records as a reads them.
func otherBroker(t *testing.T, v *env, parts int32, requests int, wrap func(objstore.Store) objstore.Store) (a, b *Engine, ti TopicInfo, want []string) {
	t.Helper()
	a = v.open(t)
	ti = mustCreate(t, a, "t", parts, nil)
	produceAcross(t, a, "t", parts, requests)
	for p := range parts {
		want = append(want, fmt.Sprint(readAll(t, a, ti.ID, p)))
	}
	v.store = wrap(v.store)
	o := v.opts
	o.BrokerID = 2
	b = v.openWith(t, o)
	caughtUp(t, b, "t", parts, 5*int64(requests))
	return a, b, ti, want
}

// caughtUp waits until e's sequencer has every record of topic's parts
// partitions that want says are there.
func caughtUp(t *testing.T, e *Engine, topic string, parts int32, want int64) {
	t.Helper()
	for p := range parts {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ps, err := e.State(topic, p)
			if err == nil && ps.HighWatermark == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d: state %+v, %v; want high watermark %d", p, ps, err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// readPass reads every extent of plans through r, checks each against a
// ranged read of store, and calls after once per extent.
func readPass(t *testing.T, r *passReads, plans []archivePlan, store objstore.Store, after func()) {
	t.Helper()
	for _, p := range plans {
		for _, x := range p.extents {
			got, err := r.extent(context.Background(), x)
			if err != nil {
				t.Fatal(err)
			}
			direct, err := store.GetRange(context.Background(), x.Obj, x.Pos, x.Len)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(direct) {
				t.Fatalf("extent %+v: pass read differs from the object's bytes", x)
			}
			after()
		}
	}
}

func unarchivedExtents(e *Engine, id TopicID) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	for _, p := range e.st.Topics[id].Parts {
		for _, x := range p.Extents {
			if !x.Segment {
				n++
			}
		}
	}
	return n
}

// TestArchivalReadsEachIntakeObjectOnce: the maintainer of a cluster
// archives intake objects other brokers wrote, which its cache never held.
// Each object holds a batch of every partition; archival read them one
// extent at a time (80 reads of 10 objects here; on S3, thousands of
// sequential GETs a second, and archival fell behind for good). Each
// object is now read once per pass.
func TestArchivalReadsEachIntakeObjectOnce(t *testing.T) {
	const parts, requests = 8, 10
	var rc *readCounter
	a, b, ti, want := otherBroker(t, newEnv(t), parts, requests, func(s objstore.Store) objstore.Store {
		rc = &readCounter{Store: s}
		return rc
	})
	if err := b.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := unarchivedExtents(b, ti.ID); n != 0 {
		t.Fatalf("%d extents left unarchived", n)
	}
	if n := rc.intake.Load(); n != requests {
		t.Fatalf("archiving %d partitions of %d intake objects read the store %d times, want once per object", parts, requests, n)
	}
	caughtUp(t, a, "t", parts, 5*requests)
	for p := range int32(parts) {
		for _, e := range []*Engine{a, b} {
			if got := fmt.Sprint(readAll(t, e, ti.ID, p)); got != want[p] {
				t.Fatalf("partition %d after archival: %s, want %s", p, got, want[p])
			}
		}
	}
}

// TestArchivalReadsWithinItsBudget: the objects a pass reads ahead are
// bounded by its budget; what the budget leaves unread is read by range,
// and every extent's bytes are the ones produced.
func TestArchivalReadsWithinItsBudget(t *testing.T) {
	const parts, requests = 4, 12
	var rc *readCounter
	_, b, _, _ := otherBroker(t, newEnv(t), parts, requests, func(s objstore.Store) objstore.Store {
		rc = &readCounter{Store: s}
		return rc
	})

	plans, _, _, _ := b.archivePlans(true)
	var object int64
	for _, p := range plans {
		for _, x := range p.extents {
			object = max(object, x.Pos+x.Len)
		}
	}
	budget := 3 * object
	r := b.newPassReads(context.Background(), plans, budget)
	defer r.end()
	var peak int64
	readPass(t, r, plans, rc.Store, func() {
		r.mu.Lock()
		peak = max(peak, r.held)
		r.mu.Unlock()
	})
	if peak > budget+object {
		t.Fatalf("pass held %d bytes at its peak, budget %d", peak, budget)
	}
	if peak == 0 {
		t.Fatal("pass read no object whole")
	}
	// Never more reads than one per extent: the objects the budget held
	// served several extents each.
	if n := rc.intake.Load(); n >= parts*requests {
		t.Fatalf("store reads %d for %d extents", n, parts*requests)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.refs) != 0 || r.held != 0 {
		t.Fatalf("after the pass: refs %v, %d bytes held", r.refs, r.held)
	}
}

// TestPacedArchivalTrimsPassesToItsBudget: a paced pass takes the same
// span of time from every partition, about ArchiveReadBytes in all, and
// further passes follow within the archive interval until the backlog is
// archived, each object read about once.
func TestPacedArchivalTrimsPassesToItsBudget(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	const parts, requests = 4, 12
	ti := mustCreate(t, a, "t", parts, nil)
	produceAcross(t, a, "t", parts, requests)
	var want []string
	for p := range int32(parts) {
		want = append(want, fmt.Sprint(readAll(t, a, ti.ID, p)))
	}
	plans, _, _, _ := a.archivePlans(true)
	var object int64
	for _, p := range plans {
		for _, x := range p.extents {
			object = max(object, x.Pos+x.Len)
		}
	}

	rc := &readCounter{Store: v.store}
	v.store = rc
	o := v.opts
	o.BrokerID, o.ArchiveMinBytes, o.ArchiveInterval = 2, 1, time.Minute
	o.ArchiveReadBytes = 3 * object // three requests' worth a pass
	b := v.openWith(t, o)
	caughtUp(t, b, "t", parts, 5*requests)
	if err := b.Archive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := unarchivedExtents(b, ti.ID); n != 0 {
		t.Fatalf("%d extents left unarchived", n)
	}
	b.mu.RLock()
	segments := len(b.st.Topics[ti.ID].Parts[0].Extents)
	b.mu.RUnlock()
	if segments < 3 {
		t.Fatalf("partition 0 archived in %d segments: the passes were not trimmed", segments)
	}
	// An object at the end of one pass's span may be read again by the next.
	if n := rc.intake.Load(); n > requests+int64(segments) {
		t.Fatalf("%d intake objects read %d times in %d passes", requests, n, segments)
	}
	for p := range int32(parts) {
		if got := fmt.Sprint(readAll(t, b, ti.ID, p)); got != want[p] {
			t.Fatalf("partition %d after archival: %s, want %s", p, got, want[p])
		}
	}
}

// TestArchivalReadsObjectsTheCacheDropsOnce: objects cached when a pass
// plans its reads may leave the cache before the pass reads them (at 50
// MB/s a 128 MiB cache holds little more than a second of intake and its
// segments); those are read whole once too, not extent by extent.
func TestArchivalReadsObjectsTheCacheDropsOnce(t *testing.T) {
	v := newEnv(t)
	rc := &readCounter{Store: v.store}
	v.store = rc
	e := v.open(t)
	const parts, requests = 8, 10
	mustCreate(t, e, "t", parts, nil)
	produceAcross(t, e, "t", parts, requests)
	plans, _, _, _ := e.archivePlans(true)
	r := e.newPassReads(context.Background(), plans, 64<<20)
	defer r.end()
	for _, p := range plans {
		for _, x := range p.extents {
			e.cache.remove(x.Obj)
		}
	}
	readPass(t, r, plans, rc.Store, func() {})
	if n := rc.intake.Load(); n != requests {
		t.Fatalf("%d objects dropped by the cache were read %d times for %d extents", requests, n, parts*requests)
	}
}

// TestPacedArchivalKeepsUpWithAHotPartition: a segment holds at most
// maxSegmentBytes, and a pass made one segment per partition: with passes a
// second apart, a partition taking more than 16 MiB/s fell behind for good
// (until produce to it was refused at the unarchived-extents cap). Passes
// now repeat within the archive interval while a partition has more.
func TestPacedArchivalKeepsUpWithAHotPartition(t *testing.T) {
	v := newEnv(t)
	o := v.opts
	o.ArchiveMinBytes, o.ArchiveInterval = 1, time.Minute
	e := v.openWith(t, o)
	ti := mustCreate(t, e, "hot", 1, nil)
	value := make([]byte, 256<<10)
	for i := range value {
		value[i] = byte(i * 7)
	}
	var batches []ProduceBatch
	for range (maxSegmentBytes * 5 / 2) / len(value) {
		batches = append(batches, ProduceBatch{Topic: "hot", Partition: 0, Records: makeValueBatch(t, value)})
	}
	for len(batches) > 0 {
		n := min(8, len(batches))
		for _, r := range e.Produce(context.Background(), batches[:n]) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		batches = batches[n:]
	}
	if err := e.Archive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := unarchivedExtents(e, ti.ID); n != 0 {
		t.Fatalf("one pass of a partition with %d MiB left %d extents unarchived", maxSegmentBytes*5/2>>20, n)
	}
}

// makeValueBatch builds a batch of one record holding value.
func makeValueBatch(t *testing.T, value []byte) []byte {
	t.Helper()
	r := kmsg.Record{Value: value}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	h := batchHeader{FirstTimestamp: 1000, MaxTimestamp: 1000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, NumRecords: 1}
	return buildBatch(h, int16(CodecNone), r.AppendTo(nil))
}

// failingGets refuses whole-object reads; ranged reads work.
type failingGets struct{ *readCounter }

func (s failingGets) Get(ctx context.Context, key string) ([]byte, error) {
	s.count(key)
	return nil, fmt.Errorf("%w: get refused", ErrStorage)
}

// TestArchivalFallsBackToRangedReads: when a pass cannot read an object
// whole, each of its extents is read by range and archival still writes
// the produced bytes.
func TestArchivalFallsBackToRangedReads(t *testing.T) {
	v := newEnv(t)
	rc := &readCounter{Store: v.store}
	v.store = failingGets{rc}
	e := v.open(t)
	const parts, requests = 4, 5
	ti := mustCreate(t, e, "t", parts, nil)
	produceAcross(t, e, "t", parts, requests)
	want := map[int32]string{}
	for p := range int32(parts) {
		want[p] = fmt.Sprint(readAll(t, e, ti.ID, p))
	}
	plans, _, _, _ := e.archivePlans(true)
	r := e.newPassReads(context.Background(), plans, 64<<20)
	for _, p := range plans {
		for _, x := range p.extents {
			e.cache.remove(x.Obj)
		}
	}
	readPass(t, r, plans, rc.Store, func() {})
	r.end()
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := unarchivedExtents(e, ti.ID); n != 0 {
		t.Fatalf("%d extents left unarchived", n)
	}
	for p := range int32(parts) {
		if got := fmt.Sprint(readAll(t, e, ti.ID, p)); got != want[p] {
			t.Fatalf("partition %d after archival: %s, want %s", p, got, want[p])
		}
	}
}

// paceStore records the write pace asked of the first segment put.
type paceStore struct {
	objstore.Store
	mu   sync.Mutex
	pace float64 // bytes per second; 0 until a segment is put
}

func (s *paceStore) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "topics/") {
		s.mu.Lock()
		if s.pace == 0 {
			s.pace = objstore.WritePace(ctx)
		}
		s.mu.Unlock()
	}
	return s.Store.Put(ctx, key, data)
}

// TestPacedArchivalDrainsABacklog: with no intake since the last pass (a
// producer held back by MaxUnarchivedBytes, or stopped), archival still
// writes fast enough to drain the backlog within four intervals. Before,
// its pace followed the intake rate down to its 32 MiB/s floor, and a
// producer held back at the cap stayed held back (250 MB/s of produce fell
// to about 46).
func TestPacedArchivalDrainsABacklog(t *testing.T) {
	v := newEnv(t)
	v.opts.ArchiveInterval = 100 * time.Millisecond
	v.opts.ArchiveMinBytes = 1
	ps := &paceStore{Store: v.store}
	v.store = ps
	e := v.open(t)
	mustCreate(t, e, "t", 1, nil)
	value := strings.Repeat("v", 1<<19)
	for range 48 {
		if r := produce(t, e, "t", 0, valueBatch(value)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	e.lastArchivePass, e.lastArchiveIntake = time.Now(), e.intakeBytes.Load()
	if err := e.Archive(context.Background()); err != nil {
		t.Fatal(err)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if want := float64(24<<20) / 0.4; ps.pace < want*0.99 {
		t.Fatalf("archival paced its segments at %.0f MB/s with a 24 MiB backlog and a 100 ms interval, want at least %.0f", ps.pace/1e6, want/1e6)
	}
}

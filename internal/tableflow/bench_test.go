package tableflow

// Benchmarks of materialising a topic (issue 11, "freshness and
// throughput"): the real Service, Catalog and stream engine over a file
// store in a temporary directory and an embedded etcd, so every commit
// writes Parquet and metadata files and swaps the table key in etcd as a
// broker does. They take tens of seconds; run them alone:
//
//	go test -run '^$' -bench Materialise -benchtime 1x ./internal/tableflow/
//
// -tableflow.records, -tableflow.rate and -tableflow.duration size them.
// CPU time is the whole process's (getrusage user+sys): the materialiser,
// the log it reads, and the embedded etcd serving both, so records per
// CPU-second understates the materialiser's own rate.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/stream"
)

var (
	benchRecords  = flag.Int("tableflow.records", 100_000, "records BenchmarkMaterialiseThroughput preloads")
	benchRate     = flag.Int("tableflow.rate", 2000, "records per second BenchmarkMaterialiseFreshness produces")
	benchDuration = flag.Duration("tableflow.duration", 20*time.Second, "how long BenchmarkMaterialiseFreshness produces")
)

const (
	benchPartitions = 8
	benchValueBytes = 1024
	// benchPoll is how often the benchmarks look at the catalog.
	benchPoll = 20 * time.Millisecond
)

// benchEnv is one broker's worth of Tableflow: etcd, a file store, the
// log and the catalog. Each iteration of a benchmark uses its own topic
// and its own Service.
type benchEnv struct {
	etcd    *clustertest.Etcd
	log     *stream.Engine
	catalog *Catalog
	leader  *fakeLeader
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	store, err := objstore.Open(ctx, "file://"+dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	v := &benchEnv{etcd: clustertest.Start(b), leader: &fakeLeader{}}
	v.leader.id.Store(1)
	if v.catalog, err = OpenCatalog(ctx, CatalogOptions{Client: v.etcd.Client(), IO: NewFileIO(store, "file://"+dir)}); err != nil {
		b.Fatal(err)
	}
	// The engine's defaults (flush linger, cache) as a broker runs it;
	// its own maintenance (archival) is off so that it does not run
	// inside a measurement.
	if v.log, err = stream.Open(ctx, stream.Options{Client: v.etcd.Client(), Store: store, DisableMaintenance: true}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.log.Close() })
	return v
}

// topic creates a materialised topic with table.commit.interval.ms=1000.
func (v *benchEnv) topic(b *testing.B, name string) {
	b.Helper()
	cfg := map[string]string{"table.enabled": "true", "table.commit.interval.ms": "1000"}
	if _, err := v.log.CreateTopic(context.Background(), name, benchPartitions, cfg, false); err != nil {
		b.Fatal(err)
	}
}

// done turns the topic's table off, so the next iteration's service
// leaves it alone.
func (v *benchEnv) done(b *testing.B, name string) {
	b.Helper()
	off := "false"
	if err := v.log.AlterTopicConfigs(context.Background(), name, []stream.ConfigChange{{Name: "table.enabled", Value: &off}}, false, false); err != nil {
		b.Fatal(err)
	}
}

// service starts a Service that takes its commit interval from the
// topic's config (Options.CommitInterval unset).
func (v *benchEnv) service(b *testing.B) *Service {
	b.Helper()
	s := New(Options{Client: v.etcd.Client(), Log: v.log, Catalog: v.catalog, Cluster: v.leader, BrokerID: 1})
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// randomRecords returns n records with values of their own random bytes
// (incompressible).
func randomRecords(rng *rand.ChaCha8, n int) []kmsg.Record {
	buf := make([]byte, n*benchValueBytes)
	_, _ = rng.Read(buf)
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{Value: buf[i*benchValueBytes : (i+1)*benchValueBytes]}
	}
	return recs
}

// tableWatch follows a table's current snapshot through the catalog: the
// table key in etcd, and the metadata file when the key moved.
type tableWatch struct {
	catalog  *Catalog
	ns, name string
	loc      string
	meta     table.Metadata
	offsets  Offsets
}

// poll returns the offsets the table's current snapshot covers (none
// before the table exists).
func (w *tableWatch) poll(ctx context.Context) (Offsets, error) {
	e, err := w.catalog.Table(ctx, w.ns, w.name)
	if errors.Is(err, ErrNoSuchTable) || errors.Is(err, ErrNoSuchNamespace) {
		return Offsets{}, nil
	}
	if err != nil {
		return nil, err
	}
	if e.MetadataLocation == w.loc {
		return w.offsets, nil
	}
	meta, err := w.catalog.Metadata(e)
	if err != nil {
		return nil, err
	}
	offs, err := OffsetsOf(meta)
	if err != nil {
		return nil, err
	}
	w.loc, w.meta, w.offsets = e.MetadataLocation, meta, offs
	return offs, nil
}

// rows is the current snapshot's total-records.
func (w *tableWatch) rows() int64 {
	snap := w.meta.CurrentSnapshot()
	if snap == nil || snap.Summary == nil {
		return 0
	}
	n, _ := strconv.ParseInt(snap.Summary.Properties["total-records"], 10, 64)
	return n
}

func covers(offs Offsets, ends []int64) bool {
	for p, end := range ends {
		if offs[int32(p)] < end {
			return false
		}
	}
	return true
}

func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMaterialiseThroughput preloads -tableflow.records records of
// 1 KiB random values into 8 partitions, then starts the service and
// measures the wall and CPU time until the table's current snapshot
// covers them all: records materialised per second and per CPU-second.
func BenchmarkMaterialiseThroughput(b *testing.B) {
	n := *benchRecords
	v := newBenchEnv(b)
	rng := rand.NewChaCha8([32]byte{1})
	b.ReportAllocs()
	b.SetBytes(int64(n) * benchValueBytes)
	b.StopTimer()
	var wall, cpu time.Duration
	var snapshots int
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("throughput%d", i)
		v.topic(b, name)
		ends := v.preload(b, rng, name, n)
		w := &tableWatch{catalog: v.catalog, ns: "default", name: name}
		runtime.GC() // the preload's garbage is not the materialiser's

		b.StartTimer()
		cpu0, t0 := cpuTime(b), time.Now()
		s := v.service(b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		for {
			offs, err := w.poll(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if covers(offs, ends) {
				break
			}
			time.Sleep(benchPoll)
		}
		wall += time.Since(t0)
		cpu += cpuTime(b) - cpu0
		b.StopTimer()

		cancel()
		s.Close()
		v.done(b, name)
		if got := w.rows(); got != int64(n) {
			b.Fatalf("the table holds %d rows, want %d", got, n)
		}
		snapshots += len(w.meta.Snapshots())
	}
	total := float64(n) * float64(b.N)
	b.ReportMetric(total/wall.Seconds(), "records/s")
	b.ReportMetric(total/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(float64(snapshots)/float64(b.N), "snapshots/op")
}

// preload produces n records round robin over the topic's partitions in
// batches of 512 (half a MiB, under max.message.bytes) and returns each
// partition's end offset.
func (v *benchEnv) preload(b *testing.B, rng *rand.ChaCha8, topic string, n int) []int64 {
	b.Helper()
	const perBatch = 512
	ctx := context.Background()
	for left := n; left > 0; {
		var batches []stream.ProduceBatch
		for p := int32(0); p < benchPartitions && left > 0; p++ {
			k := min(perBatch, left)
			left -= k
			batches = append(batches, stream.ProduceBatch{Topic: topic, Partition: p,
				Records: stream.EncodeBatch(-1, -1, 0, time.Now().UnixMilli(), randomRecords(rng, k))})
		}
		for _, r := range v.log.Produce(ctx, batches) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	ends := make([]int64, benchPartitions)
	for p := range ends {
		st, err := v.log.State(topic, int32(p))
		if err != nil {
			b.Fatal(err)
		}
		ends[p] = st.HighWatermark
	}
	return ends
}

// BenchmarkMaterialiseFreshness produces at a steady -tableflow.rate for
// -tableflow.duration into a topic with table.commit.interval.ms=1000 and
// reports percentiles of the time from a record's produce acknowledgement
// to the first look at the catalog (every 20 ms) whose current snapshot
// covers it.
func BenchmarkMaterialiseFreshness(b *testing.B) {
	v := newBenchEnv(b)
	rng := rand.NewChaCha8([32]byte{2})
	b.StopTimer()
	var lat []time.Duration
	var produced int
	var producing time.Duration
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("freshness%d", i)
		v.topic(b, name)
		s := v.service(b)
		w := &tableWatch{catalog: v.catalog, ns: "default", name: name}
		// The table exists before the first record, as it does once
		// table.enabled is set.
		for deadline := time.Now().Add(30 * time.Second); w.loc == ""; time.Sleep(benchPoll) {
			if _, err := w.poll(context.Background()); err != nil {
				b.Fatal(err)
			}
			if w.loc == "" && time.Now().After(deadline) {
				b.Fatal("no table 30 s after the service started")
			}
		}

		b.StartTimer()
		r := runFreshness(b, v, w, rng, name)
		b.StopTimer()

		s.Close()
		v.done(b, name)
		if got := w.rows(); got != int64(len(r.lat)) {
			b.Fatalf("the table holds %d rows, want the %d produced", got, len(r.lat))
		}
		lat = append(lat, r.lat...)
		produced += len(r.lat)
		producing += r.producing
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		i := max(0, int(float64(len(lat))*q+0.999999)-1)
		return float64(lat[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(produced)/producing.Seconds(), "produced/s")
}

type freshnessRun struct {
	lat       []time.Duration // visible - acknowledged, per record
	producing time.Duration
}

// ackLog holds when each record's produce was acknowledged, and when it
// was first seen in the table, by partition and offset.
type ackLog struct {
	mu      sync.Mutex
	acked   [benchPartitions][]time.Time
	visible [benchPartitions][]time.Time
	seen    [benchPartitions]int64 // offsets below are visible
}

func (a *ackLog) ack(p int32, base int64, n int, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for off := base; off < base+int64(n); off++ {
		for int64(len(a.acked[p])) <= off {
			a.acked[p] = append(a.acked[p], time.Time{})
		}
		a.acked[p][off] = at
	}
}

func (a *ackLog) see(offs Offsets, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.seen {
		for ; a.seen[p] < offs[int32(p)]; a.seen[p]++ {
			a.visible[p] = append(a.visible[p], at)
		}
	}
}

// allVisible reports whether every acknowledged record was seen.
func (a *ackLog) allVisible() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.acked {
		if int64(len(a.acked[p])) > a.seen[p] {
			return false
		}
	}
	return true
}

func runFreshness(b *testing.B, v *benchEnv, w *tableWatch, rng *rand.ChaCha8, topic string) freshnessRun {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acks := &ackLog{}

	// The watcher: every 20 ms, what the catalog's current snapshot
	// covers; a record's visibility time is the first look that shows it.
	watchErr := make(chan error, 1)
	go func() {
		t := time.NewTicker(benchPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				watchErr <- nil
				return
			case <-t.C:
			}
			offs, err := w.poll(ctx)
			if err != nil {
				watchErr <- err
				return
			}
			acks.see(offs, time.Now())
		}
	}()

	// The producer: every 20 ms one produce of rate/50 records spread
	// over the partitions, each in its own goroutine (as a client's
	// batches in flight), so a slow acknowledgement does not slow the
	// rate down.
	const tick = 20 * time.Millisecond
	perTick := max(benchPartitions, *benchRate*int(tick)/int(time.Second))
	start := time.Now()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var produceErr error
	ticker := time.NewTicker(tick)
	for time.Since(start) < *benchDuration {
		recs := randomRecords(rng, perTick)
		now := time.Now().UnixMilli()
		var batches []stream.ProduceBatch
		for p := 0; p < benchPartitions; p++ {
			lo, hi := p*perTick/benchPartitions, (p+1)*perTick/benchPartitions
			batches = append(batches, stream.ProduceBatch{Topic: topic, Partition: int32(p),
				Records: stream.EncodeBatch(-1, -1, 0, now, recs[lo:hi])})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := v.log.Produce(ctx, batches)
			at := time.Now()
			for p, r := range res {
				if r.Err != nil {
					errOnce.Do(func() { produceErr = r.Err })
					continue
				}
				lo, hi := p*perTick/benchPartitions, (p+1)*perTick/benchPartitions
				acks.ack(int32(p), r.BaseOffset, hi-lo, at)
			}
		}()
		<-ticker.C
	}
	ticker.Stop()
	wg.Wait()
	producing := time.Since(start)
	if produceErr != nil {
		b.Fatal(produceErr)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !acks.allVisible() {
		select {
		case err := <-watchErr:
			b.Fatal("watching the table:", err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatal("the table did not catch up with the topic within 60 s of the last record")
		}
		time.Sleep(benchPoll)
	}
	cancel()
	if err := <-watchErr; err != nil {
		b.Fatal(err)
	}

	var r freshnessRun
	r.producing = producing
	acks.mu.Lock()
	defer acks.mu.Unlock()
	for p := range acks.acked {
		for off, at := range acks.acked[p] {
			if at.IsZero() {
				b.Fatalf("partition %d offset %d: no acknowledgement recorded", p, off)
			}
			r.lat = append(r.lat, acks.visible[p][off].Sub(at))
		}
	}
	return r
}

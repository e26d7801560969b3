package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/test/harness"
)

// This file drives the log through the faults its rules (DESIGN §5a) are
// about, with archival, garbage collection and checkpoints running all the
// time (small archive, grace and checkpoint settings) and every produce
// request its own intake entry (flush.bytes 1):
//
//   - a broker paused (SIGSTOP) until a watch backlog of thousands of
//     revisions built up, then read from at once after SIGCONT: a fetch at
//     the high watermark another broker reported, ListOffsets;
//   - the maintainer killed after it wrote a checkpoint object and before it
//     moved the pointer (SIGSTOP when the object appears, the pointer checked
//     in etcd, then SIGKILL);
//   - two maintainers overlapping: the maintainer paused past its election
//     session's TTL so another is elected, then resumed;
//   - one broker's etcd link cut (a proxy) for longer than its lease;
//   - one broker's clock minutes ahead (--clock-offset), later restarted
//     minutes behind.
//
// Idempotent producers write unique records through all brokers; consumers
// that never reset offsets read through all brokers. At the end every
// partition is read whole through each broker and compared record by
// record: no acknowledged record lost, duplicated, reordered or renumbered,
// and every broker serves the same log.

const (
	faultTopic = "faults"
	// clockTopic takes the records produced straight through a broker
	// whose clock just stepped.
	clockTopic      = "faults-clock"
	faultPartitions = 6
	// etcdPrefix is the brokers' default key prefix.
	etcdPrefix = "/runnel"
	// sessionTTL is the maintainer election's session TTL and the broker
	// lease (internal/stream maintainTerm, internal/cluster DefaultLeaseTTL).
	sessionTTL = 10 * time.Second
)

// faultsConfig sizes one run.
type faultsConfig struct {
	cycles     int
	writers    int
	minPause   time.Duration // a backlog pause lasts at least this
	maxPause   time.Duration // and at most this, waiting for minBacklog
	minBacklog int64         // etcd revisions written while a broker is paused
	etcdCut    time.Duration
	ckptTries  time.Duration // how long to try to catch the checkpoint window
}

// Violation kinds of this checker, besides the shared ones.
const (
	vOutOfRange  = "OFFSET_OUT_OF_RANGE below a reported high watermark"
	vStale       = "stale offsets answered"
	vReorder     = "reordered"
	vDisagree    = "brokers disagree"
	vBadError    = "non-retriable error"
	vStall       = "no progress"
	vUnreachable = "served while etcd unreachable"
)

// ackRec is where an acknowledged record was placed (its key follows
// from its value).
type ackRec struct {
	at tpo
}

// faultHistory is what the producers and consumers of this test did and saw.
type faultHistory struct {
	mu      sync.Mutex
	acked   map[string]ackRec    // by value
	perPart [faultPartitions]int // acknowledged
	failed  [faultPartitions]int // failed (unknown)
	unknown map[string]bool
	twice   []string
	seen    []observation
	faults  []string
	v       *violations
}

func (h *faultHistory) done(r *kgo.Record, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	val := string(r.Value)
	if _, ok := h.acked[val]; ok || h.unknown[val] {
		h.twice = append(h.twice, val)
	}
	if err != nil {
		h.unknown[val] = true
		h.failed[r.Partition]++
		return
	}
	h.acked[val] = ackRec{tpo{r.Topic, r.Partition, r.Offset}}
	h.perPart[r.Partition]++
}

// ackCounts returns the records acknowledged so far, per partition.
func (h *faultHistory) ackCounts() [faultPartitions]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.perPart
}

func (h *faultHistory) fault(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, fmt.Sprintf(format, args...))
}

// total is the number of violations found so far.
func (v *violations) total() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, k := range v.byKind {
		n += k.count
	}
	return n
}

// TestLogFaults is the checker described at the top of this file. The
// default run takes two to three minutes; RUNNEL_SOAK=1 repeats the cycle
// of faults with longer pauses and more writers.
func TestLogFaults(t *testing.T) {
	cfg := faultsConfig{cycles: 1, writers: faultPartitions, minPause: 10 * time.Second, maxPause: 40 * time.Second,
		minBacklog: 2000, etcdCut: sessionTTL + 5*time.Second, ckptTries: 30 * time.Second}
	if soak() {
		cfg = faultsConfig{cycles: 4, writers: 2 * faultPartitions, minPause: 20 * time.Second, maxPause: 90 * time.Second,
			minBacklog: 6000, etcdCut: 3 * sessionTTL, ckptTries: 60 * time.Second}
	}
	started := time.Now()
	objects := filepath.Join(t.TempDir(), "objects")
	// One produce request is one intake entry (flush.bytes 1); archival,
	// garbage collection and checkpoints run every second or two.
	conf := `flush:
  bytes: 1
  linger: 100us
checkpoint:
  interval: 2s
  entries: 500
archive:
  interval: 500ms
  min-bytes: 4096
  max-age: 2s
  grace: 3s
`
	b1 := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: objects, Config: conf})
	proxy := harness.StartProxy(t, strings.TrimPrefix(b1.EtcdURL, "http://"))
	b2 := harness.Start(t, harness.Options{BrokerID: 2, ObjectStore: objects, Config: conf, EtcdEndpoints: proxy.URL()})
	b3 := harness.Start(t, harness.Options{BrokerID: 3, ObjectStore: objects, Config: conf, EtcdEndpoints: b1.EtcdURL,
		Args: []string{"--clock-offset", "5m"}})
	procs := map[int]*harness.Proc{1: b1, 2: b2, 3: b3}
	seeds := []string{b1.Kafka, b2.Kafka, b3.Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	ecl, err := clientv3.New(clientv3.Config{Endpoints: []string{b1.EtcdURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ecl.Close()
	et := &etcdView{t: t, cl: ecl}

	admin := newClient(t, seeds, kgo.RetryTimeout(time.Minute))
	createTopic(ctx, t, admin, faultTopic, faultPartitions, nil)
	createTopic(ctx, t, admin, clockTopic, 1, nil)

	h := &faultHistory{acked: map[string]ackRec{}, unknown: map[string]bool{}, v: &violations{byKind: map[string]*violationKind{}}}
	wctx, stopWriters := context.WithCancel(ctx)
	var writers, readers sync.WaitGroup
	clients := make([]*kgo.Client, cfg.writers)
	for w := range cfg.writers {
		clients[w] = newClient(t, seeds,
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(0),
			kgo.RecordRetries(math.MaxInt32),
			kgo.RecordDeliveryTimeout(3*time.Minute),
			kgo.RetryTimeout(3*time.Minute),
			kgo.UnknownTopicRetries(-1),
			// At most two records in flight: many small produce
			// requests (intake entries, etcd revisions), few records.
			kgo.MaxBufferedRecords(2),
			kgo.ProducerBatchCompression(kgo.NoCompression()), // raw fetches parse the batches
		)
		writers.Add(1)
		go func() { defer writers.Done(); faultWriter(wctx, clients[w], w, h) }()
	}
	consStop := make(chan struct{})
	for c, seed := range seeds {
		readers.Add(1)
		go func() {
			defer readers.Done()
			faultConsumer(ctx, t, fmt.Sprintf("consumer-%d(via broker %d)", c, c+1), seed, h, consStop)
		}()
	}

	// progress requires acknowledgements on every partition to move on
	// after a fault; partitions that stopped taking writes are recorded,
	// and the run goes on to the next fault and the final check.
	progress := func(what string) {
		t.Helper()
		const want = 20
		start := h.ackCounts()
		deadline := time.Now().Add(time.Minute)
		for {
			now := h.ackCounts()
			var stuck []string
			for p := range now {
				if now[p] < start[p]+want {
					stuck = append(stuck, fmt.Sprintf("%s/%d (%d more)", faultTopic, p, now[p]-start[p]))
				}
			}
			if len(stuck) == 0 {
				return
			}
			if time.Now().After(deadline) {
				h.v.add(vStall, "fewer than %d records acknowledged in 1m %s on %s", want, what, strings.Join(stuck, ", "))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	progress("before the first fault")
	time.Sleep(2 * time.Second)

	var fig faultFigures
	for cycle := range cfg.cycles {
		fig.cycles++
		victim, witness := b3, b1
		if cycle%2 == 1 {
			victim = b2
		}
		backlogFault(ctx, t, h, et, victim, witness, cfg, &fig)
		progress("after the backlog pause")

		checkpointWindowFault(ctx, t, h, et, procs, objects, cfg, &fig)
		progress("after the checkpoint-window kill")

		maintainerOverlapFault(ctx, t, h, et, procs, &fig)
		progress("after the maintainers overlapped")

		etcdCutFault(ctx, t, h, proxy, b2, b1, cfg, &fig)
		progress("after the etcd link came back")

		// A clock step: broker 3 ran minutes ahead and comes back minutes
		// behind (and the other way round on the next cycle).
		offset := "-5m"
		if cycle%2 == 1 {
			offset = "5m"
		}
		h.fault("SIGKILL broker 3, restart with --clock-offset %s at %v", offset, time.Since(started).Round(time.Millisecond))
		b3.Kill()
		b3.SetArgs("--clock-offset", offset)
		b3.Restart()
		clockStepProduce(t, h, b3, offset)
		progress("after the clock step")
	}

	stopWriters()
	writers.Wait()
	fctx, fcancel := context.WithTimeout(ctx, time.Minute)
	var flushes sync.WaitGroup
	for i, cl := range clients {
		flushes.Add(1)
		go func() {
			defer flushes.Done()
			if err := cl.Flush(fctx); err != nil {
				h.v.add(vStall, "producer %d: records still unacknowledged 1m after the last fault, with every broker up: %v", i, err)
			}
			cl.Close() // fails what is still buffered: those records count as unknown
		}()
	}
	flushes.Wait()
	fcancel()
	h.mu.Lock()
	var unfinished []string
	for p, n := range h.failed {
		if n > 0 {
			unfinished = append(unfinished, fmt.Sprintf("%s/%d: %d", faultTopic, p, n))
		}
	}
	h.mu.Unlock()
	if len(unfinished) > 0 {
		// Records failed during faults count too, but a flush that ran
		// out of time after the last fault means a partition stopped.
		t.Logf("records failed or left unacknowledged, per partition: %s", strings.Join(unfinished, ", "))
	}
	writeDone := time.Since(started)

	ends := agreedEnds(t, h, procs)
	logs := map[int]map[int32][]stored{}
	read := 0
	for _, id := range []int{1, 2, 3} {
		logs[id] = readWhole(t, h, procs[id], id, ends)
		for _, recs := range logs[id] {
			read += len(recs)
		}
	}
	close(consStop)
	readers.Wait()
	checkFaultHistory(h, logs, ends)

	h.mu.Lock()
	acked, unknown, seen := len(h.acked), len(h.unknown), len(h.seen)
	t.Logf("faults injected (%d): %s", len(h.faults), strings.Join(h.faults, "; "))
	h.mu.Unlock()
	total := int64(0)
	for _, e := range ends {
		total += e
	}
	t.Logf("figures: cycles=%d records acknowledged=%d unknown=%d log length=%d records read=%d (all partitions through each of 3 brokers) consumer observations=%d anomalies=%d",
		fig.cycles, acked, unknown, total, read, seen, h.v.total())
	t.Logf("figures: watch backlogs %v revisions (pauses %v); checkpoint window: %d tries, %d kills between object and pointer; maintainer handovers %d; etcd cuts %v; durations: writes %v, total %v",
		fig.backlogs, fig.pauses, fig.ckptTries, fig.ckptHits, fig.handovers, fig.cuts, writeDone.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	for id := 1; id <= 3; id++ {
		p := procs[id]
		archived, _ := p.Metric(ctx, "runnel_archived_bytes_total")
		collected, _ := p.Metric(ctx, "runnel_objects_collected_total")
		t.Logf("broker %d: %d checkpoints written, %d maintainer elections, %d maintenance pass failures; %.0f bytes archived, %.0f objects collected by its current process", id,
			strings.Count(p.Log(), "stream: checkpoint written"), strings.Count(p.Log(), "stream: elected maintainer"),
			strings.Count(p.Log(), "stream: maintenance pass failed"), archived, collected)
	}
	if fig.ckptHits == 0 {
		t.Logf("the checkpoint window was never caught in %d tries: that fault was not reached this run", fig.ckptTries)
	}
	if h.v.total() > 0 {
		t.Logf("log tails:\n%s", logTails(procs, 30))
		// Where produce stands now (after the checks: these records are
		// not part of the history).
		answers := map[int][]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for id := 1; id <= 3; id++ {
			answers[id] = make([]string, faultPartitions)
			for p := range int32(faultPartitions) {
				rc := dialRaw(t, procs[id].Kafka)
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := produceOnce(rc, faultTopic, p, 10*time.Second)
					mu.Lock()
					answers[id][p] = fmt.Sprintf("%d:%s", p, a)
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
		for id := 1; id <= 3; id++ {
			t.Logf("one record produced to each partition through broker %d: %s", id, strings.Join(answers[id], " "))
		}
	}
	h.v.report(t)
}

// faultFigures are what the run reports at the end.
type faultFigures struct {
	cycles              int
	backlogs            []int64
	pauses              []time.Duration
	ckptTries, ckptHits int
	handovers           int
	cuts                []time.Duration
}

func logTails(procs map[int]*harness.Proc, n int) string {
	var b strings.Builder
	for id := 1; id <= len(procs); id++ {
		fmt.Fprintf(&b, "broker %d log tail:\n%s\n", id, tail(procs[id].Log(), n))
	}
	return b.String()
}

// faultWriter produces unique records (value w<writer>-<seq>, key
// k<writer>-<seq>) to its own partition until ctx ends. One partition per
// writer: a partition that stops taking writes stops only its writers
// (a client's buffer is shared by its partitions).
func faultWriter(ctx context.Context, cl *kgo.Client, w int, h *faultHistory) {
	for seq := 0; ctx.Err() == nil; seq++ {
		r := &kgo.Record{
			Topic:     faultTopic,
			Partition: int32(w % faultPartitions),
			Key:       fmt.Appendf(nil, "k%d-%d", w, seq),
			Value:     fmt.Appendf(nil, "w%d-%08d", w, seq),
		}
		// A record failed by ctx's end before it was sent counts as
		// unknown, like every other failed record.
		cl.Produce(ctx, r, h.done)
	}
}

// faultConsumer reads the topic from the start through one seed and never
// resets an offset: OFFSET_OUT_OF_RANGE is returned, and recorded.
func faultConsumer(ctx context.Context, t *testing.T, name, seed string, h *faultHistory, stop <-chan struct{}) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seed),
		kgo.ClientID("runnel-faults-"+name),
		kgo.ConsumeTopics(faultTopic),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	defer cl.Close()
	last := map[int32]int64{}
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done(): // the test ended early: do not spin
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(_ string, p int32, err error) {
			if errors.Is(err, kerr.OffsetOutOfRange) {
				h.v.add(vOutOfRange, "%s: partition %d after offset %d: %v", name, p, last[p], err)
			}
		})
		var got []observation
		fs.EachRecord(func(r *kgo.Record) {
			if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
				h.v.add(vNonMonotone, "%s read %s/%d@%d after offset %d", name, r.Topic, r.Partition, r.Offset, prev)
			}
			last[r.Partition] = r.Offset
			got = append(got, observation{consumer: name, at: tpo{r.Topic, r.Partition, r.Offset}, value: string(r.Value)})
		})
		if len(got) > 0 {
			h.mu.Lock()
			h.seen = append(h.seen, got...)
			h.mu.Unlock()
		}
	}
}

// ---- etcd, seen from the test ----

// etcdView reads the brokers' shared metadata directly.
type etcdView struct {
	t  *testing.T
	cl *clientv3.Client
}

// rev is etcd's current revision.
func (e *etcdView) rev(ctx context.Context) int64 {
	e.t.Helper()
	resp, err := e.cl.Get(ctx, etcdPrefix+"/checkpoint")
	if err != nil {
		e.t.Fatalf("etcd: %v", err)
	}
	return resp.Header.Revision
}

// maintainer returns the elected maintainer's broker id and its session
// lease (the election key with the lowest create revision), or 0.
func (e *etcdView) maintainer(ctx context.Context) (int, clientv3.LeaseID) {
	e.t.Helper()
	resp, err := e.cl.Get(ctx, etcdPrefix+"/maintainer/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil {
		e.t.Fatalf("etcd: %v", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, 0
	}
	id, _ := strconv.Atoi(string(resp.Kvs[0].Value))
	return id, clientv3.LeaseID(resp.Kvs[0].Lease)
}

// waitMaintainer waits until a maintainer is elected that ok accepts.
func (e *etcdView) waitMaintainer(ctx context.Context, d time.Duration, ok func(int) bool) (int, clientv3.LeaseID) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		id, lease := e.maintainer(ctx)
		if id != 0 && ok(id) {
			return id, lease
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no acceptable maintainer elected in %v (now %d)", d, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maintainerOff1 returns a maintainer other than broker 1: pausing or
// killing broker 1 would take the etcd member down with it. The maintainer
// is moved by revoking its election session, as a lost session does.
func (e *etcdView) maintainerOff1(ctx context.Context, h *faultHistory, fig *faultFigures) int {
	e.t.Helper()
	for range 5 {
		id, lease := e.waitMaintainer(ctx, time.Minute, func(int) bool { return true })
		if id != 1 {
			return id
		}
		h.fault("maintainer moved off broker 1 (its election session revoked)")
		fig.handovers++
		if _, err := e.cl.Revoke(ctx, lease); err != nil {
			e.t.Logf("revoking the maintainer's session: %v", err)
		}
		e.waitMaintainer(ctx, time.Minute, func(id int) bool { return true })
	}
	e.t.Fatal("broker 1 kept the maintainer role after five revoked sessions")
	return 0
}

// pointer reads the checkpoint pointer's object name.
func (e *etcdView) pointer(ctx context.Context) string {
	e.t.Helper()
	resp, err := e.cl.Get(ctx, etcdPrefix+"/checkpoint")
	if err != nil {
		e.t.Fatalf("etcd: %v", err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	var p struct {
		Object string `json:"object"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
		e.t.Fatalf("checkpoint pointer %q: %v", resp.Kvs[0].Value, err)
	}
	return p.Object
}

// ---- the faults ----

// backlogFault pauses victim until a backlog of revisions built up, takes
// the high watermarks witness reports, resumes victim and reads from it at
// once: a fetch at each reported high watermark and ListOffsets must not be
// behind it, and a fetch just below it must return its record.
func backlogFault(ctx context.Context, t *testing.T, h *faultHistory, et *etcdView, victim, witness *harness.Proc, cfg faultsConfig, fig *faultFigures) {
	t.Helper()
	conns := make([]*rawConn, faultPartitions)
	for p := range conns {
		conns[p] = dialRaw(t, victim.Kafka)
	}
	rev0 := et.rev(ctx)
	start := time.Now()
	victim.Pause()
	for time.Since(start) < cfg.minPause || (et.rev(ctx)-rev0 < cfg.minBacklog && time.Since(start) < cfg.maxPause) {
		time.Sleep(200 * time.Millisecond)
	}
	backlog := et.rev(ctx) - rev0
	hws := highWatermarks(t, h, witness)
	paused := time.Since(start)
	victim.Resume()
	fig.backlogs = append(fig.backlogs, backlog)
	fig.pauses = append(fig.pauses, paused.Round(100*time.Millisecond))
	h.fault("SIGSTOP %s for %v (%d revisions written meanwhile), read at once after SIGCONT", victim.Name(), paused.Round(time.Millisecond), backlog)
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	for p := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half the partitions are asked ListOffsets first, half
			// fetched first: each must be right as the first request.
			probeCaughtUp(t, h, conns[p], victim, int32(p), hws[int32(p)], "after SIGCONT", deadline, p%2 == 1)
		}()
	}
	wg.Wait()
}

// probeCaughtUp checks one partition on a broker that must be caught up
// with hw (a high watermark another broker reported earlier): a fetch at hw
// must not answer OFFSET_OUT_OF_RANGE nor a lower high watermark,
// ListOffsets must not answer less, and a fetch at hw-1 returns that record
// (kept as an observation, compared with the final read). ListOffsets is
// sent first if listFirst is set, else the fetch at hw. Retriable errors are
// retried until deadline.
func probeCaughtUp(t *testing.T, h *faultHistory, rc *rawConn, p *harness.Proc, partition int32, hw int64, when string, deadline time.Time, listFirst bool) {
	name := fmt.Sprintf("%s %s", p.Name(), when)
	tp := fmt.Sprintf("%s/%d", faultTopic, partition)
	// retry reports whether a failed request is to be sent again.
	retry := func(what string, code int16, err error) bool {
		if errors.Is(err, errBadAnswer) {
			h.v.add(vBadError, "%s: %s %s: %v", name, what, tp, err)
			return false
		}
		if err != nil {
			rc = redial(t, rc, p)
		} else if !kerr.IsRetriable(kerr.ErrorForCode(code)) {
			h.v.add(vBadError, "%s: %s %s: %v", name, what, tp, kerr.ErrorForCode(code))
			return false
		}
		if time.Now().After(deadline) {
			h.v.add(vStall, "%s: %s %s still failing at the deadline: code %d, %v", name, what, tp, code, err)
			return false
		}
		time.Sleep(100 * time.Millisecond)
		return true
	}
	listOffsets := func() {
		for {
			code, off, err := rawListOffsetsOnce(rc, faultTopic, partition, -1, 30*time.Second)
			if err == nil && code == 0 {
				if off < hw {
					h.v.add(vStale, "%s: ListOffsets(latest) %s = %d, below the %d another broker reported earlier", name, tp, off, hw)
				}
				return
			}
			if !retry("list offsets", code, err) {
				return
			}
		}
	}
	if listFirst {
		listOffsets()
	}
	// The fetch at the reported high watermark.
	for {
		code, _, fhw, err := rawFetchOnce(rc, faultTopic, partition, hw, 500*time.Millisecond, 30*time.Second)
		if err == nil && code == kerr.OffsetOutOfRange.Code {
			h.v.add(vOutOfRange, "%s: fetch %s at %d (the high watermark another broker reported) answered OFFSET_OUT_OF_RANGE", name, tp, hw)
			break
		}
		if err == nil && code == 0 {
			if fhw < hw {
				h.v.add(vStale, "%s: fetch %s at %d answered high watermark %d, below the %d another broker reported earlier", name, tp, hw, fhw, hw)
			}
			break
		}
		if !retry("fetch", code, err) {
			break
		}
	}
	// The record just below it, kept to compare with the final read.
	for stale := false; hw > 0; {
		code, recs, fhw, err := rawFetchOnce(rc, faultTopic, partition, hw-1, 500*time.Millisecond, 30*time.Second)
		if err == nil && code == kerr.OffsetOutOfRange.Code {
			h.v.add(vOutOfRange, "%s: fetch %s at %d (below the high watermark %d another broker reported) answered OFFSET_OUT_OF_RANGE", name, tp, hw-1, hw)
			break
		}
		if err == nil && code == 0 {
			// A whole batch comes back: it may start before hw-1.
			i := sort.Search(len(recs), func(i int) bool { return recs[i].Offset >= hw-1 })
			if i < len(recs) && recs[i].Offset == hw-1 {
				h.mu.Lock()
				h.seen = append(h.seen, observation{consumer: name, at: tpo{faultTopic, partition, hw - 1}, value: string(recs[i].Value)})
				h.mu.Unlock()
				break
			}
			if i < len(recs) {
				h.v.add(vDisagree, "%s: fetch %s at %d answered offset %d next", name, tp, hw-1, recs[i].Offset)
				break
			}
			if fhw < hw && !stale {
				stale = true
				h.v.add(vStale, "%s: fetch %s at %d answered no record and high watermark %d, below the %d another broker reported earlier", name, tp, hw-1, fhw, hw)
			}
			if time.Now().After(deadline) {
				h.v.add(vStall, "%s: fetch %s at %d answered no record until the deadline", name, tp, hw-1)
				break
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !retry("fetch", code, err) {
			break
		}
	}
	if !listFirst {
		listOffsets()
	}
}

// checkpointWindowFault kills the maintainer after it wrote a checkpoint
// object and before the pointer names it: the maintainer is paused the
// moment a new object appears, and killed only if the pointer, read from
// etcd while it is paused, does not name the new object (otherwise it is
// resumed and the next checkpoint is tried).
func checkpointWindowFault(ctx context.Context, t *testing.T, h *faultHistory, et *etcdView, procs map[int]*harness.Proc, objects string, cfg faultsConfig, fig *faultFigures) {
	t.Helper()
	dir := filepath.Join(objects, "checkpoints")
	names := func() map[string]bool {
		out := map[string]bool{}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			// checkpoints/<revision, 20 digits>-<broker>-<nonce>: each
			// attempt writes its own object. The file store writes a
			// temporary file first and renames it: that one does not count.
			if n := e.Name(); len(n) > 21 && n[20] == '-' && strings.Trim(n[:20], "0123456789") == "" && !strings.Contains(n, ".") {
				out[n] = true
			}
		}
		return out
	}
	deadline := time.Now().Add(cfg.ckptTries)
	for time.Now().Before(deadline) {
		id := et.maintainerOff1(ctx, h, fig)
		m := procs[id]
		before := names()
		var fresh string
		for wait := time.Now().Add(15 * time.Second); fresh == "" && time.Now().Before(wait); {
			for n := range names() {
				if !before[n] {
					fresh = n
					break
				}
			}
			if fresh == "" {
				time.Sleep(200 * time.Microsecond)
			}
		}
		if fresh == "" {
			continue
		}
		fig.ckptTries++
		m.Pause()
		time.Sleep(300 * time.Millisecond) // a pointer update already sent lands meanwhile
		if et.pointer(ctx) == "checkpoints/"+fresh {
			m.Resume()
			continue
		}
		m.Kill()
		fig.ckptHits++
		h.fault("SIGKILL maintainer %s after it wrote checkpoints/%s and before it moved the pointer", m.Name(), fresh)
		time.Sleep(time.Second)
		m.Restart()
		return
	}
}

// maintainerOverlapFault pauses the maintainer past its session TTL, waits
// for another broker's election, and resumes it: for a moment both run
// their passes.
func maintainerOverlapFault(ctx context.Context, t *testing.T, h *faultHistory, et *etcdView, procs map[int]*harness.Proc, fig *faultFigures) {
	t.Helper()
	id := et.maintainerOff1(ctx, h, fig)
	m := procs[id]
	start := time.Now()
	m.Pause()
	next, _ := et.waitMaintainer(ctx, 3*sessionTTL, func(n int) bool { return n != id })
	for time.Since(start) < sessionTTL+2*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	m.Resume()
	fig.handovers++
	h.fault("SIGSTOP maintainer %s for %v until broker %d was elected, then SIGCONT (two maintainers)", m.Name(), time.Since(start).Round(time.Millisecond), next)
	time.Sleep(3 * time.Second) // both run passes
}

// etcdCutFault cuts victim's link to etcd for longer than its lease. While
// cut, victim must not answer from its frozen state: ListOffsets and a fetch
// at the high watermark witness reports may wait or answer a retriable
// error, never a stale offset or OFFSET_OUT_OF_RANGE.
func etcdCutFault(ctx context.Context, t *testing.T, h *faultHistory, proxy *harness.Proxy, victim, witness *harness.Proc, cfg faultsConfig, fig *faultFigures) {
	t.Helper()
	rc := dialRaw(t, victim.Kafka)
	wc := dialRaw(t, witness.Kafka)
	start := time.Now()
	proxy.Cut()
	probes, answered := 0, 0
	for time.Since(start) < cfg.etcdCut {
		p := int32(probes % faultPartitions)
		probes++
		code, hw, err := rawListOffsetsOnce(wc, faultTopic, p, -1, 10*time.Second)
		if err != nil || code != 0 {
			wc = redial(t, wc, witness)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		since := time.Since(start).Round(time.Millisecond)
		code, off, err := rawListOffsetsOnce(rc, faultTopic, p, -1, 2*time.Second)
		switch {
		case err != nil:
			rc = redial(t, rc, victim)
		case code == 0:
			answered++
			if off < hw {
				h.v.add(vUnreachable, "%s, etcd cut for %v: ListOffsets(latest) %s/%d = %d, another broker reported %d", victim.Name(), since, faultTopic, p, off, hw)
			}
		case !kerr.IsRetriable(kerr.ErrorForCode(code)):
			h.v.add(vBadError, "%s, etcd cut for %v: ListOffsets %s/%d: %v", victim.Name(), since, faultTopic, p, kerr.ErrorForCode(code))
		}
		if hw > 0 {
			code, _, fhw, err := rawFetchOnce(rc, faultTopic, p, hw-1, 500*time.Millisecond, 2*time.Second)
			switch {
			case err != nil:
				rc = redial(t, rc, victim)
			case code == kerr.OffsetOutOfRange.Code:
				h.v.add(vOutOfRange, "%s, etcd cut for %v: fetch %s/%d at %d answered OFFSET_OUT_OF_RANGE (another broker's high watermark %d)", victim.Name(), since, faultTopic, p, hw-1, hw)
			case code == 0:
				answered++
				if fhw < hw {
					h.v.add(vUnreachable, "%s, etcd cut for %v: fetch %s/%d answered high watermark %d, another broker reported %d", victim.Name(), since, faultTopic, p, fhw, hw)
				}
			case !kerr.IsRetriable(kerr.ErrorForCode(code)):
				h.v.add(vBadError, "%s, etcd cut for %v: fetch %s/%d at %d: %v", victim.Name(), since, faultTopic, p, hw-1, kerr.ErrorForCode(code))
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	proxy.Restore()
	cut := time.Since(start)
	fig.cuts = append(fig.cuts, cut.Round(100*time.Millisecond))
	h.fault("etcd link of %s cut for %v (%d probes, %d answered without error)", victim.Name(), cut.Round(time.Millisecond), probes, answered)
	victim.WaitReady(2 * time.Minute)
	hws := highWatermarks(t, h, witness)
	rc = redial(t, rc, victim)
	deadline := time.Now().Add(time.Minute)
	for p := range int32(faultPartitions) {
		probeCaughtUp(t, h, rc, victim, p, hws[p], "after its etcd link came back", deadline, p%2 == 1)
	}
}

// clockStepProduce produces through p, whose clock just stepped, until a
// record is acknowledged: a broker with a wrong clock must still write.
// Retriable errors are retried for 30s.
func clockStepProduce(t *testing.T, h *faultHistory, p *harness.Proc, offset string) {
	t.Helper()
	rc := dialRaw(t, p.Kafka)
	start := time.Now()
	var last string
	for tries := 1; ; tries++ {
		last = produceOnce(rc, clockTopic, 0, 5*time.Second)
		if strings.HasPrefix(last, "ok") {
			return
		}
		if time.Since(start) > 30*time.Second {
			h.v.add(vStall, "%s restarted with --clock-offset %s: %d produce requests in %v, none acknowledged, the last answered %s",
				p.Name(), offset, tries, time.Since(start).Round(time.Millisecond), last)
			return
		}
		if strings.HasPrefix(last, "no answer") {
			rc = redial(t, rc, p)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// ---- raw requests that report instead of failing the test ----

// errBadAnswer wraps an answer that arrived but cannot be used (not a
// connection failure: retrying it is pointless).
var errBadAnswer = errors.New("bad answer")

// redial replaces rc with a new connection to p.
func redial(t *testing.T, rc *rawConn, p *harness.Proc) *rawConn {
	rc.c.Close()
	for deadline := time.Now().Add(time.Minute); ; {
		c, err := net.DialTimeout("tcp", p.Kafka, 5*time.Second)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return &rawConn{t: t, c: c, f: rc.f}
		}
		if time.Now().After(deadline) {
			// Not Fatalf: probes redial from their own goroutines. The
			// closed connection fails every later request, to the
			// caller's deadline.
			t.Errorf("dial %s: %v", p.Name(), err)
			return rc
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rawFetchOnce sends one fetch of topic/partition at offset and returns the
// partition's error code, its records, and its high watermark.
func rawFetchOnce(rc *rawConn, topic string, partition int32, offset int64, maxWait, d time.Duration) (int16, []fetchedRecord, int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 16 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = partition
	fp.FetchOffset = offset
	fp.PartitionMaxBytes = 4 << 20
	fp.CurrentLeaderEpoch = -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := rc.requestWithin(req, d)
	if err != nil {
		return 0, nil, 0, err
	}
	fr := resp.(*kmsg.FetchResponse)
	if fr.ErrorCode != 0 {
		return fr.ErrorCode, nil, 0, nil
	}
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return 0, nil, 0, fmt.Errorf("%w: fetch response has %d topics", errBadAnswer, len(fr.Topics))
	}
	rp := fr.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		return rp.ErrorCode, nil, rp.HighWatermark, nil
	}
	recs, err := parseBatches(rp.RecordBatches)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("%w: fetch %s/%d at %d: %w", errBadAnswer, topic, partition, offset, err)
	}
	return 0, recs, rp.HighWatermark, nil
}

// produceOnce sends one acks=all record to topic/partition and describes
// the answer.
func produceOnce(rc *rawConn, topic string, partition int32, d time.Duration) string {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 8
	req.Acks = -1
	req.TimeoutMillis = int32(d / time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = buildBatch([][]byte{[]byte("diagnostic")})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := rc.requestWithin(req, d+5*time.Second)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		return fmt.Sprintf("no answer in %v (%v)", took, err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return "malformed answer"
	}
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
		return fmt.Sprintf("%v in %v", kerr.ErrorForCode(code), took)
	}
	return fmt.Sprintf("ok in %v", took)
}

// highWatermarks returns the latest offset of every partition as p answers
// ListOffsets, retrying retriable errors.
func highWatermarks(t *testing.T, h *faultHistory, p *harness.Proc) map[int32]int64 {
	t.Helper()
	rc := dialRaw(t, p.Kafka)
	out := map[int32]int64{}
	deadline := time.Now().Add(time.Minute)
	for part := int32(0); part < faultPartitions; {
		code, off, err := rawListOffsetsOnce(rc, faultTopic, part, -1, 30*time.Second)
		if err == nil && code == 0 {
			out[part] = off
			part++
			continue
		}
		if err == nil && !kerr.IsRetriable(kerr.ErrorForCode(code)) {
			h.v.add(vBadError, "%s: ListOffsets %s/%d: %v", p.Name(), faultTopic, part, kerr.ErrorForCode(code))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: ListOffsets %s/%d: code %d, %v after 1m", p.Name(), faultTopic, part, code, err)
		}
		if err != nil {
			rc = redial(t, rc, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out
}

// agreedEnds waits until every broker answers the same high watermarks
// twice in a row (the writers have stopped) and returns them; brokers that
// never agree are recorded and broker 1's answer is used.
func agreedEnds(t *testing.T, h *faultHistory, procs map[int]*harness.Proc) map[int32]int64 {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var prev map[int32]int64
	for {
		all := map[int]map[int32]int64{}
		for id := 1; id <= len(procs); id++ {
			all[id] = highWatermarks(t, h, procs[id])
		}
		same := fmt.Sprint(all[1]) == fmt.Sprint(all[2]) && fmt.Sprint(all[1]) == fmt.Sprint(all[3])
		if same && fmt.Sprint(prev) == fmt.Sprint(all[1]) {
			return all[1]
		}
		if time.Now().After(deadline) {
			h.v.add(vDisagree, "high watermarks after the writers stopped, for 2m: broker 1 %v, broker 2 %v, broker 3 %v", all[1], all[2], all[3])
			return all[1]
		}
		if same {
			prev = all[1]
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// readWhole reads every partition from 0 to its end through broker p alone.
func readWhole(t *testing.T, h *faultHistory, p *harness.Proc, id int, ends map[int32]int64) map[int32][]stored {
	t.Helper()
	rc := dialRaw(t, p.Kafka)
	out := map[int32][]stored{}
	for _, part := range sortedPartitions(ends) {
		end := ends[part]
		deadline := time.Now().Add(2 * time.Minute)
		var recs []stored
		for next := int64(0); next < end; {
			code, got, _, err := rawFetchOnce(rc, faultTopic, part, next, 500*time.Millisecond, 30*time.Second)
			if err == nil && code == kerr.OffsetOutOfRange.Code {
				h.v.add(vOutOfRange, "final read through broker %d: %s/%d at %d of %d answered OFFSET_OUT_OF_RANGE", id, faultTopic, part, next, end)
				break
			}
			if err == nil && code == 0 {
				for _, r := range got {
					if r.Offset < next || r.Offset >= end {
						continue
					}
					if r.Offset > next {
						h.v.add(vLost, "final read through broker %d: %s/%d jumps from offset %d to %d", id, faultTopic, part, next, r.Offset)
					}
					recs = append(recs, stored{Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
					next = r.Offset + 1
				}
			} else if err == nil && !kerr.IsRetriable(kerr.ErrorForCode(code)) {
				h.v.add(vBadError, "final read through broker %d: %s/%d at %d: %v", id, faultTopic, part, next, kerr.ErrorForCode(code))
				break
			} else if errors.Is(err, errBadAnswer) {
				h.v.add(vBadError, "final read through broker %d: %v", id, err)
				break
			} else if err != nil {
				rc = redial(t, rc, p)
			}
			if time.Now().After(deadline) {
				h.v.add(vStall, "final read through broker %d: %s/%d stuck at offset %d of %d (code %d, %v)", id, faultTopic, part, next, end, code, err)
				break
			}
		}
		out[part] = recs
	}
	return out
}

// checkFaultHistory compares the brokers' logs with each other and with
// what the producers and consumers saw.
func checkFaultHistory(h *faultHistory, logs map[int]map[int32][]stored, ends map[int32]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.v
	for _, val := range h.twice {
		v.add(vTwice, "record %q completed twice", val)
	}
	ids := make([]int, 0, len(logs))
	for id := range logs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	ref := logs[ids[0]]
	for _, id := range ids[1:] {
		if d := diffStored(ref, logs[id]); d != "" {
			v.add(vDisagree, "broker %d and broker %d serve different logs: %s", id, ids[0], d)
		}
	}

	// Broker 1's log against the history.
	where := map[string]stored{}
	wherePart := map[string]int32{}
	at := map[tpo]string{}
	for _, part := range sortedPartitions(ref) {
		lastSeq := map[int]int{} // per writer
		for _, r := range ref[part] {
			at[tpo{faultTopic, part, r.Offset}] = r.Value
			if prev, dup := where[r.Value]; dup {
				v.add(vDuplicate, "record %q at %s/%d@%d and @%d", r.Value, faultTopic, part, prev.Offset, r.Offset)
				continue
			}
			where[r.Value], wherePart[r.Value] = r, part
			var w, seq int
			if _, err := fmt.Sscanf(r.Value, "w%d-%d", &w, &seq); err != nil {
				v.add(vUnknownVal, "%q at %s/%d@%d", r.Value, faultTopic, part, r.Offset)
				continue
			}
			if _, ok := h.acked[r.Value]; !ok && !h.unknown[r.Value] {
				v.add(vUnknownVal, "%q at %s/%d@%d was never produced", r.Value, faultTopic, part, r.Offset)
			}
			if want := fmt.Sprintf("k%d-%d", w, seq); r.Key != want {
				v.add(vDivergent, "%q at %s/%d@%d has key %q, want %q", r.Value, faultTopic, part, r.Offset, r.Key, want)
			}
			if prev, ok := lastSeq[w]; ok && seq < prev {
				v.add(vReorder, "%s/%d: writer %d's record %d at offset %d follows its record %d", faultTopic, part, w, seq, r.Offset, prev)
			}
			lastSeq[w] = seq
		}
	}
	for val, a := range h.acked {
		got, ok := where[val]
		switch {
		case !ok:
			v.add(vLost, "acknowledged record %q (at %v) missing", val, a.at)
		case wherePart[val] != a.at.Partition || got.Offset != a.at.Offset:
			v.add(vMoved, "record %q acknowledged at %v is at %s/%d@%d", val, a.at, faultTopic, wherePart[val], got.Offset)
		}
	}
	for _, o := range h.seen {
		if o.at.Offset >= ends[o.at.Partition] {
			continue // read after the ends were taken: none are, writers stopped first
		}
		if fv, ok := at[o.at]; !ok || fv != o.value {
			v.add(vDivergent, "%s read %q at %v; the final read has %q there", o.consumer, o.value, o.at, fv)
		}
	}
}

// TestFaultCheckerFindsViolations feeds checkFaultHistory made-up logs with
// one of each anomaly, so a checker that stopped looking fails here rather
// than passing every real run.
func TestFaultCheckerFindsViolations(t *testing.T) {
	h := &faultHistory{acked: map[string]ackRec{}, unknown: map[string]bool{}, v: &violations{byKind: map[string]*violationKind{}}}
	ack := func(val string, p int32, off int64) { h.acked[val] = ackRec{tpo{faultTopic, p, off}} }
	ack("w0-00000000", 0, 0)
	ack("w0-00000006", 0, 1) // stored after w0-00000012: reordered
	ack("w0-00000012", 0, 2)
	ack("w1-00000000", 0, 3) // lost
	ack("w1-00000006", 0, 4) // renumbered: stored at 3
	ack("w2-00000000", 1, 0) // stored with another key
	h.unknown["w2-00000001"] = true
	h.twice = []string{"w0-00000000"}
	rec := func(off int64, val, key string) stored { return stored{Offset: off, Key: key, Value: val} }
	good := map[int32][]stored{
		0: {
			rec(0, "w0-00000000", "k0-0"),
			rec(1, "w0-00000012", "k0-12"),
			rec(2, "w0-00000006", "k0-6"),
			rec(3, "w1-00000006", "k1-6"),
			rec(4, "w2-00000001", "k2-1"),
			rec(5, "w2-00000001", "k2-1"), // duplicate
			rec(6, "w9-00000000", "k9-0"), // never produced
		},
		1: {rec(0, "w2-00000000", "k2-x")},
	}
	other := map[int32][]stored{0: append([]stored(nil), good[0]...), 1: good[1]}
	other[0][6] = rec(6, "w9-00000001", "k9-1") // broker 3 serves another record at 6
	h.seen = []observation{
		{consumer: "c", at: tpo{faultTopic, 0, 0}, value: "w0-00000000"},
		{consumer: "c", at: tpo{faultTopic, 1, 0}, value: "w0-00000000"}, // divergent
	}
	checkFaultHistory(h, map[int]map[int32][]stored{1: good, 2: good, 3: other}, map[int32]int64{0: 7, 1: 1})
	want := map[string]int{
		vTwice:      1,
		vDisagree:   1, // broker 3 differs
		vDuplicate:  1,
		vUnknownVal: 1,
		vReorder:    1,
		vLost:       1,
		vMoved:      3, // w0-6 and w0-12 swapped, w1-6 renumbered
		vDivergent:  2, // w2-0's key, and the consumer's read of 1/0
	}
	for kind, n := range want {
		got := 0
		if k := h.v.byKind[kind]; k != nil {
			got = k.count
		}
		if got != n {
			t.Errorf("%s: %d found, want %d (%v)", kind, got, n, h.v.byKind[kind])
		}
	}
	for kind, k := range h.v.byKind {
		if _, ok := want[kind]; !ok {
			t.Errorf("unexpected %s: %v", kind, k.examples)
		}
	}
}

package system

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// This file is a Jepsen-style checker for transactions and idempotence under
// faults: two brokers share one etcd (embedded in broker 1) and one object
// store wrapped with random error injection (a fault+ store URL);
// transactional and idempotent producers write unique values while
// read_committed consumers read through both brokers and broker 2 is killed,
// broker 1 (with the etcd member) is paused, and, in the soak form, broker 1
// is killed too. Small archive, grace and checkpoint settings keep archival,
// garbage collection and checkpoints running throughout. Every outcome is
// recorded conservatively (unknown rather than guessed) and the history is
// checked after a final read.

// jepsenTopics are the topics written, with their partition counts.
var jepsenTopics = map[string]int32{"jep-a": 4, "jep-b": 3}

// txnOutcome is what a transactional producer knows about one transaction.
type txnOutcome int

const (
	// txnPending: the transaction has not ended yet.
	txnPending txnOutcome = iota
	// txnCommitted: EndTxn(commit) was acknowledged.
	txnCommitted
	// txnAborted: EndTxn(abort) was acknowledged.
	txnAborted
	// txnUnknown: a commit was sent but its outcome is not known; the
	// transaction is either wholly visible or wholly invisible.
	txnUnknown
	// txnNeverCommitted: no commit was ever sent (a produce failed and the
	// abort failed too); the broker can only have aborted it.
	txnNeverCommitted
)

func (o txnOutcome) String() string {
	return [...]string{"pending", "committed", "aborted", "unknown", "never-committed"}[o]
}

// jtxn is one transaction of the history.
type jtxn struct {
	id      string
	values  []string
	outcome txnOutcome
}

// tpo is a place in the log.
type tpo struct {
	Topic     string
	Partition int32
	Offset    int64
}

func (p tpo) String() string { return fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset) }

// history is everything the clients did and saw.
type history struct {
	mu          sync.Mutex
	txns        []*jtxn
	valueTxn    map[string]*jtxn
	idemAcked   map[string]tpo
	idemUnknown map[string]error
	idemTwice   []string
	seen        []observation // what the consumers read during the run
	faults      []string
	violations  *violations
}

// observation is one record a consumer read during the run.
type observation struct {
	consumer string
	at       tpo
	value    string
}

func newHistory() *history {
	return &history{
		valueTxn:    map[string]*jtxn{},
		idemAcked:   map[string]tpo{},
		idemUnknown: map[string]error{},
		violations:  &violations{byKind: map[string]*violationKind{}},
	}
}

func (h *history) addTxn(tx *jtxn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.txns = append(h.txns, tx)
	for _, v := range tx.values {
		h.valueTxn[v] = tx
	}
}

func (h *history) endTxn(tx *jtxn, o txnOutcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tx.outcome = o
}

func (h *history) idemDone(r *kgo.Record, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := string(r.Value)
	_, a := h.idemAcked[v]
	_, u := h.idemUnknown[v]
	if a || u {
		h.idemTwice = append(h.idemTwice, v)
	}
	if err != nil {
		h.idemUnknown[v] = err
		return
	}
	h.idemAcked[v] = tpo{r.Topic, r.Partition, r.Offset}
}

func (h *history) fault(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, fmt.Sprintf(format, args...))
}

// counts reports the transactions per outcome and the idempotent values.
func (h *history) counts() (byOutcome map[txnOutcome]int, acked, unknown int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byOutcome = map[txnOutcome]int{}
	for _, tx := range h.txns {
		byOutcome[tx.outcome]++
	}
	return byOutcome, len(h.idemAcked), len(h.idemUnknown)
}

// violations collects what the checker found, by kind, with examples.
type violations struct {
	mu     sync.Mutex
	byKind map[string]*violationKind
}

type violationKind struct {
	count    int
	examples []string
}

const maxExamples = 8

func (v *violations) add(kind, format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := v.byKind[kind]
	if k == nil {
		k = &violationKind{}
		v.byKind[kind] = k
	}
	k.count++
	if len(k.examples) < maxExamples {
		k.examples = append(k.examples, fmt.Sprintf(format, args...))
	}
}

// report logs every kind with its count and examples and fails the test if
// there is any.
func (v *violations) report(t *testing.T) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	kinds := make([]string, 0, len(v.byKind))
	for k := range v.byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		vk := v.byKind[k]
		t.Errorf("VIOLATION %s: %d, e.g.\n  %s", k, vk.count, strings.Join(vk.examples, "\n  "))
	}
}

// Violation kinds.
const (
	vLost        = "lost write"
	vDuplicate   = "duplicate"
	vAbortedRead = "aborted read"
	vUncommitted = "read of uncommitted data"
	vPartial     = "partial transaction"
	vNonMonotone = "non-monotonic offsets"
	vDivergent   = "divergent read"
	vMoved       = "acknowledged offset moved"
	vUnknownVal  = "value never written"
	vTwice       = "produce completed twice"
)

// jepsenConfig sizes one run.
type jepsenConfig struct {
	duration    time.Duration
	txnWriters  int
	idemWriters int
	consumers   int
	killBroker1 bool
}

// TestJepsenTransactions is the checker (see the top of this file). The
// default run takes well under a minute; RUNNEL_SOAK=1 runs for minutes with
// more writers and SIGKILLs of both brokers.
func TestJepsenTransactions(t *testing.T) {
	cfg := jepsenConfig{duration: 15 * time.Second, txnWriters: 3, idemWriters: 2, consumers: 2}
	if soak() {
		cfg = jepsenConfig{duration: 3 * time.Minute, txnWriters: 4, idemWriters: 3, consumers: 3, killBroker1: true}
	}
	started := time.Now()
	objects := filepath.Join(t.TempDir(), "objects")
	// The plain-path form of a fault+ URL: the broker's configuration
	// validation accepts only the schemes file, mem, s3, gs and azblob.
	store := func(seed int) string {
		return fmt.Sprintf("fault+%s?put_error_rate=0.02&get_error_rate=0.01&delete_error_rate=0.02&list_error_rate=0.02&seed=%d", objects, seed)
	}
	// Archival, garbage collection and checkpoints run all the time, so
	// their crash windows meet the faults.
	conf := `checkpoint:
  interval: 2s
  entries: 300
archive:
  interval: 500ms
  min-bytes: 4096
  max-age: 2s
  grace: 3s
`
	b1 := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: store(1), Config: conf})
	b2 := harness.Start(t, harness.Options{BrokerID: 2, ObjectStore: store(2), EtcdEndpoints: b1.EtcdURL, Config: conf})
	seeds := []string{b1.Kafka, b2.Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration+5*time.Minute)
	defer cancel()

	admin := newClient(t, seeds, kgo.RetryTimeout(time.Minute))
	for topic, n := range jepsenTopics {
		createTopic(ctx, t, admin, topic, n, nil)
	}

	t.Run("delayed EndTxn across brokers", func(t *testing.T) { testDelayedEndTxnAcrossBrokers(ctx, t, b1, b2, admin) })

	h := newHistory()
	stop := make(chan struct{})
	var writers, readers sync.WaitGroup
	var txnIDs []string
	for w := range cfg.txnWriters {
		id := fmt.Sprintf("jepsen-tx-%d", w)
		txnIDs = append(txnIDs, id)
		writers.Add(1)
		go func() { defer writers.Done(); txnWriter(ctx, t, seeds, id, w, h, stop) }()
	}
	idemClients := make([]*kgo.Client, cfg.idemWriters)
	for w := range cfg.idemWriters {
		idemClients[w] = newClient(t, seeds,
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(2*time.Millisecond),
			kgo.RecordRetries(math.MaxInt32),
			kgo.RecordDeliveryTimeout(3*time.Minute),
			kgo.RetryTimeout(3*time.Minute),
			kgo.UnknownTopicRetries(-1),
			kgo.MaxBufferedRecords(200),
		)
		writers.Add(1)
		go func() { defer writers.Done(); idemWriter(idemClients[w], w, h, stop) }()
	}
	consStop := make(chan struct{})
	for c := range cfg.consumers {
		readers.Add(1)
		seed := seeds[c%2]
		go func() {
			defer readers.Done()
			runConsumer(ctx, t, fmt.Sprintf("consumer-%d(via broker %d)", c, c%2+1), seed, h, consStop)
		}()
	}

	// Faults, in turn, with progress required between them.
	waitCommits := func(what string) {
		t.Helper()
		start, _, _ := h.counts()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			now, _, _ := h.counts()
			if now[txnCommitted] >= start[txnCommitted]+3 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no transaction committed for 2m %s (outcomes %v)\nbroker 1 log tail:\n%s\nbroker 2 log tail:\n%s",
					what, now, tail(b1.Log(), 40), tail(b2.Log(), 40))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	end := time.Now().Add(cfg.duration)
	for step := 0; time.Now().Before(end); step++ {
		waitCommits(fmt.Sprintf("before fault %d", step+1))
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		kinds := []string{"kill2", "pause1"}
		if cfg.killBroker1 {
			kinds = append(kinds, "kill1")
		}
		switch kinds[step%len(kinds)] {
		case "kill2":
			h.fault("SIGKILL broker 2 at %v", time.Since(started).Round(time.Millisecond))
			b2.Kill()
			time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
			b2.Restart()
		case "kill1":
			h.fault("SIGKILL broker 1 (and its etcd member) at %v", time.Since(started).Round(time.Millisecond))
			b1.Kill()
			time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
			b1.Restart()
			b2.WaitReady(2 * time.Minute)
		case "pause1":
			d := time.Duration(2000+rng.IntN(2000)) * time.Millisecond
			h.fault("SIGSTOP broker 1 (and its etcd member) for %v at %v", d, time.Since(started).Round(time.Millisecond))
			b1.Pause()
			time.Sleep(d)
			b1.Resume()
		}
	}
	waitCommits("after the last fault")
	close(stop)
	writers.Wait()
	for i, cl := range idemClients {
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Minute)
		if err := cl.Flush(fctx); err != nil {
			t.Logf("idempotent producer %d: flush: %v (its unfinished records count as unknown)", i, err)
		}
		fcancel()
		cl.Close() // fails what is still buffered: those promises record unknown
	}
	writeDone := time.Since(started)

	// Every transaction is ended: fence each transactional id, which aborts
	// whatever a failed client left open.
	for _, id := range txnIDs {
		fenceTxnID(ctx, t, admin, id)
	}
	ends := waitStable(ctx, t, admin)
	final := finalRead(ctx, t, seeds, ends)
	close(consStop)
	readers.Wait()

	check(t, h, final)
	byOutcome, acked, unknown := h.counts()
	h.mu.Lock()
	t.Logf("transactions: %d committed, %d aborted, %d unknown, %d never committed (%d values); idempotent values: %d acknowledged, %d unknown",
		byOutcome[txnCommitted], byOutcome[txnAborted], byOutcome[txnUnknown], byOutcome[txnNeverCommitted], len(h.valueTxn), acked, unknown)
	t.Logf("values checked: %d in the final read, %d consumer observations; end offsets %v", len(final), len(h.seen), ends)
	t.Logf("faults injected (%d): %s", len(h.faults), strings.Join(h.faults, "; "))
	h.mu.Unlock()
	for i, b := range []*harness.Proc{b1, b2} {
		archived, _ := b.Metric(ctx, "runnel_archived_bytes_total")
		collected, _ := b.Metric(ctx, "runnel_objects_collected_total")
		t.Logf("broker %d: %d log lines mention an injected object store fault; %d checkpoints written, %d maintenance pass failures; %.0f bytes archived, %.0f objects collected by its current process",
			i+1, strings.Count(b.Log(), "injected fault"), strings.Count(b.Log(), "stream: checkpoint written"),
			strings.Count(b.Log(), "stream: maintenance pass failed"), archived, collected)
	}
	t.Logf("durations: writes %v, total %v", writeDone.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	if byOutcome[txnCommitted] == 0 || byOutcome[txnAborted] == 0 {
		t.Errorf("the run committed %d and aborted %d transactions; both must happen for the check to mean anything", byOutcome[txnCommitted], byOutcome[txnAborted])
	}
	h.violations.report(t)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// txnWriter runs transactions until stop: each writes unique values to
// partitions of both topics, then commits (70%) or aborts. A client whose
// transaction failed is replaced (the new one's InitProducerId fences it).
func txnWriter(ctx context.Context, t *testing.T, seeds []string, id string, w int, h *history, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
	newTxnClient := func() *kgo.Client {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(seeds...),
			kgo.ClientID("runnel-jepsen-"+id),
			kgo.TransactionalID(id),
			kgo.TransactionTimeout(15*time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.MetadataMinAge(100*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.RecordRetries(math.MaxInt32),
			kgo.RecordDeliveryTimeout(45*time.Second),
			kgo.RetryTimeout(45*time.Second),
			kgo.UnknownTopicRetries(-1),
		)
		if err != nil {
			t.Errorf("%s: new client: %v", id, err)
			return nil
		}
		return cl
	}
	cl := newTxnClient()
	if cl == nil {
		return
	}
	defer func() { cl.Close() }()
	topics := []string{"jep-a", "jep-b"}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		if ctx.Err() != nil {
			return
		}
		tx := &jtxn{id: fmt.Sprintf("%s#%d", id, n)}
		var recs []*kgo.Record
		for i := range 2 + rng.IntN(5) {
			topic := topics[i%2]
			v := fmt.Sprintf("t%d-%06d-%d", w, n, i)
			tx.values = append(tx.values, v)
			recs = append(recs, &kgo.Record{Topic: topic, Partition: rng.Int32N(jepsenTopics[topic]), Value: []byte(v)})
		}
		h.addTxn(tx)
		if err := cl.BeginTransaction(); err != nil {
			h.endTxn(tx, txnNeverCommitted)
			cl.Close()
			if cl = newTxnClient(); cl == nil {
				return
			}
			continue
		}
		// Record contexts stay live (a cancelled record could have been
		// sequenced); the client's own timeouts bound the wait.
		perr := cl.ProduceSync(context.Background(), recs...).FirstErr()
		commit := perr == nil && rng.IntN(10) < 7
		err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
		switch {
		case err == nil && commit:
			h.endTxn(tx, txnCommitted)
		case err == nil:
			h.endTxn(tx, txnAborted)
		case commit:
			h.endTxn(tx, txnUnknown)
		default:
			h.endTxn(tx, txnNeverCommitted)
		}
		if err == nil {
			continue
		}
		// The documented recovery is an abort; if even that fails, start
		// over with a new client (its InitProducerId fences this one).
		if aerr := cl.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
			cl.Close()
			if cl = newTxnClient(); cl == nil {
				return
			}
		}
	}
}

// idemWriter produces unique values with an idempotent acks=all producer
// until stop.
func idemWriter(cl *kgo.Client, w int, h *history, stop <-chan struct{}) {
	topics := []string{"jep-a", "jep-b"}
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		topic := topics[seq%2]
		r := &kgo.Record{Topic: topic, Partition: int32(seq/2) % jepsenTopics[topic], Value: fmt.Appendf(nil, "i%d-%07d", w, seq)}
		cl.Produce(context.Background(), r, h.idemDone)
		time.Sleep(3 * time.Millisecond)
	}
}

// runConsumer reads both topics read_committed from the start until stop,
// recording every record and checking offsets only grow per partition.
func runConsumer(ctx context.Context, t *testing.T, name, seed string, h *history, stop <-chan struct{}) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seed),
		kgo.ClientID("runnel-jepsen-"+name),
		kgo.ConsumeTopics("jep-a", "jep-b"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	defer cl.Close()
	last := map[string]int64{}
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
		var got []observation
		fs.EachRecord(func(r *kgo.Record) {
			key := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if prev, ok := last[key]; ok && r.Offset <= prev {
				h.violations.add(vNonMonotone, "%s read %s@%d after offset %d", name, key, r.Offset, prev)
			}
			last[key] = r.Offset
			if r.Attrs.IsControl() {
				return
			}
			got = append(got, observation{consumer: name, at: tpo{r.Topic, r.Partition, r.Offset}, value: string(r.Value)})
		})
		if len(got) > 0 {
			h.mu.Lock()
			h.seen = append(h.seen, got...)
			h.mu.Unlock()
		}
	}
}

// fenceTxnID sends InitProducerId for id (retrying retriable errors), which
// bumps its epoch and aborts any transaction still open under it.
func fenceTxnID(ctx context.Context, t *testing.T, cl *kgo.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = &id, 15000
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && resp.ErrorCode == 0 {
			return
		}
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("InitProducerId(%s) to fence it: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitStable waits until no transaction holds a partition's last stable
// offset back and returns the end offsets.
func waitStable(ctx context.Context, t *testing.T, cl *kgo.Client) map[string]map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(cl)
	topics := []string{"jep-a", "jep-b"}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		hw, herr := adm.ListEndOffsets(ctx, topics...)
		ls, lerr := adm.ListCommittedOffsets(ctx, topics...)
		if herr == nil && lerr == nil && hw.Error() == nil && ls.Error() == nil {
			ends := map[string]map[int32]int64{}
			same := true
			hw.Each(func(o kadm.ListedOffset) {
				if ends[o.Topic] == nil {
					ends[o.Topic] = map[int32]int64{}
				}
				ends[o.Topic][o.Partition] = o.Offset
				if l, ok := ls.Lookup(o.Topic, o.Partition); !ok || l.Offset != o.Offset {
					same = false
				}
			})
			if same {
				return ends
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("last stable offsets never reached the high watermarks: end %v (%v), stable %v (%v)", hw, herr, ls, lerr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// finalRead reads every partition read_committed from the start through
// the record at end-1 (a control marker or a data record) and returns the
// data records by value.
func finalRead(ctx context.Context, t *testing.T, seeds []string, ends map[string]map[int32]int64) []observation {
	t.Helper()
	cl := newClient(t, seeds,
		kgo.ConsumeTopics("jep-a", "jep-b"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	defer cl.Close()
	left := map[string]int64{}
	for topic, ps := range ends {
		for p, end := range ps {
			if end > 0 {
				left[fmt.Sprintf("%s/%d", topic, p)] = end - 1
			}
		}
	}
	var out []observation
	last := map[string]int64{}
	deadline := time.Now().Add(3 * time.Minute)
	var lastErr error
	for len(left) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("final read: partitions not read to the end after 3m: %v (last fetch error %v)", left, lastErr)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				lastErr = err
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			key := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if prev, ok := last[key]; ok && r.Offset <= prev {
				t.Errorf("final read: %s offset %d after %d", key, r.Offset, prev)
			}
			last[key] = r.Offset
			if want, ok := left[key]; ok && r.Offset >= want {
				delete(left, key)
			}
			if r.Offset >= ends[r.Topic][r.Partition] || r.Attrs.IsControl() {
				return
			}
			out = append(out, observation{consumer: "final", at: tpo{r.Topic, r.Partition, r.Offset}, value: string(r.Value)})
		})
	}
	return out
}

// check compares the final read and the consumers' observations with what
// the writers know, recording every violation.
func check(t *testing.T, h *history, final []observation) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.violations
	for _, x := range h.idemTwice {
		v.add(vTwice, "idempotent value %q completed twice", x)
	}
	known := func(val string) bool {
		if _, ok := h.valueTxn[val]; ok {
			return true
		}
		if _, ok := h.idemAcked[val]; ok {
			return true
		}
		_, ok := h.idemUnknown[val]
		return ok
	}

	// The final read: duplicates, aborted reads, unknown values.
	where := map[string]tpo{}
	at := map[tpo]string{}
	for _, o := range final {
		at[o.at] = o.value
		if prev, dup := where[o.value]; dup {
			v.add(vDuplicate, "value %q at %v and %v", o.value, prev, o.at)
			continue
		}
		where[o.value] = o.at
		if !known(o.value) {
			v.add(vUnknownVal, "final read: %q at %v", o.value, o.at)
		}
		if tx := h.valueTxn[o.value]; tx != nil && (tx.outcome == txnAborted || tx.outcome == txnNeverCommitted) {
			v.add(vAbortedRead, "final read: %q of %s (%s) at %v", o.value, tx.id, tx.outcome, o.at)
		}
	}

	// Transactions: committed ones wholly present, the rest all or nothing.
	for _, tx := range h.txns {
		present := 0
		var missing []string
		for _, val := range tx.values {
			if _, ok := where[val]; ok {
				present++
			} else {
				missing = append(missing, val)
			}
		}
		switch {
		case tx.outcome == txnCommitted && present < len(tx.values):
			v.add(vLost, "committed transaction %s: %d of %d values missing, e.g. %q", tx.id, len(missing), len(tx.values), missing[0])
		case present > 0 && present < len(tx.values):
			v.add(vPartial, "transaction %s (%s): %d of %d values visible, missing e.g. %q", tx.id, tx.outcome, present, len(tx.values), missing[0])
		}
		if tx.outcome == txnCommitted && present > 0 && present < len(tx.values) {
			v.add(vPartial, "committed transaction %s: %d of %d values visible", tx.id, present, len(tx.values))
		}
	}

	// Acknowledged idempotent values: present, at the offset acknowledged.
	for val, want := range h.idemAcked {
		got, ok := where[val]
		switch {
		case !ok:
			v.add(vLost, "acknowledged idempotent value %q (acked at %v) missing", val, want)
		case got != want:
			v.add(vMoved, "idempotent value %q acked at %v is at %v", val, want, got)
		}
	}

	// What the consumers saw during the run.
	for _, o := range h.seen {
		tx := h.valueTxn[o.value]
		if tx != nil && (tx.outcome == txnAborted || tx.outcome == txnNeverCommitted) {
			v.add(vAbortedRead, "%s read %q of %s (%s) at %v", o.consumer, o.value, tx.id, tx.outcome, o.at)
			continue
		}
		if !known(o.value) {
			v.add(vUnknownVal, "%s read %q at %v", o.consumer, o.value, o.at)
			continue
		}
		if _, ok := where[o.value]; !ok {
			what := "idempotent value"
			if tx != nil {
				what = fmt.Sprintf("value of transaction %s (%s)", tx.id, tx.outcome)
			}
			v.add(vUncommitted, "%s read %s %q at %v; the final read does not have it", o.consumer, what, o.value, o.at)
			continue
		}
		if fv, ok := at[o.at]; !ok || fv != o.value {
			v.add(vDivergent, "%s read %q at %v; the final read has %q there", o.consumer, o.value, o.at, fv)
		}
	}
}

// ---- delayed EndTxn across brokers ----

// testDelayedEndTxnAcrossBrokers drives one transactional id with raw
// requests pinned to broker 1, commits (EndTxn v5 bumps the epoch), begins
// the next transaction, and then lets a delayed copy of the first EndTxn
// arrive through broker 2: it must be fenced, the next transaction must stay
// Ongoing, and it must commit normally afterwards.
func testDelayedEndTxnAcrossBrokers(ctx context.Context, t *testing.T, b1, b2 *harness.Proc, admin *kgo.Client) {
	const topic = "jep-late"
	createTopic(ctx, t, admin, topic, 2, nil)
	r1, r2 := dialRaw(t, b1.Kafka), dialRaw(t, b2.Kafka)
	id := "jepsen-late"

	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	init.ProducerID, init.ProducerEpoch = -1, -1
	resp, err := r1.request(init)
	if err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	ir := resp.(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(ir.ErrorCode))
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	addAndProduce := func(epoch int16, seq int32, vals []string) {
		t.Helper()
		add := kmsg.NewPtrAddPartitionsToTxnRequest()
		add.Version = 3
		add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
		tp := kmsg.NewAddPartitionsToTxnRequestTopic()
		tp.Topic, tp.Partitions = topic, []int32{0, 1}
		add.Topics = append(add.Topics, tp)
		resp, err := r1.request(add)
		if err != nil {
			t.Fatalf("AddPartitionsToTxn: %v", err)
		}
		for _, rt := range resp.(*kmsg.AddPartitionsToTxnResponse).Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("AddPartitionsToTxn %s/%d (epoch %d): %v", rt.Topic, rp.Partition, epoch, kerr.ErrorForCode(rp.ErrorCode))
				}
			}
		}
		for p := int32(0); p < 2; p++ {
			req := kmsg.NewPtrProduceRequest()
			req.Version = 8
			req.Acks = -1
			req.TimeoutMillis = 30000
			req.TransactionID = &id
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = buildTxnBatch(pid, epoch, seq, vals)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := r1.request(req)
			if err != nil {
				t.Fatalf("transactional produce: %v", err)
			}
			if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("transactional produce to %s/%d (epoch %d, sequence %d): %v", topic, p, epoch, seq, kerr.ErrorForCode(code))
			}
		}
	}
	endTxn := func(rc *rawConn, epoch int16, commit bool) *kmsg.EndTxnResponse {
		t.Helper()
		req := kmsg.NewPtrEndTxnRequest()
		req.Version = 5
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
		resp, err := rc.request(req)
		if err != nil {
			t.Fatalf("EndTxn: %v", err)
		}
		return resp.(*kmsg.EndTxnResponse)
	}
	describe := func(rc *rawConn) (string, int16) {
		t.Helper()
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = []string{id}
		resp, err := rc.request(req)
		if err != nil {
			t.Fatalf("DescribeTransactions: %v", err)
		}
		d := resp.(*kmsg.DescribeTransactionsResponse)
		if len(d.TransactionStates) != 1 || d.TransactionStates[0].ErrorCode != 0 {
			t.Fatalf("DescribeTransactions: %+v", d.TransactionStates)
		}
		return d.TransactionStates[0].State, d.TransactionStates[0].ProducerEpoch
	}
	// DescribeTransactions answers from the broker's replayed state, which
	// may trail the log (DESIGN §5a rule 7 makes only fetches and offset
	// lookups wait), so the broker that did not take the writes is polled.
	expectState := func(name string, rc *rawConn, wantState string, wantEpoch int16) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		polls := 0
		for {
			st, ep := describe(rc)
			polls++
			if st == wantState && ep == wantEpoch {
				if polls > 1 {
					t.Logf("%s described %s at epoch %d only after %d polls (stale until its replay caught up)", name, st, ep, polls)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s describes the transaction as %q at epoch %d, want %q at epoch %d", name, st, ep, wantState, wantEpoch)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	first := []string{"late-first-0", "late-first-1"}
	addAndProduce(epoch, 0, first)
	if r := endTxn(r1, epoch, true); r.ErrorCode != 0 || r.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn(commit) via broker 1: %v, epoch %d (want %d)", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch, epoch+1)
	}
	second := []string{"late-second-0"}
	addAndProduce(epoch+1, 0, second)
	for _, commit := range []bool{true, false} {
		if r := endTxn(r2, epoch, commit); r.ErrorCode != kerr.ProducerFenced.Code {
			t.Errorf("delayed EndTxn(commit=%v, epoch %d) via broker 2 = %v, want PRODUCER_FENCED", commit, epoch, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	// The next transaction (epoch+1) is still open, as seen by both.
	if st, ep := describe(r1); st != "Ongoing" || ep != epoch+1 {
		t.Errorf("after the delayed EndTxn, broker 1 describes the transaction as %q at epoch %d, want Ongoing at epoch %d", st, ep, epoch+1)
	}
	expectState("broker 2", r2, "Ongoing", epoch+1)
	if r := endTxn(r1, epoch+1, true); r.ErrorCode != 0 || r.ProducerEpoch != epoch+2 {
		t.Fatalf("EndTxn(commit) of the next transaction: %v, epoch %d (want %d)", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch, epoch+2)
	}
	st, commitEpoch := describe(r1)
	if st != "CompleteCommit" {
		t.Errorf("after the commit, broker 1 describes the transaction as %q, want CompleteCommit", st)
	}
	expectState("broker 2", r2, "CompleteCommit", commitEpoch)
	// Both transactions are visible read_committed through broker 2.
	cl := newClient(t, []string{b2.Kafka},
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(300*time.Millisecond),
	)
	var got []string
	deadline := time.Now().Add(time.Minute)
	want := 2 * (len(first) + len(second))
	for len(got) < want && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		cancel()
	}
	sort.Strings(got)
	wantVals := []string{"late-first-0", "late-first-0", "late-first-1", "late-first-1", "late-second-0", "late-second-0"}
	if fmt.Sprint(got) != fmt.Sprint(wantVals) {
		t.Errorf("read_committed through broker 2: %v, want %v", got, wantVals)
	}
}

// buildTxnBatch encodes an uncompressed transactional magic-2 batch of
// values for producer pid/epoch starting at sequence seq.
func buildTxnBatch(pid int64, epoch int16, seq int32, values []string) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		enc := r.AppendTo(nil)
		recs = binary.AppendVarint(recs, int64(len(enc)-1))
		recs = append(recs, enc[1:]...)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           0x10, // transactional
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(len(values)),
		Records:              recs,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], castagnoli))
	return out
}

// TestJepsenCheckerFindsViolations feeds the checker a made-up history with
// one of each violation, so a checker that stopped looking fails here
// rather than passing every real run.
func TestJepsenCheckerFindsViolations(t *testing.T) {
	h := newHistory()
	add := func(id string, o txnOutcome, vals ...string) {
		tx := &jtxn{id: id, values: vals}
		h.addTxn(tx)
		h.endTxn(tx, o)
	}
	add("ok", txnCommitted, "c1", "c2")
	add("lost", txnCommitted, "l1", "l2")
	add("aborted", txnAborted, "a1")
	add("unknown-partial", txnUnknown, "u1", "u2")
	add("unknown-gone", txnUnknown, "g1")
	add("never", txnNeverCommitted, "n1")
	h.idemAcked["i1"] = tpo{"jep-a", 0, 5}
	h.idemAcked["i2"] = tpo{"jep-a", 0, 9}
	h.idemAcked["i3"] = tpo{"jep-a", 1, 0}
	at := func(p int32, off int64, v string) observation {
		return observation{consumer: "final", at: tpo{"jep-a", p, off}, value: v}
	}
	final := []observation{
		at(0, 0, "c1"), at(0, 1, "c2"), at(0, 2, "l1"), at(0, 3, "a1"), at(0, 4, "u1"),
		at(0, 5, "i1"), at(0, 6, "i2"), at(0, 7, "c1"), at(0, 8, "n1"), at(0, 10, "zz"),
	}
	h.seen = []observation{
		{consumer: "c", at: tpo{"jep-a", 0, 11}, value: "g1"},
		{consumer: "c", at: tpo{"jep-a", 0, 0}, value: "c2"},
	}
	h.violations.add(vNonMonotone, "made up")
	check(t, h, final)
	want := map[string]int{
		vLost:        2, // transaction "lost" and idempotent i3
		vDuplicate:   1, // c1 twice
		vAbortedRead: 2, // a1, n1
		vPartial:     2, // unknown-partial, and "lost" (committed, half visible)
		vUncommitted: 1, // g1 seen then gone
		vMoved:       1, // i2 acked at 9, stored at 6
		vDivergent:   1, // c2 seen at offset 0, final has c1 there
		vUnknownVal:  1, // zz
		vNonMonotone: 1,
	}
	for kind, n := range want {
		k := h.violations.byKind[kind]
		if k == nil || k.count != n {
			got := 0
			if k != nil {
				got = k.count
			}
			t.Errorf("%s: %d found, want %d", kind, got, n)
		}
	}
	for kind, k := range h.violations.byKind {
		if _, ok := want[kind]; !ok {
			t.Errorf("unexpected %s: %v", kind, k.examples)
		}
	}
}

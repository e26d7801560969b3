package system

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/retry/retrytest"
	"github.com/runnel-dev/runnel/test/harness"
)

// retryCall is one call of a retry test's handler.
type retryCall struct {
	worker  int
	value   string
	attempt int
	at      time.Time
	ok      bool
}

// retryLog records handler calls; a value fails for its first fails[v]
// attempts.
type retryLog struct {
	mu     sync.Mutex
	calls  []retryCall
	fails  map[string]int
	levels int
	okN    int
	want   int
	done   chan struct{}
}

func newRetryLog(fails map[string]int, levels, want int) *retryLog {
	return &retryLog{fails: fails, levels: levels, want: want, done: make(chan struct{})}
}

func (l *retryLog) handler(worker int) retrytest.Handler {
	return func(r *kgo.Record) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		c := retryCall{worker: worker, value: string(r.Value), attempt: retrytest.Attempt(r), at: time.Now()}
		c.ok = c.attempt >= l.fails[c.value]
		l.calls = append(l.calls, c)
		if c.attempt == min(l.fails[c.value], l.levels) && l.okN < l.want {
			// the final attempt of the value: processed, or dead-lettered
			// when it fails at the last level
			l.okN++
			if l.okN == l.want {
				close(l.done)
			}
		}
		if !c.ok {
			return fmt.Errorf("cannot process %s", c.value)
		}
		return nil
	}
}

func (l *retryLog) snapshot() []retryCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// runWorkers starts a retry-contract consumer of group per entry of seeds
// (the brokers it bootstraps from) and stops them when the test ends.
func runWorkers(ctx context.Context, t *testing.T, seeds [][]string, o retrytest.Options, l *retryLog) {
	t.Helper()
	var wg sync.WaitGroup
	wctx, stop := context.WithCancel(ctx)
	for i := range seeds {
		o := o
		o.Brokers = seeds[i]
		o.Handle = l.handler(i)
		o.Opts = append(o.Opts, kgo.FetchMaxWait(100*time.Millisecond), kgo.ClientID(fmt.Sprint("retry-worker-", i)))
		w, err := retrytest.NewWorker(o)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			if err := w.Run(wctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker %d: %v", i, err)
			}
		}()
	}
	t.Cleanup(func() { stop(); wg.Wait() })
}

// waitGroupAssigned waits until group has n members, each with partitions.
func waitGroupAssigned(ctx context.Context, t *testing.T, adm *kadm.Client, group string, n int) {
	t.Helper()
	for {
		ds, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			d := ds[group]
			assigned := 0
			for _, m := range d.Members {
				if ma, ok := m.Assigned.AsConsumer(); ok && len(ma.Topics) > 0 {
					assigned++
				}
			}
			if d.State == "Stable" && len(d.Members) == n && assigned == n {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never became stable with %d members", group, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRetryContract runs the retry contract of README ("Retries and dead
// letters") with franz-go consumers against the built binary: a policy set
// through the GROUP config resource, retries arriving after each level's
// delay while the partition goes on, a dead letter after the last attempt
// with its origin, and in ordered mode, with two consumers sharing the
// partitions, every key's records processed in their original order across
// a record that fails twice and one that fails once, the other keys not
// held up.
func TestRetryContract(t *testing.T) {
	b := harness.Start(t, harness.Options{BrokerID: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seeds := []string{b.Kafka}
	cl := newClient(t, seeds)
	delays := []time.Duration{300 * time.Millisecond, 500 * time.Millisecond}

	t.Run("retries and dead letters", func(t *testing.T) {
		createTopic(ctx, t, cl, "orders", 2, nil)
		setGroupConfigs(ctx, t, cl, "billing", map[string]string{"errors.retry.delays.ms": "300,500"})
		var recs []*kgo.Record
		for i := range 20 {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i))})
		}
		l := newRetryLog(map[string]int{"v4": 1, "v7": 2, "v9": 3}, len(delays), len(recs))
		runWorkers(ctx, t, [][]string{seeds}, retrytest.Options{Group: "billing", Topics: []string{"orders"},
			Levels: len(delays), DeadLetterTopic: "dlq.billing"}, l)
		pcl := newClient(t, seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.done:
		case <-ctx.Done():
			t.Fatalf("not every record reached its last attempt: %+v", l.snapshot())
		}
		calls := l.snapshot()
		at := map[string]map[int]time.Time{}
		for _, c := range calls {
			if at[c.value] == nil {
				at[c.value] = map[int]time.Time{}
			}
			if _, dup := at[c.value][c.attempt]; dup {
				t.Fatalf("%s attempt %d handled twice", c.value, c.attempt)
			}
			at[c.value][c.attempt] = c.at
		}
		for v, n := range map[string]int{"v4": 1, "v7": 2, "v9": 2} {
			for a := 1; a <= n; a++ {
				if gap := at[v][a].Sub(at[v][a-1]); gap < delays[a-1]-5*time.Millisecond {
					t.Errorf("%s attempt %d came %v after the failure, before its delay %v", v, a, gap, delays[a-1])
				}
			}
		}
		// The partitions went on: v18 and v19, the last of each, were
		// processed before the first retry of anything.
		for _, v := range []string{"v18", "v19"} {
			if !at[v][0].Before(at["v4"][1]) {
				t.Errorf("%s processed at %v, after v4's retry at %v: a partition waited", v, at[v][0], at["v4"][1])
			}
		}
		// v9 failed at every level: it is the one dead letter.
		// (the handler's last call comes just before the worker writes it)
		var ends map[int32]int64
		for {
			ends = endOffsets(ctx, t, cl, "dlq.billing")
			if ends[0] > 0 || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		var dead []*kgo.Record
		consume(ctx, t, seeds, "dlq.billing", ends, func(r *kgo.Record) { dead = append(dead, r) })
		if len(dead) != 1 || string(dead[0].Value) != "v9" {
			t.Fatalf("%d dead letters, want only v9", len(dead))
		}
		want := map[string]string{"runnel.retry.attempt": "2", "runnel.retry.origin.topic": "orders",
			"runnel.retry.origin.partition": "1", "runnel.retry.origin.offset": "4", "runnel.retry.error": "cannot process v9"}
		for k, v := range want {
			if got := retrytest.Header(dead[0], k); got != v {
				t.Errorf("dead letter header %s=%q, want %q", k, got, v)
			}
		}
	})

	t.Run("ordered", func(t *testing.T) {
		checkOrdered(ctx, t, cl, [][]string{seeds, seeds})
	})
}

// TestRetryOrderedTwoBrokers is the ordered check on two brokers sharing
// one etcd and one object store, each consumer bootstrapping from its own
// broker: the table is kept by the group's coordinator from records and
// commits that arrive through either broker.
func TestRetryOrderedTwoBrokers(t *testing.T) {
	objects := filepath.Join(t.TempDir(), "objects")
	b1 := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: objects})
	b2 := harness.Start(t, harness.Options{BrokerID: 2, ObjectStore: objects, EtcdEndpoints: b1.EtcdURL})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := newClient(t, []string{b1.Kafka, b2.Kafka})
	checkOrdered(ctx, t, cl, [][]string{{b1.Kafka}, {b2.Kafka}})
}

// checkOrdered runs two ordered consumers of group ship over topic events
// (two partitions; keys A and C on one, B and D on the other, four records
// each) where A1 fails twice and B2 once, and checks every key's records
// were processed once each in their order, the records behind a failed one
// waited for it and then went on together, the other keys were not held up,
// and the parked-keys table ends empty.
func checkOrdered(ctx context.Context, t *testing.T, cl *kgo.Client, seeds [][]string) {
	t.Helper()
	adm := kadm.NewClient(cl)
	delays := []time.Duration{300 * time.Millisecond, 500 * time.Millisecond}
	all := slices.Concat(seeds...)
	createTopic(ctx, t, cl, "events", 2, nil)
	setGroupConfigs(ctx, t, cl, "ship", map[string]string{"errors.retry.delays.ms": "300,500", "errors.retry.ordered": "true"})
	l := newRetryLog(map[string]int{"A1": 2, "B2": 1}, len(delays), 0)
	runWorkers(ctx, t, seeds, retrytest.Options{Group: "ship", Topics: []string{"events"},
		Levels: len(delays), DeadLetterTopic: "dlq.ship", Ordered: true}, l)
	waitGroupAssigned(ctx, t, adm, "ship", len(seeds))

	// Keys A and C on partition 0, B and D on partition 1, four
	// records each, interleaved.
	var recs []*kgo.Record
	part := map[byte]int32{'A': 0, 'C': 0, 'B': 1, 'D': 1}
	for i := 1; i <= 4; i++ {
		for _, k := range "ABCD" {
			recs = append(recs, &kgo.Record{Topic: "events", Partition: part[byte(k)], Key: []byte{byte(k)}, Value: fmt.Appendf(nil, "%c%d", k, i)})
		}
	}
	l.mu.Lock()
	l.want = len(recs)
	l.mu.Unlock()
	pcl := newClient(t, all, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		t.Fatalf("not every record processed: %+v", l.snapshot())
	}
	calls := l.snapshot()
	order := map[byte][]string{}
	seen := map[string]bool{}
	var firstRetry time.Time
	okAt := map[string]time.Time{}
	for _, c := range calls {
		if c.attempt > 0 && firstRetry.IsZero() {
			firstRetry = c.at
		}
		if !c.ok {
			continue
		}
		if seen[c.value] {
			t.Fatalf("%s processed twice", c.value)
		}
		seen[c.value] = true
		okAt[c.value] = c.at
		order[c.value[0]] = append(order[c.value[0]], c.value)
	}
	for _, k := range "ABCD" {
		want := []string{}
		for i := 1; i <= 4; i++ {
			want = append(want, fmt.Sprintf("%c%d", k, i))
		}
		if !slices.Equal(order[byte(k)], want) {
			t.Errorf("key %c processed in the order %v, want %v", k, order[byte(k)], want)
		}
	}
	// A's and B's records behind the failed ones waited for them;
	// C and D were done before anything was retried.
	if !okAt["A2"].After(okAt["A1"]) || !okAt["B3"].After(okAt["B2"]) || !okAt["B1"].Before(okAt["B2"]) {
		t.Errorf("records of A or B did not wait for the failed ones: %v", okAt)
	}
	// Once a failed record is done, the records behind it go on
	// together, not one retry delay apart.
	if d := okAt["A4"].Sub(okAt["A2"]); d >= 250*time.Millisecond {
		t.Errorf("A4 processed %v after A2", d)
	}
	for _, v := range []string{"C4", "D4"} {
		if !okAt[v].Before(firstRetry) {
			t.Errorf("%s processed at %v, after the first retry at %v: held up", v, okAt[v], firstRetry)
		}
	}
	// The table lists no key once everything is processed.
	for {
		ends := endOffsets(ctx, t, cl, "retry.ship.parked")
		parked := map[string]bool{}
		consume(ctx, t, all, "retry.ship.parked", ends, func(r *kgo.Record) {
			if k := string(r.Key); len(k) > 5 && k[:5] == "park/" {
				parked[k] = r.Value != nil
			}
		})
		left := 0
		for _, on := range parked {
			if on {
				left++
			}
		}
		if len(parked) >= 2 && left == 0 {
			break // A and B were listed, and are no longer
		}
		select {
		case <-ctx.Done():
			t.Fatalf("parked keys never cleared: %v", parked)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

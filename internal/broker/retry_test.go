package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/retry"
	"github.com/runnel-dev/runnel/internal/retry/retrytest"
)

// handled is one call of a test handler.
type handled struct {
	value   string
	attempt int
	at      time.Time
	failed  bool
}

// recorder is a handler that fails the values it is told to, for a number
// of attempts, and records every call.
type recorder struct {
	mu    sync.Mutex
	calls []handled
	fails map[string]int // value -> attempts that fail (first n)
	done  chan struct{}
	until func([]handled) bool
}

func (h *recorder) handle(r *kgo.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := retrytest.Attempt(r)
	c := handled{value: string(r.Value), attempt: n, at: time.Now(), failed: n < h.fails[string(r.Value)]}
	h.calls = append(h.calls, c)
	if h.until != nil && h.until(h.calls) {
		h.until = nil
		close(h.done)
	}
	if c.failed {
		return fmt.Errorf("cannot process %s", r.Value)
	}
	return nil
}

func (h *recorder) snapshot() []handled {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]handled(nil), h.calls...)
}

// TestRetryPolicy: setting errors.retry.delays.ms on a GROUP creates its
// delayed retry topics and dead-letter topic; a consumer group following
// the client contract gets a failed record back after each level's delay
// while the records behind it in its partition go on at once, and a record
// failing at the last level lands in the dead-letter topic with its origin.
func TestRetryPolicy(t *testing.T) {
	env := newTestEnv(t, 30*time.Second, nil, 1, "orders")
	ctx, cl, admin := env.ctx, env.cl, env.admin
	const group = "billing"
	delays := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}
	setGroupConfigs(t, ctx, cl, group, "errors.retry.delays.ms", "300,600")

	cfgs, err := admin.DescribeTopicConfigs(ctx, "retry.billing.1", "retry.billing.2", "dlq.billing")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range cfgs {
		if rc.Err != nil {
			t.Fatalf("%s: %v", rc.Name, rc.Err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				got[c.Key] = *c.Value
			}
		}
		want := map[string]string{"retry.billing.1": "300", "retry.billing.2": "600", "dlq.billing": "0"}[rc.Name]
		if got["delivery.delay.ms"] != want {
			t.Fatalf("%s: delivery.delay.ms=%q, want %s", rc.Name, got["delivery.delay.ms"], want)
		}
		if rc.Name != "dlq.billing" && got["message.timestamp.type"] != "LogAppendTime" {
			t.Fatalf("%s: message.timestamp.type=%q", rc.Name, got["message.timestamp.type"])
		}
	}

	const n = 10
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprint("k", i)), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	h := &recorder{fails: map[string]int{"v2": 1, "v5": 3}, done: make(chan struct{})}
	h.until = func(calls []handled) bool {
		c := calls[len(calls)-1]
		return c.value == "v5" && c.attempt == 2
	}
	w, err := retrytest.NewWorker(retrytest.Options{
		Brokers: []string{env.b.KafkaAddr()}, Group: group, Topics: []string{"orders"},
		Levels: len(delays), DeadLetterTopic: "dlq.billing", Handle: h.handle,
		Opts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- w.Run(wctx) }()
	var dead *kgo.Record
	select {
	case <-h.done:
		dead = readOne(t, ctx, env.b.KafkaAddr(), "dlq.billing")
	case err := <-errc:
		t.Fatalf("worker: %v", err)
	case <-ctx.Done():
		t.Fatalf("v5 never reached its last attempt: %+v", h.snapshot())
	}
	stop()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("worker: %v", err)
	}

	calls := h.snapshot()
	first := map[string]map[int]handled{}
	for _, c := range calls {
		if first[c.value] == nil {
			first[c.value] = map[int]handled{}
		}
		if _, dup := first[c.value][c.attempt]; dup {
			t.Fatalf("%s attempt %d handled twice: %+v", c.value, c.attempt, calls)
		}
		first[c.value][c.attempt] = c
	}
	for i := range n {
		v := fmt.Sprint("v", i)
		want := map[string]int{"v2": 2, "v5": 3}[v]
		if want == 0 {
			want = 1
		}
		if len(first[v]) != want {
			t.Fatalf("%s handled at attempts %v, want %d attempts", v, first[v], want)
		}
	}
	// The partition did not wait for the failed records.
	if !first["v9"][0].at.Before(first["v2"][1].at) {
		t.Fatalf("v9 handled at %v, after v2's retry at %v: the partition waited", first["v9"][0].at, first["v2"][1].at)
	}
	// Each retry came at least its level's delay after the failure.
	const slack = 5 * time.Millisecond
	for _, c := range []struct {
		v       string
		attempt int
	}{{"v2", 1}, {"v5", 1}, {"v5", 2}} {
		gap := first[c.v][c.attempt].at.Sub(first[c.v][c.attempt-1].at)
		if gap < delays[c.attempt-1]-slack {
			t.Fatalf("%s attempt %d came %v after the failure, before its delay %v", c.v, c.attempt, gap, delays[c.attempt-1])
		}
	}
	// The dead letter is v5 with its origin and last error.
	if string(dead.Value) != "v5" || string(dead.Key) != "k5" {
		t.Fatalf("dead letter %s=%s", dead.Key, dead.Value)
	}
	for k, want := range map[string]string{
		retry.HeaderAttempt: "2", retry.HeaderTopic: "orders", retry.HeaderPartition: "0", retry.HeaderOffset: "5",
		retry.HeaderError: "cannot process v5",
	} {
		if got := retrytest.Header(dead, k); got != want {
			t.Fatalf("dead letter header %s=%q, want %q", k, got, want)
		}
	}
}

// readOne reads the first record of partition 0 of topic, waiting for it.
func readOne(t *testing.T, ctx context.Context, addr, topic string) *kgo.Record {
	t.Helper()
	rc, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for {
		fs := rc.PollFetches(ctx)
		if rs := fs.Records(); len(rs) > 0 {
			return rs[0]
		}
		if ctx.Err() != nil {
			t.Fatalf("nothing in %s", topic)
		}
	}
}

// TestRetryOrdered: in ordered mode a key whose first record fails twice
// and then succeeds has its later records processed after it, in order,
// while the other keys of the partition are not held up; the parked-keys
// table shows the key while it is parked and drops it afterwards.
func TestRetryOrdered(t *testing.T) {
	env := newTestEnv(t, 30*time.Second, nil, 1, "events")
	ctx, cl := env.ctx, env.cl
	const group = "ship"
	setGroupConfigs(t, ctx, cl, group, "errors.retry.delays.ms", "300,300", "errors.retry.ordered", "true")

	values := []string{"A1", "B1", "A2", "C1", "A3", "B2"}
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(v[:1]), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h := &recorder{fails: map[string]int{"A1": 2}, done: make(chan struct{})}
	h.until = func(calls []handled) bool {
		ok := 0
		for _, c := range calls {
			if !c.failed {
				ok++
			}
		}
		return ok == len(values)
	}
	w, err := retrytest.NewWorker(retrytest.Options{
		Brokers: []string{env.b.KafkaAddr()}, Group: group, Topics: []string{"events"},
		Levels: 2, DeadLetterTopic: "dlq.ship", Handle: h.handle, Ordered: true,
		Opts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- w.Run(wctx) }()
	select {
	case <-h.done:
	case err := <-errc:
		t.Fatalf("worker: %v", err)
	case <-ctx.Done():
		t.Fatalf("not every record processed: %+v", h.snapshot())
	}
	stop()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("worker: %v", err)
	}

	calls := h.snapshot()
	var okOrder []string
	okAt := map[string]time.Time{}
	for _, c := range calls {
		if c.failed {
			if c.value != "A1" {
				t.Fatalf("%s failed", c.value)
			}
			continue
		}
		if _, dup := okAt[c.value]; dup {
			t.Fatalf("%s processed twice: %+v", c.value, calls)
		}
		okAt[c.value] = c.at
		okOrder = append(okOrder, c.value)
	}
	var aOrder []string
	for _, v := range okOrder {
		if v[0] == 'A' {
			aOrder = append(aOrder, v)
		}
	}
	if fmt.Sprint(aOrder) != "[A1 A2 A3]" {
		t.Fatalf("key A processed in the order %v (all: %v)", aOrder, okOrder)
	}
	firstFail := calls[0].at
	for _, v := range []string{"B1", "C1", "B2"} {
		if d := okAt[v].Sub(firstFail); d >= 300*time.Millisecond {
			t.Fatalf("%s processed %v after A1 failed: held up by key A", v, d)
		}
	}
	// Once A1 is done, the records waiting behind it go on together, not
	// one retry delay apart.
	if d := okAt["A3"].Sub(okAt["A2"]); d >= 250*time.Millisecond {
		t.Fatalf("A3 processed %v after A2", d)
	}
	if d := okAt["A1"].Sub(firstFail); d < 600*time.Millisecond-5*time.Millisecond {
		t.Fatalf("A1 succeeded %v after its first failure, before its two delays", d)
	}
}

package stream

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchGate holds a follower's log watch at exact points: before its first
// watch (so a backlog builds up) and after its first response with events
// (the first of several catch-up responses).
type watchGate struct {
	start     chan struct{} // closed: the first watch may begin
	firstSeen chan struct{} // closed once the first response was applied
	release   chan struct{} // closed: responses after the first may follow
	cancel    bool          // cancel the watch after the first response

	once      sync.Once
	relOnce   sync.Once
	startOnce sync.Once
	watches   atomic.Int32
	firstRevs atomic.Int64 // header revision of the first response
}

func newWatchGate(cancel bool) *watchGate {
	return &watchGate{start: make(chan struct{}), firstSeen: make(chan struct{}), release: make(chan struct{}), cancel: cancel}
}

// open lets the first watch begin.
func (g *watchGate) open() { g.startOnce.Do(func() { close(g.start) }) }

// unblock lets responses after the first one through.
func (g *watchGate) unblock() { g.relOnce.Do(func() { close(g.release) }) }

// hooks returns the engine hooks.
func (g *watchGate) hooks() *testHooks {
	return &testHooks{
		beforeWatch: func(int64) {
			if g.watches.Add(1) == 1 {
				<-g.start
			}
		},
		afterResponse: func(resp *clientv3.WatchResponse) bool {
			if len(resp.Events) == 0 {
				return false
			}
			first := false
			g.once.Do(func() {
				first = true
				g.firstRevs.Store(resp.Header.Revision)
				close(g.firstSeen)
			})
			if first {
				<-g.release
				return g.cancel
			}
			return false
		},
	}
}

// produceEntries writes n batches through e, one at a time, so each is its
// own intake entry at its own revision.
func produceEntries(t *testing.T, e *Engine, topic string, n int) {
	t.Helper()
	for range n {
		mustProduce(t, e, topic, makeBatch(-1, -1, -1, 1, 1000, CodecNone))
	}
}

// openGated opens a follower (broker 2) whose log watch g holds. g is
// released when the test ends, before the follower's Close (registered
// first, run last), so a test that fails early does not hang.
func (v *env) openGated(t *testing.T, g *watchGate) *Engine {
	t.Helper()
	o := v.opts
	o.hooks, o.BrokerID = g.hooks(), 2
	e := v.openWith(t, o)
	t.Cleanup(func() { g.open(); g.unblock() })
	return e
}

func hwm(t *testing.T, e *Engine, topic string) int64 {
	t.Helper()
	ps, err := e.State(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ps.HighWatermark
}

// TestWatchBacklogIsNotProgress: a follower more than a thousand revisions
// behind receives its backlog in several responses that all carry the
// current revision. SyncRead must not return before the whole backlog is
// applied, and a watch cancelled in the middle of it must resume right
// after the last applied entry, not after the header revision.
func TestWatchBacklogIsNotProgress(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"syncread waits for the backlog", false}, {"rewatch resumes after the last applied entry", true}} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			a := v.open(t)
			mustCreate(t, a, "t", 1, nil)
			gate := newWatchGate(tc.cancel)
			b := v.openGated(t, gate)

			produceEntries(t, a, "t", 2500)
			want := hwm(t, a, "t")
			gate.open()
			select {
			case <-gate.firstSeen:
			case <-time.After(20 * time.Second):
				t.Fatal("the follower got no watch response")
			}
			if got := hwm(t, b, "t"); got >= want {
				t.Fatalf("the first catch-up response already held everything (%d of %d): no backlog to test", got, want)
			}
			if tc.cancel {
				// The watch is cancelled after its first response; the
				// re-watch must deliver the rest of the backlog.
				gate.unblock()
				deadline := time.Now().Add(10 * time.Second)
				for hwm(t, b, "t") != want && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if got := hwm(t, b, "t"); got != want {
					t.Fatalf("after a re-watch the follower is stuck at high watermark %d, the writer at %d", got, want)
				}
			} else {
				type synced struct {
					err error
					hw  int64
				}
				done := make(chan synced, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					err := b.SyncRead(ctx)
					ps, _ := b.State("t", 0)
					done <- synced{err, ps.HighWatermark}
				}()
				select {
				case s := <-done:
					t.Fatalf("SyncRead returned (err %v, high watermark %d of %d) while the backlog was still being delivered", s.err, s.hw, want)
				case <-time.After(300 * time.Millisecond):
				}
				gate.unblock()
				s := <-done
				if s.err != nil {
					t.Fatal(s.err)
				}
				if s.hw != want {
					t.Fatalf("after SyncRead the follower's high watermark is %d, the writer's %d", s.hw, want)
				}
			}
			ra, rb := readAll(t, a, mustTopic(t, a, "t"), 0), readAll(t, b, mustTopic(t, b, "t"), 0)
			if len(ra) != len(rb) {
				t.Fatalf("writer has %d records, follower %d", len(ra), len(rb))
			}
			for off, val := range ra {
				if rb[off] != val {
					t.Fatalf("offset %d: writer %q, follower %q", off, val, rb[off])
				}
			}
		})
	}
}

// TestSyncReadAfterCheckpointDeletedTheLog: once a checkpoint has deleted
// every log entry it covers, a follower that has not replayed them must
// still wait for them, not return at once because no log key is left.
func TestSyncReadAfterCheckpointDeletedTheLog(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	mustCreate(t, a, "t", 1, nil)
	gate := newWatchGate(false)
	gate.unblock()
	b := v.openGated(t, gate)

	produceEntries(t, a, "t", 20)
	want := hwm(t, a, "t")
	covered, err := a.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// What is left of the log is what came after the checkpoint (its
	// digest entry): every produce is gone from it.
	resp, err := v.cli.Get(context.Background(), a.logKey, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if kv.ModRevision <= covered {
			t.Fatalf("log entry %s (revision %d) left after a checkpoint at %d", kv.Key, kv.ModRevision, covered)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = b.SyncRead(ctx)
	cancel()
	if err == nil {
		t.Fatalf("SyncRead returned with the follower at high watermark %d of %d", hwm(t, b, "t"), want)
	}
	gate.open()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.SyncRead(ctx); err != nil {
		t.Fatal(err)
	}
	if got := hwm(t, b, "t"); got != want {
		t.Fatalf("follower high watermark %d, writer %d", got, want)
	}
}

// valueBatch builds a one-record batch without a producer id or key.
func valueBatch(val string) []byte {
	return keyedBatch(CodecNone, kv{value: val, noKey: true, ts: 1000})
}

// TestReplayOrderSurvivesClockStepBack: a broker whose clock steps back
// while it writes still puts the entries of one group commit in key order,
// so a broker that watched them and one that ranges them after a restart
// assign the same offsets.
func TestReplayOrderSurvivesClockStepBack(t *testing.T) {
	v := newEnv(t)
	base := time.Now()
	var calls atomic.Int64
	v.opts.Now = func() time.Time { return base.Add(-time.Duration(calls.Add(1)) * time.Millisecond) }
	a := v.open(t)
	v.opts.Now = nil
	mustCreate(t, a, "t", 1, nil)
	v.opts.BrokerID = 2
	b := v.open(t)

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				r := a.Produce(context.Background(), []ProduceBatch{{Topic: "t", Records: valueBatch(fmt.Sprintf("w%d-%d", w, i))}})
				if r[0].Err != nil {
					t.Errorf("produce: %v", r[0].Err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// The test means something only if some entries were put together.
	resp, err := v.cli.Get(context.Background(), a.logKey, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	perRev := map[int64]int{}
	grouped := 0
	for _, kv := range resp.Kvs {
		if perRev[kv.ModRevision]++; perRev[kv.ModRevision] == 2 {
			grouped++
		}
	}
	if grouped == 0 {
		t.Skip("no group commit happened; nothing to compare")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.SyncRead(ctx); err != nil {
		t.Fatal(err)
	}
	v.opts.BrokerID = 3
	c := v.open(t) // ranges the log: no checkpoint was written
	id := mustTopic(t, a, "t")
	ra, rb, rc := readAll(t, a, id, 0), readAll(t, b, id, 0), readAll(t, c, id, 0)
	if len(ra) != 480 || len(rb) != 480 || len(rc) != 480 {
		t.Fatalf("records: writer %d, watcher %d, restarted %d; want 480", len(ra), len(rb), len(rc))
	}
	diff := 0
	for off := range int64(480) {
		if ra[off] != rb[off] || rb[off] != rc[off] {
			if diff++; diff <= 5 {
				t.Errorf("offset %d: writer %q, watcher %q, restarted %q", off, ra[off], rb[off], rc[off])
			}
		}
	}
	if diff > 0 {
		t.Fatalf("%d offsets differ (%d group commits)", diff, grouped)
	}
	t.Logf("%d revisions held more than one entry", grouped)
}

// TestReloadAnswersSkippedWaiters: a broker whose watch falls behind a
// compaction reloads from the newest checkpoint; a produce it put before
// and that the checkpoint covers is answered with a retriable error at
// once instead of waiting out its timeout.
func TestReloadAnswersSkippedWaiters(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	mustCreate(t, a, "t", 1, nil)
	gate := newWatchGate(false)
	gate.unblock()
	b := v.openGated(t, gate)

	type result struct {
		r    ProduceResult
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		r := b.Produce(ctx, []ProduceBatch{{Topic: "t", Records: valueBatch("skipped")}})
		done <- result{r[0], time.Since(start)}
	}()
	// Wait until a has applied b's entry, then checkpoint and compact.
	deadline := time.Now().Add(10 * time.Second)
	for hwm(t, a, "t") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Compact past the entry (the pointer move and the deletions of the
	// covered entries came after it).
	cur, err := v.cli.Get(context.Background(), a.ptrKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.cli.Compact(context.Background(), cur.Header.Revision); err != nil {
		t.Fatal(err)
	}
	gate.open()
	select {
	case res := <-done:
		if !errorsIs(res.r.Err, ErrUnknownOutcome) {
			t.Fatalf("produce answered %+v after %v; want ErrUnknownOutcome", res.r, res.took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the produce whose entry a reload skipped is still waiting")
	}
	if got := hwm(t, b, "t"); got != 1 {
		t.Fatalf("after the reload b's high watermark is %d, want 1", got)
	}
}

// TestFetchBehindCollectedObject: a broker whose replay is behind still
// points at an intake object that archival replaced and garbage collection
// deleted. Its fetch catches up and reads the segment instead of failing
// with the store's "not found"; if it cannot catch up, the error is a
// retriable storage error.
func TestFetchBehindCollectedObject(t *testing.T) {
	for _, catchUp := range []bool{true, false} {
		t.Run(fmt.Sprintf("catch up %v", catchUp), func(t *testing.T) {
			v := newEnv(t)
			a := v.open(t)
			mustCreate(t, a, "t", 1, nil)
			if r := produce(t, a, "t", 0, valueBatch("v0")); r.Err != nil {
				t.Fatal(r.Err)
			}
			gate := newWatchGate(false)
			gate.unblock()
			b := v.openGated(t, gate) // sees the record in the intake object

			ctx := context.Background()
			if err := a.ArchiveAll(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // past the 1 ms grace
			if r := produce(t, a, "t", 0, valueBatch("v1")); r.Err != nil {
				t.Fatal(r.Err)
			}
			if err := a.CollectGarbage(ctx); err != nil {
				t.Fatal(err)
			}
			if catchUp {
				gate.open()
			}
			fctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			res, err := b.Fetch(fctx, FetchPartition{TopicID: mustTopic(t, b, "t"), Offset: 0, MaxBytes: 1 << 20})
			if catchUp {
				if err != nil || len(res.Records) == 0 {
					t.Fatalf("fetch after catching up: %d bytes, %v", len(res.Records), err)
				}
				return
			}
			if !errorsIs(err, ErrStorage) {
				t.Fatalf("fetch of a collected object without catching up: %v, want ErrStorage", err)
			}
		})
	}
}

package system

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/test/harness"
)

// ackedAt is where an acknowledged record was placed.
type ackedAt struct {
	Partition int32
	Offset    int64
}

// ackLog records the outcome of every produce.
type ackLog struct {
	mu      sync.Mutex
	acked   map[string]ackedAt
	failed  map[string]error
	doubled []string // values whose promise ran twice
}

func (l *ackLog) done(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := string(r.Value)
	_, a := l.acked[v]
	_, f := l.failed[v]
	if a || f {
		l.doubled = append(l.doubled, v)
	}
	if err != nil {
		l.failed[v] = err
		return
	}
	l.acked[v] = ackedAt{r.Partition, r.Offset}
}

func (l *ackLog) counts() (acked, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), len(l.failed)
}

// TestCrashSafety checks DESIGN §8 invariants 1–3 under SIGKILL: idempotent
// acks=all producers write unique values to a multi-partition topic while
// the broker is killed and restarted on the same data directory; at the end
// every acknowledged record is present exactly once at the offset it was
// acknowledged with, no value is present twice, and offsets are dense from 0.
// Records whose produce failed may or may not be present, never twice.
func TestCrashSafety(t *testing.T) {
	cycles := 5
	if soak() {
		cycles = 50
	}
	const (
		topic      = "crash"
		partitions = 6
		producers  = 4
	)
	p := harness.Start(t, harness.Options{BrokerID: 1})
	seeds := []string{p.Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	admin := newClient(t, seeds)
	createTopic(ctx, t, admin, topic, partitions, nil)

	log := &ackLog{acked: map[string]ackedAt{}, failed: map[string]error{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	clients := make([]*kgo.Client, producers)
	for i := range clients {
		clients[i] = newClient(t, seeds,
			kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(2*time.Millisecond),
			kgo.RecordRetries(math.MaxInt32),
			kgo.RecordDeliveryTimeout(5*time.Minute),
			kgo.RequestTimeoutOverhead(30*time.Second),
			kgo.RetryTimeout(5*time.Minute),
			kgo.UnknownTopicRetries(-1),
			kgo.MaxBufferedRecords(2000),
		)
		cl := clients[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				// Record contexts stay live: cancelling one could fail a
				// record the broker has already sequenced, hiding a duplicate.
				cl.Produce(context.Background(), &kgo.Record{Value: fmt.Appendf(nil, "w%d-%09d", i, seq)}, log.done)
			}
		}()
	}

	waitProgress := func(what string) {
		t.Helper()
		start, _ := log.counts()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			n, _ := log.counts()
			if n >= start+200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no produce progress %s: %d acknowledged records, still %d after 2m\nbroker log:\n%s", what, start, n, p.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for c := 1; c <= cycles; c++ {
		waitProgress(fmt.Sprintf("before kill %d", c))
		time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
		a, f := log.counts()
		t.Logf("cycle %d: SIGKILL with %d acknowledged, %d failed so far", c, a, f)
		p.Kill()
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.Restart()
	}
	waitProgress("after the last restart")
	close(stop)
	wg.Wait()
	for i, cl := range clients {
		fctx, fcancel := context.WithTimeout(ctx, 3*time.Minute)
		if err := cl.Flush(fctx); err != nil {
			t.Fatalf("producer %d: flush after the last restart: %v", i, err)
		}
		fcancel()
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.doubled) > 0 {
		t.Errorf("%d records completed twice, e.g. %q", len(log.doubled), log.doubled[0])
	}
	failures := map[string]int{}
	for _, err := range log.failed {
		failures[err.Error()]++
	}
	t.Logf("%d records acknowledged, %d failed %v", len(log.acked), len(log.failed), failures)

	ends := endOffsets(ctx, t, admin, topic)
	seen := make(map[string]ackedAt, len(log.acked))
	var total int64
	unacked := 0
	next := map[int32]int64{}
	consume(ctx, t, seeds, topic, ends, func(r *kgo.Record) {
		total++
		v := string(r.Value)
		if r.Offset != next[r.Partition] {
			t.Errorf("partition %d: offset %d follows %d (offsets must be dense from 0)", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition] = r.Offset + 1
		if prev, dup := seen[v]; dup {
			t.Errorf("value %q stored twice: partition %d offset %d and partition %d offset %d", v, prev.Partition, prev.Offset, r.Partition, r.Offset)
			return
		}
		seen[v] = ackedAt{r.Partition, r.Offset}
		if _, ok := log.acked[v]; !ok {
			if _, ok := log.failed[v]; !ok {
				t.Errorf("value %q at partition %d offset %d was never produced", v, r.Partition, r.Offset)
			}
			unacked++
		}
	})
	t.Logf("consumed %d records (%d of them from failed produces), end offsets %v", total, unacked, ends)

	lost := 0
	for v, want := range log.acked {
		got, ok := seen[v]
		switch {
		case !ok:
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged record %q (partition %d offset %d) is lost", v, want.Partition, want.Offset)
			}
		case got != want:
			t.Errorf("acknowledged record %q was acked at partition %d offset %d but is stored at partition %d offset %d", v, want.Partition, want.Offset, got.Partition, got.Offset)
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged records lost in total", lost)
	}
}

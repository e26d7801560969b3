package share

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
)

// TestEngineQueueHistory runs random histories on two engines (brokers)
// sharing one share partition: acquisitions by several members, random
// accept, release and reject, lock timeouts, and engines crashing and
// restarting. Then it drains the partition and checks what a queue must
// guarantee: every record ends accepted exactly once or dead-lettered
// exactly once, never both; no delivery count passes the limit, and the
// counts reported match the deliveries seen.
func TestEngineQueueHistory(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { queueHistory(t, seed) })
	}
}

func queueHistory(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupShareRecordLockDuration, "1000")
	v.setConfig(config.GroupShareDeliveryCountLimit, "3")
	v.setConfig(config.GroupDLQTopicName, "dlq.g")
	if seed%2 == 0 {
		v.setConfig(config.GroupShareAcquireMode, "record_limit")
	}
	w := &fakeLetters{written: map[int64]int{}}
	withLetters := func(o *Options) { o.DeadLetters = w }
	engines := []*Engine{v.engine(t, withLetters), v.engine(t, withLetters)}
	k := v.key("g", 0)
	var total int64
	for total < 150 {
		total += int64(1 + rng.IntN(7))
		v.produce(t, 0, int(total)-int(v.mustHWM(t)))
	}

	delivered := map[int64]int16{}
	accepted := map[int64]int{}
	held := map[string][]AcquiredRange{}
	members := []string{"m0", "m1", "m2", "m3"}
	record := func(m string, res AcquireResult) {
		for _, r := range res.Acquired {
			for off := r.First; off <= r.Last; off++ {
				delivered[off]++
				if delivered[off] != r.DeliveryCount || r.DeliveryCount > 3 {
					t.Fatalf("offset %d: delivery %d reported as %d (limit 3)", off, delivered[off], r.DeliveryCount)
				}
			}
		}
		held[m] = append(held[m], res.Acquired...)
	}
	ack := func(e *Engine, m string, r AcquiredRange, typ func() int8) {
		types := make([]int8, r.Last-r.First+1)
		for i := range types {
			types[i] = typ()
		}
		err := e.Acknowledge(ctx, k, m, []AckBatch{{First: r.First, Last: r.Last, Types: types}})
		if errors.Is(err, ErrInvalidRecordState) {
			return // the lock timed out meanwhile
		}
		if err != nil {
			t.Fatalf("ack: %v", err)
		}
		for i, ty := range types {
			if ty == AckAccept {
				accepted[r.First+int64(i)]++
			}
		}
	}
	for step := 0; step < 300; step++ {
		i := rng.IntN(2)
		e, m := engines[i], members[rng.IntN(len(members))]
		switch n := rng.IntN(20); {
		case n < 8:
			res, err := e.Acquire(ctx, AcquireRequest{Key: k, Member: m, MaxRecords: int32(1 + rng.IntN(6)), MaxBytes: 1 << 20})
			if err != nil {
				t.Fatalf("acquire: %v", err)
			}
			record(m, res)
		case n < 16:
			if len(held[m]) == 0 {
				continue
			}
			r := held[m][0]
			held[m] = held[m][1:]
			ack(e, m, r, func() int8 { return []int8{AckAccept, AckAccept, AckAccept, AckRelease, AckReject}[rng.IntN(5)] })
		case n < 18:
			v.clock.Add(time.Duration(rng.IntN(700)) * time.Millisecond)
		case n < 19:
			if err := e.ReleaseMember(ctx, k, m); err != nil {
				t.Fatal(err)
			}
			held[m] = nil
		default:
			// The broker crashes and comes back.
			e.Close()
			engines[i] = v.engine(t, withLetters)
		}
	}
	// Drain: past every lock, accept whatever is delivered.
	v.clock.Add(2 * time.Second)
	for n := 0; ; n++ {
		if n > 1000 {
			t.Fatal("the partition does not drain")
		}
		res, err := engines[0].Acquire(ctx, AcquireRequest{Key: k, Member: "drain", MaxRecords: 50, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Acquired) == 0 {
			break
		}
		record("drain", res)
		for _, r := range res.Acquired {
			ack(engines[0], "drain", r, func() int8 { return AckAccept })
		}
	}
	offs, err := engines[0].StartOffsets(ctx, "g")
	if err != nil || offs[0].StartOffset != total {
		t.Fatalf("start offset %+v (%v), want %d", offs, err, total)
	}
	waitFor(t, "the dead letters written", func() bool {
		for _, e := range engines {
			if st, _, err := e.store.get(ctx, k); err != nil || len(st.Letters) > 0 {
				return false
			}
		}
		return true
	})
	// Write may be called again for a letter (after a crash, or by two
	// brokers at once): the writer is idempotent per offset, so a record
	// is dead-lettered once however often it was handed over, always with
	// the same letter.
	_, letters := w.snapshot()
	w.mu.Lock()
	if len(w.mismatch) > 0 {
		t.Errorf("letters differ between writes: %v", w.mismatch)
	}
	w.mu.Unlock()
	dups := 0
	for off := int64(0); off < total; off++ {
		dead := min(letters[off], 1)
		dups += letters[off] - dead
		if accepted[off]+dead != 1 {
			t.Errorf("offset %d: accepted %d times, dead-lettered %d times", off, accepted[off], letters[off])
		}
		if delivered[off] == 0 {
			t.Errorf("offset %d never delivered", off)
		}
	}
	t.Logf("%d records, %d accepted, %d letters written again", total, len(accepted), dups)
}

func (v *shareEnv) mustHWM(t *testing.T) int64 {
	t.Helper()
	ps, err := v.log.State(v.topic.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ps.HighWatermark
}

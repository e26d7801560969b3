package share

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// fakeLetters is a DeadLetterWriter that fails while failing is set.
type fakeLetters struct {
	mu      sync.Mutex
	failing bool
	calls   int
	written map[int64]int // offset → times written
	// first is each offset's first letter; a later write of the same
	// offset must carry the same letter (the writer's idempotence keys on it).
	first    map[int64]DeadLetter
	mismatch []string
}

func (f *fakeLetters) Write(_ context.Context, k Key, cfg config.ShareGroup, letters []DeadLetter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failing {
		return errors.New("dead-letter topic unavailable")
	}
	if cfg.DLQTopic == "" {
		return errors.New("no dead-letter topic")
	}
	if f.first == nil {
		f.first = map[int64]DeadLetter{}
	}
	for _, l := range letters {
		f.written[l.Offset]++
		if prev, ok := f.first[l.Offset]; ok && prev != l {
			f.mismatch = append(f.mismatch, fmt.Sprintf("offset %d written as %+v, then as %+v", l.Offset, prev, l))
		} else if !ok {
			f.first[l.Offset] = l
		}
	}
	return nil
}

func (f *fakeLetters) snapshot() (int, map[int64]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[int64]int{}
	for k, v := range f.written {
		m[k] = v
	}
	return f.calls, m
}

// Rejected records and records past the delivery limit become dead
// letters: persisted first, handed to the writer, removed once written; a
// failed write is retried, also by an engine started after a crash.
func TestEngineDeadLetters(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupShareDeliveryCountLimit, "2")
	v.setConfig(config.GroupDLQTopicName, "dlq.g")
	w := &fakeLetters{failing: true, written: map[int64]int{}}
	e := v.engine(t, func(o *Options) { o.DeadLetters = w })
	k := v.key("g", 0)
	v.produce(t, 0, 4)
	acquire(t, e, k, "a", 100)
	if err := e.Acknowledge(ctx, k, "a", []AckBatch{{First: 0, Last: 3, Types: []int8{AckReject, AckRelease, AckAccept, AckAccept}}}); err != nil {
		t.Fatal(err)
	}
	acquire(t, e, k, "a", 100) // offset 1, second delivery
	if err := e.Acknowledge(ctx, k, "a", []AckBatch{{First: 1, Last: 1, Types: []int8{AckRelease}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failed write", func() bool { calls, _ := w.snapshot(); return calls > 0 })
	st, _, err := e.store.get(ctx, k)
	if err != nil || len(st.Letters) != 2 {
		t.Fatalf("pending letters %+v %v", st, err)
	}
	want := []DeadLetter{{Offset: 0, DeliveryCount: 1, Reason: ReasonRejected}, {Offset: 1, DeliveryCount: 2, Reason: ReasonDeliveryCount}}
	if fmt.Sprint(st.Letters) != fmt.Sprint(want) {
		t.Fatalf("letters %v, want %v", st.Letters, want)
	}
	// A crash: the engine stops with the letters unwritten; the next one
	// (another broker, or this one restarted) writes them from the state.
	e.Close()
	w.mu.Lock()
	w.failing = false
	w.mu.Unlock()
	e2 := v.engine(t, func(o *Options) { o.DeadLetters = w })
	waitFor(t, "the letters written", func() bool { _, m := w.snapshot(); return len(m) == 2 })
	waitFor(t, "the letters removed", func() bool {
		st, ok := e2.store.cachedState(k)
		return ok && len(st.Letters) == 0
	})
	if _, m := w.snapshot(); m[0] != 1 || m[1] != 1 {
		t.Fatalf("written %v", m)
	}
	// Without a dead-letter topic, rejected records are only archived.
	v.setConfig(config.GroupDLQTopicName, "")
	v.produce(t, 0, 1)
	acquire(t, e2, k, "a", 100)
	if err := e2.Acknowledge(ctx, k, "a", []AckBatch{{First: 4, Last: 4, Types: []int8{AckReject}}}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := e2.store.get(ctx, k); len(st.Letters) != 0 || st.Start != 5 {
		t.Fatalf("without a DLQ: %+v", st)
	}
}

// Letters one broker persisted and cannot write are written by another
// broker that caches the share partition, once they have waited the grace;
// before that it leaves them to their owner.
func TestEngineForeignLettersAfterGrace(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 1)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupDLQTopicName, "dlq.g")
	broken := &fakeLetters{failing: true, written: map[int64]int{}}
	working := &fakeLetters{written: map[int64]int{}}
	a := v.engine(t, func(o *Options) { o.DeadLetters = broken })
	b := New(Options{Client: v.etcd.Client(), Log: v.log, GroupConfig: v.groupConfig, Now: time.Now, SweepInterval: 10 * time.Millisecond, DeadLetters: working})
	b.letterGrace = 300 * time.Millisecond
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	k := v.key("g", 0)
	v.produce(t, 0, 2)
	acquire(t, b, k, "m", 100) // b caches the share partition
	if err := b.Acknowledge(ctx, k, "m", []AckBatch{{First: 0, Last: 0, Types: []int8{AckAccept}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.ReleaseMember(ctx, k, "m"); err != nil {
		t.Fatal(err)
	}
	acquire(t, a, k, "n", 100)
	start := time.Now()
	if err := a.Acknowledge(ctx, k, "n", []AckBatch{{First: 1, Last: 1, Types: []int8{AckReject}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b writes a's letter", func() bool { _, m := working.snapshot(); return m[1] == 1 })
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("b wrote a's letter after %v, before the grace", d)
	}
	waitFor(t, "the letter removed", func() bool {
		st, _, err := a.store.get(ctx, k)
		return err == nil && len(st.Letters) == 0
	})
	// a forgets the letter it could not write once b wrote it.
	waitFor(t, "a to forget its letter", func() bool {
		a.ownMu.Lock()
		defer a.ownMu.Unlock()
		return len(a.own) == 0
	})
}

// Deleting a share partition's state hands its pending dead letters to the
// writer first; other topics' states stay. (Broker a cannot write letters;
// b, which never touched the partition, deletes it.)
func TestEngineDeleteStateWritesLetters(t *testing.T) {
	ctx := context.Background()
	v := newShareEnv(t, 2)
	v.setConfig(config.GroupShareAutoOffsetReset, "earliest")
	v.setConfig(config.GroupDLQTopicName, "dlq.g")
	broken := &fakeLetters{failing: true, written: map[int64]int{}}
	w := &fakeLetters{written: map[int64]int{}}
	a := v.engine(t, func(o *Options) { o.DeadLetters = broken })
	b := v.engine(t, func(o *Options) { o.DeadLetters = w })
	k := v.key("g", 0)
	v.produce(t, 0, 3)
	acquire(t, a, k, "m", 100)
	if err := a.Acknowledge(ctx, k, "m", []AckBatch{{First: 0, Last: 2, Types: []int8{AckReject}}}); err != nil {
		t.Fatal(err)
	}
	other := stream.TopicID{9}
	if err := a.SetStartOffset(ctx, Key{Group: "g", Topic: other, Partition: 0}, 0); err != nil {
		t.Fatal(err)
	}
	topic := v.topic.ID
	if err := b.DeleteState(ctx, "g", &topic); err != nil {
		t.Fatal(err)
	}
	if _, m := w.snapshot(); m[0] != 1 || m[1] != 1 || m[2] != 1 {
		t.Fatalf("letters written %v", m)
	}
	states, err := b.States(ctx, "g")
	if err != nil || len(states) != 1 || states[Key{Group: "g", Topic: other, Partition: 0}] == nil {
		t.Fatalf("states after deleting one topic: %v %v", states, err)
	}
}

package stream

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestProducerIDCap: a client looping on InitProducerId stops at the cap
// with ErrProducerIDLimit instead of growing state without bound; the
// refusal is counted.
func TestProducerIDCap(t *testing.T) {
	v := newEnv(t)
	e := v.open(t)
	e.mu.Lock()
	e.st.maxProducerIDs = 3
	e.mu.Unlock()
	for i := range 3 {
		if _, _, err := e.InitProducerID(context.Background(), -1, 0); err != nil {
			t.Fatalf("producer %d: %v", i, err)
		}
	}
	for range 2 {
		if _, _, err := e.InitProducerID(context.Background(), -1, 0); !errorsIs(err, ErrProducerIDLimit) {
			t.Fatalf("past the cap: %v, want ErrProducerIDLimit", err)
		}
	}
	if _, _, err := e.InitTxnProducer(context.Background(), "tx", 60000, -1, -1); !errorsIs(err, ErrProducerIDLimit) {
		t.Fatalf("a new transactional id past the cap: %v, want ErrProducerIDLimit", err)
	}
	if got := testutil.ToFloat64(e.m.limitHits.WithLabelValues("producer_ids")); got != 3 {
		t.Fatalf("limit rejections counted %v, want 3", got)
	}
	if got := testutil.ToFloat64(e.m.producerIDs); got != 3 {
		t.Fatalf("producer id gauge %v, want 3", got)
	}
}

// TestUnarchivedExtentCap: a partition at its cap of unarchived extents
// refuses produce with a retriable error until archival catches up.
func TestUnarchivedExtentCap(t *testing.T) {
	v := newEnv(t)
	v.opts.MaxUnarchivedExtents = 4
	e := v.open(t)
	mustCreate(t, e, "t", 2, nil)
	for i := range 4 {
		if r := produce(t, e, "t", 0, valueBatch("x")); r.Err != nil {
			t.Fatalf("produce %d: %v", i, r.Err)
		}
	}
	if r := produce(t, e, "t", 0, valueBatch("x")); !errorsIs(r.Err, ErrBackpressure) {
		t.Fatalf("produce past the cap: %+v, want ErrBackpressure", r)
	}
	if r := produce(t, e, "t", 1, valueBatch("x")); r.Err != nil {
		t.Fatalf("another partition is not held back: %v", r.Err)
	}
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := produce(t, e, "t", 0, valueBatch("x")); r.Err != nil || r.BaseOffset != 4 {
		t.Fatalf("after archival: %+v", r)
	}
	if got := testutil.ToFloat64(e.m.limitHits.WithLabelValues("unarchived_extents")); got != 1 {
		t.Fatalf("limit rejections counted %v, want 1", got)
	}
}

// TestUnarchivedByteCap: past the cap on the bytes not yet archived, all
// partitions together, produce to any partition is refused with a
// retriable error, and resumes once archival has caught up. Before, nothing
// held a producer faster than archival back until the store's disk was
// full.
func TestUnarchivedByteCap(t *testing.T) {
	defer func(d time.Duration) { unarchivedRecount = d }(unarchivedRecount)
	unarchivedRecount = 0 // count on every produce
	b := valueBatch("x")
	v := newEnv(t)
	v.opts.MaxUnarchivedBytes = int64(3 * len(b))
	e := v.open(t)
	mustCreate(t, e, "t", 2, nil)
	for i := range 3 {
		if r := produce(t, e, "t", int32(i%2), b); r.Err != nil {
			t.Fatalf("produce %d: %v", i, r.Err)
		}
	}
	for p := range int32(2) {
		if r := produce(t, e, "t", p, b); !errorsIs(r.Err, ErrBackpressure) {
			t.Fatalf("produce to partition %d past the cap: %+v, want ErrBackpressure", p, r)
		}
	}
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := produce(t, e, "t", 0, b); r.Err != nil || r.BaseOffset != 2 {
		t.Fatalf("after archival: %+v", r)
	}
	if got := testutil.ToFloat64(e.m.limitHits.WithLabelValues("unarchived_bytes")); got != 2 {
		t.Fatalf("limit rejections counted %v, want 2", got)
	}
}

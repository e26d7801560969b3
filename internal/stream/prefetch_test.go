package stream

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// overlapStore counts the reads that reach a store and how many were in
// flight at once. The first read waits, up to a few seconds, for a second
// one to start, so reads made one after another show as such whatever the
// machine's speed.
type overlapStore struct {
	objstore.Store
	reads    atomic.Int64
	inFlight atomic.Int64
	most     atomic.Int64
	second   chan struct{}
	once     sync.Once
	waited   atomic.Bool
}

func (s *overlapStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.reads.Add(1)
	now := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.most.Load(); now > m && !s.most.CompareAndSwap(m, now); m = s.most.Load() {
	}
	if now >= 2 {
		s.once.Do(func() { close(s.second) })
	} else if s.waited.CompareAndSwap(false, true) {
		select {
		case <-s.second:
		case <-time.After(3 * time.Second):
		}
	}
	return s.Store.GetRange(ctx, key, off, n)
}

// TestFetchAfterPrefetchReadsFromMemory: a broker reading what another
// wrote, none of it in its cache, reads the extents a fetch of several
// partitions needs several at a time, and the fetches that follow, one
// partition after another, find every extent in memory. Before, each fetch
// read its extents one after another: a round trip each on a remote store.
func TestFetchAfterPrefetchReadsFromMemory(t *testing.T) {
	const parts, requests = 4, 6
	var st *overlapStore
	_, b, ti, want := otherBroker(t, newEnv(t), parts, requests, func(s objstore.Store) objstore.Store {
		st = &overlapStore{Store: s, second: make(chan struct{})}
		return st
	})

	var ps []FetchPartition
	for p := range int32(parts) {
		ps = append(ps, FetchPartition{TopicID: ti.ID, Partition: p, MaxBytes: 1 << 20})
	}
	b.Prefetch(context.Background(), ps, 50<<20)
	if n := st.reads.Load(); n != parts*requests {
		t.Fatalf("prefetch read %d extents, want the %d the fetches need", n, parts*requests)
	}
	if m := st.most.Load(); m < 2 {
		t.Fatalf("prefetch had at most %d read in flight, want several at once", m)
	}
	for p := range int32(parts) {
		if got := fmt.Sprint(readAll(t, b, ti.ID, p)); got != want[p] {
			t.Fatalf("partition %d: %s, want %s", p, got, want[p])
		}
	}
	if n := st.reads.Load(); n != parts*requests {
		t.Fatalf("fetches after the prefetch read the store %d more times, want none", n-parts*requests)
	}

	// With everything cached there is nothing to read.
	b.Prefetch(context.Background(), ps, 50<<20)
	if n := st.reads.Load(); n != parts*requests {
		t.Fatalf("a prefetch of cached extents read the store %d times", n-parts*requests)
	}
}

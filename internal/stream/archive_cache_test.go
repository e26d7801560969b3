package stream

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// readCounter counts the reads that reach a store.
type readCounter struct {
	objstore.Store
	segments, intake atomic.Int64
}

func (s *readCounter) count(key string) {
	if strings.HasPrefix(key, "topics/") {
		s.segments.Add(1)
	} else {
		s.intake.Add(1)
	}
}

func (s *readCounter) Get(ctx context.Context, key string) ([]byte, error) {
	s.count(key)
	return s.Store.Get(ctx, key)
}

func (s *readCounter) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.count(key)
	return s.Store.GetRange(ctx, key, off, n)
}

// TestRecentArchivesAreReadFromMemory: archival moves the index of data
// flushed moments ago from intake objects to a segment; a consumer reading
// those offsets next must get them from memory, as it did a moment before,
// not from the object store, and the intake objects archived whole leave
// the cache to the segments. Data the cache no longer held when it was
// archived is not put into it.
func TestRecentArchivesAreReadFromMemory(t *testing.T) {
	v := newEnv(t)
	rc := &readCounter{Store: v.store}
	v.store = rc
	e := v.open(t)
	ti := mustCreate(t, e, "t", 2, nil)
	for i := range 6 {
		if r := produce(t, e, "t", int32(i%2), makeBatch(-1, -1, -1, 3, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	want := fmt.Sprint(readAll(t, e, ti.ID, 0), readAll(t, e, ti.ID, 1))
	if n := rc.intake.Load() + rc.segments.Load(); n != 0 {
		t.Fatalf("reading just-flushed data reached the store %d times", n)
	}
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(readAll(t, e, ti.ID, 0), readAll(t, e, ti.ID, 1)); got != want {
		t.Fatalf("after archival: %s, want %s", got, want)
	}
	if n := rc.segments.Load(); n != 0 {
		t.Fatalf("reading just-archived data read segments from the store %d times", n)
	}
	// The intake objects archived whole left the cache to the segments.
	e.cache.mu.Lock()
	for k := range e.cache.items {
		if strings.HasPrefix(k, "intake/") {
			e.cache.mu.Unlock()
			t.Fatalf("archived intake object %s still cached", k)
		}
	}
	e.cache.mu.Unlock()

	// Data no longer cached when it is archived stays out of the cache.
	for i := range 4 {
		if r := produce(t, e, "t", int32(i%2), makeBatch(-1, -1, -1, 3, int64(2000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	e.cache.mu.Lock()
	var keys []string
	for k := range e.cache.items {
		keys = append(keys, k)
	}
	e.cache.mu.Unlock()
	for _, k := range keys {
		e.cache.remove(k)
	}
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.cache.mu.Lock()
	defer e.cache.mu.Unlock()
	for k := range e.cache.items {
		if strings.HasPrefix(k, "topics/") {
			t.Fatalf("segment %s of data archived from the store was cached", k)
		}
	}
}

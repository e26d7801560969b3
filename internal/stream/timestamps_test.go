package stream

import (
	"context"
	"testing"
)

// TestTimeAt checks the index timestamp of an offset: the batch's largest
// timestamp while the batch is an intake extent, the segment chunk's after
// archival, nothing outside the log.
func TestTimeAt(t *testing.T) {
	v := newEnv(t)
	v.opts.ChunkBytes = 1 // one batch per chunk
	e := v.open(t)
	mustCreate(t, e, "t", 1, nil)
	// Batch i holds offsets 2i and 2i+1 with timestamps 1000(i+1) and +1.
	for i := 0; i < 5; i++ {
		produce(t, e, "t", 0, makeBatch(-1, -1, -1, 2, int64(1000*(i+1)), CodecNone))
	}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			off  int64
			want OffsetTime
			ok   bool
		}{
			{0, OffsetTime{MaxTimestamp: 1001, Base: 0, Last: 1}, true},
			{1, OffsetTime{MaxTimestamp: 1001, Base: 0, Last: 1}, true},
			{6, OffsetTime{MaxTimestamp: 4001, Base: 6, Last: 7}, true},
			{9, OffsetTime{MaxTimestamp: 5001, Base: 8, Last: 9}, true},
			{10, OffsetTime{}, false}, // the high watermark
			{-1, OffsetTime{}, false},
		} {
			got, ok := e.TimeAt("t", 0, c.off)
			if ok != c.ok || got != c.want {
				t.Errorf("%s: TimeAt(%d) = %+v, %v; want %+v, %v", when, c.off, got, ok, c.want, c.ok)
			}
		}
		if _, ok := e.TimeAt("nope", 0, 0); ok {
			t.Errorf("%s: unknown topic has a time", when)
		}
	}
	check("intake")
	if err := e.ArchiveAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.mu.RLock()
	p, _ := e.partByName("t", 0)
	left := p.unarchivedExtents()
	e.mu.RUnlock()
	if left != 0 {
		t.Fatalf("%d extents left unarchived", left)
	}
	check("archived")
	if _, err := e.DeleteRecords(context.Background(), "t", 0, 3); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.TimeAt("t", 0, 2); ok {
		t.Error("an offset below the log start has a time")
	}
	if got, ok := e.TimeAt("t", 0, 3); !ok || got.MaxTimestamp != 2001 {
		t.Errorf("TimeAt(3) after DeleteRecords = %+v, %v", got, ok)
	}
}

package stream

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/runnel-dev/runnel/internal/objstore/faultstore"
)

// A failed intake upload or segment write fails only the requests it
// carries: the producer gets a storage error, no offset is assigned, and
// everything already acknowledged stays readable.
func TestStoreFailuresLoseNothing(t *testing.T) {
	v := newEnv(t)
	fs := faultstore.New(v.store)
	v.store = fs
	e := v.open(t)
	ti := mustCreate(t, e, "t", 1, nil)
	if r := produce(t, e, "t", 0, makeBatch(-1, -1, -1, 2, 1000, CodecNone)); r.Err != nil {
		t.Fatal(r.Err)
	}

	for _, c := range []struct {
		name  string
		crash faultstore.Crash
	}{
		{"intake upload fails before writing", faultstore.CrashBeforeWrite},
		{"intake upload fails after writing", faultstore.CrashAfterWrite},
	} {
		t.Run(c.name, func(t *testing.T) {
			remove := fs.Add(faultstore.Rule{Op: faultstore.OpPut, Prefix: "intake/", Times: 1, Err: errors.New("disk gone"), Crash: c.crash})
			defer remove()
			before, _ := e.State("t", 0)
			r := produce(t, e, "t", 0, makeBatch(-1, -1, -1, 3, 2000, CodecNone))
			if !errorsIs(r.Err, ErrStorage) || r.BaseOffset != -1 {
				t.Fatalf("failed upload answered (%d, %v), want ErrStorage and no offset", r.BaseOffset, r.Err)
			}
			if after, _ := e.State("t", 0); after.HighWatermark != before.HighWatermark {
				t.Fatalf("high watermark moved from %d to %d without an acknowledged write", before.HighWatermark, after.HighWatermark)
			}
			// The next write goes through and gets the next offset.
			r = produce(t, e, "t", 0, makeBatch(-1, -1, -1, 1, 3000, CodecNone))
			if r.Err != nil || r.BaseOffset != before.HighWatermark {
				t.Fatalf("produce after the failure: (%d, %v), want offset %d", r.BaseOffset, r.Err, before.HighWatermark)
			}
		})
	}

	t.Run("segment write fails", func(t *testing.T) {
		want := readAll(t, e, ti.ID, 0)
		remove := fs.Add(faultstore.Rule{Op: faultstore.OpPut, Prefix: "topics/", Times: 1, Err: errors.New("disk gone"), Crash: faultstore.CrashAfterWrite})
		err := e.ArchiveAll(context.Background())
		remove()
		if err == nil {
			t.Fatal("archival reported success although its segment write failed")
		}
		if got := readAll(t, e, ti.ID, 0); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after a failed archival: %v, want %v", got, want)
		}
		if err := e.ArchiveAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, e, ti.ID, 0); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after archival: %v, want %v", got, want)
		}
	})
}

// TestArchiveFailureSparesOtherPartitions: one partition whose segment
// cannot be written does not stop the archival of the others; the pass
// reports the failure and counts it.
func TestArchiveFailureSparesOtherPartitions(t *testing.T) {
	v := newEnv(t)
	fs := faultstore.New(v.store)
	v.store = fs
	e := v.open(t)
	ti := mustCreate(t, e, "t", 2, nil)
	for i := range 4 {
		if r := produce(t, e, "t", int32(i%2), makeBatch(-1, -1, -1, 2, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	remove := fs.Add(faultstore.Rule{Op: faultstore.OpPut, Prefix: "topics/" + hex.EncodeToString(ti.ID[:]) + "/0/", Err: errors.New("disk gone")})
	defer remove()
	if err := e.ArchiveAll(context.Background()); err == nil {
		t.Fatal("archival reported success although partition 0 failed")
	}
	e.mu.RLock()
	p1 := e.st.Topics[ti.ID].Parts[1].Extents
	e.mu.RUnlock()
	for _, x := range p1 {
		if !x.Segment {
			t.Fatalf("partition 1 not archived after partition 0 failed: %+v", x)
		}
	}
	if n := testutil.ToFloat64(e.m.archiveFailures); n != 1 {
		t.Fatalf("archive failures counted %v, want 1", n)
	}
}

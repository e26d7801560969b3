package stream

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHealthAges: the age of the oldest unarchived data grows on the log
// clock until archival catches up, and the checkpoint age is known once a
// checkpoint is taken, to its writer and to a broker starting from it.
func TestHealthAges(t *testing.T) {
	v := newEnv(t)
	o := v.opts
	o.ArchiveMinBytes, o.ArchiveMaxAge = 1<<30, time.Hour // nothing is due
	a := v.openWith(t, o)
	ctx := context.Background()
	mustCreate(t, a, "t", 2, nil)
	if got := testutil.ToFloat64(a.m.checkpointAge); got != 0 {
		t.Fatalf("checkpoint age before any checkpoint = %v, want 0", got)
	}
	if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 1, 1000, CodecNone)); r.Err != nil {
		t.Fatal(r.Err)
	}
	time.Sleep(300 * time.Millisecond)
	if r := produce(t, a, "t", 1, makeBatch(-1, -1, -1, 1, 2000, CodecNone)); r.Err != nil { // moves the log clock
		t.Fatal(r.Err)
	}
	if err := a.Archive(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.m.unarchivedAge); got < 0.29 || got > 10 {
		t.Fatalf("oldest unarchived age = %vs, want about 0.3", got)
	}
	if err := a.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Archive(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.m.unarchivedAge); got != 0 {
		t.Fatalf("oldest unarchived age after archiving all = %v, want 0", got)
	}

	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	waitDigestChecks(t, a, 1)
	if got := testutil.ToFloat64(a.m.checkpointAge); got <= 0 || got > 10 {
		t.Fatalf("checkpoint age after a checkpoint = %v", got)
	}
	o.BrokerID = 2
	b := v.openWith(t, o)
	if b.m.checkpointMs.Load() != a.m.checkpointMs.Load() {
		t.Fatalf("a broker started from the checkpoint knows it at %d ms, its writer at %d", b.m.checkpointMs.Load(), a.m.checkpointMs.Load())
	}
}

package stream

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// TestOverlappingCheckpointers: two checkpointers whose state is at one
// revision (the second finishing while the first is between writing its
// object and moving the pointer) leave the pointer naming an object that
// exists, and only that object, and a new broker opens.
func TestOverlappingCheckpointers(t *testing.T) {
	v := newEnv(t)
	var b *Engine
	var once sync.Once
	var errB error
	var overlapped bool
	o := v.opts
	o.ckptHook = func(string) {
		once.Do(func() { _, errB = b.Checkpoint(context.Background()); overlapped = true })
	}
	a := v.openWith(t, o)
	b = v.open(t)
	ti := mustCreate(t, a, "t", 1, nil)
	for i := range 3 {
		if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 2, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if err := b.SyncRead(context.Background()); err != nil {
		t.Fatal(err)
	}
	stateRev := func(e *Engine) int64 { e.mu.RLock(); defer e.mu.RUnlock(); return e.st.Rev }
	if ra, rb := stateRev(a), stateRev(b); ra != rb {
		t.Fatalf("engines at revisions %d and %d, want one", ra, rb)
	}
	if _, err := a.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !overlapped {
		t.Fatal("the second checkpointer never ran inside the first one's window")
	}
	if errB != nil {
		t.Fatal(errB)
	}
	var objs []string
	_ = v.store.List(context.Background(), "checkpoints/", func(o objstore.ObjectInfo) error { objs = append(objs, o.Key); return nil })
	if len(objs) != 1 {
		t.Fatalf("checkpoint objects %q, want the winner's only", objs)
	}
	c := v.open(t)
	if got := readAll(t, c, ti.ID, 0); len(got) != 6 {
		t.Fatalf("new broker reads %d records, want 6", len(got))
	}
}

// revokeMaintainer revokes the lease of the elected maintainer's session.
func revokeMaintainer(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/runnel/maintainer", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("no maintainer election key: %v", err)
	}
	if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
}

// TestMaintainerPassStopsWithItsTerm: a pass in flight when the
// maintainer's session is revoked sees its context end, and no pass of
// that term starts afterwards.
func TestMaintainerPassStopsWithItsTerm(t *testing.T) {
	v := newEnv(t)
	o := v.opts
	o.DisableMaintenance = false
	o.ArchiveInterval = time.Hour
	o.CheckpointInterval = time.Hour
	var mu sync.Mutex
	var first context.Context
	var late []string // passes started on a context already ended
	ended := make(chan bool, 1)
	o.passHook = func(ctx context.Context, pass string) {
		mu.Lock()
		if ctx.Err() != nil {
			late = append(late, pass)
		}
		isFirst := first == nil
		if isFirst {
			first = ctx
		}
		mu.Unlock()
		if !isFirst {
			return
		}
		revokeMaintainer(t, v.cli)
		select {
		case <-ctx.Done():
			ended <- true
		case <-time.After(20 * time.Second):
			ended <- false
		}
	}
	v.openWith(t, o)
	select {
	case ok := <-ended:
		if !ok {
			t.Fatal("the pass's context outlived its maintainer's session")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no maintenance pass ran")
	}
	time.Sleep(1500 * time.Millisecond) // a tick of the old term, if it still ran
	mu.Lock()
	defer mu.Unlock()
	if len(late) > 0 {
		t.Fatalf("passes %q started after the term ended", late)
	}
}

// TestLostMaintainerDeletesNothing: a garbage collection pass whose
// maintainer lost its election just before deleting (its session does not
// know yet) deletes no object.
func TestLostMaintainerDeletesNothing(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	mustCreate(t, a, "t", 1, nil)
	for i := range 3 {
		if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 2, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	ctx := context.Background()
	if err := a.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	// One more entry moves the log clock past the grace period.
	if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 1, 5000, CodecNone)); r.Err != nil {
		t.Fatal(r.Err)
	}
	countIntake := func() int {
		n := 0
		_ = v.store.List(ctx, "intake/", func(objstore.ObjectInfo) error { n++; return nil })
		return n
	}
	before := countIntake()
	o := v.opts
	o.DisableMaintenance = false
	o.ArchiveInterval = time.Hour
	o.CheckpointInterval = time.Hour
	// The gc pass's maintainer loses its election as the pass starts; any
	// pass after it (of this term or the next) means it has finished.
	gcDone := make(chan struct{})
	var once sync.Once
	var gcSeen atomic.Bool
	o.passHook = func(ctx context.Context, pass string) {
		switch {
		case pass == "gc" && !gcSeen.Load():
			revokeMaintainer(t, v.cli)
			gcSeen.Store(true)
		case gcSeen.Load():
			once.Do(func() { close(gcDone) })
		}
	}
	v.openWith(t, o)
	select {
	case <-gcDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the maintainer's passes did not run")
	}
	if after := countIntake(); after != before {
		t.Fatalf("%d of %d intake objects deleted by a maintainer that lost its election", before-after, before)
	}
	if before < 3 {
		t.Fatalf("only %d intake objects to collect; the test proves nothing", before)
	}
	// Control: the same objects are collected by a pass that is entitled.
	if err := a.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if after := countIntake(); after >= before {
		t.Fatalf("an entitled pass collected nothing (%d intake objects): the objects were never due", after)
	}
}

// TestOrphansWaitForReplay: orphan collection on a broker whose replay is
// behind does not delete an object referenced by an entry it has not
// applied yet. Two guards keep it so: the pass catches up with the log
// first, and it judges age on the log clock (TestOrphanAgeOnTheLogClock),
// which a stale broker has not moved past the object; the test fails only
// if both are gone.
func TestOrphansWaitForReplay(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	o := v.opts
	o.BrokerID = 2
	later := func() time.Time { return time.Now().Add(time.Hour) } // every object looks old enough
	o.Now = later
	b := v.openWith(t, o)
	ti := mustCreate(t, a, "t", 1, nil)
	if err := b.SyncRead(context.Background()); err != nil {
		t.Fatal(err)
	}
	// b's replay stalls: its watch cannot apply what arrives.
	b.mu.Lock()
	r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 2, 1000, CodecNone))
	if r.Err != nil {
		b.mu.Unlock()
		t.Fatal(r.Err)
	}
	done := make(chan error, 1)
	go func() { done <- b.CollectOrphans(context.Background()) }()
	time.Sleep(300 * time.Millisecond)
	b.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.mu.RLock()
	obj := a.st.Topics[ti.ID].Parts[0].Extents[0].Obj
	a.mu.RUnlock()
	if _, err := v.store.Get(context.Background(), obj); err != nil {
		t.Fatalf("orphan collection deleted %s, which a log entry references: %v", obj, err)
	}
}

// TestOrphanAgeOnTheLogClock: orphan collection judges an object's age on
// the log clock, as the sequencer does. A maintainer whose clock runs an
// hour ahead does not take a young orphan for old; once the log clock
// has moved past twice the object age limit, the orphan is collected.
func TestOrphanAgeOnTheLogClock(t *testing.T) {
	v := newEnv(t)
	var ahead atomic.Int64 // broker 1's clock offset, ms
	o := v.opts
	o.BrokerID = 1
	o.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load()) * time.Millisecond) }
	a := v.openWith(t, o)
	mustCreate(t, a, "t", 1, nil)
	o = v.opts
	o.BrokerID = 2
	o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	fast := v.openWith(t, o)

	// An intake object whose broker died before logging it.
	orphan := fmt.Sprintf("intake/%08x/%s", 7, ulid.MustNew(ulid.Now(), rand.Reader))
	ctx := context.Background()
	if err := v.store.Put(ctx, orphan, []byte("x")); err != nil {
		t.Fatal(err)
	}
	exists := func() bool {
		_, err := v.store.Get(ctx, orphan)
		return err == nil
	}
	if err := fast.CollectOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if !exists() {
		t.Fatal("a maintainer an hour ahead collected an orphan written just now")
	}
	// Broker 1, alone in the log, moves the clock an hour on.
	ahead.Store(time.Hour.Milliseconds())
	if err := a.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fast.CollectOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if exists() {
		t.Fatal("an orphan an hour old on the log clock was not collected")
	}
}

package objstore

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDirSyncCoalesces: callers arriving while an fsync runs are served by
// one fsync started after it (never by the one that may predate their
// rename), and each gets the error of an fsync that started after it.
func TestDirSyncCoalesces(t *testing.T) {
	d := newDirSync()
	var calls atomic.Int32
	release := make(chan error)
	entered := make(chan int32, 4)
	fsync := func(string) error {
		n := calls.Add(1)
		entered <- n
		return <-release
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	call := func(i int) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = d.sync("dir", fsync) }()
	}
	call(0)
	if n := <-entered; n != 1 {
		t.Fatalf("first fsync is call %d", n)
	}
	// Three callers arrive while the first fsync runs.
	call(1)
	call(2)
	call(3)
	waitFor(t, func() bool { // all three are parked on the condition
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.running && d.started == 1 && d.waiting == 3
	})
	release <- nil // the first fsync succeeds
	if n := <-entered; n != 2 {
		t.Fatalf("second fsync is call %d", n)
	}
	boom := errors.New("boom")
	release <- boom // the shared second fsync fails
	wg.Wait()
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d fsyncs for 4 callers, want 2", got)
	}
	if errs[0] != nil {
		t.Fatalf("first caller: %v", errs[0])
	}
	for i := 1; i < 4; i++ {
		if !errors.Is(errs[i], boom) {
			t.Fatalf("caller %d got %v, want the error of the fsync that covered it", i, errs[i])
		}
	}
	// A later caller is not answered by an old result.
	go func() { <-entered; release <- nil }()
	if err := d.sync("dir", fsync); err != nil || calls.Load() != 3 {
		t.Fatalf("a later caller: %v after %d fsyncs", err, calls.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

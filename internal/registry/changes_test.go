package registry

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestWatchSubjects: once the watch is in place (resync), every write to
// a subject (a registration, a soft and a hard delete) is reported with
// the subject's name, names with "/" and contexts included.
func TestWatchSubjects(t *testing.T) {
	ctx := testCtx(t)
	r := newRegistry(t, startEtcd(t))
	var mu sync.Mutex
	var got []string
	resynced := make(chan struct{}, 1)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.WatchSubjects(wctx, func(s string) {
			mu.Lock()
			got = append(got, s)
			mu.Unlock()
		}, func() { resynced <- struct{}{} })
	}()
	select {
	case <-resynced:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch never started")
	}
	for _, s := range []string{"orders-value", "a/b-value", ":.ctx:orders-key"} {
		if _, err := r.Register(ctx, RegisterRequest{Subject: s, Type: "AVRO", Schema: `{"fields":{"a":"int"}}`}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.DeleteSubject(ctx, "orders-value", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "orders-value", true); err != nil {
		t.Fatal(err)
	}
	want := []string{"orders-value", "a/b-value", ":.ctx:orders-key", "orders-value", "orders-value"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		cur := slices.Clone(got)
		mu.Unlock()
		if slices.Equal(cur, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes %q, want %q", cur, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

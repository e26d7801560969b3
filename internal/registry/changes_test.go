package registry

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWatchSubjects: every write to a subject (a registration, a soft and
// a hard delete) is reported with the subject's name, names with "/" and
// contexts included.
func TestWatchSubjects(t *testing.T) {
	ctx := testCtx(t)
	r := newRegistry(t, startEtcd(t))
	var mu sync.Mutex
	var got []string
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.WatchSubjects(wctx, func(s string) {
			mu.Lock()
			got = append(got, s)
			mu.Unlock()
		}, func() {})
	}()
	// The watch starts asynchronously: write until the first is seen.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		if _, err := r.Register(ctx, RegisterRequest{Subject: fmt.Sprintf("warmup-%d", i), Type: "AVRO", Schema: `{"fields":{"a":"int"}}`}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no change reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, s := range []string{"orders-value", "a/b-value", ":.ctx:orders-key"} {
		if _, err := r.Register(ctx, RegisterRequest{Subject: s, Type: "AVRO", Schema: `{"fields":{"a":"int"}}`}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.DeleteSubject(ctx, "orders-value", false); err != nil {
		t.Fatal(err)
	}
	want := []string{"orders-value", "a/b-value", ":.ctx:orders-key", "orders-value"}
	deadline = time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		cur := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return strings.HasPrefix(s, "warmup-") })
		ok := slices.Equal(cur, want)
		mu.Unlock()
		if ok {
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

package metadata

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// testMirror mirrors "/m/" as "key=value" strings, refusing the value
// "bad", and keeps what each publish saw.
type testMirror struct {
	*Mirror[string]
	logs *syncBuffer

	mu        sync.Mutex
	snap      []string
	publishes int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestMirror(t *testing.T, cli *clientv3.Client) *testMirror {
	t.Helper()
	tm := &testMirror{logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(tm.logs, nil))
	tm.Mirror = NewMirror(MirrorOptions[string]{
		Client: cli,
		Prefix: "/m/",
		What:   "test items",
		Decode: func(key string, value []byte) (string, bool) {
			if string(value) == "bad" {
				log.Warn("ignoring a bad test item", "key", key)
				return "", false
			}
			return key + "=" + string(value), true
		},
		Publish: func(items []string) {
			tm.mu.Lock()
			tm.snap = items
			tm.publishes++
			tm.mu.Unlock()
		},
		Logger: log,
	})
	t.Cleanup(func() { _ = tm.Close() })
	return tm
}

// check compares the last publish with want, in order.
func (tm *testMirror) check(t *testing.T, want ...string) {
	t.Helper()
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if !slices.Equal(tm.snap, want) {
		t.Fatalf("published %v, want %v", tm.snap, want)
	}
}

func (tm *testMirror) publishCount() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.publishes
}

func put(t *testing.T, cli *clientv3.Client, k, v string) int64 {
	t.Helper()
	resp, err := cli.Put(testCtx(t), k, v)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func del(t *testing.T, cli *clientv3.Client, k string) int64 {
	t.Helper()
	resp, err := cli.Delete(testCtx(t), k)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// TestMirrorLoadApplyWait: Start loads what exists (a bad value left out),
// puts and deletes are applied, a write's revision is waited for and the
// publish that follows the wait already shows the write (no polling), and a
// bad put leaves the key's previous item.
func TestMirrorLoadApplyWait(t *testing.T) {
	ctx := testCtx(t)
	cli := start(t, testConfig(t), nil).Client()
	put(t, cli, "/m/a", "1")
	put(t, cli, "/m/b", "2")
	put(t, cli, "/m/bad", "bad")
	last := put(t, cli, "/other/x", "outside")

	tm := newTestMirror(t, cli)
	if err := tm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tm.check(t, "/m/a=1", "/m/b=2")
	if rev := tm.Rev(); rev < last {
		t.Fatalf("Rev after Start = %d, want at least %d", rev, last)
	}
	if !strings.Contains(tm.logs.String(), "ignoring a bad test item") {
		t.Fatalf("the bad value was not logged: %s", tm.logs.String())
	}

	steps := []struct {
		name  string
		write func() int64
		want  []string
	}{
		{"put new", func() int64 { return put(t, cli, "/m/c", "3") }, []string{"/m/a=1", "/m/b=2", "/m/c=3"}},
		{"overwrite", func() int64 { return put(t, cli, "/m/a", "10") }, []string{"/m/a=10", "/m/b=2", "/m/c=3"}},
		{"delete", func() int64 { return del(t, cli, "/m/b") }, []string{"/m/a=10", "/m/c=3"}},
		{"bad new key skipped", func() int64 { return put(t, cli, "/m/d", "bad") }, []string{"/m/a=10", "/m/c=3"}},
		{"bad value keeps the old", func() int64 { return put(t, cli, "/m/c", "bad") }, []string{"/m/a=10", "/m/c=3"}},
		{"outside the prefix", func() int64 { put(t, cli, "/other/y", "1"); return put(t, cli, "/m/e", "5") },
			[]string{"/m/a=10", "/m/c=3", "/m/e=5"}},
		{"key order", func() int64 { return put(t, cli, "/m/0", "0") }, []string{"/m/0=0", "/m/a=10", "/m/c=3", "/m/e=5"}},
	}
	for _, s := range steps {
		rev := s.write()
		if err := tm.WaitRev(ctx, rev); err != nil {
			t.Fatalf("%s: WaitRev(%d): %v", s.name, rev, err)
		}
		tm.check(t, s.want...)
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := tm.WaitRev(short, tm.Rev()+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRev of a future revision = %v, want the context's deadline", err)
	}
}

// TestMirrorReloadsAfterCompaction: a watch that starts from a revision
// etcd has compacted away breaks; the mirror reloads, catches up (a
// deleted key gone, new keys present) and goes on watching.
func TestMirrorReloadsAfterCompaction(t *testing.T) {
	ctx := testCtx(t)
	cli := start(t, testConfig(t), nil).Client()
	put(t, cli, "/m/a", "1")
	tm := newTestMirror(t, cli)
	rev, err := tm.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tm.check(t, "/m/a=1")
	// Changes the watch will never see as events.
	put(t, cli, "/m/b", "2")
	del(t, cli, "/m/a")
	last := put(t, cli, "/m/c", "3")
	if err := Compact(ctx, cli, last); err != nil {
		t.Fatal(err)
	}
	tm.watchFrom(rev)
	if err := tm.WaitRev(ctx, last); err != nil {
		t.Fatalf("WaitRev after compaction: %v", err)
	}
	tm.check(t, "/m/b=2", "/m/c=3")
	if !strings.Contains(tm.logs.String(), "compacted") {
		t.Fatalf("the watch did not break on the compaction: %s", tm.logs.String())
	}
	// The new watch follows on.
	if err := tm.WaitRev(ctx, put(t, cli, "/m/d", "4")); err != nil {
		t.Fatal(err)
	}
	tm.check(t, "/m/b=2", "/m/c=3", "/m/d=4")
}

// TestMirrorClose: Close stops the watch goroutine and waits for it (no
// publish afterwards), WaitRev then fails with ErrMirrorClosed, and closing
// twice or closing a mirror never started is harmless.
func TestMirrorClose(t *testing.T) {
	ctx := testCtx(t)
	cli := start(t, testConfig(t), nil).Client()
	tm := newTestMirror(t, cli)
	if err := tm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A waiter blocked on a revision not yet written is released by Close.
	waited := make(chan error, 1)
	go func() { waited <- tm.WaitRev(ctx, tm.Rev()+1000) }()
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if !errors.Is(err, ErrMirrorClosed) {
			t.Fatalf("a blocked WaitRev after Close = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not release a blocked WaitRev")
	}
	n := tm.publishCount()
	rev := put(t, cli, "/m/late", "1")
	if err := tm.WaitRev(ctx, rev); !errors.Is(err, ErrMirrorClosed) {
		t.Fatalf("WaitRev after Close = %v, want ErrMirrorClosed", err)
	}
	time.Sleep(100 * time.Millisecond) // the put's event would have arrived by now
	if got := tm.publishCount(); got != n {
		t.Fatalf("%d publishes after Close", got-n)
	}
	if err := tm.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := newTestMirror(t, cli).Close(); err != nil {
		t.Fatalf("Close of a mirror never started: %v", err)
	}
}

// TestMirrorWaitRevWithoutEvent: a write that makes no event under the
// prefix (deleting a key that is not there, a put elsewhere) is still
// waited for, through a progress notification, instead of until the
// caller's deadline.
func TestMirrorWaitRevWithoutEvent(t *testing.T) {
	ctx := testCtx(t)
	cli := start(t, testConfig(t), nil).Client()
	tm := newTestMirror(t, cli)
	if err := tm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() int64{
		"delete of nothing": func() int64 { return del(t, cli, "/m/missing") },
		"put elsewhere":     func() int64 { return put(t, cli, "/other/z", "1") },
	} {
		rev := write()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := tm.WaitRev(wctx, rev)
		cancel()
		if err != nil {
			t.Fatalf("%s: WaitRev(%d) = %v, want nil", name, rev, err)
		}
	}
}

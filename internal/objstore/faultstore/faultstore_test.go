package faultstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/objstore/faultstore"
	"github.com/runnel-dev/runnel/internal/objstore/objstoretest"
)

func newStore(t *testing.T) *faultstore.Store {
	t.Helper()
	inner, err := objstore.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	s := faultstore.New(inner)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformanceWithoutRules(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newStore(t) })
}

func TestRules(t *testing.T) {
	boom := errors.New("disk on fire")
	ctx := context.Background()
	tests := []struct {
		name       string
		rule       faultstore.Rule
		key        string
		wantErr    bool
		wantStored bool
	}{
		{"plain error", faultstore.Rule{Op: faultstore.OpPut, Err: boom}, "a", true, false},
		{"crash before write", faultstore.Rule{Op: faultstore.OpPut, Crash: faultstore.CrashBeforeWrite}, "a", true, false},
		{"crash after write", faultstore.Rule{Op: faultstore.OpPut, Crash: faultstore.CrashAfterWrite}, "a", true, true},
		{"other prefix", faultstore.Rule{Op: faultstore.OpPut, Prefix: "intake/", Err: boom}, "topics/x", false, true},
		{"matching prefix", faultstore.Rule{Op: faultstore.OpAny, Prefix: "intake/", Err: boom}, "intake/0/x", true, false},
		{"other op", faultstore.Rule{Op: faultstore.OpGet, Err: boom}, "a", false, true},
		{"latency only", faultstore.Rule{Latency: time.Millisecond}, "a", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			s.Add(tt.rule)
			err := s.Put(ctx, tt.key, []byte("v"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Put = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, faultstore.ErrInjected) {
				t.Fatalf("Put error %v does not wrap ErrInjected", err)
			}
			if tt.rule.Err != nil && err != nil && !errors.Is(err, tt.rule.Err) {
				t.Fatalf("Put error %v does not wrap the rule's error", err)
			}
			_, gerr := s.Inner().Get(ctx, tt.key)
			if stored := gerr == nil; stored != tt.wantStored {
				t.Fatalf("object stored = %v, want %v (%v)", stored, tt.wantStored, gerr)
			}
		})
	}
}

func TestSkipTimesAndRemove(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	remove := s.Add(faultstore.Rule{Op: faultstore.OpGet, Skip: 1, Times: 2, Err: errors.New("flaky")})
	var errs []bool
	for range 5 {
		_, err := s.Get(ctx, "k")
		errs = append(errs, err != nil)
	}
	want := []bool{false, true, true, false, false}
	for i := range want {
		if errs[i] != want[i] {
			t.Fatalf("Get failures = %v, want %v", errs, want)
		}
	}
	if got := s.Calls(faultstore.OpGet); got != 5 {
		t.Fatalf("Calls(get) = %d, want 5", got)
	}
	s.Add(faultstore.Rule{Op: faultstore.OpDelete, Err: errors.New("removed rule")})
	remove()
	s.Add(faultstore.Rule{Op: faultstore.OpAny, Crash: faultstore.CrashBeforeWrite})
	if _, err := s.GetRange(ctx, "k", 0, 1); !errors.Is(err, faultstore.ErrInjected) {
		t.Fatalf("GetRange = %v, want injected", err)
	}
	if err := s.Delete(ctx, "k"); !errors.Is(err, faultstore.ErrInjected) {
		t.Fatalf("Delete = %v, want injected (rule with no error but Crash set fails)", err)
	}
	s.Clear()
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
}

func TestLatencyHonoursContextAndHook(t *testing.T) {
	s := newStore(t)
	s.Add(faultstore.Rule{Op: faultstore.OpList, Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.List(ctx, "", func(objstore.ObjectInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("List = %v, want context.Canceled", err)
	}
	s.Clear()
	release := make(chan struct{})
	entered := make(chan string, 1)
	s.Add(faultstore.Rule{Op: faultstore.OpPut, Times: 1, Hook: func(ctx context.Context, op faultstore.Op, key string) error {
		entered <- key
		<-release
		return nil
	}})
	done := make(chan error, 1)
	go func() { done <- s.Put(context.Background(), "blocked", []byte("v")) }()
	if key := <-entered; key != "blocked" {
		t.Fatalf("hook saw key %q", key)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Put after hook returned nil = %v", err)
	}
}

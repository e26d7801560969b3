package objstore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestFilePutPaced: a paced Put of a large object spreads its steps (it
// cannot finish before its bytes are due; a lower bound, so a slow machine
// cannot fail it), stores the object whole, and a context ending mid-way
// fails the Put and leaves no object.
func TestFilePutPaced(t *testing.T) {
	s, _ := openTestFile(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 4*writeStep/16)
	ctx := WithWritePace(context.Background(), float64(len(data))*4) // due in 250 ms
	start := time.Now()
	if err := s.Put(ctx, "seg/paced", data); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 240*time.Millisecond {
		t.Fatalf("a Put paced to take 250 ms took %v", d)
	}
	if got, err := s.Get(context.Background(), "seg/paced"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("paced object: %d bytes, %v", len(got), err)
	}

	ctx, cancel := context.WithTimeout(WithWritePace(context.Background(), float64(len(data))/10), 100*time.Millisecond)
	defer cancel()
	if err := s.Put(ctx, "seg/cut", data); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a paced Put whose context ended: %v", err)
	}
	if _, err := s.Get(context.Background(), "seg/cut"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed paced Put left an object: %v", err)
	}
	if WritePace(context.Background()) != 0 || WritePace(WithWritePace(context.Background(), -1)) != 0 {
		t.Fatal("no pace or a negative pace is a pace")
	}
}

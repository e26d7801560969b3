package stream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// gatedStore holds intake uploads until open is closed.
type gatedStore struct {
	objstore.Store
	open chan struct{}
}

func (s *gatedStore) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "intake/") {
		<-s.open
	}
	return s.Store.Put(ctx, key, data)
}

// TestEnqueueCopiesTheCallersBytes: once Enqueue returns, the engine no
// longer refers to the caller's batch bytes, so the caller may reuse them
// (the broker reuses a Produce request's frame once it is answered, and it
// may be answered, with a timeout, before its batch is flushed). A batch
// waiting in the intake buffer behind an upload in flight must be stored as
// it was when it was enqueued.
func TestEnqueueCopiesTheCallersBytes(t *testing.T) {
	v := newEnv(t)
	gs := &gatedStore{Store: v.store, open: make(chan struct{})}
	v.store = gs
	o := v.opts
	o.FlushLinger = time.Hour // the second batch waits for the first upload
	e := v.openWith(t, o)
	ti := mustCreate(t, e, "t", 1, nil)
	ctx := context.Background()

	first := e.Enqueue(ctx, []ProduceBatch{{Topic: "t", Records: makeBatch(-1, -1, -1, 2, 1000, CodecNone)}})
	buf := makeBatch(-1, -1, -1, 3, 2000, CodecNone)
	second := e.Enqueue(ctx, []ProduceBatch{{Topic: "t", Records: buf}})
	for i := range buf {
		buf[i] = 0xee // the caller reuses its buffer
	}
	close(gs.open)
	for _, pd := range []*Pending{first, second} {
		for _, r := range pd.Wait(ctx) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	got := readAll(t, e, ti.ID, 0)
	want := map[int64]string{0: "v-1-0", 1: "v-1-1", 2: "v-1-0", 3: "v-1-1", 4: "v-1-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
}

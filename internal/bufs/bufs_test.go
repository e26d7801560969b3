package bufs

import (
	"runtime"
	"testing"
)

// largeResponse is the protocol's threshold for keeping response buffers,
// the classes this test exercises.
const largeResponse = 1 << 20

// TestResponseBuffersSurviveCollection: a large buffer handed back is the
// one the next large request for it gets, even after collections (a
// sync.Pool dropped it at every one); the free list holds at most
// its limit, and only whole size classes above largeResponse.
func TestResponseBuffersSurviveCollection(t *testing.T) {
	f := New(largeResponse<<1, 64<<20, 64<<20)
	b := f.Get(5 << 20)
	if cap(b) != 8<<20 || len(b) != 0 {
		t.Fatalf("a 5 MiB request got len %d cap %d, want an empty 8 MiB buffer", len(b), cap(b))
	}
	f.Put(b)
	runtime.GC()
	runtime.GC()
	if again := f.Get(6 << 20); &again[:1][0] != &b[:1][0] {
		t.Fatal("the buffer handed back was not reused after two collections")
	} else {
		f.Put(again)
	}
	if smaller := f.Get(3 << 20); &smaller[:1][0] != &b[:1][0] {
		t.Fatal("a request of a smaller class got a new buffer although a larger one was kept")
	}

	for _, tc := range []struct{ n, class, size int }{
		{largeResponse, -1, largeResponse},
		{largeResponse + 1, 0, 2 << 20},
		{2 << 20, 0, 2 << 20},
		{2<<20 + 1, 1, 4 << 20},
		{64 << 20, 5, 64 << 20},
		{64<<20 + 1, -1, 64<<20 + 1},
	} {
		if c, size := f.class(tc.n); c != tc.class || size != tc.size {
			t.Errorf("class(%d) = %d, %d; want %d, %d", tc.n, c, size, tc.class, tc.size)
		}
	}

	g := New(largeResponse<<1, 64<<20, 64<<20)
	g.Put(make([]byte, 0, 3<<20)) // not a class size: left to the collector
	g.Put(make([]byte, 0, 512<<10))
	if g.bytes != 0 {
		t.Fatalf("kept %d bytes of buffers that are not whole classes", g.bytes)
	}
	for range 20 {
		g.Put(make([]byte, 0, 16<<20))
	}
	if g.bytes != g.limit {
		t.Fatalf("kept %d bytes, want the cap %d", g.bytes, g.limit)
	}
}

// Package bufs keeps large byte buffers for reuse between the requests
// and flushes that need them, independently of garbage collections.
package bufs

import (
	"math/bits"
	"sync"
)

// Free keeps buffers between uses, by power-of-two size class, within a
// fixed total: the broker's large response buffers and Produce request
// frames (protocol) and the intake's slabs (stream).
//
// It is not a sync.Pool: each collection empties a sync.Pool, and under a
// high fetch or produce rate the heap churns fast enough that most buffers
// missed it. Each miss was a new array of up to several MiB that the
// runtime zeroed, and that the kernel had to fault in page by page after
// the runtime had handed the previous one back to it.
type Free struct {
	mu       sync.Mutex
	minClass int // capacity of the smallest class (a power of two)
	limit    int // capacity held at most
	classes  [][][]byte
	bytes    int // capacity held
}

// New returns a free list of the classes minClass to maxClass (powers of
// two) holding at most limit bytes.
func New(minClass, maxClass, limit int) *Free {
	n := bits.Len(uint(maxClass)) - bits.Len(uint(minClass)) + 1
	return &Free{minClass: minClass, limit: limit, classes: make([][][]byte, n)}
}

// class returns the size class of a buffer of at least n bytes and that
// class's capacity, or -1 if n is not above half the smallest class or is
// above the largest.
func (f *Free) class(n int) (int, int) {
	if n <= f.minClass/2 || n > f.minClass<<(len(f.classes)-1) {
		return -1, n
	}
	c := bits.Len(uint(n-1)) - bits.Len(uint(f.minClass/2))
	return c, f.minClass << c
}

// Get returns an empty buffer of capacity at least n: a kept one of n's
// class or, if it has none, of the next larger class that has one (sizes
// vary from request to request, and a kept buffer too large serves better
// than a new one), else a new one of the class's full capacity so that it
// can be kept.
func (f *Free) Get(n int) []byte {
	c, size := f.class(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	f.mu.Lock()
	for ; c < len(f.classes); c++ {
		if k := len(f.classes[c]); k > 0 {
			b := f.classes[c][k-1]
			f.classes[c][k-1] = nil
			f.classes[c] = f.classes[c][:k-1]
			f.bytes -= cap(b)
			f.mu.Unlock()
			return b
		}
	}
	f.mu.Unlock()
	return make([]byte, 0, size)
}

// Limit is the most capacity f holds between uses.
func (f *Free) Limit() int { return f.limit }

// Put keeps b for a later Get if its capacity is exactly a class's and
// the total allows; otherwise b is left to the collector. The caller must
// not use b afterwards.
func (f *Free) Put(b []byte) {
	c, size := f.class(cap(b))
	if c < 0 || cap(b) != size {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bytes+size > f.limit {
		return
	}
	f.classes[c] = append(f.classes[c], b[:0])
	f.bytes += size
}

package protocol

import (
	"math/bits"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Response buffers. A fetch answer carries many MiB of record batches;
// encoding it into a buffer that starts small grows the buffer by
// doubling, copying everything written so far each time and zeroing each
// new array: at a high fetch rate that was a quarter of the broker's CPU.
// A response with record data is therefore encoded into a buffer sized
// for it up front, and large buffers are kept for the next such response
// rather than given back to the collector.

// largeResponse is the size above which a connection does not keep its
// response buffer (an idle connection must not pin a fetch's buffer) but
// hands it to respBufs.
const largeResponse = 1 << 20

// bufFree keeps buffers between uses, by power-of-two size class, within a
// fixed total: large response buffers (respBufs) and Produce request
// frames (frameBufs, conn.go).
//
// It is not a sync.Pool: each collection empties a sync.Pool, and under a
// high fetch or produce rate the heap churns fast enough that most buffers
// missed it. Each miss was a new array of up to several MiB that the
// runtime zeroed, and that the kernel had to fault in page by page after
// the runtime had handed the previous one back to it.
type bufFree struct {
	mu       sync.Mutex
	minClass int // capacity of the smallest class (a power of two)
	limit    int // capacity held at most
	classes  [][][]byte
	bytes    int // capacity held
}

func newBufFree(minClass, maxClass, limit int) *bufFree {
	n := bits.Len(uint(maxClass)) - bits.Len(uint(minClass)) + 1
	return &bufFree{minClass: minClass, limit: limit, classes: make([][][]byte, n)}
}

// respBufs keeps response buffers above largeResponse, 2 MiB to 64 MiB.
var respBufs = newBufFree(largeResponse<<1, 64<<20, 64<<20)

// class returns the size class of a buffer of at least n bytes and that
// class's capacity, or -1 if n is not above half the smallest class or is
// above the largest.
func (f *bufFree) class(n int) (int, int) {
	if n <= f.minClass/2 || n > f.minClass<<(len(f.classes)-1) {
		return -1, n
	}
	c := bits.Len(uint(n-1)) - bits.Len(uint(f.minClass/2))
	return c, f.minClass << c
}

// get returns an empty buffer of capacity at least n: a kept one of n's
// class or, if it has none, of the next larger class that has one (sizes
// vary from request to request, and a kept buffer too large serves better
// than a new one), else a new one of the class's full capacity so that it
// can be kept.
func (f *bufFree) get(n int) []byte {
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

// put keeps b for a later get if its capacity is exactly a class's and
// the total allows; otherwise b is left to the collector. The caller must
// not use b afterwards.
func (f *bufFree) put(b []byte) {
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

// responseSizeHint is an upper bound of resp's encoded size when it
// carries record data (Fetch, ShareFetch), else 0: the record bytes plus
// a generous allowance for every field around them.
func responseSizeHint(resp kmsg.Response) int {
	const perResponse, perTopic, perPartition, perAborted, perAcquired = 64, 64, 96, 16, 24
	n := 0
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		n = perResponse
		for i := range r.Topics {
			t := &r.Topics[i]
			n += perTopic + len(t.Topic)
			for j := range t.Partitions {
				p := &t.Partitions[j]
				n += perPartition + len(p.RecordBatches) + perAborted*len(p.AbortedTransactions)
			}
		}
		for i := range r.Brokers {
			n += perTopic + len(r.Brokers[i].Host) + len(deref(r.Brokers[i].Rack))
		}
	case *kmsg.ShareFetchResponse:
		n = perResponse + 2*len(deref(r.ErrorMessage))
		for i := range r.Topics {
			t := &r.Topics[i]
			n += perTopic
			for j := range t.Partitions {
				p := &t.Partitions[j]
				n += perPartition + len(p.Records) + perAcquired*len(p.AcquiredRecords) +
					2*len(deref(p.ErrorMessage)) + 2*len(deref(p.AcknowledgeErrorMessage))
			}
		}
		for i := range r.NodeEndpoints {
			n += perTopic + len(r.NodeEndpoints[i].Host) + 2*len(deref(r.NodeEndpoints[i].Rack))
		}
	}
	return n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// responseBuffer returns a buffer of length 0 for a response of about
// hint bytes: buf itself when it is large enough, else a kept or new one
// of at least hint.
func responseBuffer(buf []byte, hint int) []byte {
	if hint <= cap(buf) {
		return buf[:0]
	}
	return respBufs.get(hint)
}

// releaseResponseBuffer hands a large buffer back for the next response.
func releaseResponseBuffer(buf []byte) {
	respBufs.put(buf)
}

package protocol

import (
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

// respBufs holds large response buffers (*[]byte, length 0) between
// responses; the collector may drop them.
var respBufs sync.Pool

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
// hint bytes: buf itself when it is large enough, else a pooled or new
// one of at least hint (a pooled one too small is left to the collector).
func responseBuffer(buf []byte, hint int) []byte {
	if hint <= cap(buf) {
		return buf[:0]
	}
	if b, ok := respBufs.Get().(*[]byte); ok && cap(*b) >= hint {
		return (*b)[:0]
	}
	return make([]byte, 0, hint)
}

// releaseResponseBuffer hands a large buffer to the pool.
func releaseResponseBuffer(buf []byte) {
	buf = buf[:0]
	respBufs.Put(&buf)
}

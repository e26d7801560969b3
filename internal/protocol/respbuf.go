package protocol

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/bufs"
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

// respBufs keeps response buffers above largeResponse, 2 MiB to 64 MiB,
// between responses.
var respBufs = bufs.New(largeResponse<<1, 64<<20, 64<<20)

// PooledBytes is the most memory the protocol's free lists (request frames
// and response buffers) hold between uses: memory the broker keeps by
// design, which the runtime's soft memory limit must leave room for.
func PooledBytes() int64 { return int64(frameBufs.Limit() + respBufs.Limit()) }

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
	return respBufs.Get(hint)
}

// releaseResponseBuffer hands a large buffer back for the next response.
func releaseResponseBuffer(buf []byte) {
	respBufs.Put(buf)
}

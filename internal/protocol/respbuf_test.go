package protocol

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/wire"
)

// TestResponseSizeHintBoundsEncoding: a response with record data is
// encoded into a buffer of its hint without growing it, at the oldest
// and newest versions, with every variable-length field filled.
func TestResponseSizeHintBoundsEncoding(t *testing.T) {
	rack := "eu-west-1a"
	msg := "a long error message that says what went wrong with the acknowledgement of this batch"
	fetch := func(v int16) kmsg.Response {
		r := kmsg.NewPtrFetchResponse()
		r.Version = v
		for ti := range 3 {
			ft := kmsg.NewFetchResponseTopic()
			ft.Topic = "a-topic-with-a-rather-long-name-" + string(rune('a'+ti))
			for p := range 5 {
				fp := kmsg.NewFetchResponseTopicPartition()
				fp.Partition = int32(p)
				fp.RecordBatches = bytes.Repeat([]byte{byte(p)}, 1000*p+7)
				for a := range p {
					at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					at.ProducerID, at.FirstOffset = int64(a), int64(a)*100
					fp.AbortedTransactions = append(fp.AbortedTransactions, at)
				}
				fp.CurrentLeader.LeaderID, fp.CurrentLeader.LeaderEpoch = 3, 9
				ft.Partitions = append(ft.Partitions, fp)
			}
			r.Topics = append(r.Topics, ft)
		}
		b := kmsg.NewFetchResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = 3, "broker-3.runnel.example.internal", 9092, &rack
		r.Brokers = append(r.Brokers, b)
		return r
	}
	share := func(v int16) kmsg.Response {
		r := kmsg.NewPtrShareFetchResponse()
		r.Version, r.ErrorMessage = v, &msg
		for range 2 {
			st := kmsg.NewShareFetchResponseTopic()
			for p := range 4 {
				sp := kmsg.NewShareFetchResponseTopicPartition()
				sp.Partition, sp.ErrorMessage, sp.AcknowledgeErrorMessage = int32(p), &msg, &msg
				sp.Records = bytes.Repeat([]byte{1}, 700*p+3)
				for a := range p + 1 {
					ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
					ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = int64(a), int64(a)+9, 1
					sp.AcquiredRecords = append(sp.AcquiredRecords, ar)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			r.Topics = append(r.Topics, st)
		}
		ne := kmsg.NewShareFetchResponseNodeEndpoint()
		ne.NodeID, ne.Host, ne.Port, ne.Rack = 3, "broker-3.runnel.example.internal", 9092, &rack
		r.NodeEndpoints = append(r.NodeEndpoints, ne)
		return r
	}
	for _, tc := range []struct {
		name string
		resp kmsg.Response
	}{
		{"fetch v4", fetch(4)},
		{"fetch newest", fetch(kmsg.NewPtrFetchResponse().MaxVersion())},
		{"share fetch newest", share(kmsg.NewPtrShareFetchResponse().MaxVersion())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hint := responseSizeHint(tc.resp)
			buf := responseBuffer(nil, hint)
			out := wire.AppendResponse(buf, 7, tc.resp)
			if len(out) > hint || &out[:1][0] != &buf[:1][0] {
				t.Fatalf("encoded %d bytes into a buffer hinted %d: it grew", len(out), hint)
			}
		})
	}
	if responseSizeHint(kmsg.NewPtrMetadataResponse()) != 0 {
		t.Fatal("a response without record data gets no hint")
	}
}

// TestResponseBuffersSurviveCollection: a large response buffer handed
// back is the one the next large response gets, even after collections (a
// sync.Pool dropped it at every one); the free list holds at most
// its limit, and only whole size classes above largeResponse.
func TestResponseBuffersSurviveCollection(t *testing.T) {
	f := newBufFree(largeResponse<<1, 64<<20, 64<<20)
	b := f.get(5 << 20)
	if cap(b) != 8<<20 || len(b) != 0 {
		t.Fatalf("a 5 MiB request got len %d cap %d, want an empty 8 MiB buffer", len(b), cap(b))
	}
	f.put(b)
	runtime.GC()
	runtime.GC()
	if again := f.get(6 << 20); &again[:1][0] != &b[:1][0] {
		t.Fatal("the buffer handed back was not reused after two collections")
	} else {
		f.put(again)
	}
	if smaller := f.get(3 << 20); &smaller[:1][0] != &b[:1][0] {
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

	g := newBufFree(largeResponse<<1, 64<<20, 64<<20)
	g.put(make([]byte, 0, 3<<20)) // not a class size: left to the collector
	g.put(make([]byte, 0, 512<<10))
	if g.bytes != 0 {
		t.Fatalf("kept %d bytes of buffers that are not whole classes", g.bytes)
	}
	for range 20 {
		g.put(make([]byte, 0, 16<<20))
	}
	if g.bytes != g.limit {
		t.Fatalf("kept %d bytes, want the cap %d", g.bytes, g.limit)
	}
}

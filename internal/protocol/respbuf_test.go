package protocol

import (
	"bytes"
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

package protocol

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchPrefetchesItsPartitions: before reading a fetch's partitions one
// after another, the server hands the log every partition it will read, in
// the request's order, with its offset and byte limit and the request's
// limit, so a log on a remote store can read them concurrently.
func TestFetchPrefetchesItsPartitions(t *testing.T) {
	b := startServer(t, nil)
	ti, err := b.log.CreateTopic(context.Background(), "t", 3, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		b.log.Produce(context.Background(), []ProduceBatch{{Topic: "t", Partition: p, Records: oneBatch()}})
	}
	ctx := testCtx(t)
	cl := newClient(t, b.addr)
	f := kmsg.NewPtrFetchRequest()
	f.MaxWaitMillis, f.MaxBytes = 100, 5000
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "t", ti.ID
	for _, p := range []int32{2, 0} {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, 0, 1000+p
		ft.Partitions = append(ft.Partitions, fp)
	}
	f.Topics = append(f.Topics, ft)
	resp, err := f.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.Topics[0].Partitions
	if len(ps) != 2 || ps[0].ErrorCode != 0 || ps[1].ErrorCode != 0 {
		t.Fatalf("partitions answered: %+v", ps)
	}
	b.log.mu.Lock()
	calls := b.log.prefetches
	b.log.mu.Unlock()
	if len(calls) == 0 {
		t.Fatal("the fetch prefetched nothing")
	}
	want := fmt.Sprint([]FetchPartition{
		{TopicID: ti.ID, Partition: 2, MaxBytes: 1002},
		{TopicID: ti.ID, Partition: 0, MaxBytes: 1000},
	})
	if got := fmt.Sprint(calls[0].parts); got != want || calls[0].maxBytes != 5000 {
		t.Fatalf("prefetched %s within %d bytes, want %s within 5000", got, calls[0].maxBytes, want)
	}
}

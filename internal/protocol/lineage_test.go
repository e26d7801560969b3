package protocol

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// recLineage records every observed fact.
type recLineage struct {
	mu     sync.Mutex
	facts  []recFact
	opened int
	closed int
}

type recFact struct {
	c LineageClient
	f LineageFact
}

func (r *recLineage) Connection() LineageConn {
	r.mu.Lock()
	r.opened++
	r.mu.Unlock()
	return recConn{r}
}

type recConn struct{ r *recLineage }

func (c recConn) Observe(cl LineageClient, f LineageFact) {
	c.r.mu.Lock()
	c.r.facts = append(c.r.facts, recFact{cl, f})
	c.r.mu.Unlock()
}

func (c recConn) Close() {
	c.r.mu.Lock()
	c.r.closed++
	c.r.mu.Unlock()
}

// sum returns the facts of kind on topic, summed, and the last one.
func (r *recLineage) sum(kind LineageKind, topic string) (bytes, records int64, n int, last recFact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.facts {
		if f.f.Kind == kind && f.f.Topic == topic {
			bytes += f.f.Bytes
			records += f.f.Records
			n++
			last = f
		}
	}
	return
}

// commitGroups answers every committed partition without error.
type commitGroups struct{ *fakeGroups }

func (g commitGroups) OffsetCommit(_ context.Context, r *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TestLineageObservesProduceFetchAndCommit: a produce, a fetch and an
// offset commit reach the observer with the client's identity, bytes and
// records; the connection's observer is closed with it.
func TestLineageObservesProduceFetchAndCommit(t *testing.T) {
	rec := &recLineage{}
	b := startServer(t, func(o *Options) {
		o.Lineage = rec
		o.Groups = commitGroups{o.Groups.(*fakeGroups)}
	})
	ctx := testCtx(t)
	if _, err := b.log.CreateTopic(ctx, "orders", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, b.addr, kgo.ClientID("orders-app"), kgo.DefaultProduceTopic("orders"))
	const n = 20
	var payload int64
	for i := range n {
		r := &kgo.Record{Value: []byte("order-" + strconv.Itoa(i))}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		payload += int64(len(r.Value))
	}
	bytes, records, _, last := rec.sum(LineageProduce, "orders")
	if records != n || bytes < payload {
		t.Fatalf("produce observed %d records, %d bytes; want %d records, at least %d bytes", records, bytes, n, payload)
	}
	if last.c.ClientID != "orders-app" || last.c.Principal != "User:ANONYMOUS" || last.c.SoftwareName == "" {
		t.Fatalf("producer observed as %+v", last.c)
	}
	if last.f.ProducerID < 0 {
		t.Fatalf("idempotent produce observed without its producer id: %+v", last.f)
	}

	cons := newClient(t, b.addr, kgo.ClientID("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if _, records, _, last := rec.sum(LineageFetch, "orders"); records != n || last.c.ClientID != "billing" {
		t.Fatalf("fetch observed %d records by %+v, want %d by billing", records, last.c, n)
	}

	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = "billing-group", -1, ""
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = n
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(ctx, cons); err != nil {
		t.Fatal(err)
	}
	if _, _, k, last := rec.sum(LineageCommit, "orders"); k != 1 || last.f.Group != "billing-group" || last.c.ClientID != "billing" {
		t.Fatalf("commit observed %d times, last %+v", k, last)
	}

	prod.Close()
	cons.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		opened, closed := rec.opened, rec.closed
		rec.mu.Unlock()
		if opened > 0 && opened == closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections observed, %d closed", opened, closed)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLineageProduceTapAllocatesNothing: observing a produced partition
// costs no allocation in the front end.
func TestLineageProduceTapAllocatesNothing(t *testing.T) {
	batch := make([]byte, batchHeaderLen)
	tap := lineageTap{obs: nopConn{}, client: LineageClient{Principal: "User:a", ClientID: "c"}}
	if n := testing.AllocsPerRun(100, func() { tap.produced("orders", batch, 0) }); n != 0 {
		t.Fatalf("%v allocations per observed partition", n)
	}
}

type nopConn struct{}

func (nopConn) Observe(LineageClient, LineageFact) {}
func (nopConn) Close()                             {}

// TestLineageObservesShareFetch: records a share fetch acquires are a
// fetch of the share group.
func TestLineageObservesShareFetch(t *testing.T) {
	rec := &recLineage{}
	b := startShare(t, func(o *Options) { o.Lineage = rec })
	b.produce(t, 0, 3)
	r := b.conn(t).fetch(sfReq("m1", 0, b.topic.ID, 0))
	wantCode(t, "share fetch", r.ErrorCode, nil)
	if _, records, _, last := rec.sum(LineageFetch, "q"); records != 3 || last.f.Group != "g" || last.c.ClientID != "test" {
		t.Fatalf("share fetch observed %d records, last %+v", records, last)
	}
}

package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// cutEtcd takes etcd out of reach through proxy: down resets every
// connection and refuses new ones; otherwise etcd is partitioned away (no
// reset, no error, it just stops answering).
func cutEtcd(proxy *harness.Proxy, down bool) {
	if down {
		proxy.Cut()
		return
	}
	proxy.Partition()
}

// TestBrokerCutFromEtcd: broker 2 reaches etcd (broker 1's embedded
// member) through a proxy the test cuts. While cut, reads that need fresh
// state on broker 2 are answered with a retriable error (never
// OFFSET_OUT_OF_RANGE, never a hang) and a produce through it fails in
// bounded time; once the lease has expired it refuses service and reports
// not ready, and a consumer reading through it moves to broker 1 without
// losing its position. Restored, it catches up, rejoins the live set and
// serves every record produced meanwhile at the same offsets.
func TestBrokerCutFromEtcd(t *testing.T) {
	for _, down := range []bool{false, true} {
		name := "partitioned"
		if down {
			name = "down"
		}
		t.Run(name, func(t *testing.T) { testBrokerCutFromEtcd(t, down) })
	}
}

func testBrokerCutFromEtcd(t *testing.T, down bool) {
	const lease = 4 * time.Second
	shared := "file://" + t.TempDir()
	cfg1 := testConfig(t, t.TempDir())
	cfg1.BrokerID, cfg1.ObjectStore, cfg1.Etcd.LeaseTTL = 1, shared, lease
	b1 := startBroker(t, &cfg1)
	proxy := harness.StartProxy(t, strings.TrimPrefix(b1.EtcdClientURL(), "http://"))
	cfg2 := testConfig(t, t.TempDir())
	cfg2.BrokerID, cfg2.ObjectStore, cfg2.Etcd.LeaseTTL = 2, shared, lease
	cfg2.Etcd.Endpoints = []string{proxy.Addr()}
	b2 := startBroker(t, &cfg2)
	// A failing test closes its brokers with etcd reachable.
	defer proxy.Restore()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl1, err := kgo.NewClient(kgo.SeedBrokers(b1.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl1.Close()
	// cl2 sends requests to broker 2 only (Broker(2).Request: one try).
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b2.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()

	// A topic with partitions led by each broker.
	const parts = 6
	var topic string
	var topicID [16]byte
	var onB2 []int32
	for i := 0; len(onB2) == 0 || len(onB2) == parts; i++ {
		if i == 5 {
			t.Fatal("no topic with partitions led by both brokers")
		}
		topic = fmt.Sprintf("cut-%d", i)
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, parts, -1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 5000
		resp, err := req.RequestWith(ctx, cl1)
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("create topic: %v %+v", err, resp)
		}
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		mreq.Topics = append(mreq.Topics, mt)
		onB2 = nil
		deadline := time.Now().Add(10 * time.Second)
		for {
			mresp, err := mreq.RequestWith(ctx, cl2)
			if err != nil {
				t.Fatal(err)
			}
			if len(mresp.Brokers) == 2 && len(mresp.Topics) == 1 && mresp.Topics[0].ErrorCode == 0 {
				topicID = mresp.Topics[0].TopicID
				for _, p := range mresp.Topics[0].Partitions {
					if p.Leader == 2 {
						onB2 = append(onB2, p.Partition)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker 2 metadata: %+v", mresp)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("topic %s: partitions %v led by broker 2", topic, onB2)

	// The producer reaches broker 1 whichever broker a partition's leader
	// is (any broker accepts any partition's records): its dialer sends
	// every connection there, so nothing it produces depends on broker 2.
	toB1 := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, b1.KafkaAddr())
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(b1.KafkaAddr()), kgo.Dialer(toB1), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produced := 0
	ends := map[int32]int64{} // as acknowledged by broker 1
	produce := func(perPartition int) {
		t.Helper()
		for i := 0; i < perPartition; i++ {
			for p := int32(0); p < parts; p++ {
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, produced))}
				if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("produce through broker 1: %v", err)
				}
				produced++
				ends[p] = r.Offset + 1
			}
		}
	}

	// The consumer knows both brokers and fetches each partition from its
	// leader; it must read every offset once, in order.
	cons, err := kgo.NewClient(kgo.SeedBrokers(b2.KafkaAddr(), b1.KafkaAddr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond),
		kgo.MetadataMinAge(200*time.Millisecond)) // no periodic refresh: only errors move it
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// The record produced through broker 2 while cut was answered
	// REQUEST_TIMED_OUT, not refused: its entry may still be sequenced
	// once etcd is back, like any timed-out produce. It is not counted.
	const cutValue = "through broker 2 while cut"
	var cmu sync.Mutex
	next := map[int32]int64{}
	var consumeErr error
	consumed := 0
	cctx, ccancel := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			cmu.Lock()
			fs.EachError(func(_ string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Logf("consumer: partition %d: %v", p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next[r.Partition] && consumeErr == nil {
					consumeErr = fmt.Errorf("partition %d: got offset %d, want %d (a reset re-reads or skips)", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition] = r.Offset + 1
				if string(r.Value) != cutValue {
					consumed++
				}
			})
			cmu.Unlock()
		}
	}()
	defer func() { ccancel(); cwg.Wait() }()
	waitConsumed := func(what string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			cmu.Lock()
			n, err := consumed, consumeErr
			cmu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if n == produced {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: consumed %d of %d records", what, n, produced)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	produce(10)
	waitConsumed("before the cut", 15*time.Second)

	cutEtcd(proxy, down)
	cutAt := time.Now()
	produce(5) // through broker 1: broker 2 cannot see these

	// Reads on broker 2 that need fresh state, and a produce through it,
	// all at once: each is answered well within the lease.
	p0 := onB2[0]
	listReq := kmsg.NewPtrListOffsetsRequest()
	{
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p0, -1
		rt.Partitions = append(rt.Partitions, rp)
		listReq.Topics = append(listReq.Topics, rt)
	}
	fetchReq := fetchRequest(topic, topicID, p0, ends[p0]-1) // past broker 2's frozen high watermark
	type answer struct {
		code int16
		err  error
		took time.Duration
	}
	var wg sync.WaitGroup
	var listAns, fetchAns, prodAns answer
	ask := func(a *answer, req kmsg.Request, code func(kmsg.Response) int16) {
		defer wg.Done()
		rctx, cancel := context.WithTimeout(ctx, 2*lease)
		defer cancel()
		start := time.Now()
		resp, err := cl2.Broker(2).Request(rctx, req)
		a.took, a.err = time.Since(start), err
		if err == nil {
			a.code = code(resp)
		}
	}
	wg.Add(3)
	go ask(&listAns, listReq, func(r kmsg.Response) int16 {
		return r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
	})
	go ask(&fetchAns, fetchReq, func(r kmsg.Response) int16 {
		return r.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
	})
	prodReq := kmsg.NewPtrProduceRequest()
	{
		prodReq.Acks, prodReq.TimeoutMillis = -1, 500
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p0, recordBatch(t, [][]byte{[]byte(cutValue)})
		rt.Partitions = append(rt.Partitions, rp)
		prodReq.Topics = append(prodReq.Topics, rt)
	}
	go ask(&prodAns, prodReq, func(r kmsg.Response) int16 {
		return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	})
	wg.Wait()
	for _, a := range []struct {
		name string
		answer
	}{{"list offsets", listAns}, {"fetch past the high watermark", fetchAns}} {
		switch {
		case a.err == nil && a.code == kerr.NotLeaderForPartition.Code:
		case a.err != nil && b2.server.Suspended() && a.took < 2*lease:
			// The lease ran out first on a slow machine: the broker
			// closed the connection, which clients also retry.
			t.Logf("%s: connection closed by the suspended broker after %s", a.name, a.took)
		default:
			t.Fatalf("%s on broker 2 while cut: code %d (%v), err %v after %s; want NOT_LEADER_OR_FOLLOWER",
				a.name, a.code, kerr.ErrorForCode(a.code), a.err, a.took.Round(time.Millisecond))
		}
	}
	// The produce is answered within its timeout with a retriable error:
	// never acknowledged, since it cannot be sequenced.
	if prodAns.err != nil || prodAns.code == 0 || !kerr.IsRetriable(kerr.ErrorForCode(prodAns.code)) || prodAns.took > 2*time.Second {
		t.Fatalf("produce through broker 2 while cut: code %d (%v), err %v after %s; want a retriable error within its 500ms timeout",
			prodAns.code, kerr.ErrorForCode(prodAns.code), prodAns.err, prodAns.took.Round(time.Millisecond))
	}
	t.Logf("answers while cut: list offsets %s, fetch %s, produce %s (%v)", listAns.took.Round(time.Millisecond),
		fetchAns.took.Round(time.Millisecond), prodAns.took.Round(time.Millisecond), kerr.ErrorForCode(prodAns.code))

	// Past the lease: not ready, connections refused, out of the live set.
	waitUntil(t, "broker 2 suspended", 3*lease, func() bool { return b2.server.Suspended() })
	t.Logf("broker 2 suspended %s after the cut", time.Since(cutAt).Round(time.Millisecond))
	if code := readyz(t, b2); code != http.StatusServiceUnavailable {
		t.Fatalf("broker 2 /readyz while cut: %d", code)
	}
	nc, err := net.DialTimeout("tcp", b2.KafkaAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, net.ErrClosed) && !strings.Contains(fmt.Sprint(err), "reset") {
		t.Fatalf("a new connection to broker 2 while cut: %v, want it closed", err)
	}
	nc.Close()
	waitUntil(t, "broker 2 out of broker 1's live set", 3*lease, func() bool { return !live(b1, 2) })

	// The consumer moves to broker 1 and reads what is produced now.
	produce(5)
	waitConsumed("while broker 2 is cut", 20*time.Second)

	// Restored: broker 2 catches up, rejoins and serves every record.
	proxy.Restore()
	restoredAt := time.Now()
	waitUntil(t, "broker 2 ready again", 6*lease, func() bool { return readyz(t, b2) == http.StatusOK })
	t.Logf("broker 2 ready %s after the proxy was restored", time.Since(restoredAt).Round(time.Millisecond))
	waitUntil(t, "broker 2 back in broker 1's live set", 3*lease, func() bool { return live(b1, 2) })
	for p := int32(0); p < parts; p++ {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := cl2.Broker(2).RetriableRequest(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		// The record produced through broker 2 while cut may have been
		// sequenced after the cut (cutValue).
		if got.ErrorCode != 0 || (got.Offset != ends[p] && !(p == p0 && got.Offset == ends[p]+1)) {
			t.Fatalf("partition %d end offset on broker 2: %d (error %d), want %d", p, got.Offset, got.ErrorCode, ends[p])
		}
		fresp, err := cl2.Broker(2).RetriableRequest(ctx, fetchRequest(topic, topicID, p, ends[p]-1))
		if err != nil {
			t.Fatal(err)
		}
		fp := fresp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if fp.ErrorCode != 0 || len(fp.RecordBatches) == 0 {
			t.Fatalf("partition %d: fetch of a record produced through broker 1 while cut: error %d, %d bytes", p, fp.ErrorCode, len(fp.RecordBatches))
		}
	}
	produce(5)
	waitConsumed("after the restore", 20*time.Second)
}

// fetchRequest is a sessionless fetch of one partition from offset.
func fetchRequest(topic string, id [16]byte, partition int32, offset int64) *kmsg.FetchRequest {
	f := kmsg.NewPtrFetchRequest()
	f.MaxWaitMillis, f.MaxBytes = 100, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = partition, offset, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	return f
}

func readyz(t *testing.T, b *Broker) int {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + b.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func live(b *Broker, id int32) bool {
	for _, x := range b.cluster.Brokers() {
		if x.NodeID == id {
			return true
		}
	}
	return false
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrokerClosesWhileCutFromEtcd: a broker that cannot reach etcd still
// shuts down in bounded time (its maintainer campaign, which resigns on
// etcd's answer when cancelled, must not hold Close).
func TestBrokerClosesWhileCutFromEtcd(t *testing.T) {
	const lease = 4 * time.Second
	shared := "file://" + t.TempDir()
	cfg1 := testConfig(t, t.TempDir())
	cfg1.BrokerID, cfg1.ObjectStore, cfg1.Etcd.LeaseTTL = 1, shared, lease
	b1 := startBroker(t, &cfg1) // the maintainer: it campaigned first
	proxy := harness.StartProxy(t, strings.TrimPrefix(b1.EtcdClientURL(), "http://"))
	cfg2 := testConfig(t, t.TempDir())
	cfg2.BrokerID, cfg2.ObjectStore, cfg2.Etcd.LeaseTTL = 2, shared, lease
	cfg2.Etcd.Endpoints = []string{proxy.Addr()}
	b2 := startBroker(t, &cfg2) // waits in the maintainer campaign
	defer proxy.Restore()       // a failing test still lets b2's Close end

	cutEtcd(proxy, false)
	closed := make(chan struct{})
	start := time.Now()
	go func() { b2.Close(); close(closed) }()
	select {
	case <-closed:
		t.Logf("closed in %v with etcd out of reach", time.Since(start).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("Close has not returned 20 s after etcd went out of reach")
	}
}

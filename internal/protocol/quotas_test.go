package protocol

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
)

// startQuotaServer starts a server enforcing quotas stored in a fresh
// embedded etcd, with Kafka's rate model configured by window and samples.
func startQuotaServer(t *testing.T, window time.Duration, samples int) (*testBroker, *auth.Quotas) {
	t.Helper()
	e := clustertest.Start(t)
	q := auth.NewQuotas(auth.QuotaOptions{Client: e.Client(), BrokerID: 1, Window: window, Samples: samples})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return startServer(t, func(o *Options) { o.Quotas = q }), q
}

func entity(kv ...string) kadm.ClientQuotaEntity {
	var e kadm.ClientQuotaEntity
	for i := 0; i+1 < len(kv); i += 2 {
		c := kadm.ClientQuotaEntityComponent{Type: kv[i]}
		if kv[i+1] != "<default>" {
			c.Name = strp(kv[i+1])
		}
		e = append(e, c)
	}
	return e
}

// setQuota sets one quota through AlterClientQuotas and waits until the
// broker enforces it (the watch delivers it within a second).
func setQuota(t *testing.T, adm *kadm.Client, q *auth.Quotas, key string, value float64, kv ...string) {
	t.Helper()
	res, err := adm.AlterClientQuotas(testCtx(t), []kadm.AlterClientQuotaEntry{{Entity: entity(kv...), Ops: []kadm.AlterClientQuotaOp{{Key: key, Value: value}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, res)
	}
	time.Sleep(200 * time.Millisecond)
}

func TestClientQuotasAdmin(t *testing.T) {
	b, _ := startQuotaServer(t, time.Second, 11)
	adm := kadm.NewClient(newClient(t, b.addr))
	ctx := testCtx(t)

	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: entity("user", "alice"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1048576}, {Key: "request_percentage", Value: 25.5}}},
		{Entity: entity("user", "alice", "client-id", "app"), Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 2048}}},
		{Entity: entity("user", "<default>"), Ops: []kadm.AlterClientQuotaOp{{Key: "controller_mutation_rate", Value: 2}}},
		{Entity: entity("client-id", "<default>"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 4096}}},
		{Entity: entity("user", "bob"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: -5}}},
		{Entity: entity("user", "bobby"), Ops: []kadm.AlterClientQuotaOp{{Key: "bytes_per_fortnight", Value: 5}}},
		{Entity: entity("user", "bob"), Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 5}}},
		{Entity: entity("user", "carol", "ip", "10.0.0.1"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 5}}},
		{Entity: entity(), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 5}}},
		{Entity: entity("user", "dave"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1.5}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		wantErr := i >= 4
		if wantErr != (r.Err != nil) || (wantErr && !errors.Is(r.Err, kerr.InvalidRequest)) {
			t.Errorf("entry %d (%v): err = %v %q, want INVALID_REQUEST: %v", i, r.Entity, r.Err, r.ErrMessage, wantErr)
		}
	}
	for i, want := range map[int]string{
		4: "Quota producer_byte_rate must be greater than 0",
		5: "Invalid configuration key bytes_per_fortnight",
		6: "Ignoring duplicate entity user=bob",
		8: "Invalid empty client quota entity",
		9: "producer_byte_rate cannot be a fractional value.",
	} {
		if res[i].ErrMessage != want {
			t.Errorf("entry %d: message %q, want %q", i, res[i].ErrMessage, want)
		}
	}

	describe := func(strict bool, comps ...kadm.DescribeClientQuotaComponent) []string {
		t.Helper()
		qs, err := adm.DescribeClientQuotas(ctx, strict, comps)
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		var out []string
		for _, q := range qs {
			s := q.Entity.String()
			for _, v := range q.Values {
				s += " " + v.String()
			}
			out = append(out, s)
		}
		return out
	}
	same := func(got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
	same(describe(false),
		"{client-id=<default>} producer_byte_rate=4096.000000",
		"{user=<default>} controller_mutation_rate=2.000000",
		"{user=alice} producer_byte_rate=1048576.000000 request_percentage=25.500000",
		"{user=alice, client-id=app} consumer_byte_rate=2048.000000",
	)
	same(describe(true, kadm.DescribeClientQuotaComponent{Type: "user", MatchName: strp("alice"), MatchType: 0}),
		"{user=alice} producer_byte_rate=1048576.000000 request_percentage=25.500000")
	same(describe(false, kadm.DescribeClientQuotaComponent{Type: "user", MatchType: 1}),
		"{user=<default>} controller_mutation_rate=2.000000")
	same(describe(false, kadm.DescribeClientQuotaComponent{Type: "client-id", MatchType: 2}),
		"{client-id=<default>} producer_byte_rate=4096.000000",
		"{user=alice, client-id=app} consumer_byte_rate=2048.000000")

	for _, c := range []struct {
		comps []kadm.DescribeClientQuotaComponent
		want  *kerr.Error
	}{
		{[]kadm.DescribeClientQuotaComponent{{Type: "group", MatchType: 2}}, kerr.UnsupportedVersion},
		{[]kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 2}, {Type: "user", MatchType: 1}}, kerr.InvalidRequest},
		{[]kadm.DescribeClientQuotaComponent{{Type: "ip", MatchType: 2}, {Type: "user", MatchType: 1}}, kerr.InvalidRequest},
		{[]kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 9}}, kerr.InvalidRequest},
	} {
		if _, err := adm.DescribeClientQuotas(ctx, false, c.comps); !errors.Is(err, c.want) {
			t.Errorf("describe %+v: err = %v, want %v", c.comps, err, c.want)
		}
	}

	// validate_only checks and writes nothing; removal deletes.
	v, err := adm.ValidateAlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: entity("user", "erin"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10}}},
		{Entity: entity("user", "erin", "client-id", "x"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 0}}},
	})
	if err != nil || v[0].Err != nil || !errors.Is(v[1].Err, kerr.InvalidRequest) {
		t.Fatalf("validate-only: %v %+v", err, v)
	}
	res, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: entity("user", "alice"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}, {Key: "request_percentage", Remove: true}}},
		{Entity: entity("client-id", "<default>"), Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Remove: true}}},
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("remove: %v %+v", err, res)
	}
	same(describe(false, kadm.DescribeClientQuotaComponent{Type: "user", MatchType: 2}),
		"{user=<default>} controller_mutation_rate=2.000000",
		"{user=alice, client-id=app} consumer_byte_rate=2048.000000")
}

// TestProducerHeldToByteRate: a franz-go producer limited to 1 MiB/s
// produces incompressible values as fast as it can for seven seconds; the
// rate the broker acknowledges after the first second is within 40% of
// 1 MiB/s and the client saw throttle_time_ms. Three 1 s samples keep
// Kafka's start-up allowance (quota × (samples-1) windows) short enough to
// measure the steady rate in a short test.
func TestProducerHeldToByteRate(t *testing.T) {
	b, q := startQuotaServer(t, time.Second, 3)
	adm := kadm.NewClient(newClient(t, b.addr))
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "limited"); err != nil {
		t.Fatal(err)
	}
	const quota = 1 << 20
	setQuota(t, adm, q, "producer_byte_rate", quota, "client-id", "limited-producer")

	var throttles atomic.Int64
	cl := newClient(t, b.addr,
		kgo.ClientID("limited-producer"),
		kgo.DefaultProduceTopic("limited"),
		kgo.ProducerBatchMaxBytes(64<<10),
		kgo.MaxBufferedBytes(2<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.WithHooks(throttleHook{&throttles}),
	)
	const run = 7 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var acked atomic.Int64
	var mu sync.Mutex
	var atOne int64 = -1
	start := time.Now()
	var wg sync.WaitGroup
	for ctx.Err() == nil {
		v := make([]byte, 16<<10)
		_, _ = rand.Read(v)
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				return
			}
			n := acked.Add(int64(len(r.Value)))
			mu.Lock()
			if atOne < 0 && time.Since(start) >= time.Second {
				atOne = n - int64(len(r.Value))
			}
			mu.Unlock()
		})
	}
	elapsed := time.Since(start)
	total := acked.Load()
	wg.Wait()
	mu.Lock()
	first := atOne
	mu.Unlock()
	if first < 0 {
		t.Fatalf("nothing acknowledged after the first second (total %d bytes)", total)
	}
	rate := float64(total-first) / (elapsed - time.Second).Seconds()
	t.Logf("acknowledged %d bytes in %v (%d in the first second): %.0f B/s after it; %d throttled responses",
		total, elapsed.Round(time.Millisecond), first, rate, throttles.Load())
	if rate < 0.6*quota || rate > 1.4*quota {
		t.Errorf("rate after the first second = %.0f B/s, want within 40%% of %d", rate, quota)
	}
	if throttles.Load() == 0 {
		t.Error("the client never saw throttle_time_ms")
	}
}

type throttleHook struct{ n *atomic.Int64 }

func (h throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

var _ kgo.HookBrokerThrottle = throttleHook{}

// TestThrottledConnectionIsMuted: a client that ignores throttle_time_ms
// still waits: its next request is not read before the throttle ends,
// while another connection is served at once. The permissive CreateTopics
// v5 earns the throttle (controller_mutation_rate); v7 refuses topics met
// once the bucket is below zero.
func TestThrottledConnectionIsMuted(t *testing.T) {
	b, q := startQuotaServer(t, time.Second, 11)
	adm := kadm.NewClient(newClient(t, b.addr))
	// rawConn sends client id "test". Burst: 10/s × 11 s = 110 partitions.
	setQuota(t, adm, q, "controller_mutation_rate", 10, "client-id", "test")

	rc := dialRaw(t, b.addr)
	type topic struct {
		name       string
		partitions int32
	}
	create := func(v int16, topics ...topic) *kmsg.CreateTopicsResponse {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(v)
		req.TimeoutMillis = 5000
		for _, tp := range topics {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tp.name, tp.partitions, 1
			req.Topics = append(req.Topics, rt)
		}
		rc.sendReq(req, 1)
		_, body, err := rc.recv()
		if err != nil {
			t.Fatal(err)
		}
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		if err := resp.ReadFrom(body[boolToInt(req.IsFlexible()):]); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// 120 partitions leave the bucket at -10: one second at 10/s.
	resp := create(5, topic{"big", 120})
	if resp.Topics[0].ErrorCode != 0 || resp.ThrottleMillis < 900 || resp.ThrottleMillis > 1100 {
		t.Fatalf("create: code %d, throttle %d ms, want 0 and ~1000 ms", resp.Topics[0].ErrorCode, resp.ThrottleMillis)
	}
	sent := time.Now()
	rc.sendReq(metadataReq(1), 2)

	// Another connection is not held up meanwhile.
	other := dialRaw(t, b.addr)
	otherSent := time.Now()
	other.sendReq(metadataReq(1), 3)
	if _, _, err := other.recv(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(otherSent); d > 500*time.Millisecond {
		t.Fatalf("another connection waited %v", d)
	}
	if _, _, err := rc.recv(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(sent); d < 800*time.Millisecond {
		t.Fatalf("the throttled connection was answered after %v, want about a second", d)
	}

	// Strict (v7): the bucket is back above zero (a second and more at
	// 10/s after -10): "a" is created and takes it to about -19, so "c",
	// met next in the same request, is refused and not created.
	time.Sleep(300 * time.Millisecond)
	resp = create(7, topic{"a", 20}, topic{"c", 1})
	if len(resp.Topics) != 2 || resp.Topics[0].Topic != "a" || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("a: %+v", resp.Topics)
	}
	if resp.Topics[1].Topic != "c" || resp.Topics[1].ErrorCode != kerr.ThrottlingQuotaExceeded.Code || resp.ThrottleMillis < 1500 {
		t.Fatalf("c: %+v, throttle %d ms, want THROTTLING_QUOTA_EXCEEDED and ~1900 ms", resp.Topics[1], resp.ThrottleMillis)
	}
	if _, ok := b.log.Topic("c"); ok {
		t.Fatal("a refused topic was created")
	}
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// measureRate runs produce or consume steps until run ends and returns the
// bytes per second after the first second. step returns the bytes it moved.
func measureRate(run time.Duration, step func(ctx context.Context) int64) (rate float64, first, total int64) {
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	first = -1
	for ctx.Err() == nil {
		n := step(ctx)
		if first < 0 && time.Since(start) >= time.Second {
			first = total
		}
		total += n
	}
	elapsed := time.Since(start)
	if first < 0 {
		return 0, 0, total
	}
	return float64(total-first) / (elapsed - time.Second).Seconds(), first, total
}

// TestConsumerHeldToByteRate: a consumer limited to 1 MiB/s reads a
// backlog of incompressible records as fast as it can for six seconds; the
// rate after the first second is within 40% of 1 MiB/s.
func TestConsumerHeldToByteRate(t *testing.T) {
	b, q := startQuotaServer(t, time.Second, 3)
	adm := kadm.NewClient(newClient(t, b.addr))
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "backlog"); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, b.addr, kgo.DefaultProduceTopic("backlog"), kgo.ProducerBatchMaxBytes(64<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	var recs []*kgo.Record
	for i := 0; i < 14<<6; i++ { // 14 MiB in 16 KiB values
		v := make([]byte, 16<<10)
		_, _ = rand.Read(v)
		recs = append(recs, &kgo.Record{Value: v})
	}
	if err := prod.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const quota = 1 << 20
	setQuota(t, adm, q, "consumer_byte_rate", quota, "client-id", "limited-consumer")

	var throttles atomic.Int64
	cons := newClient(t, b.addr, kgo.ClientID("limited-consumer"), kgo.ConsumeTopics("backlog"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(128<<10),
		kgo.WithHooks(throttleHook{&throttles}))
	rate, first, total := measureRate(8*time.Second, func(ctx context.Context) int64 {
		var n int64
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { n += int64(len(r.Value)) })
		return n
	})
	t.Logf("consumed %d bytes (%d in the first second): %.0f B/s after it; %d throttled responses", total, first, rate, throttles.Load())
	if total >= 14<<20 {
		t.Fatal("the consumer read the whole backlog: nothing held it back")
	}
	if rate < 0.6*quota || rate > 1.4*quota {
		t.Errorf("rate after the first second = %.0f B/s, want within 40%% of %d", rate, quota)
	}
	if throttles.Load() == 0 {
		t.Error("the client never saw throttle_time_ms")
	}
}

// TestProducerHeldToByteRateAcrossBrokers: one client id produces through
// two brokers at once, each as fast as it can; the quota is the cluster's,
// so the two together are held to about 1 MiB/s (each alone would get
// 1 MiB/s if each broker counted only its own traffic).
func TestProducerHeldToByteRateAcrossBrokers(t *testing.T) {
	e := clustertest.Start(t)
	var addrs []string
	var qs []*auth.Quotas
	for id := int32(1); id <= 2; id++ {
		q := auth.NewQuotas(auth.QuotaOptions{Client: e.Client(), BrokerID: id, Window: time.Second, Samples: 3})
		if err := q.Start(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		b := startServer(t, func(o *Options) { o.Quotas = q })
		adm := kadm.NewClient(newClient(t, b.addr))
		if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "shared"); err != nil {
			t.Fatal(err)
		}
		addrs, qs = append(addrs, b.addr), append(qs, q)
	}
	const quota = 1 << 20
	setQuota(t, kadm.NewClient(newClient(t, addrs[0])), qs[0], "producer_byte_rate", quota, "client-id", "spread-producer")

	var rates [2]float64
	var wg sync.WaitGroup
	for i, addr := range addrs {
		cl := newClient(t, addr, kgo.ClientID("spread-producer"), kgo.DefaultProduceTopic("shared"),
			kgo.ProducerBatchMaxBytes(64<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			rates[i], _, _ = measureRate(7*time.Second, func(ctx context.Context) int64 {
				v := make([]byte, 16<<10)
				_, _ = rand.Read(v)
				recs := []*kgo.Record{{Value: v}, {Value: v}, {Value: v}, {Value: v}}
				if cl.ProduceSync(ctx, recs...).FirstErr() != nil {
					return 0
				}
				return int64(4 * len(v))
			})
		}()
	}
	wg.Wait()
	sum := rates[0] + rates[1]
	t.Logf("rates after the first second: %.0f + %.0f = %.0f B/s", rates[0], rates[1], sum)
	if sum < 0.6*quota || sum > 1.4*quota {
		t.Errorf("combined rate = %.0f B/s, want within 40%% of %d", sum, quota)
	}
}

// TestRequestPercentage: handler time counts against request_percentage
// (percent of one thread): two 60 ms requests are 12 percent-seconds, over
// the 10 s window 1.2% against a quota of 1%, so the second is throttled,
// capped at one window as Kafka caps request quota throttles.
func TestRequestPercentage(t *testing.T) {
	b, q := startQuotaServer(t, time.Second, 11)
	setQuota(t, kadm.NewClient(newClient(t, b.addr)), q, "request_percentage", 1, "client-id", "test")
	b.log.syncRead = func(ctx context.Context) error {
		time.Sleep(60 * time.Millisecond)
		return nil
	}
	rc := dialRaw(t, b.addr)
	listOffsets := func(corr int32) int32 {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(4)
		rc.sendReq(req, corr)
		_, body, err := rc.recv()
		if err != nil {
			t.Fatal(err)
		}
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		return resp.ThrottleMillis
	}
	if ms := listOffsets(1); ms != 0 {
		t.Fatalf("first request throttled %d ms, want 0", ms)
	}
	if ms := listOffsets(2); ms != 1000 {
		t.Fatalf("second request throttled %d ms, want 1000 (capped at one window)", ms)
	}
}

// TestRefusedProduceCounts: a produce's size counts against
// producer_byte_rate whatever its outcome (here an unknown topic), as
// Kafka counts it, and a byte-rate throttle is not capped.
func TestRefusedProduceCounts(t *testing.T) {
	b, q := startQuotaServer(t, time.Second, 11)
	setQuota(t, kadm.NewClient(newClient(t, b.addr)), q, "producer_byte_rate", 1000, "client-id", "test")
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(8)
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "no-such-topic"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = make([]byte, 150<<10)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rc := dialRaw(t, b.addr)
	rc.sendReq(req, 1)
	_, body, err := rc.recv()
	if err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	// ~154 kB over the padded 10 s window: 15.4 kB/s against 1 kB/s, a
	// throttle of about 144 s, reported whole as Kafka reports it (the
	// connection's mute is bounded apart).
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code || resp.ThrottleMillis < 140000 || resp.ThrottleMillis > 150000 {
		t.Fatalf("code %d, throttle %d ms; want UNKNOWN_TOPIC_OR_PARTITION and about 144 s", code, resp.ThrottleMillis)
	}
}

// TestUserQuotaFollowsThePrincipal: a user quota applies to the principal a
// SASL client authenticated as, whatever its client id, and not to another
// user on the same listener.
func TestUserQuotaFollowsThePrincipal(t *testing.T) {
	e := clustertest.Start(t)
	q := auth.NewQuotas(auth.QuotaOptions{Client: e.Client(), BrokerID: 1})
	if err := q.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	f := &fakeSASL{users: map[string]string{"alice": "a-secret", "bob": "b-secret"}}
	b := startServerOn(t, func(o *Options) { o.SASL, o.Quotas = f, q }, Listener{Name: "SASL", SASL: true})
	login := func(user, pass string, opts ...kgo.Opt) *kgo.Client {
		return newClient(t, b.addr, append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))...)
	}
	adm := kadm.NewClient(login("alice", "a-secret"))
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	// 600 kB over the padded 10 s window is 60 kB/s against 50 kB/s: a
	// throttle of about two seconds.
	setQuota(t, adm, q, "producer_byte_rate", 50000, "user", "alice")
	value := make([]byte, 600<<10)
	for _, c := range []struct {
		user, pass string
		throttled  bool
	}{{"alice", "a-secret", true}, {"bob", "b-secret", false}} {
		var throttles atomic.Int64
		cl := login(c.user, c.pass, kgo.ClientID("any-"+c.user), kgo.DefaultProduceTopic("t"),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.WithHooks(throttleHook{&throttles}))
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if got := throttles.Load() > 0; got != c.throttled {
			t.Errorf("%s: throttled %v, want %v", c.user, got, c.throttled)
		}
	}
}

// TestMutationQuotaOnDeleteAndCreatePartitions: DeleteTopics v5+ and
// CreatePartitions v3+ are strict too: with 1 partition/s (a burst of 11),
// two 10-partition mutations go through and the third, met below zero, is
// refused and not applied.
func TestMutationQuotaOnDeleteAndCreatePartitions(t *testing.T) {
	b, q := startQuotaServer(t, time.Second, 11)
	adm := kadm.NewClient(newClient(t, b.addr))
	ctx := testCtx(t)
	for _, name := range []string{"d1", "d2", "d3"} {
		if _, err := adm.CreateTopic(ctx, 10, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"g1", "g2", "g3"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	setQuota(t, adm, q, "controller_mutation_rate", 1, "client-id", "deleter")
	setQuota(t, adm, q, "controller_mutation_rate", 1, "client-id", "grower")

	del := kadm.NewClient(newClient(t, b.addr, kgo.ClientID("deleter")))
	dr, err := del.DeleteTopics(ctx, "d1", "d2", "d3")
	if err != nil {
		t.Fatal(err)
	}
	if dr["d1"].Err != nil || dr["d2"].Err != nil || !errors.Is(dr["d3"].Err, kerr.ThrottlingQuotaExceeded) {
		t.Fatalf("delete: d1 %v, d2 %v, d3 %v; want the third THROTTLING_QUOTA_EXCEEDED", dr["d1"].Err, dr["d2"].Err, dr["d3"].Err)
	}
	if _, ok := b.log.Topic("d3"); !ok {
		t.Fatal("a refused deletion deleted the topic")
	}

	grow := kadm.NewClient(newClient(t, b.addr, kgo.ClientID("grower")))
	gr, err := grow.CreatePartitions(ctx, 10, "g1", "g2", "g3")
	if err != nil {
		t.Fatal(err)
	}
	if gr["g1"].Err != nil || gr["g2"].Err != nil || !errors.Is(gr["g3"].Err, kerr.ThrottlingQuotaExceeded) {
		t.Fatalf("create partitions: g1 %v, g2 %v, g3 %v; want the third THROTTLING_QUOTA_EXCEEDED", gr["g1"].Err, gr["g2"].Err, gr["g3"].Err)
	}
	if ti, _ := b.log.Topic("g3"); ti.Partitions != 1 {
		t.Fatalf("a refused topic grew to %d partitions", ti.Partitions)
	}
}

// TestFetchBoundedByQuotaWindow: a fetch returns at most what the client's
// consumer_byte_rate allows in one window, quota × (samples-1) × window
// (Kafka's bound), however large its MaxBytes.
func TestFetchBoundedByQuotaWindow(t *testing.T) {
	b, q := startQuotaServer(t, time.Second, 11)
	adm := kadm.NewClient(newClient(t, b.addr))
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "small"); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, b.addr, kgo.DefaultProduceTopic("small"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < 20; i++ { // 20 batches of about 2 kB
		if err := prod.ProduceSync(testCtx(t), &kgo.Record{Value: make([]byte, 2000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	setQuota(t, adm, q, "consumer_byte_rate", 1000, "client-id", "test") // 10 kB per window
	ti, _ := b.log.Topic("small")
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 0, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = ti.Name
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.LogStartOffset = 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rc := dialRaw(t, b.addr)
	rc.sendReq(req, 1)
	_, body, err := rc.recv()
	if err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if n := fetchBytes(resp); n == 0 || n > 10000 {
		t.Fatalf("fetched %d bytes, want some and at most 10000", n)
	}
}

// TestClientQuotasAuthorization: describing quotas needs DESCRIBE_CONFIGS
// on the cluster and altering them ALTER_CONFIGS, as in Kafka.
func TestClientQuotasAuthorization(t *testing.T) {
	e := clustertest.Start(t)
	q := auth.NewQuotas(auth.QuotaOptions{Client: e.Client(), BrokerID: 1})
	if err := q.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	acls := &memACLs{}
	b := startServer(t, func(o *Options) {
		o.Quotas = q
		o.Authorizer = auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true}, acls)
	})
	adm := kadm.NewClient(newClient(t, b.addr))
	ctx := testCtx(t)
	alter := func() error {
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity("user", "alice"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}}})
		if err != nil {
			return err
		}
		return res[0].Err
	}
	if err := alter(); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alter without ALTER_CONFIGS: %v", err)
	}
	if _, err := adm.DescribeClientQuotas(ctx, false, nil); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("describe without DESCRIBE_CONFIGS: %v", err)
	}
	acls.allow(rCluster, auth.ClusterName, kmsg.ACLOperationDescribeConfigs)
	if qs, err := adm.DescribeClientQuotas(ctx, false, nil); err != nil || len(qs) != 0 {
		t.Fatalf("describe with DESCRIBE_CONFIGS: %+v %v", qs, err)
	}
	if err := alter(); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alter with DESCRIBE_CONFIGS only: %v", err)
	}
	acls.allow(rCluster, auth.ClusterName, kmsg.ACLOperationAlterConfigs)
	if err := alter(); err != nil {
		t.Fatalf("alter with ALTER_CONFIGS: %v", err)
	}
}

// TestQuotaAPIsNeedQuotas: a server without Options.Quotas neither serves
// nor advertises the quota APIs.
func TestQuotaAPIsNeedQuotas(t *testing.T) {
	b := startServer(t, nil)
	for _, a := range b.srv.APIVersions() {
		if a.ApiKey == 48 || a.ApiKey == 49 {
			t.Fatalf("api key %d advertised without quotas", a.ApiKey)
		}
	}
	q, _ := startQuotaServer(t, time.Second, 11)
	served := 0
	for _, a := range q.srv.APIVersions() {
		if (a.ApiKey == 48 || a.ApiKey == 49) && a.MinVersion == 0 && a.MaxVersion == 1 {
			served++
		}
	}
	if served != 2 {
		t.Fatalf("%d of the quota APIs advertised v0-1 with quotas, want 2", served)
	}
}

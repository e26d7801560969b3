package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

// setGroupConfigs sets a group's configs through IncrementalAlterConfigs
// on the GROUP resource.
func setGroupConfigs(t *testing.T, ctx context.Context, cl *kgo.Client, group string, kvs ...string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for i := 0; i+1 < len(kvs); i += 2 {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kvs[i], kmsg.StringPtr(kvs[i+1])
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil && len(resp.Resources) == 1 {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("set configs of group %s: %v", group, err)
	}
}

// TestShareGroupsWired runs a share group through the assembled broker:
// the group's configs (GROUP resource), the coordinator (heartbeat,
// assignment, initialised start offset), the engine behind ShareFetch and
// ShareAcknowledge, the dead-letter writer with the configured rules (a
// rejected record lands in the dead-letter topic, created because
// dead-letters.auto-create-topics is on, with its headers), the share metrics on
// /metrics' registry, the in-flight view of GET /share/groups/{group}, and
// the start offset surviving a restart.
func TestShareGroupsWired(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, func(c *config.Config) { c.DeadLetters.AutoCreateTopics = true }, 1, "jobs")
	cfg, b, ctx, cl := &env.cfg, env.b, env.ctx, env.cl
	const group, dlq, n = "workers", "dlq.jobs", 10
	setGroupConfigs(t, ctx, cl, group, "share.auto.offset.reset", "earliest", "errors.deadletterqueue.topic.name", dlq)

	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "jobs", Value: fmt.Appendf(nil, "job-%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("jobs"), kgo.ShareGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, fs.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if string(r.Value) == "job-3" {
				r.Ack(kgo.AckReject)
			} else {
				r.Ack(kgo.AckAccept)
			}
		})
	}
	if err := cons.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	cons.Close()

	// The dead letter, once written, names job-3's place and the group.
	var dead *kgo.Record
	for dead == nil {
		rc, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{dlq: {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := rc.PollFetches(pctx)
		cancel()
		rc.Close()
		if rs := fs.Records(); len(rs) > 0 {
			dead = rs[0]
		} else if ctx.Err() != nil {
			t.Fatal("no dead letter in", dlq)
		}
	}
	headers := map[string]string{}
	for _, h := range dead.Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers["__dlq.errors.topic"] != "jobs" || headers["__dlq.errors.offset"] != "3" || headers["__dlq.errors.group"] != group ||
		headers["__dlq.errors.delivery.count"] != "1" {
		t.Fatalf("dead letter headers %v", headers)
	}

	families, err := b.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "runnel_share_") {
			names = append(names, f.GetName())
		}
	}
	for _, want := range []string{"runnel_share_records_acquired_total", "runnel_share_records_acknowledged_total", "runnel_share_dead_letters_written_total"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("metric %s not registered (have %v)", want, names)
		}
	}

	// Two more records, acquired and held: the HTTP view shows them in
	// flight with their delivery count and holder.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "jobs", Value: []byte("held-1")}, &kgo.Record{Topic: "jobs", Value: []byte("held-2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	holder, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("jobs"), kgo.ShareGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	for held := 0; held < 2; {
		fs := holder.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the held records were not delivered")
		}
		held += len(fs.Records())
	}
	resp, err := http.Get("http://" + b.HTTPAddr() + "/share/groups/" + group)
	if err != nil {
		t.Fatal(err)
	}
	var view shareStatesView
	err = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if err != nil || len(view.Partitions) != 1 {
		t.Fatalf("share states view %+v: %v", view, err)
	}
	p := view.Partitions[0]
	if p.Topic != "jobs" || p.StartOffset != n || p.EndOffset != n+2 || len(p.Runs) != 1 || p.Runs[0].State != "acquired" ||
		p.Runs[0].DeliveryCount != 1 || p.Runs[0].Member == "" || p.Runs[0].LockDeadlineMs <= time.Now().UnixMilli() {
		t.Fatalf("share partition view %+v", p)
	}
	holder.Close() // releases them: the start offset stays at n

	// Restart: the start offset is where the acknowledgements left it.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, cfg)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	offs, err := kadm.NewClient(cl2).DescribeShareGroupOffsets(ctx, group)
	if err != nil || offs[group].Err != nil {
		t.Fatalf("describe share group offsets: %v %v", err, offs[group].Err)
	}
	if o, ok := offs[group].Offsets.Lookup("jobs", 0); !ok || o.Err != nil || o.StartOffset != n {
		t.Fatalf("start offset after restart: %+v (found %v), want %d", o, ok, n)
	}
}

// shareFetch sends one ShareFetch for partition 0 of topic to broker b
// and returns the partition's answer (zero value when absent).
func shareFetch(t *testing.T, ctx context.Context, cl *kgo.Client, node int32, group, member string, epoch int32, topic [16]byte) kmsg.ShareFetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &group, &member, epoch
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords, req.BatchSize = 0, 0, 1<<20, 500, 500
	if epoch >= 0 {
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = topic
		rp := kmsg.NewShareFetchRequestTopicPartition()
		rp.Partition = 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		t.Fatalf("ShareFetch to broker %d (epoch %d): %v", node, epoch, err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("ShareFetch to broker %d (epoch %d): %v", node, epoch, kerr.ErrorForCode(resp.ErrorCode))
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			return rp
		}
	}
	return kmsg.ShareFetchResponseTopicPartition{}
}

// TestShareSessionCloseElsewhereKeepsLeaderAcquisitions: a member whose
// share session on a broker that is not the partition's leader names the
// partition (a client with stale metadata opens one) acquires records
// through the leader; closing the other session must not release what it
// acquired through the leader, or the same member gets them again with a
// higher delivery count while it still processes the first delivery (and
// its acknowledgement of that delivery is then applied to the second).
func TestShareSessionCloseElsewhereKeepsLeaderAcquisitions(t *testing.T) {
	shared := "file://" + t.TempDir()
	cfg1 := testConfig(t, t.TempDir())
	cfg1.BrokerID, cfg1.ObjectStore = 1, shared
	b1 := startBroker(t, &cfg1)
	cfg2 := testConfig(t, t.TempDir())
	cfg2.BrokerID, cfg2.ObjectStore = 2, shared
	cfg2.Etcd.Endpoints = []string{b1.EtcdClientURL()}
	b2 := startBroker(t, &cfg2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b1.KafkaAddr(), b2.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "q"); err != nil {
		t.Fatal(err)
	}
	const group, member = "g", "member-1"
	setGroupConfigs(t, ctx, cl, group, "share.auto.offset.reset", "earliest")
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "q", Value: []byte("a")}, &kgo.Record{Topic: "q", Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ti, ok := b1.engine.Topic("q")
	if !ok {
		t.Fatal("no topic q")
	}
	var leader, other int32
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l1, l2 := b1.cluster.Leader(ti.ID, 0), b2.cluster.Leader(ti.ID, 0)
		if l1 == l2 && len(b1.cluster.Brokers()) == 2 && len(b2.cluster.Brokers()) == 2 {
			leader, other = l1, 3-l1
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the brokers do not agree on the leader")
		}
	}

	// The session on the other broker names the partition: not its leader.
	if p := shareFetch(t, ctx, cl, other, group, member, 0, ti.ID); p.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("ShareFetch to the non-leader: partition error %v", kerr.ErrorForCode(p.ErrorCode))
	}
	p := shareFetch(t, ctx, cl, leader, group, member, 0, ti.ID)
	if len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].FirstOffset != 0 || p.AcquiredRecords[0].LastOffset != 1 || p.AcquiredRecords[0].DeliveryCount != 1 {
		t.Fatalf("acquired through the leader: %+v (error %v)", p.AcquiredRecords, kerr.ErrorForCode(p.ErrorCode))
	}
	// The member closes its session on the other broker.
	shareFetch(t, ctx, cl, other, group, member, -1, ti.ID)
	// It still holds both records: the leader has nothing to give it.
	if p := shareFetch(t, ctx, cl, leader, group, member, 1, ti.ID); len(p.AcquiredRecords) != 0 {
		t.Fatalf("after closing its session on broker %d, member got its records again from the leader: %+v", other, p.AcquiredRecords)
	}
}

// TestShareResetDeadLettersAgain: after a share partition's start offset is
// reset (AlterShareGroupOffsets), a record rejected again is written to
// the dead-letter topic again; the dead-letter writer must not take it for
// the letter it wrote before the reset.
func TestShareResetDeadLettersAgain(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, func(c *config.Config) { c.DeadLetters.AutoCreateTopics = true }, 1, "jobs")
	b, ctx, cl := env.b, env.ctx, env.cl
	const group, dlq = "resetters", "dlq.jobs"
	setGroupConfigs(t, ctx, cl, group, "share.auto.offset.reset", "earliest", "errors.deadletterqueue.topic.name", dlq)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "jobs", Value: []byte("poison")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rejectAll := func() {
		t.Helper()
		cons, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("jobs"), kgo.ShareGroup(group))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		for got := 0; got < 1; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal("the record was not delivered")
			}
			fs.EachRecord(func(r *kgo.Record) { got++; r.Ack(kgo.AckReject) })
		}
		if err := cons.FlushAcks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deadLetters := func(want int64) {
		t.Helper()
		for {
			ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, dlq)
			if err == nil {
				if o, ok := ends.Lookup(dlq, 0); ok && o.Err == nil && o.Offset >= want {
					if o.Offset > want {
						t.Fatalf("%d dead letters, want %d", o.Offset, want)
					}
					return
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("fewer than %d dead letters in %s", want, dlq)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	rejectAll()
	deadLetters(1)

	// The group is empty again: reset its start offset to the record.
	for {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "jobs", Partition: 0, At: 0})
		res, err := kadm.NewClient(cl).AlterShareGroupOffsets(ctx, group, offs)
		if err == nil {
			err = res.Error()
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.NonEmptyGroup) || ctx.Err() != nil {
			t.Fatalf("reset the start offset: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the member's leave is still on its way
	}
	rejectAll()
	deadLetters(2)
}

// A share group with a retry policy (errors.retry.delays.ms) through the
// assembled broker: a record the consumer releases comes back only after
// the delay, while the records produced after it flow meanwhile; then it
// comes back with its delivery count 2. GET /share/groups/{group} shows
// when it is due.
func TestShareRetryDelay(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1, "jobs")
	b, ctx, cl := env.b, env.ctx, env.cl
	const group, delay = "retrying", 1500 * time.Millisecond
	setGroupConfigs(t, ctx, cl, group, "share.auto.offset.reset", "earliest", "errors.retry.delays.ms", fmt.Sprint(delay.Milliseconds()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "jobs", Value: []byte("poison")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("jobs"), kgo.ShareGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var released time.Time
	var order []string
	viewed := false
	for done := false; !done; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %v: %v", order, fs.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			order = append(order, fmt.Sprintf("%s@%d", v, r.DeliveryCount()))
			switch {
			case v == "poison" && released.IsZero():
				released = time.Now()
				r.Ack(kgo.AckRelease)
			case v == "poison":
				if waited := time.Since(released); waited < delay {
					t.Errorf("released record delivered again after %v, before its delay of %v", waited, delay)
				}
				r.Ack(kgo.AckAccept)
				done = true
			default:
				r.Ack(kgo.AckAccept)
			}
		})
		if len(order) >= 4 && !viewed {
			viewed = true
			// The release is acknowledged by now or soon (with a fetch, or
			// on its own); the view shows the record waiting until it is due.
			var r shareRunView
			for {
				resp, err := http.Get("http://" + b.HTTPAddr() + "/share/groups/" + group)
				if err != nil {
					t.Fatal(err)
				}
				var view shareStatesView
				err = json.NewDecoder(resp.Body).Decode(&view)
				resp.Body.Close()
				if err != nil || len(view.Partitions) != 1 || len(view.Partitions[0].Runs) == 0 {
					t.Fatalf("share states view %+v: %v", view, err)
				}
				r = view.Partitions[0].Runs[0]
				if r.State == "available" || time.Since(released) > delay/2 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if r.First != 0 || r.Last != 0 || r.State != "available" || r.DeliveryCount != 1 ||
				r.RetryDueMs < released.Add(delay).UnixMilli() || r.RetryDueMs > time.Now().Add(delay).UnixMilli() {
				t.Fatalf("the released record in the share states view: %+v (released at %v)", r, released)
			}
		}
		if !released.IsZero() && len(order) == 1 {
			// While the released record waits, new records flow.
			var recs []*kgo.Record
			for i := range 3 {
				recs = append(recs, &kgo.Record{Topic: "jobs", Value: fmt.Appendf(nil, "after-%d", i)})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := strings.Join(order, " "), "poison@1 after-0@1 after-1@1 after-2@1 poison@2"; got != want {
		t.Fatalf("delivered %s, want %s", got, want)
	}
	if err := cons.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
}

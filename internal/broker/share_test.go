package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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
// ShareAcknowledge, the dead-letter writer (a rejected record lands in the
// auto-created dead-letter topic with its headers), the share metrics on
// /metrics' registry, and the start offset surviving a restart.
func TestShareGroupsWired(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1, "jobs")
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

package broker

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/telemetry/lag"
)

// TestLagOfConsumerProtocolAndTransactionalGroups checks that the group
// coordinator's lag tracker sees a KIP-848 group's commits and the offsets
// a transaction committed for a group.
func TestLagOfConsumerProtocolAndTransactionalGroups(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, func(c *config.Config) {
		fastConsumerGroups(c)
		c.Telemetry.LagInterval = 50 * time.Millisecond
	}, 2, "lagged")
	b, ctx, cl := env.b, env.ctx, env.cl
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("lagged"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 10 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// A KIP-848 consumer reads everything and commits.
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumerGroup("g848"), kgo.ConsumeTopics("lagged"),
		kgo.ServerSideBalancer(), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for seen := 0; seen < 10; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		seen += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	// A transaction commits offset 2 of partition 0 for group "gtxn".
	id := "lag-txn"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 30000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = id, ir.ProducerID, ir.ProducerEpoch, "gtxn"
	if r, err := ao.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %+v", err, r)
	}
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.Group, toc.ProducerID, toc.ProducerEpoch, toc.Generation = id, "gtxn", ir.ProducerID, ir.ProducerEpoch, -1
	tt := kmsg.NewTxnOffsetCommitRequestTopic()
	tt.Topic = "lagged"
	pp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	pp.Partition, pp.Offset = 0, 2
	tt.Partitions = append(tt.Partitions, pp)
	toc.Topics = append(toc.Topics, tt)
	if r, err := toc.RequestWith(ctx, cl); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("TxnOffsetCommit: %v %+v", err, r)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ir.ProducerID, ir.ProducerEpoch, true
	if r, err := end.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v %+v", err, r)
	}

	// Three more records on partition 0: the KIP-848 group lags by 3 there.
	for i := range 3 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "w%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"g848/0": "committed 5 end 8 lag 3",
		"g848/1": "committed 5 end 5 lag 0",
		"gtxn/0": "committed 2 end 8 lag 6",
	}
	for {
		got := map[string]string{}
		var txnRow lag.Row
		for _, r := range b.lag.Rows() {
			got[fmt.Sprintf("%s/%d", r.Group, r.Partition)] = fmt.Sprintf("committed %d end %d lag %d", r.Committed, r.End, r.Lag)
			if r.Group == "gtxn" {
				txnRow = r
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			if txnRow.CommitAge < 0 || txnRow.CommitAge > 30 || !txnRow.HasLagSeconds {
				t.Fatalf("transactional group row %+v", txnRow)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("rows %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsOff checks telemetry.metrics: false: /metrics answers 404,
// KIP-714 is not advertised, no lag tracker runs, and records still flow;
// with the default the same broker measures requests and topics.
func TestMetricsOff(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("metrics=%v", on), func(t *testing.T) {
			env := newTestEnv(t, 30*time.Second, func(c *config.Config) {
				if !on {
					c.Telemetry.Metrics = &on
				}
			}, 1, "quiet")
			if err := env.cl.ProduceSync(env.ctx, &kgo.Record{Topic: "quiet", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get("http://" + env.b.HTTPAddr() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			measured := strings.Contains(string(body), `runnel_topic_records_in_total{topic="quiet"} 1`)
			if on && (resp.StatusCode != http.StatusOK || !measured) {
				t.Fatalf("metrics on: /metrics %d, records_in of the topic shown %v", resp.StatusCode, measured)
			}
			if !on && resp.StatusCode != http.StatusNotFound {
				t.Fatalf("metrics off: /metrics %d %q, want 404", resp.StatusCode, body)
			}
			if (env.b.lag != nil) != on {
				t.Fatalf("lag tracker running = %v with metrics %v", env.b.lag != nil, on)
			}
			versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(env.ctx, env.cl)
			if err != nil {
				t.Fatal(err)
			}
			kip714 := false
			for _, k := range versions.ApiKeys {
				kip714 = kip714 || k.ApiKey == kmsg.PushTelemetry.Int16() || k.ApiKey == kmsg.GetTelemetrySubscriptions.Int16()
			}
			if kip714 != on {
				t.Fatalf("KIP-714 advertised = %v with metrics %v", kip714, on)
			}
		})
	}
}

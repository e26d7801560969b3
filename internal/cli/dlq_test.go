package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
)

// readPartition returns the records of topic/partition from offset from to
// the end.
func readPartition(t *testing.T, addr, topic string, partition int32, from int64) []*kgo.Record {
	t.Helper()
	adm := testAdmin(t, addr)
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, partition)
	if end.Offset <= from {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for int64(len(out)) < end.Offset-from {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s/%d: got %d of %d records", topic, partition, len(out), end.Offset-from)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func endOffset(t *testing.T, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, partition)
	return o.Offset
}

// Dead letters written by the share groups' writer on a live broker, then
// listed, shown and replayed (copied ones as they are, metadata-only ones
// from the log, refused when the original is gone).
func TestDLQCommands(t *testing.T) {
	b := startBrokerWith(t, nil)
	addr := b.KafkaAddr()
	ctx := context.Background()
	adm := testAdmin(t, addr)
	createTopic(t, ctx, adm, "orders", 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 6 {
		r := &kgo.Record{Topic: "orders", Partition: 1, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprintf("t%d", i))}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	etcd, err := clientv3.New(clientv3.Config{Endpoints: []string{b.EtcdClientURL()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	orders, _ := b.Engine().Topic("orders")
	w := share.NewDeadLetters(share.DeadLetterOptions{Client: etcd, Log: b.Engine(), Rules: config.DeadLetterConfig{TopicPrefix: "dlq.", AutoCreateTopics: true}})
	group := func(copyRecord bool) config.ShareGroup {
		g := config.ResolveShareGroup(nil)
		g.DLQTopic, g.DLQCopyRecord = "dlq.orders", copyRecord
		return g
	}
	if err := w.Write(ctx, share.Key{Group: "billing", Topic: orders.ID, Partition: 1}, group(false), []share.DeadLetter{
		{Offset: 1, DeliveryCount: 1, Reason: share.ReasonRejected},
		{Offset: 3, DeliveryCount: 5, Reason: share.ReasonDeliveryCountExceeded},
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, share.Key{Group: "audit", Topic: orders.ID, Partition: 1}, group(true), []share.DeadLetter{
		{Offset: 4, DeliveryCount: 2, Reason: share.ReasonRejected},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{share.TopicConfigDLQEnable: kadm.StringPtr("true")}, "dead.custom"); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runLive(t, addr, args...)
		if err != nil {
			t.Fatalf("runnel %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, _, err := runLive(t, addr, args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("runnel %s: %v, want an error containing %q", strings.Join(args, " "), err, want)
		}
	}

	// dead.custom is listed for its config, dlq.orders for its prefix.
	out := run("dlq", "list")
	if fields := strings.Fields(out); strings.Join(fields, " ") != "TOPIC PARTITIONS RECORDS dead.custom 1 0 dlq.orders 1 3" {
		t.Fatalf("dlq list:\n%s", out)
	}

	out = run("dlq", "show", "dlq.orders")
	for _, want := range []string{
		"billing  orders/1@1  1           Offset rejected by client.                     metadata only",
		"billing  orders/1@3  5           Offset delivery count exceeded the threshold.  metadata only",
		`audit    orders/1@4  2           Offset rejected by client.                     key="k4" value="v4" trace="t4"`,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("dlq show: no line with %q in\n%s", want, out)
		}
	}
	if out := run("dlq", "show", "dlq.orders", "--group", "audit"); strings.Contains(out, "billing") || !strings.Contains(out, "orders/1@4") {
		t.Fatalf("dlq show --group audit:\n%s", out)
	}
	if out := run("dlq", "show", "dlq.orders", "--limit", "1"); !strings.Contains(out, "... more dead letters follow") || strings.Count(out, "\n") != 3 {
		t.Fatalf("dlq show --limit 1:\n%s", out)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "dead.custom", Partition: 0, Value: []byte("junk")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if out := run("dlq", "show", "dead.custom"); !strings.Contains(out, `not a dead letter: key=null value="junk"`) {
		t.Fatalf("dlq show dead.custom:\n%s", out)
	}

	end := endOffset(t, adm, "orders", 1)
	out = run("dlq", "replay", "dlq.orders", "--offsets", "0-1", "--dry-run")
	if !strings.Contains(out, "Would replay dlq.orders 0:0 to orders/1 (original offset 1, read from the log)") ||
		!strings.Contains(out, "Dry run: 2 dead letter(s) would be replayed.") {
		t.Fatalf("dry run:\n%s", out)
	}
	if got := endOffset(t, adm, "orders", 1); got != end {
		t.Fatalf("a dry run produced %d records", got-end)
	}
	fails("give exactly one of --offsets and --all", "dlq", "replay", "dlq.orders")
	fails("offset 7 holds no dead letter", "dlq", "replay", "dlq.orders", "--offsets", "2,7")
	fails("not a dead letter", "dlq", "replay", "orders", "--partition", "1", "--all")
	fails(`topic "orders" has 2 partitions`, "dlq", "replay", "orders", "--offsets", "1")

	out = run("dlq", "replay", "dlq.orders", "--all")
	if !strings.Contains(out, "Replayed 3 dead letter(s).") {
		t.Fatalf("replay --all:\n%s", out)
	}
	var got []string
	for _, r := range readPartition(t, addr, "orders", 1, end) {
		got = append(got, fmt.Sprintf("%s=%s %s=%s", r.Key, r.Value, r.Headers[0].Key, r.Headers[0].Value))
	}
	if strings.Join(got, ", ") != "k1=v1 trace=t1, k3=v3 trace=t3, k4=v4 trace=t4" {
		t.Fatalf("replayed records: %v", got)
	}

	// The original of letter 0 (orders/1@1) is deleted: a replay naming it
	// is refused whole; the others still replay.
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{"orders": {1: {Topic: "orders", Partition: 1, At: 2}}}); err != nil {
		t.Fatal(err)
	}
	end = endOffset(t, adm, "orders", 1)
	fails("dead letter(s) carry only metadata and their original record is gone from the log: 0:0 (orders/1@1, deleted: the partition starts at offset 2)",
		"dlq", "replay", "dlq.orders", "--offsets", "0-2")
	if got := endOffset(t, adm, "orders", 1); got != end {
		t.Fatalf("a refused replay produced %d records", got-end)
	}
	if out := run("dlq", "replay", "dlq.orders", "--offsets", "1-2"); !strings.Contains(out, "Replayed 2 dead letter(s).") {
		t.Fatalf("replay 1-2:\n%s", out)
	}
}

func TestDLQParseOffsets(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		err  bool
	}{
		{in: "3", want: "[[3 3]]"},
		{in: "3,5-9", want: "[[3 3] [5 9]]"},
		{in: " 1 , 2-2 ", want: "[[1 1] [2 2]]"},
		{in: "9-5", err: true},
		{in: "-1", err: true},
		{in: "a", err: true},
		{in: ",", err: true},
	} {
		got, err := parseOffsetSet(c.in)
		if (err != nil) != c.err || (!c.err && fmt.Sprint(got) != c.want) {
			t.Errorf("parseOffsetSet(%q) = %v, %v; want %s (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

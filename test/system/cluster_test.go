package system

import (
	"context"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// describeBrokers returns the live brokers' ids and addresses as
// DescribeCluster reports them.
func describeBrokers(ctx context.Context, cl *kgo.Client) (map[int32]string, error) {
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return nil, err
	}
	out := map[int32]string{}
	for _, b := range m.Brokers {
		out[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	return out, nil
}

// describeCluster asks one broker (over its own connection) with the
// DescribeCluster API, not Metadata.
func describeCluster(addr string) (map[int32]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rc := &rawConn{c: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("runnel-raw"))}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 0
	resp, err := rc.request(req)
	if err != nil {
		return nil, err
	}
	d := resp.(*kmsg.DescribeClusterResponse)
	if d.ErrorCode != 0 {
		return nil, fmt.Errorf("describe cluster: error code %d", d.ErrorCode)
	}
	out := map[int32]string{}
	for _, b := range d.Brokers {
		out[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	return out, nil
}

func sameBrokers(got, want map[int32]string) bool {
	if len(got) != len(want) {
		return false
	}
	for id, addr := range want {
		if got[id] != addr {
			return false
		}
	}
	return true
}

// TestStatelessBrokers runs two brokers on one etcd (embedded in A) and one
// object store: data produced through either is read identically through
// the other, and A keeps serving after B is killed.
func TestStatelessBrokers(t *testing.T) {
	statelessBrokers(t, "file://"+t.TempDir(), nil)
}

// TestStatelessBrokersS3 is TestStatelessBrokers on a real S3-compatible
// server (versitygw), where production data lives.
func TestStatelessBrokersS3(t *testing.T) {
	s3 := harness.StartS3(t, "runnel-cluster")
	statelessBrokers(t, s3.URL(), s3.Env)
	if len(s3.Keys(t)) == 0 {
		t.Fatal("no objects in the S3 bucket")
	}
}

func statelessBrokers(t *testing.T, shared string, env []string) {
	a := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: shared, Env: env})
	b := harness.Start(t, harness.Options{BrokerID: 2, ObjectStore: shared, EtcdEndpoints: a.EtcdURL, Env: env})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	clA := newClient(t, []string{a.Kafka})
	clB := newClient(t, []string{b.Kafka})
	both := map[int32]string{1: a.Kafka, 2: b.Kafka}
	for name, cl := range map[string]*kgo.Client{"A": clA, "B": clB} {
		got, err := describeCluster(map[string]string{"A": a.Kafka, "B": b.Kafka}[name])
		if err != nil {
			t.Fatalf("describe cluster through %s: %v", name, err)
		}
		if !sameBrokers(got, both) {
			t.Errorf("describe cluster through %s: %v, want %v", name, got, both)
		}
		got, err = describeBrokers(ctx, cl)
		if err != nil {
			t.Fatalf("metadata through %s: %v", name, err)
		}
		if !sameBrokers(got, both) {
			t.Errorf("metadata brokers through %s: %v, want %v", name, got, both)
		}
	}

	const topic, partitions = "shared", 4
	createTopic(ctx, t, clA, topic, partitions, nil)

	// Raw requests pinned to one broker: produce on one, fetch on the other.
	pinned := func(t *testing.T, from, to *harness.Proc, tag string) {
		in, out := dialRaw(t, from.Kafka), dialRaw(t, to.Kafka)
		for p := int32(0); p < partitions; p++ {
			var values [][]byte
			for i := 0; i < 50; i++ {
				values = append(values, fmt.Appendf(nil, "%s-p%d-%03d", tag, p, i))
			}
			before := rawFetchHW(t, out, topic, p)
			code, base := rawProduce(t, in, topic, p, buildBatch(values))
			if code != 0 {
				t.Fatalf("produce %s/%d: error code %d", topic, p, code)
			}
			if base != before {
				t.Errorf("produce %s/%d: base offset %d, but the other broker's high watermark was %d", topic, p, base, before)
			}
			got := rawFetchAll(t, out, topic, p, base, base+int64(len(values)))
			for i, v := range values {
				r := got[i]
				if r.Offset != base+int64(i) || string(r.Value) != string(v) {
					t.Fatalf("fetch %s/%d: record %d is %d:%q, want %d:%q", topic, p, i, r.Offset, r.Value, base+int64(i), v)
				}
			}
		}
	}
	t.Run("raw A to B", func(t *testing.T) { pinned(t, a, b, "ab") })
	t.Run("raw B to A", func(t *testing.T) { pinned(t, b, a, "ba") })

	// franz-go clients bootstrapped only to one broker (Metadata gives them
	// both, and any broker serves any partition).
	client := func(t *testing.T, from, to *kgo.Client, toSeed, tag string) {
		var values []string
		for i := 0; i < 1000; i++ {
			values = append(values, fmt.Sprintf("%s-%04d", tag, i))
		}
		acked := produceSync(ctx, t, from, topic, -1, values)
		ends := endOffsets(ctx, t, to, topic)
		recs := consumeAll(ctx, t, []string{toSeed}, topic, ends)
		checkDense(t, recs, ends)
		for _, r := range acked {
			got := recs[r.Partition]
			if r.Offset >= int64(len(got)) || got[r.Offset].Value != string(r.Value) {
				t.Fatalf("record %q acked at %d/%d is not there through the other broker", r.Value, r.Partition, r.Offset)
			}
		}
		// Both brokers agree on every high watermark.
		if other := endOffsets(ctx, t, from, topic); fmt.Sprint(other) != fmt.Sprint(ends) {
			t.Errorf("high watermarks differ: %v and %v", other, ends)
		}
	}
	t.Run("client A to B", func(t *testing.T) { client(t, clA, clB, b.Kafka, "cab") })
	t.Run("client B to A", func(t *testing.T) { client(t, clB, clA, a.Kafka, "cba") })

	// Kill B: A keeps serving at once for raw requests, and franz-go moves
	// to A once B's lease lapses.
	ends := endOffsets(ctx, t, clA, topic)
	before := consumeAll(ctx, t, []string{a.Kafka}, topic, ends)
	b.Kill()
	t.Run("A after B died", func(t *testing.T) {
		rc := dialRaw(t, a.Kafka)
		code, base := rawProduce(t, rc, topic, 0, buildBatch([][]byte{[]byte("after-kill")}))
		if code != 0 || base != ends[0] {
			t.Fatalf("produce through A after killing B: code %d base %d, want 0 and %d", code, base, ends[0])
		}
		got := rawFetchAll(t, rc, topic, 0, base, base+1)
		if string(got[0].Value) != "after-kill" {
			t.Fatalf("fetch through A after killing B: %q", got[0].Value)
		}

		fresh := newClient(t, []string{a.Kafka}, kgo.RecordDeliveryTimeout(2*time.Minute))
		var live map[int32]string
		deadline := time.Now().Add(60 * time.Second)
		for {
			var err error
			live, err = describeCluster(a.Kafka)
			if err == nil && sameBrokers(live, map[int32]string{1: a.Kafka}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("describe cluster still %v (err %v) 60s after killing B", live, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		values := []string{}
		for i := 0; i < 200; i++ {
			values = append(values, fmt.Sprintf("solo-%03d", i))
		}
		produceSync(ctx, t, fresh, topic, -1, values)
		now := endOffsets(ctx, t, fresh, topic)
		after := consumeAll(ctx, t, []string{a.Kafka}, topic, now)
		checkDense(t, after, now)
		// Everything read before the kill is unchanged.
		for p, recs := range before {
			if len(after[p]) < len(recs) {
				t.Fatalf("partition %d shrank from %d to %d records after killing B", p, len(recs), len(after[p]))
			}
			if d := diffStored(map[int32][]stored{p: recs}, map[int32][]stored{p: after[p][:len(recs)]}); d != "" {
				t.Errorf("data changed after killing B: %s", d)
			}
		}
		var newer []string
		for _, p := range sortedPartitions(after) {
			for _, r := range after[p][len(before[p]):] {
				newer = append(newer, r.Value)
			}
		}
		want := append([]string{"after-kill"}, values...)
		sort.Strings(newer)
		sort.Strings(want)
		if fmt.Sprint(newer) != fmt.Sprint(want) {
			t.Errorf("records after the kill: %d, want %d", len(newer), len(want))
		}
	})
}

// rawFetchHW returns the partition's high watermark as one broker reports
// it (ListOffsets latest).
func rawFetchHW(t testing.TB, rc *rawConn, topic string, partition int32) int64 {
	t.Helper()
	return rawListOffsets(t, rc, topic, partition, -1)
}

package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

// fastConsumerGroups shortens KIP-848 heartbeats and sessions for tests.
func fastConsumerGroups(c *config.Config) {
	c.Groups.ConsumerHeartbeatInterval = 200 * time.Millisecond
	c.Groups.ConsumerSessionTimeout = 3 * time.Second
}

// describe848 returns a KIP-848 group's description.
func describe848(t *testing.T, ctx context.Context, cl *kgo.Client, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("ConsumerGroupDescribe: %v", err)
	}
	return resp.Groups[0]
}

// waitStable waits until the group is Stable with n members holding
// between lo and hi partitions each.
func waitStable(t *testing.T, ctx context.Context, cl *kgo.Client, group string, n, lo, hi int) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	for {
		g := describe848(t, ctx, cl, group)
		ok := g.ErrorCode == 0 && g.State == "Stable" && len(g.Members) == n
		for _, m := range g.Members {
			c := 0
			for _, tp := range m.Assignment.TopicPartitions {
				c += len(tp.Partitions)
			}
			ok = ok && c >= lo && c <= hi && m.MemberEpoch == g.AssignmentEpoch
		}
		if ok {
			return g
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not settle with %d members: %+v", group, n, g)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestConsumerProtocolGroups runs franz-go consumers on the KIP-848
// protocol (server-side assignment): members join and leave, the group
// converges after each change, every record is consumed, and committed
// offsets are checked against member epochs.
func TestConsumerProtocolGroups(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		assignor string
	}{
		{"uniform", kgo.CooperativeStickyBalancer(), "uniform"},
		{"range", kgo.RangeBalancer(), "range"},
	} {
		t.Run(tc.name, func(t *testing.T) { testConsumerProtocol(t, tc.balancer, tc.assignor) })
	}
}

func testConsumerProtocol(t *testing.T, balancer kgo.GroupBalancer, assignor string) {
	env := newTestEnv(t, 90*time.Second, fastConsumerGroups, 6, "events")
	b, ctx, adm := env.b, env.ctx, env.cl
	const n = 600
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("v%03d", i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	var mu sync.Mutex
	seen := map[string]int{}
	group := "g848-" + assignor
	start := func(name string) func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics("events"),
			kgo.ServerSideBalancer(), kgo.Balancers(balancer), kgo.ClientID(name),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for cctx.Err() == nil {
				fs := cl.PollFetches(cctx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					mu.Unlock()
				})
			}
		}()
		return func() { stop(); <-done; cl.Close() }
	}
	stop1 := start("c1")
	waitStable(t, ctx, adm, group, 1, 6, 6)
	stop2 := start("c2")
	g := waitStable(t, ctx, adm, group, 2, 3, 3)
	if g.AssignorName != assignor {
		t.Fatalf("assignor %q, want %q", g.AssignorName, assignor)
	}
	stop3 := start("c3")
	waitStable(t, ctx, adm, group, 3, 2, 2)
	// Everything is consumed while the group changes around it.
	for {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d distinct records", got, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Members leave (epoch -1); the rest take over their partitions.
	stop1()
	waitStable(t, ctx, adm, group, 2, 3, 3)
	stop3()
	waitStable(t, ctx, adm, group, 1, 6, 6)
	// Offsets committed under member epochs: the group's commits cover
	// everything consumed.
	stop2()
	offs, err := kadm.NewClient(adm).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != n {
		t.Fatalf("committed offsets sum to %d, want %d", committed, n)
	}
	// DescribeGroups (the classic API that tools use) describes a consumer
	// group too, with its members' assignments.
	stop4 := start("c4")
	waitStable(t, ctx, adm, group, 1, 6, 6)
	dg, err := kadm.NewClient(adm).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	d := dg[group]
	if d.ProtocolType != "consumer" || d.State != "Stable" || len(d.Members) != 1 || d.Protocol != assignor {
		t.Fatalf("DescribeGroups: %+v", d)
	}
	if ca, ok := d.Members[0].Assigned.AsConsumer(); !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != 6 || d.Members[0].ClientID != "c4" {
		t.Fatalf("DescribeGroups member: %+v", d.Members[0])
	}
	stop4()
	// ListGroups reports the consumer group type.
	lg, err := kadm.NewClient(adm).ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := lg[group]; !ok || d.ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %+v", lg)
	}
}

// TestGroupConvertsBetweenProtocols starts a group with classic-protocol
// franz-go consumers, adds a KIP-848 consumer while they consume (the group
// converts to the consumer protocol; the classic members stay, assigned by
// the broker), then removes the KIP-848 member (the group converts back).
// Every record is consumed throughout.
func TestGroupConvertsBetweenProtocols(t *testing.T) {
	env := newTestEnv(t, 90*time.Second, fastConsumerGroups, 6, "conv")
	b, ctx, adm, admin := env.b, env.ctx, env.cl, env.admin
	var mu sync.Mutex
	seen := map[string]bool{}
	produced := 0
	produce := func(k int) {
		t.Helper()
		prod, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("conv"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		for range k {
			prod.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("v%04d", produced))}, nil)
			produced++
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitAll := func() {
		t.Helper()
		for {
			mu.Lock()
			got := len(seen)
			mu.Unlock()
			if got == produced {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("consumed %d of %d distinct records", got, produced)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	const group = "converting"
	start := func(name string, opts ...kgo.Opt) func() {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics("conv"),
			kgo.ClientID(name), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond),
			kgo.HeartbeatInterval(200 * time.Millisecond), kgo.SessionTimeout(6 * time.Second),
			kgo.Balancers(kgo.CooperativeStickyBalancer())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for cctx.Err() == nil {
				cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)] = true
					mu.Unlock()
				})
			}
		}()
		return func() { stop(); <-done; cl.Close() }
	}
	groupType := func() string {
		t.Helper()
		lg, err := admin.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return lg[group].ProtocolType + "/" + describe848(t, ctx, adm, group).State
	}

	stopA := start("classic-a")
	stopB := start("classic-b")
	produce(300)
	waitAll()
	if got := describe848(t, ctx, adm, group); got.ErrorCode == 0 {
		t.Fatalf("a classic group described as a consumer group: %+v", got)
	}

	// A KIP-848 member joins: the group converts and all three share it.
	stopC := start("next-gen-c", kgo.ServerSideBalancer())
	g := waitStable(t, ctx, adm, group, 3, 2, 2)
	classic := 0
	for _, m := range g.Members {
		if m.MemberType == 0 {
			classic++
		}
	}
	if classic != 2 {
		t.Fatalf("%d classic members in the converted group, want 2: %+v", classic, g.Members)
	}
	produce(300)
	waitAll()

	// The KIP-848 member leaves: the group is classic again and the two
	// classic members carry on.
	stopC()
	for describe848(t, ctx, adm, group).ErrorCode == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("the group did not convert back: %s", groupType())
		case <-time.After(100 * time.Millisecond):
		}
	}
	produce(300)
	waitAll()
	stopA()
	stopB()
}

// TestConsumerGroupSessionExpiry joins a member with a raw heartbeat and
// lets it go silent: after the session timeout it is removed and the group
// is empty.
func TestConsumerGroupSessionExpiry(t *testing.T) {
	env := newTestEnv(t, 30*time.Second, fastConsumerGroups, 2, "quiet")
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "quiet-group", "ghost-member", 0
	req.SubscribedTopicNames = []string{"quiet"}
	req.RebalanceTimeoutMillis = 5000
	resp, err := req.RequestWith(env.ctx, env.cl)
	if err != nil || resp.ErrorCode != 0 || resp.Assignment == nil {
		t.Fatalf("join: %v %+v", err, resp)
	}
	if g := describe848(t, env.ctx, env.cl, "quiet-group"); len(g.Members) != 1 {
		t.Fatalf("after the join: %+v", g)
	}
	for {
		g := describe848(t, env.ctx, env.cl, "quiet-group")
		if len(g.Members) == 0 && g.State == "Empty" {
			return
		}
		select {
		case <-env.ctx.Done():
			t.Fatalf("the silent member was not removed: %+v", g)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

package broker

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// classicMember is a franz-go consumer on the classic protocol that records
// what it was assigned and what it had revoked.
type classicMember struct {
	mu       sync.Mutex
	owned    map[int32]bool
	revoked  [][]int32 // each revocation, as it happened
	assigned int       // number of assignment callbacks
	stop     func()
}

func (m *classicMember) snapshot() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.owned {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func startClassic(t *testing.T, ctx context.Context, addr, group, topic string, opts ...kgo.Opt) *classicMember {
	t.Helper()
	m := &classicMember{owned: map[int32]bool{}}
	base := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.HeartbeatInterval(200 * time.Millisecond), kgo.SessionTimeout(6 * time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, as map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.assigned++
			for _, p := range as[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, rs map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if len(rs[topic]) > 0 {
				m.revoked = append(m.revoked, append([]int32(nil), rs[topic]...))
			}
			for _, p := range rs[topic] {
				delete(m.owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ls map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ls[topic] {
				delete(m.owned, p)
			}
		}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cctx.Err() == nil {
			cl.PollFetches(cctx)
		}
	}()
	m.stop = func() { stop(); <-done; cl.Close() }
	return m
}

// waitSplit waits until the members own disjoint sets covering all n
// partitions with the given sizes.
func waitSplit(t *testing.T, ctx context.Context, n int, sizes []int, ms ...*classicMember) {
	t.Helper()
	for {
		seen := map[int32]bool{}
		ok := true
		for i, m := range ms {
			s := m.snapshot()
			ok = ok && len(s) == sizes[i]
			for _, p := range s {
				ok = ok && !seen[p]
				seen[p] = true
			}
		}
		if ok && len(seen) == n {
			return
		}
		select {
		case <-ctx.Done():
			var got []string
			for _, m := range ms {
				got = append(got, fmt.Sprint(m.snapshot()))
			}
			t.Fatalf("members did not settle on sizes %v: %v", sizes, got)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestClassicCooperativeRebalance runs franz-go's cooperative-sticky
// balancer on the classic protocol: when members join, existing members
// only give up the partitions that move (never everything), and keep the
// rest throughout.
func TestClassicCooperativeRebalance(t *testing.T) {
	env := newTestEnv(t, 90*time.Second, nil, 6, "coop")
	b, ctx := env.b, env.ctx
	coop := kgo.Balancers(kgo.CooperativeStickyBalancer())
	a := startClassic(t, ctx, b.KafkaAddr(), "coop-group", "coop", coop)
	defer func() { a.stop() }()
	waitSplit(t, ctx, 6, []int{6}, a)
	bm := startClassic(t, ctx, b.KafkaAddr(), "coop-group", "coop", coop)
	defer func() { bm.stop() }()
	waitSplit(t, ctx, 6, []int{3, 3}, a, bm)
	c := startClassic(t, ctx, b.KafkaAddr(), "coop-group", "coop", coop)
	defer func() { c.stop() }()
	waitSplit(t, ctx, 6, []int{2, 2, 2}, a, bm, c)
	a.mu.Lock()
	defer a.mu.Unlock()
	// a went 6 -> 3 -> 2: two revocations of exactly the moved partitions.
	if len(a.revoked) != 2 || len(a.revoked[0]) != 3 || len(a.revoked[1]) != 1 {
		t.Fatalf("cooperative revocations of the first member: %v (want 3 then 1 partitions)", a.revoked)
	}
}

// TestClassicStaticMembership restarts a static member (group.instance.id)
// within its session timeout: it gets its partitions back without a
// rebalance, so the other member keeps its own untouched (KIP-345).
func TestClassicStaticMembership(t *testing.T) {
	env := newTestEnv(t, 90*time.Second, nil, 4, "static")
	b, ctx, admin := env.b, env.ctx, env.admin
	// The eager range balancer revokes everything on any rebalance, so a
	// rebalance cannot go unnoticed.
	eager := kgo.Balancers(kgo.RangeBalancer())
	// The leader (the first member) stays; the follower restarts.
	leader := startClassic(t, ctx, b.KafkaAddr(), "static-group", "static", kgo.InstanceID("a"), eager)
	defer func() { leader.stop() }()
	waitSplit(t, ctx, 4, []int{4}, leader)
	m := startClassic(t, ctx, b.KafkaAddr(), "static-group", "static", kgo.InstanceID("b"), eager)
	waitSplit(t, ctx, 4, []int{2, 2}, leader, m)
	before, _ := admin.DescribeGroups(ctx, "static-group")
	gen := before["static-group"]
	owned := fmt.Sprint(m.snapshot())
	leader.mu.Lock()
	revokedBefore := len(leader.revoked)
	leader.mu.Unlock()
	m.stop() // a static member does not leave the group on close
	m = startClassic(t, ctx, b.KafkaAddr(), "static-group", "static", kgo.InstanceID("b"), eager)
	defer func() { m.stop() }()
	waitSplit(t, ctx, 4, []int{2, 2}, leader, m)
	if got := fmt.Sprint(m.snapshot()); got != owned {
		t.Fatalf("the returning static member got %s, had %s", got, owned)
	}
	leader.mu.Lock()
	revoked := len(leader.revoked) - revokedBefore
	leader.mu.Unlock()
	if revoked != 0 {
		t.Fatalf("the other member was rebalanced (%d revocations) when a static member returned", revoked)
	}
	after, _ := admin.DescribeGroups(ctx, "static-group")
	if len(after["static-group"].Members) != 2 || after["static-group"].State != "Stable" || gen.State != "Stable" {
		t.Fatalf("group before %+v after %+v", gen, after["static-group"])
	}
}

package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/peer"
)

func startBroker(t *testing.T, e *clustertest.Etcd, id int32, register bool) *Cluster {
	t.Helper()
	c := New(Options{Client: e.Client(), Self: peer.Broker{NodeID: id, Host: "127.0.0.1", Port: 9092 + id}, ClusterID: "test", LeaseTTL: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start %d: %v", id, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if register {
		if err := c.Register(ctx); err != nil {
			t.Fatalf("register %d: %v", id, err)
		}
	}
	return c
}

// waitFor waits, on Changes, until cond holds.
func waitFor(t *testing.T, c *Cluster, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		ch := c.Changes()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func ownedCount(c *Cluster) int {
	n := 0
	for s := 0; s < c.Shards(); s++ {
		if _, ok := c.OwnedShard(s); ok {
			n++
		}
	}
	return n
}

func TestSingleBrokerOwnsAllShards(t *testing.T) {
	e := clustertest.Start(t)
	c := startBroker(t, e, 1, false)
	if got := c.Brokers(); len(got) != 1 || got[0].NodeID != 1 {
		t.Fatalf("brokers before register = %+v, want self", got)
	}
	if ownedCount(c) != 0 {
		t.Fatalf("owns shards before register")
	}
	if err := c.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, "all shards", func() bool { return ownedCount(c) == c.Shards() })
	if !c.Healthy() {
		t.Fatal("not healthy")
	}
	b, rev, ok := c.ShardOwner(3)
	if !ok || b.NodeID != 1 || rev <= 0 {
		t.Fatalf("ShardOwner(3) = %+v %d %v", b, rev, ok)
	}
	if own, _ := c.OwnedShard(3); own != rev {
		t.Fatalf("OwnedShard rev %d != owner rev %d", own, rev)
	}
	if c.ControllerID() != 1 {
		t.Fatalf("controller = %d", c.ControllerID())
	}
}

func TestDuplicateBrokerID(t *testing.T) {
	e := clustertest.Start(t)
	startBroker(t, e, 1, true)
	// Same id, another endpoint: a misconfigured second broker.
	c2 := New(Options{Client: e.Client(), Self: peer.Broker{NodeID: 1, Host: "127.0.0.1", Port: 19999}, ClusterID: "test", LeaseTTL: 2 * time.Second})
	if err := c2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	err := c2.Register(context.Background())
	if !errors.Is(err, ErrBrokerIDInUse) {
		t.Fatalf("register duplicate id: err = %v, want ErrBrokerIDInUse", err)
	}
}

func TestRestartedBrokerTakesOverItsOwnRegistration(t *testing.T) {
	e := clustertest.Start(t)
	old := startBroker(t, e, 1, true)
	waitFor(t, old, "all shards", func() bool { return ownedCount(old) == old.Shards() })
	// A crashed incarnation keeps its lease until the TTL; a restart at the
	// same endpoint must not wait for it.
	c := New(Options{Client: e.Client(), Self: old.Self(), ClusterID: "test", LeaseTTL: time.Hour})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Register(context.Background()); err != nil {
		t.Fatalf("re-register after crash: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitCoordinators(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, "all shards", func() bool { return ownedCount(c) == c.Shards() })
}

func TestShardsSpreadAndMove(t *testing.T) {
	e := clustertest.Start(t)
	c1 := startBroker(t, e, 1, true)
	c2 := startBroker(t, e, 2, true)
	waitFor(t, c1, "two brokers", func() bool { return len(c1.Brokers()) == 2 })
	waitFor(t, c2, "two brokers", func() bool { return len(c2.Brokers()) == 2 })
	// Every shard ends up owned by its preferred broker.
	settled := func(c *Cluster) func() bool {
		return func() bool {
			for s := 0; s < c.Shards(); s++ {
				b, _, ok := c.ShardOwner(s)
				if pref, _ := peer.Owner(shardHashKey(s), c.Brokers()); !ok || b.NodeID != pref.NodeID {
					return false
				}
				if _, mine := c.OwnedShard(s); mine != (b.NodeID == c.Self().NodeID) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, c1, "shards settled", settled(c1))
	waitFor(t, c2, "shards settled", settled(c2))
	n1, n2 := ownedCount(c1), ownedCount(c2)
	if n1+n2 != c1.Shards() || n1 == 0 || n2 == 0 {
		t.Fatalf("owned %d + %d, want a split of %d", n1, n2, c1.Shards())
	}
	// Leaders agree between brokers.
	var topic [16]byte
	topic[0] = 7
	for p := int32(0); p < 20; p++ {
		if c1.Leader(topic, p) != c2.Leader(topic, p) {
			t.Fatalf("leaders disagree for partition %d", p)
		}
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c1, "all shards after close", func() bool { return ownedCount(c1) == c1.Shards() })
	if got := c1.Brokers(); len(got) != 1 {
		t.Fatalf("brokers after close = %+v", got)
	}
}

// TestRejoinWaitsForCatchUp: a broker whose lease was lost leaves the live
// set, reports unhealthy and owns no shard until Options.CatchUp has
// returned; only then does it register again (DESIGN §5a rule 7).
func TestRejoinWaitsForCatchUp(t *testing.T) {
	e := clustertest.Start(t)
	called := make(chan struct{}, 1)
	release := make(chan struct{})
	c := New(Options{Client: e.Client(), Self: peer.Broker{NodeID: 1, Host: "127.0.0.1", Port: 9093}, ClusterID: "test", LeaseTTL: 2 * time.Second,
		CatchUp: func(ctx context.Context) error {
			select {
			case called <- struct{}{}:
			default:
			}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	other := startBroker(t, e, 2, true)
	live := func(cl *Cluster, id int32) bool {
		for _, b := range cl.Brokers() {
			if b.NodeID == id {
				return true
			}
		}
		return false
	}
	waitFor(t, other, "broker 1 live", func() bool { return live(other, 1) })
	waitFor(t, c, "shards owned", func() bool { return ownedCount(c) > 0 })

	// The lease ends as it does when etcd has not heard from the broker
	// for its TTL.
	c.mu.RLock()
	lease := c.lease
	c.mu.RUnlock()
	if _, err := e.Client().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-ctx.Done():
		t.Fatal("CatchUp never called after the lease was lost")
	}
	waitFor(t, other, "broker 1 gone", func() bool { return !live(other, 1) })
	// Well past a reconcile, a re-registration and a lease's TTL (a lease
	// granted before the catch-up would expire meanwhile), still out.
	time.Sleep(5 * time.Second)
	if c.Healthy() {
		t.Fatal("healthy before catching up")
	}
	if n := ownedCount(c); n != 0 {
		t.Fatalf("owns %d shards before catching up", n)
	}
	resp, err := e.Client().Get(ctx, c.brokerKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatal("registered again before catching up")
	}

	close(release)
	waitFor(t, c, "healthy again", c.Healthy)
	waitFor(t, other, "broker 1 back", func() bool { return live(other, 1) })
	waitFor(t, c, "shards owned again", func() bool { return ownedCount(c) > 0 })
}

package groups

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/cluster"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/peer"
)

type node struct {
	cl *cluster.Cluster
	co *Coordinator
}

func startNode(t *testing.T, e *clustertest.Etcd, id int32) *node {
	t.Helper()
	cli := e.Client()
	cl := cluster.New(cluster.Options{Client: cli, Self: peer.Broker{NodeID: id, Host: "127.0.0.1", Port: 9000 + id}, LeaseTTL: 2 * time.Second})
	ctx := context.Background()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Register(ctx); err != nil {
		t.Fatal(err)
	}
	co := New(Options{Client: cli, Cluster: cl, MinSessionTimeout: time.Millisecond,
		TopicExists: func(topic string, p int32) bool { return topic != "missing" }})
	if err := co.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n := &node{cl: cl, co: co}
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) close() {
	_ = n.co.Close()
	_ = n.cl.Close()
}

// waitOwner waits until n coordinates group (shard owned and loaded).
func waitOwner(t *testing.T, n *node, group string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		ch := n.cl.Changes()
		n.co.reconcile(context.Background())
		g, code := n.co.lookup(group, false)
		if g != nil {
			g.mu.Unlock()
		}
		if code == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("node %d never became coordinator of %q (code %d)", n.cl.Self().NodeID, group, code)
		}
	}
}

func joinReq(group, member string, instance *string, session time.Duration, protos ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group, r.MemberID, r.InstanceID = group, member, instance
	r.SessionTimeoutMillis = int32(session.Milliseconds())
	r.RebalanceTimeoutMillis = int32(session.Milliseconds())
	r.ProtocolType = "consumer"
	for _, p := range protos {
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name, jp.Metadata = p, []byte("md-"+p)
		r.Protocols = append(r.Protocols, jp)
	}
	return r
}

func join(t *testing.T, co *Coordinator, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return co.JoinGroup(ctx, req)
}

// joinNew performs the KIP-394 two-step join and returns the response.
func joinNew(t *testing.T, co *Coordinator, group string, session time.Duration) *kmsg.JoinGroupResponse {
	t.Helper()
	r := join(t, co, joinReq(group, "", nil, session, "range"))
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		t.Fatalf("first join: code %d member %q, want MEMBER_ID_REQUIRED", r.ErrorCode, r.MemberID)
	}
	return join(t, co, joinReq(group, r.MemberID, nil, session, "range"))
}

func syncReq(group, member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, member, gen
	for m, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = m, []byte(a)
		r.GroupAssignment = append(r.GroupAssignment, ga)
	}
	return r
}

func heartbeat(co *Coordinator, group, member string, gen int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, member, gen
	return co.Heartbeat(context.Background(), r).ErrorCode
}

func describe(t *testing.T, co *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 5
	r.Groups = []string{group}
	return co.DescribeGroups(context.Background(), r).Groups[0]
}

func codeName(c int16) string {
	if c == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(c).Error()
}

func expectCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %s, want %s", what, codeName(got), codeName(want))
	}
}

func TestRebalanceLifecycle(t *testing.T) {
	e := clustertest.Start(t)
	n := startNode(t, e, 1)
	const group = "g1"
	waitOwner(t, n, group)
	co := n.co
	session := 5 * time.Second

	// One member: join completes at once, it leads.
	a := joinNew(t, co, group, session)
	expectCode(t, "join a", a.ErrorCode, 0)
	if a.LeaderID != a.MemberID || a.Generation != 1 || *a.Protocol != "range" || len(a.Members) != 1 {
		t.Fatalf("join a: %+v", a)
	}
	s := co.SyncGroup(context.Background(), syncReq(group, a.MemberID, 1, map[string]string{a.MemberID: "A1"}))
	expectCode(t, "sync a", s.ErrorCode, 0)
	if string(s.MemberAssignment) != "A1" {
		t.Fatalf("sync a assignment %q", s.MemberAssignment)
	}
	expectCode(t, "heartbeat a", heartbeat(co, group, a.MemberID, 1), 0)
	if d := describe(t, co, group); d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "A1" {
		t.Fatalf("describe: %+v", d)
	}

	// Second member: a rebalance starts; a learns through its heartbeat.
	first := join(t, co, joinReq(group, "", nil, session, "range"))
	var wg sync.WaitGroup
	var b *kmsg.JoinGroupResponse
	wg.Add(1)
	go func() {
		defer wg.Done()
		b = join(t, co, joinReq(group, first.MemberID, nil, session, "range"))
	}()
	waitState(t, co, group, "PreparingRebalance")
	expectCode(t, "heartbeat during rebalance", heartbeat(co, group, a.MemberID, 1), kerr.RebalanceInProgress.Code)
	a2 := join(t, co, joinReq(group, a.MemberID, nil, session, "range"))
	wg.Wait()
	expectCode(t, "rejoin a", a2.ErrorCode, 0)
	expectCode(t, "join b", b.ErrorCode, 0)
	if a2.Generation != 2 || b.Generation != 2 || a2.LeaderID != a.MemberID || len(a2.Members) != 2 || len(b.Members) != 0 {
		t.Fatalf("gen 2: a=%+v b=%+v", a2, b)
	}
	expectCode(t, "old generation heartbeat", heartbeat(co, group, a.MemberID, 1), kerr.IllegalGeneration.Code)

	// Follower syncs first and waits for the leader.
	var bs *kmsg.SyncGroupResponse
	wg.Add(1)
	go func() {
		defer wg.Done()
		bs = co.SyncGroup(context.Background(), syncReq(group, b.MemberID, 2, nil))
	}()
	as := co.SyncGroup(context.Background(), syncReq(group, a.MemberID, 2, map[string]string{a.MemberID: "A2", b.MemberID: "B2"}))
	wg.Wait()
	expectCode(t, "sync leader", as.ErrorCode, 0)
	expectCode(t, "sync follower", bs.ErrorCode, 0)
	if string(as.MemberAssignment) != "A2" || string(bs.MemberAssignment) != "B2" {
		t.Fatalf("assignments %q %q", as.MemberAssignment, bs.MemberAssignment)
	}

	// b leaves; a rejoins alone in generation 3.
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = b.MemberID
	unknown := kmsg.NewLeaveGroupRequestMember()
	unknown.MemberID = "nobody"
	lr.Members = []kmsg.LeaveGroupRequestMember{lm, unknown}
	lresp := co.LeaveGroup(context.Background(), lr)
	expectCode(t, "leave b", lresp.Members[0].ErrorCode, 0)
	expectCode(t, "leave unknown", lresp.Members[1].ErrorCode, kerr.UnknownMemberID.Code)
	expectCode(t, "heartbeat after leave", heartbeat(co, group, a.MemberID, 2), kerr.RebalanceInProgress.Code)
	a3 := join(t, co, joinReq(group, a.MemberID, nil, session, "range"))
	if a3.ErrorCode != 0 || a3.Generation != 3 {
		t.Fatalf("rejoin after leave: %+v", a3)
	}
	expectCode(t, "heartbeat left member", heartbeat(co, group, b.MemberID, 3), kerr.UnknownMemberID.Code)
}

func waitState(t *testing.T, co *Coordinator, group, state string) {
	t.Helper()
	// The state change happens inside a concurrent JoinGroup; there is no
	// event to wait on from outside, so yield briefly between checks.
	deadline := time.Now().Add(10 * time.Second)
	for describe(t, co, group).State != state {
		if time.Now().After(deadline) {
			t.Fatalf("group never reached %s", state)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestJoinErrors(t *testing.T) {
	e := clustertest.Start(t)
	n := startNode(t, e, 1)
	const group = "g-err"
	waitOwner(t, n, group)
	co := n.co
	co.opts.MinSessionTimeout = 100 * time.Millisecond
	a := joinNew(t, co, group, time.Second)
	expectCode(t, "join", a.ErrorCode, 0)

	cases := []struct {
		name string
		req  *kmsg.JoinGroupRequest
		want int16
	}{
		{"session too small", joinReq(group, "", nil, 10*time.Millisecond, "range"), kerr.InvalidSessionTimeout.Code},
		{"session too large", joinReq(group, "", nil, time.Hour, "range"), kerr.InvalidSessionTimeout.Code},
		{"no protocols", joinReq(group, "", nil, time.Second), kerr.InconsistentGroupProtocol.Code},
		{"no common protocol", joinReq(group, "", nil, time.Second, "roundrobin"), kerr.InconsistentGroupProtocol.Code},
		{"unknown member", joinReq(group, "ghost", nil, time.Second, "range"), kerr.UnknownMemberID.Code},
		{"unknown member new group", joinReq("fresh", "ghost", nil, time.Second, "range"), kerr.UnknownMemberID.Code},
		{"empty group id", joinReq("", "", nil, time.Second, "range"), kerr.InvalidGroupID.Code},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Group == "fresh" {
				waitOwner(t, n, "fresh")
			}
			expectCode(t, tc.name, join(t, co, tc.req).ErrorCode, tc.want)
		})
	}
	expectCode(t, "sync bad generation", co.SyncGroup(context.Background(), syncReq(group, a.MemberID, 7, nil)).ErrorCode, kerr.IllegalGeneration.Code)
	sr := syncReq(group, a.MemberID, a.Generation, nil)
	other := "sticky"
	sr.Protocol = &other
	expectCode(t, "sync wrong protocol", co.SyncGroup(context.Background(), sr).ErrorCode, kerr.InconsistentGroupProtocol.Code)
	expectCode(t, "sync unknown member", co.SyncGroup(context.Background(), syncReq(group, "ghost", a.Generation, nil)).ErrorCode, kerr.UnknownMemberID.Code)
}

func TestSessionExpiry(t *testing.T) {
	e := clustertest.Start(t)
	n := startNode(t, e, 1)
	const group = "g-exp"
	waitOwner(t, n, group)
	co := n.co
	a := joinNew(t, co, group, 50*time.Millisecond)
	expectCode(t, "join", a.ErrorCode, 0)
	s := co.SyncGroup(context.Background(), syncReq(group, a.MemberID, a.Generation, map[string]string{a.MemberID: "x"}))
	expectCode(t, "sync", s.ErrorCode, 0)
	// No heartbeats: the member expires and the group empties.
	waitState(t, co, group, "Empty")
	expectCode(t, "heartbeat after expiry", heartbeat(co, group, a.MemberID, a.Generation), kerr.UnknownMemberID.Code)
	d := describe(t, co, group)
	if len(d.Members) != 0 {
		t.Fatalf("members after expiry: %+v", d.Members)
	}
}

func TestStaticMembership(t *testing.T) {
	e := clustertest.Start(t)
	n := startNode(t, e, 1)
	const group = "g-static"
	waitOwner(t, n, group)
	co := n.co
	inst := "instance-1"
	a := join(t, co, joinReq(group, "", &inst, 5*time.Second, "range"))
	expectCode(t, "static join", a.ErrorCode, 0)
	s := co.SyncGroup(context.Background(), syncReq(group, a.MemberID, a.Generation, map[string]string{a.MemberID: "S"}))
	expectCode(t, "sync", s.ErrorCode, 0)

	// Restarted instance rejoins without a member id: new id, same generation.
	a2 := join(t, co, joinReq(group, "", &inst, 5*time.Second, "range"))
	expectCode(t, "static rejoin", a2.ErrorCode, 0)
	if a2.MemberID == a.MemberID || a2.Generation != a.Generation || !a2.SkipAssignment {
		t.Fatalf("static rejoin: %+v (old %q gen %d)", a2, a.MemberID, a.Generation)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = group, a.MemberID, a.Generation, &inst
	expectCode(t, "old id fenced", co.Heartbeat(context.Background(), hb).ErrorCode, kerr.FencedInstanceID.Code)
	s2 := co.SyncGroup(context.Background(), syncReq(group, a2.MemberID, a2.Generation, nil))
	if s2.ErrorCode != 0 || string(s2.MemberAssignment) != "S" {
		t.Fatalf("sync after static rejoin: %+v", s2)
	}
}

func commitReq(group, member string, gen int32, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 8
	r.Group, r.MemberID, r.Generation = group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		md := "m"
		rp.Metadata = &md
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return r
}

func fetchAll(co *Coordinator, group string) (map[string]map[int32]int64, int16) {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	r.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	resp := co.OffsetFetch(context.Background(), r)
	out := map[string]map[int32]int64{}
	for _, t := range resp.Groups[0].Topics {
		out[t.Topic] = map[int32]int64{}
		for _, p := range t.Partitions {
			out[t.Topic][p.Partition] = p.Offset
		}
	}
	return out, resp.Groups[0].ErrorCode
}

func TestOffsetsPersistAcrossRestart(t *testing.T) {
	e := clustertest.Start(t)
	n := startNode(t, e, 1)
	const group = "g-off"
	waitOwner(t, n, group)
	co := n.co
	resp := co.OffsetCommit(context.Background(), commitReq(group, "", -1, "t1", map[int32]int64{0: 10, 1: 20}))
	for _, p := range resp.Topics[0].Partitions {
		expectCode(t, "simple commit", p.ErrorCode, 0)
	}
	waitOwner(t, n, "nogroup")
	waitOwner(t, n, "g-stable")
	missing := co.OffsetCommit(context.Background(), commitReq(group, "", -1, "missing", map[int32]int64{0: 1}))
	expectCode(t, "unknown topic", missing.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	expectCode(t, "commit with generation to unknown group",
		co.OffsetCommit(context.Background(), commitReq("nogroup", "m", 3, "t1", map[int32]int64{0: 1})).Topics[0].Partitions[0].ErrorCode,
		kerr.IllegalGeneration.Code)

	// Also a real group with a stable member.
	a := joinNew(t, co, "g-stable", 30*time.Second)
	co.SyncGroup(context.Background(), syncReq("g-stable", a.MemberID, a.Generation, map[string]string{a.MemberID: "asg"}))
	expectCode(t, "member commit",
		co.OffsetCommit(context.Background(), commitReq("g-stable", a.MemberID, a.Generation, "t2", map[int32]int64{3: 33})).Topics[0].Partitions[0].ErrorCode, 0)
	expectCode(t, "stale generation commit",
		co.OffsetCommit(context.Background(), commitReq("g-stable", a.MemberID, a.Generation+1, "t2", map[int32]int64{3: 34})).Topics[0].Partitions[0].ErrorCode,
		kerr.IllegalGeneration.Code)

	n.close()
	n2 := startNode(t, e, 1)
	waitOwner(t, n2, group)
	got, code := fetchAll(n2.co, group)
	expectCode(t, "fetch", code, 0)
	if got["t1"][0] != 10 || got["t1"][1] != 20 || len(got) != 1 {
		t.Fatalf("offsets after restart: %v", got)
	}
	waitOwner(t, n2, "g-stable")
	d := describe(t, n2.co, "g-stable")
	if d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "asg" {
		t.Fatalf("group after restart: %+v", d)
	}
	got, _ = fetchAll(n2.co, "g-stable")
	if got["t2"][3] != 33 {
		t.Fatalf("member offsets after restart: %v", got)
	}
	// The restored member keeps heartbeating to the new coordinator.
	expectCode(t, "heartbeat after restart", heartbeat(n2.co, "g-stable", a.MemberID, a.Generation), 0)
}

func TestCoordinatorMove(t *testing.T) {
	e := clustertest.Start(t)
	n1 := startNode(t, e, 1)
	n2 := startNode(t, e, 2)
	// Find a group whose shard settles on broker 1, then fail broker 1.
	group := ""
	for i := 0; group == ""; i++ {
		g := "move-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		b, _, ok := n1.cl.ShardOwner(n1.cl.ShardFor(g))
		_ = b
		if ok || i > 600 {
			group = g
		}
	}
	owner := n1
	waitAnyOwner := func() *node {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for _, n := range []*node{n1, n2} {
				n.co.reconcile(context.Background())
				if g, code := n.co.lookup(group, false); code == 0 {
					if g != nil {
						g.mu.Unlock()
					}
					return n
				}
			}
			select {
			case <-n1.cl.Changes():
			case <-n2.cl.Changes():
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Fatalf("no coordinator for %q", group)
		return nil
	}
	owner = waitAnyOwner()
	other := n1
	if owner == n1 {
		other = n2
	}
	expectCode(t, "non-owner answers NOT_COORDINATOR",
		other.co.OffsetCommit(context.Background(), commitReq(group, "", -1, "t", map[int32]int64{0: 5})).Topics[0].Partitions[0].ErrorCode,
		kerr.NotCoordinator.Code)
	expectCode(t, "commit at owner",
		owner.co.OffsetCommit(context.Background(), commitReq(group, "", -1, "t", map[int32]int64{0: 5, 1: 6})).Topics[0].Partitions[0].ErrorCode, 0)
	owner.close()
	waitOwner(t, other, group)
	got, code := fetchAll(other.co, group)
	expectCode(t, "fetch after move", code, 0)
	if got["t"][0] != 5 || got["t"][1] != 6 {
		t.Fatalf("offsets after move: %v", got)
	}
	b, _ := other.co.Coordinator(context.Background(), group, 0)
	if b.NodeID != other.cl.Self().NodeID {
		t.Fatalf("FindCoordinator after move = %d", b.NodeID)
	}
}

// staleShards claims ownership with a revision that is no longer the owner
// key's: a broker that lost its shard but has not noticed yet.
type staleShards struct {
	*cluster.Cluster
	rev int64
}

func (s staleShards) OwnedShard(int) (int64, bool) { return s.rev, true }

func TestStaleOwnerWriteFenced(t *testing.T) {
	e := clustertest.Start(t)
	n := startNode(t, e, 1)
	const group = "g-fence"
	waitOwner(t, n, group)
	shardID := n.cl.ShardFor(group)
	rev, _ := n.cl.OwnedShard(shardID)

	cli := e.Client()
	stale := New(Options{Client: cli, Cluster: staleShards{Cluster: n.cl, rev: rev - 1}, MinSessionTimeout: time.Millisecond})
	if err := stale.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stale.Close() })
	resp := stale.OffsetCommit(context.Background(), commitReq(group, "", -1, "t", map[int32]int64{0: 99}))
	expectCode(t, "stale owner commit", resp.Topics[0].Partitions[0].ErrorCode, kerr.NotCoordinator.Code)
	kv, err := cli.Get(context.Background(), n.co.shardPrefix(shardID), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if kv.Count != 0 {
		t.Fatalf("stale owner wrote %d keys", kv.Count)
	}
}

func TestOffsetDeleteAndDeleteGroups(t *testing.T) {
	e := clustertest.Start(t)
	n := startNode(t, e, 1)
	co := n.co
	for _, g := range []string{"del-a", "del-b"} {
		waitOwner(t, n, g)
	}
	co.OffsetCommit(context.Background(), commitReq("del-a", "", -1, "t", map[int32]int64{0: 1, 1: 2}))
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "del-a"
	ot := kmsg.NewOffsetDeleteRequestTopic()
	ot.Topic = "t"
	op := kmsg.NewOffsetDeleteRequestTopicPartition()
	op.Partition = 0
	ot.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{op}
	od.Topics = []kmsg.OffsetDeleteRequestTopic{ot}
	odr := co.OffsetDelete(context.Background(), od)
	expectCode(t, "offset delete", odr.ErrorCode, 0)
	got, _ := fetchAll(co, "del-a")
	if _, ok := got["t"][0]; ok || got["t"][1] != 2 {
		t.Fatalf("after offset delete: %v", got)
	}

	// A non-empty group cannot be deleted; an empty one can.
	a := joinNew(t, co, "del-b", 30*time.Second)
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Version = 2
	dg.Groups = []string{"del-a", "del-b", "nope"}
	waitOwner(t, n, "nope")
	dr := co.DeleteGroups(context.Background(), dg)
	expectCode(t, "delete empty", dr.Groups[0].ErrorCode, 0)
	expectCode(t, "delete non-empty", dr.Groups[1].ErrorCode, kerr.NonEmptyGroup.Code)
	expectCode(t, "delete missing", dr.Groups[2].ErrorCode, kerr.GroupIDNotFound.Code)
	got, _ = fetchAll(co, "del-a")
	if len(got) != 0 {
		t.Fatalf("offsets after delete: %v", got)
	}

	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 5
	lg.StatesFilter = []string{"completingrebalance"}
	lr := co.ListGroups(context.Background(), lg)
	if len(lr.Groups) != 1 || lr.Groups[0].Group != "del-b" || lr.Groups[0].GroupType != "classic" {
		t.Fatalf("list groups: %+v (member %s)", lr.Groups, a.MemberID)
	}
}

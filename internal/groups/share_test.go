package groups

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/cluster"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/peer"
	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
)

// fakeStates is an in-memory ShareStates: Initialize starts a partition at
// hwm (share.auto.offset.reset=latest).
type fakeStates struct {
	mu    sync.Mutex
	hwm   int64
	start map[share.Key]int64
	inits [][]share.Key
	fail  error
	// released counts ReleaseMember calls per "member topic/partition".
	released map[string]int
}

func newFakeStates() *fakeStates { return &fakeStates{start: map[share.Key]int64{}} }

func (f *fakeStates) Initialize(_ context.Context, keys []share.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.inits = append(f.inits, slices.Clone(keys))
	for _, k := range keys {
		if _, ok := f.start[k]; !ok {
			f.start[k] = f.hwm
		}
	}
	return nil
}

func (f *fakeStates) StartOffsets(_ context.Context, group string) ([]share.PartitionOffset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var out []share.PartitionOffset
	for k, off := range f.start {
		if k.Group == group {
			out = append(out, share.PartitionOffset{Topic: k.Topic, Partition: k.Partition, StartOffset: off, LeaderEpoch: 0, Lag: f.hwm - off})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return string(out[i].Topic[:]) < string(out[j].Topic[:])
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

func (f *fakeStates) SetStartOffset(_ context.Context, key share.Key, offset int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.start[key] = offset
	return nil
}

func (f *fakeStates) DeleteState(_ context.Context, group string, topic *stream.TopicID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	for k := range f.start {
		if k.Group == group && (topic == nil || k.Topic == *topic) {
			delete(f.start, k)
		}
	}
	return nil
}

func (f *fakeStates) ReleaseMember(_ context.Context, key share.Key, member string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released == nil {
		f.released = map[string]int{}
	}
	f.released[fmt.Sprintf("%s %s/%d", member, key.Group, key.Partition)]++
	return nil
}

// releasedBy lists the partitions released for member, sorted.
func (f *fakeStates) releasedBy(member string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.released {
		if rest, ok := strings.CutPrefix(k, member+" "); ok {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

func (f *fakeStates) get(k share.Key) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	off, ok := f.start[k]
	return off, ok
}

func (f *fakeStates) setHWM(h int64) {
	f.mu.Lock()
	f.hwm = h
	f.mu.Unlock()
}

// shareTopics are the live topics of the share tests.
var shareTopics = []topicMeta{testTopic(1, "t1", 1), testTopic(2, "t2", 8), testTopic(3, "t3", 3)}

type shareEnv struct {
	e       *clustertest.Etcd
	states  *fakeStates
	configs *GroupConfigStore
	session time.Duration
}

func newShareEnv(t *testing.T) *shareEnv {
	t.Helper()
	e := clustertest.Start(t)
	return &shareEnv{e: e, states: newFakeStates(), configs: openConfigStore(t, e), session: 30 * time.Second}
}

func (env *shareEnv) start(t *testing.T, id int32) *node {
	t.Helper()
	cli := env.e.Client()
	cl := cluster.New(cluster.Options{Client: cli, Self: peer.Broker{NodeID: id, Host: "127.0.0.1", Port: 9000 + id}, LeaseTTL: 2 * time.Second})
	ctx := context.Background()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Register(ctx); err != nil {
		t.Fatal(err)
	}
	topics := func() []stream.TopicInfo {
		var out []stream.TopicInfo
		for _, tm := range shareTopics {
			out = append(out, stream.TopicInfo{ID: tm.ID, Name: tm.Name, Partitions: tm.Partitions})
		}
		return out
	}
	co := New(Options{Client: cli, Cluster: cl, Topics: topics, ShareStates: env.states, GroupConfigs: env.configs,
		ShareSessionTimeout: env.session, MinSessionTimeout: time.Millisecond,
		TopicName: func(id stream.TopicID) (string, bool) {
			for _, tm := range shareTopics {
				if tm.ID == id {
					return tm.Name, true
				}
			}
			return "", false
		},
		TopicID: func(name string) (stream.TopicID, bool) {
			for _, tm := range shareTopics {
				if tm.Name == name {
					return tm.ID, true
				}
			}
			return stream.TopicID{}, false
		},
	})
	if err := co.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n := &node{cl: cl, co: co}
	t.Cleanup(func() { n.close() })
	return n
}

func shareHB(co *Coordinator, group, member string, epoch int32, topics ...string) *kmsg.ShareGroupHeartbeatResponse {
	r := kmsg.NewPtrShareGroupHeartbeatRequest()
	r.Version = 1
	r.GroupID, r.MemberID, r.MemberEpoch = group, member, epoch
	if topics != nil {
		r.SubscribedTopicNames = topics
	}
	return co.ShareGroupHeartbeat(context.Background(), r)
}

// assigned renders a heartbeat's assignment as "t2:0,1 t3:2" (topic names
// from shareTopics); "-" when the response carries none.
func assigned(r *kmsg.ShareGroupHeartbeatResponse) string {
	if r.Assignment == nil {
		return "-"
	}
	var parts []string
	for _, tp := range r.Assignment.TopicPartitions {
		name := "?"
		for _, tm := range shareTopics {
			if tm.ID == tp.TopicID {
				name = tm.Name
			}
		}
		ps := slices.Clone(tp.Partitions)
		slices.Sort(ps)
		var s []string
		for _, p := range ps {
			s = append(s, fmt.Sprint(p))
		}
		parts = append(parts, name+":"+strings.Join(s, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func describeShare(t *testing.T, co *Coordinator, group string) kmsg.ShareGroupDescribeResponseGroup {
	t.Helper()
	r := kmsg.NewPtrShareGroupDescribeRequest()
	r.GroupIDs = []string{group}
	return co.ShareGroupDescribe(context.Background(), r).Groups[0]
}

func listGroups(co *Coordinator, types ...string) map[string]kmsg.ListGroupsResponseGroup {
	r := kmsg.NewPtrListGroupsRequest()
	r.Version = 5
	r.TypesFilter = types
	out := map[string]kmsg.ListGroupsResponseGroup{}
	for _, g := range co.ListGroups(context.Background(), r).Groups {
		out[g.Group] = g
	}
	return out
}

func TestShareAssignorBalance(t *testing.T) {
	t1, t2, t3 := shareTopics[0], shareTopics[1], shareTopics[2]
	members := func(n int, topics ...topicMeta) map[string][]topicMeta {
		out := map[string][]topicMeta{}
		for i := range n {
			out[fmt.Sprintf("m%d", i)] = topics
		}
		return out
	}
	cases := []struct {
		name string
		subs map[string][]topicMeta
		// sharing is how many members each partition must have.
		sharing int
		// minLoad and maxLoad bound each member's partition count.
		minLoad, maxLoad int
	}{
		{"1 partition 8 members", members(8, t1), 8, 1, 1},
		{"8 partitions 3 members", members(3, t2), 1, 2, 3},
		{"8 partitions 8 members", members(8, t2), 1, 1, 1},
		{"3 partitions 5 members", members(5, t3), 2, 1, 2},
		{"2 topics 11 partitions 4 members", members(4, t2, t3), 1, 2, 3},
		{"2 topics 1+3 partitions 6 members", members(6, t1, t3), 2, 1, 2},
		{"1 member", members(1, t2, t3), 1, 11, 11},
		// Topic by topic: t2 is split between a and c, t3 between b and c,
		// the bigger share of t3 going to b, which has less so far.
		{"different subscriptions", map[string][]topicMeta{"a": {t2}, "b": {t3}, "c": {t2, t3}}, 1, 2, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := func(got map[string]assignment) {
				t.Helper()
				holders := map[tp]int{}
				for id, a := range got {
					n := a.size()
					if n < tc.minLoad || n > tc.maxLoad {
						t.Fatalf("member %s has %d partitions, want %d..%d: %v", id, n, tc.minLoad, tc.maxLoad, got)
					}
					for tid, ps := range a {
						for _, p := range ps {
							holders[tp{tid, p}]++
							subscribed := false
							for _, tm := range tc.subs[id] {
								subscribed = subscribed || tm.ID == tid
							}
							if !subscribed {
								t.Fatalf("member %s got partition %d of a topic it does not subscribe to", id, p)
							}
						}
					}
				}
				for _, tms := range tc.subs {
					for _, tm := range tms {
						for p := range tm.Partitions {
							if h := holders[tp{tm.ID, p}]; h != tc.sharing {
								t.Fatalf("%s/%d has %d members, want %d: %v", tm.Name, p, h, tc.sharing, got)
							}
						}
					}
				}
			}
			first := assignSimple(tc.subs, nil)
			check(first)
			// Deterministic, and stable when nothing changed.
			if again := assignSimple(tc.subs, first); !sameTarget(again, first) {
				t.Fatalf("reassignment moved partitions: %v -> %v", first, again)
			}
			// A member leaving: the rest keep what they had.
			if len(tc.subs) > 1 {
				ids := make([]string, 0, len(tc.subs))
				for id := range tc.subs {
					ids = append(ids, id)
				}
				sort.Strings(ids)
				rest := map[string][]topicMeta{}
				for _, id := range ids[1:] {
					rest[id] = tc.subs[id]
				}
				after := assignSimple(rest, first)
				for id, a := range after {
					if first[id].minus(a).size() > 0 && a.size() >= first[id].size() {
						t.Fatalf("member %s lost partitions without need: %v -> %v", id, first[id], a)
					}
				}
			}
		})
	}
}

func sameTarget(a, b map[string]assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		if !x.equal(b[id]) {
			return false
		}
	}
	return true
}

func TestShareGroupHeartbeatLifecycle(t *testing.T) {
	env := newShareEnv(t)
	n := env.start(t, 1)
	co := n.co
	const group = "sg-life"
	waitOwner(t, n, group)
	env.states.setHWM(42)

	// Join: the assignment names every partition of t2; its share state is
	// initialised first.
	a := shareHB(co, group, "a", 0, "t2")
	expectCode(t, "join a", a.ErrorCode, 0)
	if *a.MemberID != "a" || a.MemberEpoch != 1 || assigned(a) != "t2:0,1,2,3,4,5,6,7" {
		t.Fatalf("join a: member %q epoch %d assignment %s", *a.MemberID, a.MemberEpoch, assigned(a))
	}
	if a.HeartbeatIntervalMillis != int32(DefaultShareHeartbeatInterval.Milliseconds()) {
		t.Fatalf("heartbeat interval %d", a.HeartbeatIntervalMillis)
	}
	for p := range int32(8) {
		if off, ok := env.states.get(share.Key{Group: group, Topic: shareTopics[1].ID, Partition: p}); !ok || off != 42 {
			t.Fatalf("partition %d not initialised at the high watermark before the assignment: %d %v", p, off, ok)
		}
	}
	// A steady heartbeat changes nothing and repeats no assignment.
	a2 := shareHB(co, group, "a", 1)
	expectCode(t, "heartbeat a", a2.ErrorCode, 0)
	if a2.MemberEpoch != 1 || a2.Assignment != nil {
		t.Fatalf("steady heartbeat: epoch %d assignment %s", a2.MemberEpoch, assigned(a2))
	}

	// b joins: the partitions are split, a learns on its next heartbeat.
	env.states.setHWM(50)
	b := shareHB(co, group, "b", 0, "t2", "t1")
	expectCode(t, "join b", b.ErrorCode, 0)
	if b.MemberEpoch != 2 {
		t.Fatalf("join b epoch %d", b.MemberEpoch)
	}
	a3 := shareHB(co, group, "a", 1)
	expectCode(t, "heartbeat a after b joined", a3.ErrorCode, 0)
	if a3.MemberEpoch != 2 || a3.Assignment == nil {
		t.Fatalf("a after b joined: epoch %d assignment %s", a3.MemberEpoch, assigned(a3))
	}
	if got := len(a3.Assignment.TopicPartitions[0].Partitions); got != 4 {
		t.Fatalf("a keeps %d of t2's 8 partitions (%s); b has %s", got, assigned(a3), assigned(b))
	}
	if off, _ := env.states.get(share.Key{Group: group, Topic: shareTopics[0].ID, Partition: 0}); off != 50 {
		t.Fatalf("t1/0 initialised at %d, want 50 (the high watermark when it was first assigned)", off)
	}
	if off, _ := env.states.get(share.Key{Group: group, Topic: shareTopics[1].ID, Partition: 0}); off != 42 {
		t.Fatalf("t2/0 re-initialised: %d", off)
	}

	// Fencing and errors.
	// The previous epoch is accepted (the response that moved a on may have
	// been lost), and the assignment is sent again.
	if r := shareHB(co, group, "a", 1); r.ErrorCode != 0 || r.MemberEpoch != 2 || assigned(r) != assigned(a3) {
		t.Fatalf("heartbeat with the previous epoch: %v epoch %d %s", codeName(r.ErrorCode), r.MemberEpoch, assigned(r))
	}
	expectCode(t, "future epoch", shareHB(co, group, "a", 9).ErrorCode, kerr.FencedMemberEpoch.Code)
	expectCode(t, "unknown member", shareHB(co, group, "ghost", 2).ErrorCode, kerr.UnknownMemberID.Code)
	expectCode(t, "join without topics", shareHB(co, group, "c", 0).ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "empty member id", shareHB(co, group, "", 0, "t2").ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "empty member id leaving", shareHB(co, group, "", -1).ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "epoch -2", shareHB(co, group, "a", -2).ErrorCode, kerr.InvalidRequest.Code)
	expectCode(t, "empty group id", shareHB(co, "", "a", 0, "t2").ErrorCode, kerr.InvalidRequest.Code)
	waitOwner(t, n, "sg-none")
	expectCode(t, "unknown group", shareHB(co, "sg-none", "a", 3).ErrorCode, kerr.UnknownMemberID.Code)
	if _, ok := listGroups(co)["sg-none"]; ok {
		t.Fatalf("a failed heartbeat left a group behind")
	}

	// Describe and list.
	d := describeShare(t, co, group)
	expectCode(t, "describe", d.ErrorCode, 0)
	if d.GroupState != "Stable" || d.GroupEpoch != 2 || d.AssignmentEpoch != 2 || d.Assignor != "simple" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	if m := d.Members[1]; m.MemberID != "b" || !slices.Equal(m.SubscribedTopicNames, []string{"t1", "t2"}) || len(m.Assignment.TopicPartitions) != 2 || m.Assignment.TopicPartitions[0].Topic != "t1" {
		t.Fatalf("describe member b: %+v", m)
	}
	lg, ok := listGroups(co, "share")[group]
	if !ok || lg.GroupType != "share" || lg.ProtocolType != "share" || lg.GroupState != "Stable" {
		t.Fatalf("list share groups: %+v (found %v)", lg, ok)
	}
	if _, ok := listGroups(co, "classic", "consumer")[group]; ok {
		t.Fatalf("a share group listed as classic or consumer")
	}

	// Leave: b's partitions go back to a.
	leave := shareHB(co, group, "b", -1)
	expectCode(t, "leave b", leave.ErrorCode, 0)
	if leave.MemberEpoch != -1 || *leave.MemberID != "b" {
		t.Fatalf("leave: %+v", leave)
	}
	expectCode(t, "leave again", shareHB(co, group, "b", -1).ErrorCode, kerr.UnknownMemberID.Code)
	// What b held is released at once (t1/0 and four partitions of t2).
	if got := env.states.releasedBy("b"); len(got) != 5 || got[0] != group+"/0" {
		t.Fatalf("released for b after its leave: %v", got)
	}
	if got := env.states.releasedBy("a"); len(got) != 0 {
		t.Fatalf("released for a, which stays: %v", got)
	}
	a4 := shareHB(co, group, "a", 2)
	if a4.MemberEpoch != 3 || assigned(a4) != "t2:0,1,2,3,4,5,6,7" {
		t.Fatalf("a after b left: epoch %d assignment %s", a4.MemberEpoch, assigned(a4))
	}
	expectCode(t, "leave a", shareHB(co, group, "a", -1).ErrorCode, 0)
	if d := describeShare(t, co, group); d.GroupState != "Empty" || len(d.Members) != 0 {
		t.Fatalf("describe after all left: %+v", d)
	}
	if lg := listGroups(co)[group]; lg.GroupState != "Empty" || lg.GroupType != "share" {
		t.Fatalf("list after all left: %+v", lg)
	}
}

func TestShareGroupInitializeFailure(t *testing.T) {
	env := newShareEnv(t)
	n := env.start(t, 1)
	const group = "sg-initfail"
	waitOwner(t, n, group)
	env.states.fail = errors.New("etcd down")
	// No assignment is answered before the partitions are initialised, and
	// nothing is kept of the attempt.
	r := shareHB(n.co, group, "a", 0, "t3")
	expectCode(t, "join while the state store fails", r.ErrorCode, kerr.CoordinatorNotAvailable.Code)
	if r.Assignment != nil {
		t.Fatalf("assignment answered without initialised state: %s", assigned(r))
	}
	if _, ok := listGroups(n.co)[group]; ok {
		t.Fatalf("the failed join created the group")
	}
	env.states.fail = nil
	r = shareHB(n.co, group, "a", 0, "t3")
	if r.ErrorCode != 0 || r.MemberEpoch != 1 || assigned(r) != "t3:0,1,2" {
		t.Fatalf("join after recovery: %v epoch %d %s", codeName(r.ErrorCode), r.MemberEpoch, assigned(r))
	}
}

func TestShareGroupSessionExpiry(t *testing.T) {
	env := newShareEnv(t)
	env.session = 150 * time.Millisecond
	n := env.start(t, 1)
	co := n.co
	const group = "sg-exp"
	waitOwner(t, n, group)
	// The group's configs give the heartbeat interval.
	if err := env.configs.AlterGroupConfig(context.Background(), group,
		[]stream.ConfigChange{{Name: config.GroupShareHeartbeatInterval, Value: strp("7000")}}, false, false); err != nil {
		t.Fatal(err)
	}
	a := shareHB(co, group, "a", 0, "t3")
	expectCode(t, "join a", a.ErrorCode, 0)
	if a.HeartbeatIntervalMillis != 7000 {
		t.Fatalf("heartbeat interval %d, want the group's 7000", a.HeartbeatIntervalMillis)
	}
	b := shareHB(co, group, "b", 0, "t3")
	expectCode(t, "join b", b.ErrorCode, 0)
	// a keeps heartbeating, b goes silent and is removed after its session.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := shareHB(co, group, "a", a.MemberEpoch)
		expectCode(t, "heartbeat a", r.ErrorCode, 0)
		a.MemberEpoch = r.MemberEpoch
		if d := describeShare(t, co, group); len(d.Members) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	expectCode(t, "heartbeat of the expired member", shareHB(co, group, "b", b.MemberEpoch).ErrorCode, kerr.UnknownMemberID.Code)
	// Its records are released just after it is removed.
	for wait := time.Now().Add(time.Second); len(env.states.releasedBy("b")) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("nothing released for the expired member b")
		}
	}
	r := shareHB(co, group, "a", a.MemberEpoch)
	if assigned(r) != "t3:0,1,2" && !(r.Assignment == nil && r.MemberEpoch == a.MemberEpoch) {
		t.Fatalf("a after b expired: %s", assigned(r))
	}
	// Then a expires too: the group is empty.
	deadline = time.Now().Add(5 * time.Second)
	for describeShare(t, co, group).GroupState != "Empty" {
		if time.Now().After(deadline) {
			t.Fatalf("a never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShareGroupPersistsAcrossRestart(t *testing.T) {
	env := newShareEnv(t)
	n := env.start(t, 1)
	const group = "sg-restart"
	waitOwner(t, n, group)
	a := shareHB(n.co, group, "a", 0, "t2")
	b := shareHB(n.co, group, "b", 0, "t2")
	a = shareHB(n.co, group, "a", a.MemberEpoch)
	expectCode(t, "a", a.ErrorCode, 0)
	expectCode(t, "b", b.ErrorCode, 0)
	before := describeShare(t, n.co, group)

	n.close()
	n2 := env.start(t, 2)
	waitOwner(t, n2, group)
	after := describeShare(t, n2.co, group)
	if after.GroupEpoch != before.GroupEpoch || after.AssignmentEpoch != before.AssignmentEpoch || len(after.Members) != 2 {
		t.Fatalf("after the move: %+v, before: %+v", after, before)
	}
	for i := range before.Members {
		x, y := before.Members[i], after.Members[i]
		if x.MemberID != y.MemberID || x.MemberEpoch != y.MemberEpoch || fmt.Sprint(x.Assignment.TopicPartitions) != fmt.Sprint(y.Assignment.TopicPartitions) {
			t.Fatalf("member %s changed across the move: %+v -> %+v", x.MemberID, x, y)
		}
	}
	// The members go on heartbeating at the new coordinator without
	// rejoining and keep their assignment.
	r := shareHB(n2.co, group, "a", a.MemberEpoch)
	if r.ErrorCode != 0 || r.MemberEpoch != a.MemberEpoch || r.Assignment != nil {
		t.Fatalf("a at the new coordinator: %v epoch %d %s", codeName(r.ErrorCode), r.MemberEpoch, assigned(r))
	}
	// A broker that lost the shard cannot write: b's leave at the old
	// coordinator is fenced (it was closed; a stale owner is tested with
	// staleShards below).
	stale := New(Options{Client: env.e.Client(), Cluster: staleShards{Cluster: n2.cl, rev: 1}, Topics: n2.co.opts.Topics})
	if err := stale.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	waitOwner(t, &node{cl: n2.cl, co: stale}, group)
	expectCode(t, "stale owner's write", shareHB(stale, group, "b", b.MemberEpoch, "t1").ErrorCode, kerr.NotCoordinator.Code)
	if d := describeShare(t, n2.co, group); len(d.Members[1].SubscribedTopicNames) != 1 || d.Members[1].SubscribedTopicNames[0] != "t2" {
		t.Fatalf("the fenced write changed the group: %+v", d.Members[1])
	}
}

// TestShareAssignorRandomized checks the assignor's invariants over many
// random groups, each starting from a random previous assignment (as after
// members come and go): every partition of a topic is shared by
// ⌈subscribers/partitions⌉ of its subscribers, and within a homogeneous
// group member loads differ by at most one.
func TestShareAssignorRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var topics []topicMeta
	for i := range 5 {
		topics = append(topics, testTopic(byte(10+i), fmt.Sprintf("r%d", i), int32(1+rng.IntN(9))))
	}
	for round := range 500 {
		homogeneous := round%2 == 0
		subs := map[string][]topicMeta{}
		common := pickTopics(rng, topics)
		for i := range 1 + rng.IntN(12) {
			if homogeneous {
				subs[fmt.Sprintf("m%02d", i)] = common
			} else {
				subs[fmt.Sprintf("m%02d", i)] = pickTopics(rng, topics)
			}
		}
		prev := map[string]assignment{}
		for id := range subs {
			a := assignment{}
			for range rng.IntN(6) {
				tm := topics[rng.IntN(len(topics))]
				a.add(tm.ID, rng.Int32N(tm.Partitions+1)) // may name a partition that is gone
			}
			prev[id] = a
		}
		got := assignSimple(subs, prev)
		subscribers := map[stream.TopicID]int{}
		for _, tms := range subs {
			for _, tm := range tms {
				subscribers[tm.ID]++
			}
		}
		holders := map[tp]int{}
		for id, a := range got {
			for tid, ps := range a {
				if !slices.ContainsFunc(subs[id], func(tm topicMeta) bool { return tm.ID == tid }) {
					t.Fatalf("round %d: %s got a topic it does not subscribe to", round, id)
				}
				for _, p := range ps {
					holders[tp{tid, p}]++
				}
			}
		}
		for _, tm := range topics {
			n := subscribers[tm.ID]
			if n == 0 {
				continue
			}
			want := (n + int(tm.Partitions) - 1) / int(tm.Partitions)
			if homogeneous {
				// One pool: every subscribed partition of every topic.
				total := 0
				for _, c := range common {
					total += int(c.Partitions)
				}
				want = (n + total - 1) / total
			}
			for p := range tm.Partitions {
				if h := holders[tp{tm.ID, p}]; h != want {
					t.Fatalf("round %d: %s/%d shared by %d, want %d (%d subscribers): %v", round, tm.Name, p, h, want, n, got)
				}
			}
		}
		if homogeneous {
			lo, hi := 1<<30, 0
			for _, a := range got {
				lo, hi = min(lo, a.size()), max(hi, a.size())
			}
			if hi-lo > 1 {
				t.Fatalf("round %d: loads %d..%d: %v", round, lo, hi, got)
			}
		}
	}
}

func pickTopics(rng *rand.Rand, topics []topicMeta) []topicMeta {
	var out []topicMeta
	for _, tm := range topics {
		if rng.IntN(2) == 0 {
			out = append(out, tm)
		}
	}
	if out == nil {
		out = topics[:1]
	}
	return out
}

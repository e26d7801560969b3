package groups

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
)

func consumerHB(co *Coordinator, group, member string, epoch int32, topics ...string) *kmsg.ConsumerGroupHeartbeatResponse {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch = group, member, epoch
	r.RebalanceTimeoutMillis = 60000
	if epoch == 0 {
		r.SubscribedTopicNames = topics
	}
	return co.ConsumerGroupHeartbeat(context.Background(), r)
}

func TestShareGroupTypeConflicts(t *testing.T) {
	env := newShareEnv(t)
	n := env.start(t, 1)
	co := n.co
	ctx := context.Background()
	for _, g := range []string{"classic", "consumer", "simple", "shared"} {
		waitOwner(t, n, g)
	}
	// Other types first: a share heartbeat finds no share group there.
	a := joinNew(t, co, "classic", 30*time.Second)
	expectCode(t, "classic join", a.ErrorCode, 0)
	expectCode(t, "consumer join", consumerHB(co, "consumer", "k", 0, "t2").ErrorCode, 0)
	expectCode(t, "simple commit", co.OffsetCommit(ctx, commitReq("simple", "", -1, "t2", map[int32]int64{0: 3})).Topics[0].Partitions[0].ErrorCode, 0)
	for _, g := range []string{"classic", "consumer", "simple"} {
		expectCode(t, "share heartbeat on "+g, shareHB(co, g, "s", 0, "t2").ErrorCode, kerr.GroupIDNotFound.Code)
		expectCode(t, "share describe of "+g, describeShare(t, co, g).ErrorCode, kerr.GroupIDNotFound.Code)
		expectCode(t, "share offsets of "+g, describeShareOffsets(co, g, nil).ErrorCode, kerr.GroupIDNotFound.Code)
		expectCode(t, "alter share offsets of "+g, alterShareOffsets(co, g, "t2", 0, 1).ErrorCode, kerr.GroupIDNotFound.Code)
		expectCode(t, "delete share offsets of "+g, deleteShareOffsets(co, g, "t2").ErrorCode, kerr.GroupIDNotFound.Code)
	}
	if d := describe(t, co, "classic"); d.State != "CompletingRebalance" || len(d.Members) != 1 {
		t.Fatalf("the classic group changed: %+v", d)
	}

	// A share group: the other protocols answer as Kafka does.
	s := shareHB(co, "shared", "s", 0, "t2")
	expectCode(t, "share join", s.ErrorCode, 0)
	j := join(t, co, joinReq("shared", "", nil, 30*time.Second, "range"))
	expectCode(t, "classic join of a share group", j.ErrorCode, kerr.InconsistentGroupProtocol.Code)
	expectCode(t, "sync", co.SyncGroup(ctx, syncReq("shared", "s", 1, nil)).ErrorCode, kerr.UnknownMemberID.Code)
	expectCode(t, "heartbeat", heartbeat(co, "shared", "s", 1), kerr.UnknownMemberID.Code)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 5
	lr.Group = "shared"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = "s"
	lr.Members = []kmsg.LeaveGroupRequestMember{lm}
	expectCode(t, "leave", co.LeaveGroup(ctx, lr).Members[0].ErrorCode, kerr.UnknownMemberID.Code)
	expectCode(t, "consumer heartbeat", consumerHB(co, "shared", "k", 0, "t2").ErrorCode, kerr.GroupIDNotFound.Code)
	cd := kmsg.NewPtrConsumerGroupDescribeRequest()
	cd.Groups = []string{"shared"}
	expectCode(t, "consumer describe", co.ConsumerGroupDescribe(ctx, cd).Groups[0].ErrorCode, kerr.GroupIDNotFound.Code)
	expectCode(t, "offset commit", co.OffsetCommit(ctx, commitReq("shared", "", -1, "t2", map[int32]int64{0: 3})).Topics[0].Partitions[0].ErrorCode, kerr.GroupIDNotFound.Code)
	if _, code := fetchAll(co, "shared"); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("offset fetch: %s", codeName(code))
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "shared"
	expectCode(t, "offset delete", co.OffsetDelete(ctx, od).ErrorCode, kerr.GroupIDNotFound.Code)
	for _, v := range []int16{5, 6} {
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Version = v
		r.Groups = []string{"shared"}
		d := co.DescribeGroups(ctx, r).Groups[0]
		want := int16(0)
		if v >= 6 {
			want = kerr.GroupIDNotFound.Code
		}
		if d.State != "Dead" || d.ErrorCode != want || len(d.Members) != 0 {
			t.Fatalf("DescribeGroups v%d of a share group: %+v", v, d)
		}
	}
	// The share group is untouched by all of it.
	r := shareHB(co, "shared", "s", s.MemberEpoch)
	if r.ErrorCode != 0 || r.MemberEpoch != s.MemberEpoch || r.Assignment != nil {
		t.Fatalf("share heartbeat after the other protocols: %v epoch %d", codeName(r.ErrorCode), r.MemberEpoch)
	}
	if lg := listGroups(co)["shared"]; lg.GroupType != "share" || lg.GroupState != "Stable" {
		t.Fatalf("listed as %+v", lg)
	}
}

func describeShareOffsets(co *Coordinator, group string, topics map[string][]int32) kmsg.DescribeShareGroupOffsetsResponseGroup {
	r := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	r.Version = 1
	rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	rg.GroupID = group
	for name, ps := range topics {
		rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
		rt.Topic, rt.Partitions = name, ps
		rg.Topics = append(rg.Topics, rt)
	}
	r.Groups = append(r.Groups, rg)
	return co.DescribeShareGroupOffsets(context.Background(), r).Groups[0]
}

func alterShareOffsets(co *Coordinator, group, topic string, partition int32, offset int64) *kmsg.AlterShareGroupOffsetsResponse {
	r := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	r.GroupID = group
	rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
	rp.Partition, rp.StartOffset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return co.AlterShareGroupOffsets(context.Background(), r)
}

func deleteShareOffsets(co *Coordinator, group string, topics ...string) *kmsg.DeleteShareGroupOffsetsResponse {
	r := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	r.GroupID = group
	for _, name := range topics {
		rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
		rt.Topic = name
		r.Topics = append(r.Topics, rt)
	}
	return co.DeleteShareGroupOffsets(context.Background(), r)
}

// startOffsetsOf renders a describe as topic -> partition -> start offset
// (error codes as negative values below -1000).
func startOffsetsOf(d kmsg.DescribeShareGroupOffsetsResponseGroup) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for _, t := range d.Topics {
		out[t.Topic] = map[int32]int64{}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				out[t.Topic][p.Partition] = -1000 - int64(p.ErrorCode)
				continue
			}
			out[t.Topic][p.Partition] = p.StartOffset
		}
	}
	return out
}

func TestShareGroupOffsetsAdmin(t *testing.T) {
	env := newShareEnv(t)
	n := env.start(t, 1)
	co := n.co
	ctx := context.Background()
	const group = "sg-offsets"
	waitOwner(t, n, group)
	env.states.setHWM(20)

	// Unknown group: describe and delete find nothing; alter creates the
	// empty share group.
	expectCode(t, "describe unknown group", describeShareOffsets(co, group, nil).ErrorCode, kerr.GroupIDNotFound.Code)
	expectCode(t, "delete unknown group", deleteShareOffsets(co, group, "t2").ErrorCode, kerr.GroupIDNotFound.Code)
	ar := alterShareOffsets(co, group, "t2", 3, 8)
	expectCode(t, "alter creates", ar.ErrorCode, 0)
	expectCode(t, "alter partition", ar.Topics[0].Partitions[0].ErrorCode, 0)
	if ar.Topics[0].TopicID != shareTopics[1].ID {
		t.Fatalf("alter response topic id %x", ar.Topics[0].TopicID)
	}
	if lg, ok := listGroups(co, "share")[group]; !ok || lg.GroupState != "Empty" {
		t.Fatalf("the altered group is not listed as an empty share group: %+v", lg)
	}
	expectCode(t, "alter unknown topic", alterShareOffsets(co, group, "nope", 0, 1).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	expectCode(t, "alter unknown partition", alterShareOffsets(co, group, "t2", 8, 1).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	expectCode(t, "alter negative offset", alterShareOffsets(co, group, "t2", 0, -5).Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequest.Code)

	// Describe: all topics, and named ones (-1 where there is no state).
	all := describeShareOffsets(co, group, nil)
	expectCode(t, "describe all", all.ErrorCode, 0)
	if got := startOffsetsOf(all); len(got) != 1 || len(got["t2"]) != 1 || got["t2"][3] != 8 {
		t.Fatalf("describe all: %v", got)
	}
	if all.Topics[0].TopicID != shareTopics[1].ID || all.Topics[0].Partitions[0].Lag != 12 {
		t.Fatalf("describe all: %+v", all.Topics[0])
	}
	named := describeShareOffsets(co, group, map[string][]int32{"t2": {3, 4, 9}, "nope": {0}})
	got := startOffsetsOf(named)
	unknown := -1000 - int64(kerr.UnknownTopicOrPartition.Code)
	if got["t2"][3] != 8 || got["t2"][4] != -1 || got["t2"][9] != unknown || got["nope"][0] != unknown {
		t.Fatalf("describe named: %v", got)
	}

	// A member joins: the altered start offset is kept (Initialize leaves
	// existing state alone), the others start at the high watermark; the
	// group is no longer empty, so alter and delete are refused.
	s := shareHB(co, group, "m", 0, "t2")
	expectCode(t, "join", s.ErrorCode, 0)
	if off, _ := env.states.get(share.Key{Group: group, Topic: shareTopics[1].ID, Partition: 3}); off != 8 {
		t.Fatalf("altered start offset after the join: %d", off)
	}
	if off, _ := env.states.get(share.Key{Group: group, Topic: shareTopics[1].ID, Partition: 4}); off != 20 {
		t.Fatalf("new partition's start offset: %d", off)
	}
	nr := alterShareOffsets(co, group, "t2", 3, 1)
	expectCode(t, "alter non-empty", nr.ErrorCode, kerr.NonEmptyGroup.Code)
	expectCode(t, "alter non-empty partition", nr.Topics[0].Partitions[0].ErrorCode, kerr.NonEmptyGroup.Code)
	expectCode(t, "delete non-empty", deleteShareOffsets(co, group, "t2").ErrorCode, kerr.NonEmptyGroup.Code)
	if off, _ := env.states.get(share.Key{Group: group, Topic: shareTopics[1].ID, Partition: 3}); off != 8 {
		t.Fatalf("a refused alter changed the start offset: %d", off)
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Version = 2
	dg.Groups = []string{group}
	expectCode(t, "delete non-empty group", co.DeleteGroups(ctx, dg).Groups[0].ErrorCode, kerr.NonEmptyGroup.Code)

	// Empty again: delete the topic's state, then a new member starts
	// over from the high watermark of that moment.
	expectCode(t, "leave", shareHB(co, group, "m", s.MemberEpoch, "t2").ErrorCode, 0)
	expectCode(t, "leave", shareHB(co, group, "m", -1).ErrorCode, 0)
	dr := deleteShareOffsets(co, group, "t2", "nope")
	expectCode(t, "delete", dr.ErrorCode, 0)
	expectCode(t, "delete t2", dr.Topics[0].ErrorCode, 0)
	expectCode(t, "delete unknown topic", dr.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	if got := startOffsetsOf(describeShareOffsets(co, group, nil)); len(got) != 0 {
		t.Fatalf("describe after delete: %v", got)
	}
	env.states.setHWM(30)
	s = shareHB(co, group, "m2", 0, "t2")
	expectCode(t, "join after delete", s.ErrorCode, 0)
	if off, _ := env.states.get(share.Key{Group: group, Topic: shareTopics[1].ID, Partition: 3}); off != 30 {
		t.Fatalf("start offset after delete and rejoin: %d, want 30", off)
	}
	expectCode(t, "leave", shareHB(co, group, "m2", -1).ErrorCode, 0)

	// DeleteGroups of the empty share group removes its share state and
	// its group configs.
	if err := env.configs.AlterGroupConfig(ctx, group, []stream.ConfigChange{{Name: config.GroupShareAutoOffsetReset, Value: strp("earliest")}}, false, false); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "delete group", co.DeleteGroups(ctx, dg).Groups[0].ErrorCode, 0)
	if _, ok := env.states.get(share.Key{Group: group, Topic: shareTopics[1].ID, Partition: 3}); ok {
		t.Fatalf("share state kept after DeleteGroups")
	}
	waitConfig(t, env.configs, group, map[string]string{})
	if _, ok := listGroups(co)[group]; ok {
		t.Fatalf("group listed after DeleteGroups")
	}
	expectCode(t, "describe deleted", describeShareOffsets(co, group, nil).ErrorCode, kerr.GroupIDNotFound.Code)
}

func TestConsumerGroupTimeoutsFromGroupConfigs(t *testing.T) {
	env := newShareEnv(t)
	n := env.start(t, 1)
	const group = "cg-configs"
	waitOwner(t, n, group)
	if r := consumerHB(n.co, group, "a", 0, "t2"); r.HeartbeatIntervalMillis != int32(DefaultConsumerHeartbeatInterval.Milliseconds()) {
		t.Fatalf("default interval %d", r.HeartbeatIntervalMillis)
	}
	if err := env.configs.AlterGroupConfig(context.Background(), group, []stream.ConfigChange{
		{Name: config.GroupConsumerHeartbeatInterval, Value: strp("9000")},
		{Name: config.GroupConsumerSessionTimeout, Value: strp("50000")},
	}, false, false); err != nil {
		t.Fatal(err)
	}
	r := consumerHB(n.co, group, "a", 1)
	if r.ErrorCode != 0 || r.HeartbeatIntervalMillis != 9000 {
		t.Fatalf("interval with the group's override: %v %d", codeName(r.ErrorCode), r.HeartbeatIntervalMillis)
	}
	if session, _ := n.co.consumerTimeouts(group); session != 50*time.Second {
		t.Fatalf("session timeout %v", session)
	}
}

func TestShareGroupAPIsAtNonCoordinator(t *testing.T) {
	env := newShareEnv(t)
	n1 := env.start(t, 1)
	n2 := env.start(t, 2)
	// A group whose shard n1 owns once ownership settles.
	var group string
	deadline := time.Now().Add(10 * time.Second)
	for group == "" {
		for i := range 200 {
			g := fmt.Sprintf("nc-%d", i)
			n1.co.reconcile(context.Background())
			if gr, code := n1.co.lookup(g, false); code == 0 {
				if gr != nil {
					gr.mu.Unlock()
				}
				if _, owned := n2.cl.OwnedShard(n2.cl.ShardFor(g)); !owned {
					group = g
					break
				}
			}
		}
		if group == "" && time.Now().After(deadline) {
			t.Fatal("no group settled on broker 1")
		}
	}
	co := n2.co
	want := kerr.NotCoordinator.Code
	expectCode(t, "heartbeat", shareHB(co, group, "a", 0, "t2").ErrorCode, want)
	expectCode(t, "describe", describeShare(t, co, group).ErrorCode, want)
	expectCode(t, "describe offsets", describeShareOffsets(co, group, nil).ErrorCode, want)
	expectCode(t, "alter offsets", alterShareOffsets(co, group, "t2", 0, 1).ErrorCode, want)
	expectCode(t, "delete offsets", deleteShareOffsets(co, group, "t2").ErrorCode, want)
	expectCode(t, "heartbeat at the owner", shareHB(n1.co, group, "a", 0, "t2").ErrorCode, 0)
}

package protocol

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
)

// startShareAuthz starts a share broker whose authorizer is enabled, with
// no ACLs, and topics "a" and "b" beside "q".
func startShareAuthz(t *testing.T) (*shareBroker, *memACLs) {
	t.Helper()
	acls := &memACLs{}
	b := startShare(t, func(o *Options) {
		o.Authorizer = auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true}, acls)
	})
	for _, name := range []string{"a", "b"} {
		if _, err := b.log.CreateTopic(context.Background(), name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	return b, acls
}

func TestShareAuthzFetchAcknowledge(t *testing.T) {
	b, acls := startShareAuthz(t)
	id := b.topic.ID
	b.produce(t, 0, 1)
	c := b.conn(t)

	wantCode(t, "fetch without READ on the group", c.fetch(sfReq("m1", 0, id, 0)).ErrorCode, kerr.GroupAuthorizationFailed)
	wantCode(t, "acknowledge without READ on the group", c.do(saReq("m1", 1, id, 0, 0, 0, share.AckAccept), 2).(*kmsg.ShareAcknowledgeResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	if n := b.srv.shareSessions.len(); n != 0 {
		t.Fatalf("a refused request opened %d sessions", n)
	}

	acls.allow(rGroup, "g", opRead)
	r := c.fetch(sfReq("m1", 0, id, 0))
	wantCode(t, "fetch", r.ErrorCode, nil)
	if rp := sfPart(r, 0); rp == nil || rp.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(rp.AcquiredRecords) != 0 {
		t.Fatalf("partition without READ on the topic: %+v", rp)
	}
	if n := len(b.shares.acquireCalls()); n != 0 {
		t.Fatalf("%d acquisitions for a topic the principal may not read", n)
	}
	r = c.fetch(withAck(sfReq("m1", 1, id), id, 0, 0, 0, share.AckAccept))
	if rp := sfPart(r, 0); rp == nil || rp.AcknowledgeErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("acknowledgement without READ on the topic: %+v", rp)
	}
	sa := c.do(saReq("m1", 2, id, 0, 0, 0, share.AckAccept), 2).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "ShareAcknowledge without READ on the topic", sa.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	acls.allow(rTopic, "q", opRead)
	if got := acquired(c.fetch(sfReq("m1", 3, id, 0)), 0); len(got) != 1 {
		t.Fatalf("with READ on the topic: acquired %v", got)
	}
}

func TestShareAuthzGroupAPIs(t *testing.T) {
	b, acls := startShareAuthz(t)
	g := b.groups

	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = "g", "m1", []string{"a"}
	wantCode(t, "heartbeat without READ on the group", do[*kmsg.ShareGroupHeartbeatResponse](t, b.addr, hb, 1).ErrorCode, kerr.GroupAuthorizationFailed)
	acls.allow(rGroup, "g", opRead)
	wantCode(t, "heartbeat, topic not describable", do[*kmsg.ShareGroupHeartbeatResponse](t, b.addr, hb, 1).ErrorCode, kerr.TopicAuthorizationFailed)
	if got := g.reached(); len(got) != 0 {
		t.Fatalf("refused heartbeats reached the coordinator: %v", got)
	}
	acls.allow(rTopic, "a", opDescribe)
	wantCode(t, "heartbeat", do[*kmsg.ShareGroupHeartbeatResponse](t, b.addr, hb, 1).ErrorCode, nil)
	if got := g.reached(); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("heartbeat reached %v", got)
	}

	// Describe: g2 may not be described; g's member is assigned "b", which
	// the principal may not describe... the fake assigns "a", describable
	// now, and "h" is allowed but reached only once granted.
	dr := kmsg.NewPtrShareGroupDescribeRequest()
	dr.GroupIDs, dr.IncludeAuthorizedOperations = []string{"g", "g2"}, true
	acls.allow(rGroup, "g", opDescribe)
	resp := do[*kmsg.ShareGroupDescribeResponse](t, b.addr, dr, 1)
	if len(resp.Groups) != 2 || resp.Groups[0].GroupID != "g" || resp.Groups[1].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("describe: %+v", resp.Groups)
	}
	wantCode(t, "describe g", resp.Groups[0].ErrorCode, nil)
	if ops := resp.Groups[0].AuthorizedOperations; ops&(1<<int(opRead)) == 0 || ops&(1<<int(opDelete)) != 0 {
		t.Errorf("authorized operations %b", ops)
	}
	if got := g.reached(); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("describe reached %v", got)
	}
	acls.deny(rTopic, "a", opDescribe)
	resp = do[*kmsg.ShareGroupDescribeResponse](t, b.addr, dr, 1)
	if resp.Groups[0].ErrorCode != kerr.TopicAuthorizationFailed.Code || len(resp.Groups[0].Members) != 0 {
		t.Fatalf("group assigned a topic that may not be described: %+v", resp.Groups[0])
	}

	// DescribeShareGroupOffsets: DESCRIBE on the group, then on each topic.
	acls.allow(rTopic, "b", opDescribe)
	dso := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	named := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	named.GroupID = "g"
	for _, tn := range []string{"a", "b"} {
		rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
		rt.Topic, rt.Partitions = tn, []int32{0}
		named.Topics = append(named.Topics, rt)
	}
	all := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	all.GroupID = "g"
	denied := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	denied.GroupID = "g2"
	dso.Groups = append(dso.Groups, named, denied, all)
	g.reached()
	dsr := do[*kmsg.DescribeShareGroupOffsetsResponse](t, b.addr, dso, 1)
	if len(dsr.Groups) != 3 || dsr.Groups[1].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("describe offsets: %+v", dsr.Groups)
	}
	topics := func(rg kmsg.DescribeShareGroupOffsetsResponseGroup) map[string]int16 {
		out := map[string]int16{}
		for _, rt := range rg.Topics {
			out[rt.Topic] = rt.Partitions[0].ErrorCode
		}
		return out
	}
	if got := topics(dsr.Groups[0]); len(got) != 2 || got["a"] != kerr.TopicAuthorizationFailed.Code || got["b"] != 0 {
		t.Fatalf("named topics: %v", got)
	}
	if got := topics(dsr.Groups[2]); len(got) != 1 || got["b"] != 0 {
		t.Fatalf("all topics: %v (a topic that may not be described must be left out)", got)
	}
	if got := g.reached(); slices.Contains(got, "g2") {
		t.Fatalf("a refused group reached the coordinator: %v", got)
	}

	// AlterShareGroupOffsets: READ on the group and on each topic.
	alter := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	alter.GroupID = "g3"
	for _, tn := range []string{"a", "b", "nope"} {
		rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
		rt.Topic = tn
		rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
		rp.StartOffset = 0
		rt.Partitions = append(rt.Partitions, rp)
		alter.Topics = append(alter.Topics, rt)
	}
	wantCode(t, "alter offsets without READ on the group", do[*kmsg.AlterShareGroupOffsetsResponse](t, b.addr, alter, 0).ErrorCode, kerr.GroupAuthorizationFailed)
	acls.allow(rGroup, "g3", opRead)
	acls.allow(rTopic, "b", opRead)
	acls.allow(rTopic, "nope", opRead)
	ar := do[*kmsg.AlterShareGroupOffsetsResponse](t, b.addr, alter, 0)
	codes := map[string]int16{}
	for _, rt := range ar.Topics {
		codes[rt.Topic] = rt.Partitions[0].ErrorCode
	}
	if len(codes) != 3 || codes["a"] != kerr.TopicAuthorizationFailed.Code || codes["b"] != 0 || codes["nope"] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("alter offsets: %v", codes)
	}
	if got := g.reached(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("alter offsets reached %v", got)
	}

	// DeleteShareGroupOffsets: DELETE on the group, READ on each topic.
	del := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	del.GroupID = "g3"
	for _, tn := range []string{"a", "b"} {
		rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
		rt.Topic = tn
		del.Topics = append(del.Topics, rt)
	}
	wantCode(t, "delete offsets without DELETE on the group", do[*kmsg.DeleteShareGroupOffsetsResponse](t, b.addr, del, 0).ErrorCode, kerr.GroupAuthorizationFailed)
	acls.allow(rGroup, "g3", opDelete)
	dr2 := do[*kmsg.DeleteShareGroupOffsetsResponse](t, b.addr, del, 0)
	codes = map[string]int16{}
	for _, rt := range dr2.Topics {
		codes[rt.Topic] = rt.ErrorCode
	}
	if len(codes) != 2 || codes["a"] != kerr.TopicAuthorizationFailed.Code || codes["b"] != 0 {
		t.Fatalf("delete offsets: %v", codes)
	}
	if got := g.reached(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("delete offsets reached %v", got)
	}
}

func TestShareAuthzGroupConfig(t *testing.T) {
	b, acls := startShareAuthz(t)
	const lock = "share.record.lock.duration.ms"
	wantCode(t, "describe without DESCRIBE_CONFIGS", describeGroupConfigs(t, b.addr, "g").ErrorCode, kerr.GroupAuthorizationFailed)
	wantCode(t, "alter without ALTER_CONFIGS", incrementalGroupConfig(t, b.addr, "g", false, groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("60000"))).ErrorCode, kerr.GroupAuthorizationFailed)
	acls.allow(rGroup, "g", kmsg.ACLOperationDescribeConfigs)
	wantCode(t, "describe", describeGroupConfigs(t, b.addr, "g").ErrorCode, nil)
	wantCode(t, "alter with DESCRIBE_CONFIGS only", incrementalGroupConfig(t, b.addr, "g", false, groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("60000"))).ErrorCode, kerr.GroupAuthorizationFailed)
	acls.allow(rGroup, "g", kmsg.ACLOperationAlterConfigs)
	wantCode(t, "alter", incrementalGroupConfig(t, b.addr, "g", false, groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("60000"))).ErrorCode, nil)
	if b.configs.GroupConfig("g")[lock] != "60000" {
		t.Fatal("override not stored")
	}
}

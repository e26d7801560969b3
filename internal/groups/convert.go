package groups

// Online conversion between the classic and the consumer (KIP-848)
// protocols, as Kafka 4 does with group.consumer.migration.policy=
// bidirectional.
//
// Upgrade: when a consumer-protocol member joins a stable classic group of
// protocol type "consumer", the group becomes a consumer group. Its classic
// members stay, as classic members of the consumer group: their current
// assignment becomes the target of the converted epoch (nothing moves), and
// they go on speaking JoinGroup/SyncGroup/Heartbeat. The coordinator
// translates: a JoinGroup is a heartbeat whose subscription and owned
// partitions come from the member's consumer protocol metadata, answered at
// once (no leader: the broker assigns); SyncGroup returns the member's
// assignment in the consumer protocol's encoding; Heartbeat answers
// REBALANCE_IN_PROGRESS whenever the member's assignment must change, so it
// rejoins to revoke or to receive partitions.
//
// Downgrade: when the last consumer-protocol member leaves and classic
// members remain, the group becomes classic again with their current
// assignments, and a rebalance starts so they settle among themselves.

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// classicState is what a classic member of a consumer group needs beyond a
// consumer member.
type classicState struct {
	protocols        []protocolMeta
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	// pending is the assignment its last JoinGroup computed, returned by
	// the SyncGroup that follows.
	pending assignment
}

// protocolName is the classic protocol (assignor name) the member is told.
func (cs *classicState) protocolName() string {
	if len(cs.protocols) == 0 {
		return ""
	}
	return cs.protocols[0].Name
}

// decodeSubscription reads consumer protocol metadata: subscribed topics
// and, from version 1, the partitions the member owns (nil before).
func decodeSubscription(meta []byte, byName map[string]topicMeta) ([]string, assignment, bool) {
	var md kmsg.ConsumerMemberMetadata
	if err := md.ReadFrom(meta); err != nil {
		return nil, nil, false
	}
	var owned assignment
	if md.Version >= 1 {
		owned = assignment{}
		for _, op := range md.OwnedPartitions {
			if t, ok := byName[op.Topic]; ok {
				for _, p := range op.Partitions {
					owned.add(t.ID, p)
				}
			}
		}
	}
	topics := slices.Clone(md.Topics)
	slices.Sort(topics)
	return slices.Compact(topics), owned, true
}

// decodeAssignment reads a consumer protocol assignment.
func decodeAssignment(b []byte, byName map[string]topicMeta) assignment {
	out := assignment{}
	var ma kmsg.ConsumerMemberAssignment
	if len(b) == 0 || ma.ReadFrom(b) != nil {
		return out
	}
	for _, t := range ma.Topics {
		if tm, ok := byName[t.Topic]; ok {
			for _, p := range t.Partitions {
				out.add(tm.ID, p)
			}
		}
	}
	return out
}

// encodeAssignment renders an assignment in the consumer protocol.
func encodeAssignment(a assignment, byID map[stream.TopicID]topicMeta) []byte {
	ma := kmsg.NewConsumerMemberAssignment()
	ma.Version = 0
	for _, id := range a.topicIDs() {
		t, ok := byID[id]
		if !ok || len(a[id]) == 0 {
			continue
		}
		mt := kmsg.NewConsumerMemberAssignmentTopic()
		mt.Topic, mt.Partitions = t.Name, slices.Clone(a[id])
		ma.Topics = append(ma.Topics, mt)
	}
	return ma.AppendTo(nil)
}

func topicIndexes(topics []topicMeta) (map[string]topicMeta, map[stream.TopicID]topicMeta) {
	byName := make(map[string]topicMeta, len(topics))
	byID := make(map[stream.TopicID]topicMeta, len(topics))
	for _, t := range topics {
		byName[t.Name], byID[t.ID] = t, t
	}
	return byName, byID
}

// upgradeLocked converts a stable classic group of the consumer protocol
// type into a consumer group whose classic members keep their assignments.
// It reports false (and changes nothing) if the group cannot convert now.
func (g *group) upgradeLocked(topics []topicMeta) bool {
	if g.protocolType != consumerProtocolType || g.state != stateStable {
		return false
	}
	byName, _ := topicIndexes(topics)
	cg := newConsumerGroup()
	cg.epoch, cg.assignmentEpoch, cg.assignorName = g.generation, g.generation, serverAssignors[0]
	for _, m := range g.sortedMembers() {
		subs, _, ok := decodeSubscription(m.metadataFor(g.protocol), byName)
		if !ok {
			return false
		}
		assigned := decodeAssignment(m.assignment, byName)
		cg.members[m.id] = &cmember{
			id: m.id, instanceID: m.instanceID, clientID: m.clientID, clientHost: m.clientHost,
			epoch: g.generation, prevEpoch: g.generation, rebalanceTimeoutMs: int32(m.rebalanceTimeout.Milliseconds()),
			topics: subs, assigned: assigned,
			classic: &classicState{protocols: m.protocols, sessionTimeout: m.sessionTimeout, rebalanceTimeout: m.rebalanceTimeout},
		}
		cg.target[m.id] = assigned.clone()
	}
	cg.subHash = cg.subscriptionHash(topics)
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
		m.timerSeq++
	}
	g.members, g.static, g.leader = map[string]*member{}, map[string]string{}, ""
	g.cg = cg
	for _, m := range cg.members {
		g.scheduleConsumerSession(m)
	}
	g.c.log.Info("group converted to the consumer protocol", "group", g.id, "classic_members", len(cg.members))
	return true
}

// downgradeLocked turns a consumer group whose members all use the classic
// protocol back into a classic group, and starts a rebalance.
func (g *group) downgradeLocked(topics []topicMeta) {
	cg := g.cg
	if cg == nil || len(cg.members) == 0 {
		return
	}
	for _, m := range cg.members {
		if m.classic == nil {
			return
		}
	}
	_, byID := topicIndexes(topics)
	// The protocol every member supports, in the first member's order.
	ids := cg.memberIDs()
	proto := ""
	for _, p := range cg.members[ids[0]].classic.protocols {
		all := true
		for _, id := range ids[1:] {
			if !slices.ContainsFunc(cg.members[id].classic.protocols, func(q protocolMeta) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			proto = p.Name
			break
		}
	}
	for id := range g.ctimers {
		g.stopConsumerTimers(id)
	}
	g.cg = nil
	g.members, g.static = map[string]*member{}, map[string]string{}
	g.protocolType, g.protocol, g.generation, g.leader = consumerProtocolType, proto, cg.epoch, ""
	for _, id := range ids {
		cm := cg.members[id]
		m := &member{id: cm.id, instanceID: cm.instanceID, clientID: cm.clientID, clientHost: cm.clientHost,
			sessionTimeout: cm.classic.sessionTimeout, rebalanceTimeout: cm.classic.rebalanceTimeout,
			protocols: cm.classic.protocols, assignment: encodeAssignment(cm.assigned, byID)}
		g.addMember(m)
		g.scheduleSession(m)
	}
	g.setState(stateStable)
	g.c.log.Info("group converted to the classic protocol", "group", g.id, "members", len(ids))
	g.prepareRebalance()
}

// classicJoin answers a JoinGroup of a classic member of a consumer group.
func (g *group) classicJoin(req *kmsg.JoinGroupRequest, clientID, clientHost string, protocols []protocolMeta, session, rebalance time.Duration, instanceID *string) joinResult {
	if req.ProtocolType != consumerProtocolType {
		return joinResult{code: kerr.InconsistentGroupProtocol.Code}
	}
	topics := g.c.topicMetas()
	byName, _ := topicIndexes(topics)
	subs, owned, ok := decodeSubscription(protocols[0].Metadata, byName)
	if !ok {
		return joinResult{code: kerr.InconsistentGroupProtocol.Code}
	}
	cg := g.cg
	id := req.MemberID
	m := cg.members[id]
	switch {
	case id == "" && instanceID != nil:
		if prev := cg.staticMember(*instanceID); prev != nil {
			m, id = prev, prev.id
		} else {
			id = newMemberID(*instanceID)
		}
	case id == "":
		id = newMemberID(prefixOr(clientID, "member"))
		if req.Version >= 4 {
			return joinResult{code: kerr.MemberIDRequired.Code, memberID: id}
		}
	case m == nil:
		// A member id the group handed out with MEMBER_ID_REQUIRED, or one
		// it no longer knows: both join as new members.
	case m.classic == nil:
		return joinResult{code: kerr.UnknownMemberID.Code, memberID: id}
	}
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.InstanceID = 1, g.id, id, instanceID
	hb.RebalanceTimeoutMillis = int32(rebalance.Milliseconds())
	hb.SubscribedTopicNames = subs
	if m == nil {
		hb.MemberEpoch = 0
	} else {
		hb.MemberEpoch = m.epoch
		if owned == nil {
			owned = assignment{} // eager clients give up everything before rejoining
		}
		for _, tid := range owned.topicIDs() {
			rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			rt.TopicID, rt.Partitions = tid, owned[tid]
			hb.Topics = append(hb.Topics, rt)
		}
	}
	res := cg.heartbeat(hb, clientID, clientHost, topics, func() string { return id })
	if res.code != 0 {
		return joinResult{code: res.code, memberID: id}
	}
	cm := cg.members[res.memberID]
	// While revoking, the member is told what it keeps; else what it has.
	pending := cm.assigned.clone()
	if cm.revoking {
		pending = cm.assigned.intersect(cg.target[cm.id])
	}
	cm.classic = &classicState{protocols: protocols, sessionTimeout: session, rebalanceTimeout: rebalance, pending: pending}
	if err := g.persistMetaLocked(); err != nil {
		return joinResult{code: errorCode(err), memberID: id}
	}
	for _, left := range res.left {
		g.stopConsumerTimers(left)
	}
	g.scheduleConsumerSession(cm)
	g.scheduleConsumerRebalance(cm)
	return joinResult{
		generation:   cm.epoch,
		protocolType: consumerProtocolType,
		protocol:     cm.classic.protocolName(),
		memberID:     cm.id,
	}
}

// classicSync answers a SyncGroup of a classic member of a consumer group.
func (g *group) classicSync(req *kmsg.SyncGroupRequest) (syncResult, string, string) {
	cm := g.cg.members[req.MemberID]
	switch {
	case cm == nil || cm.classic == nil:
		return syncResult{code: kerr.UnknownMemberID.Code}, "", ""
	case req.Generation != cm.epoch:
		return syncResult{code: kerr.IllegalGeneration.Code}, "", ""
	}
	_, byID := topicIndexes(g.c.topicMetas())
	g.scheduleConsumerSession(cm)
	return syncResult{assignment: encodeAssignment(cm.classic.pending, byID)}, consumerProtocolType, cm.classic.protocolName()
}

// classicHeartbeat answers a Heartbeat of a classic member of a consumer
// group: REBALANCE_IN_PROGRESS while its assignment must change.
func (g *group) classicHeartbeat(req *kmsg.HeartbeatRequest) int16 {
	cg := g.cg
	cm := cg.members[req.MemberID]
	switch {
	case cm == nil || cm.classic == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != cm.epoch:
		return kerr.IllegalGeneration.Code
	}
	g.scheduleConsumerSession(cm)
	if cm.revoking || cm.epoch != cg.assignmentEpoch || !cm.assigned.equal(cg.target[cm.id]) {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// classicLeave removes a classic member from a consumer group.
func (g *group) classicLeave(lm kmsg.LeaveGroupRequestMember) int16 {
	cg := g.cg
	id := lm.MemberID
	if lm.InstanceID != nil {
		m := cg.staticMember(*lm.InstanceID)
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		if id != "" && id != m.id {
			return kerr.FencedInstanceID.Code
		}
		id = m.id
	}
	if cg.members[id] == nil {
		return kerr.UnknownMemberID.Code
	}
	g.stopConsumerTimers(id)
	cg.remove(id)
	return 0
}

// describeConsumerGroup renders a consumer group for DescribeGroups, as
// Kafka 4 does: protocol type "consumer", the assignor as the protocol, and
// each member's subscription and current assignment in the consumer
// protocol's encoding, so classic tools describe either kind of group.
func (g *group) describeConsumerGroup(topics []topicMeta) kmsg.DescribeGroupsResponseGroup {
	_, byID := topicIndexes(topics)
	cg := g.cg
	rg := kmsg.NewDescribeGroupsResponseGroup()
	rg.Group, rg.State, rg.ProtocolType, rg.Protocol = g.id, cg.state(), consumerProtocolType, cg.assignorName
	for _, id := range cg.memberIDs() {
		m := cg.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		md := kmsg.NewConsumerMemberMetadata()
		for _, t := range m.subscribed(topics) {
			md.Topics = append(md.Topics, t.Name)
		}
		dm.ProtocolMetadata = md.AppendTo(nil)
		dm.MemberAssignment = encodeAssignment(m.assigned, byID)
		rg.Members = append(rg.Members, dm)
	}
	return rg
}

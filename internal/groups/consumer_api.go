package groups

// ConsumerGroupHeartbeat (key 68) v0–1 and ConsumerGroupDescribe (69) v0–1:
// the KIP-848 protocol on top of consumerGroup (consumer.go). The group's
// state is persisted (one Txn on the shard owner's fence) before a heartbeat
// that changed it is answered; heartbeats that change nothing write
// nothing. Session timeouts (group.consumer.session.timeout.ms) remove a
// member; a member that does not revoke within its rebalance timeout is
// removed too, so its partitions can move on.
//
// A group id is either classic or consumer at a time. A consumer heartbeat
// for an empty classic group turns it into a consumer group, and a classic
// JoinGroup for an empty consumer group turns it back; a group in use by
// the other protocol answers GROUP_ID_NOT_FOUND for now (Kafka 4's online
// conversion of a group with members is not done yet).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// Defaults of group.consumer.heartbeat.interval.ms and
// group.consumer.session.timeout.ms.
const (
	DefaultConsumerHeartbeatInterval = 5 * time.Second
	DefaultConsumerSessionTimeout    = 45 * time.Second
)

// consumerTimers are a consumer group member's in-memory timers.
type consumerTimers struct {
	session, rebalance *time.Timer
	seq                uint64
}

// topicMetas lists the live topics for the assignors. Internal topics are
// among them: Kafka's coordinator resolves a subscribed regex against every
// topic, internal or not (a client that wants to skip them excludes them in
// its own regex), and a member may subscribe to one by name.
func (c *Coordinator) topicMetas() []topicMeta {
	if c.opts.Topics == nil {
		return nil
	}
	var out []topicMeta
	for _, t := range c.opts.Topics() {
		out = append(out, topicMeta{ID: t.ID, Name: t.Name, Partitions: t.Partitions})
	}
	return out
}

func newUUIDString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ConsumerGroupHeartbeat serves one KIP-848 heartbeat.
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = req.Version
	resp.MemberEpoch = -1
	_, interval := c.consumerTimeouts(req.Group)
	resp.HeartbeatIntervalMillis = int32(interval.Milliseconds())
	fail := func(code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg == "" {
			msg = kerr.ErrorForCode(code).Error()
		}
		resp.ErrorMessage = &msg
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code, "")
	}
	g, code := c.lookup(req.Group, req.MemberEpoch == 0)
	if code != 0 {
		return fail(code, "")
	}
	if g == nil {
		return fail(kerr.UnknownMemberID.Code, "the group does not exist")
	}
	defer g.mu.Unlock()
	if g.sg != nil {
		return fail(kerr.GroupIDNotFound.Code, "group "+g.id+" is not a consumer group")
	}
	topics := c.topicMetas()
	if g.cg == nil {
		switch {
		case len(g.members) == 0:
			g.cg = newConsumerGroup()
			g.protocolType, g.protocol = consumerProtocolType, ""
		case req.MemberEpoch != 0:
			return fail(kerr.UnknownMemberID.Code, "")
		case !g.upgradeLocked(topics):
			// Converts once the classic group is stable; retriable.
			return fail(kerr.CoordinatorNotAvailable.Code, "the classic group is rebalancing or not of the consumer protocol type; retry")
		}
	}
	if m := g.cg.members[req.MemberID]; m != nil && m.classic != nil {
		return fail(kerr.UnknownMemberID.Code, "the member uses the classic protocol")
	}
	res := g.cg.heartbeat(req, clientIDFrom(ctx), clientHostFrom(ctx), topics, newUUIDString)
	if res.code != 0 {
		return fail(res.code, res.msg)
	}
	if res.epoch < 0 {
		g.downgradeLocked(topics)
	}
	if res.changed {
		if err := g.persistMetaLocked(); err != nil {
			c.log.Warn("persist consumer group", "group", g.id, "err", err)
			return fail(errorCode(err), "")
		}
	}
	for _, id := range res.left {
		g.stopConsumerTimers(id)
	}
	if g.cg == nil {
		// The last consumer-protocol member left: the group is classic again.
	} else if m := g.cg.members[res.memberID]; m != nil {
		g.scheduleConsumerSession(m)
		g.scheduleConsumerRebalance(m)
	} else {
		g.stopConsumerTimers(res.memberID)
	}
	id := res.memberID
	resp.MemberID, resp.MemberEpoch = &id, res.epoch
	if res.assignment != nil {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		a.Topics = res.assignment.wire()
		resp.Assignment = &a
	}
	return resp
}

// scheduleConsumerSession (re)arms a member's session expiry. A static
// member that left keeps its assignment until then.
func (g *group) scheduleConsumerSession(m *cmember) {
	t := g.consumerTimersFor(m.id)
	if t.session != nil {
		t.session.Stop()
	}
	t.seq++
	seq, id := t.seq, m.id
	timeout, _ := g.c.consumerTimeouts(g.id)
	if m.classic != nil {
		timeout = m.classic.sessionTimeout
	}
	t.session = time.AfterFunc(timeout, func() {
		g.expireConsumer(id, seq, "session timed out")
	})
}

// scheduleConsumerRebalance arms the revocation deadline of a member that
// must give up partitions, and disarms it once it has.
func (g *group) scheduleConsumerRebalance(m *cmember) {
	t := g.consumerTimersFor(m.id)
	if !m.revoking {
		if t.rebalance != nil {
			t.rebalance.Stop()
			t.rebalance = nil
		}
		return
	}
	if t.rebalance != nil {
		return // already counting
	}
	timeout := time.Duration(m.rebalanceTimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout, _ = g.c.consumerTimeouts(g.id)
	}
	seq, id := t.seq, m.id
	t.rebalance = time.AfterFunc(timeout, func() { g.expireConsumer(id, seq, "did not revoke within its rebalance timeout") })
}

func (g *group) consumerTimersFor(id string) *consumerTimers {
	if g.ctimers == nil {
		g.ctimers = map[string]*consumerTimers{}
	}
	t := g.ctimers[id]
	if t == nil {
		t = &consumerTimers{}
		g.ctimers[id] = t
	}
	return t
}

func (g *group) stopConsumerTimers(id string) {
	if t := g.ctimers[id]; t != nil {
		if t.session != nil {
			t.session.Stop()
		}
		if t.rebalance != nil {
			t.rebalance.Stop()
		}
		delete(g.ctimers, id)
	}
}

// expireConsumer removes a member whose session or revocation deadline
// passed (seq guards against timers armed before the last heartbeat).
func (g *group) expireConsumer(id string, seq uint64, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.ctimers[id]
	if g.dead || g.cg == nil || t == nil || t.seq != seq || g.cg.members[id] == nil {
		return
	}
	g.c.log.Info("consumer group member removed", "group", g.id, "member", id, "reason", why)
	g.stopConsumerTimers(id)
	g.cg.remove(id)
	g.downgradeLocked(g.c.topicMetas())
	if err := g.persistMetaLocked(); err != nil {
		g.c.log.Warn("persist consumer group", "group", g.id, "err", err)
	}
}

// ConsumerGroupDescribe describes KIP-848 groups.
func (c *Coordinator) ConsumerGroupDescribe(_ context.Context, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := kmsg.NewPtrConsumerGroupDescribeResponse()
	resp.Version = req.Version
	names := map[stream.TopicID]string{}
	for _, t := range c.topicMetas() {
		names[t.ID] = t.Name
	}
	wire := func(a assignment) kmsg.Assignment {
		out := kmsg.NewAssignment()
		for _, id := range a.topicIDs() {
			if len(a[id]) == 0 {
				continue
			}
			t := kmsg.NewAssignmentTopicPartition()
			t.TopicID, t.Topic, t.Partitions = id, names[id], slices.Clone(a[id])
			out.TopicPartitions = append(out.TopicPartitions, t)
		}
		return out
	}
	for _, id := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648
		g, code := c.lookup(id, false)
		switch {
		case code != 0:
			dg.ErrorCode = code
		case g == nil:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.cg == nil:
			g.mu.Unlock()
			dg.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + id + " is not a consumer group"
			dg.ErrorMessage = &msg
		default:
			cg := g.cg
			dg.State, dg.Epoch, dg.AssignmentEpoch, dg.AssignorName = cg.state(), cg.epoch, cg.assignmentEpoch, cg.assignorName
			for _, mid := range cg.memberIDs() {
				m := cg.members[mid]
				dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rack, m.epoch
				dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
				dm.SubscribedTopics, dm.SubscribedTopicRegex = slices.Clone(m.topics), m.regex
				if dm.SubscribedTopics == nil {
					dm.SubscribedTopics = []string{}
				}
				dm.Assignment, dm.TargetAssignment = wire(m.assigned), wire(cg.target[mid])
				dm.MemberType = 1 // consumer protocol
				if m.classic != nil {
					dm.MemberType = 0
				}
				dg.Members = append(dg.Members, dm)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// consumerRecord is a consumer group's durable state.
type consumerRecord struct {
	Epoch           int32                       `json:"epoch"`
	AssignmentEpoch int32                       `json:"assignment_epoch"`
	Assignor        string                      `json:"assignor"`
	SubHash         uint64                      `json:"sub_hash"`
	Members         []cmemberRecord             `json:"members"`
	Target          map[string]assignmentRecord `json:"target"`
}

type cmemberRecord struct {
	ID                 string           `json:"id"`
	InstanceID         *string          `json:"instance_id,omitempty"`
	Rack               *string          `json:"rack,omitempty"`
	ClientID           string           `json:"client_id"`
	ClientHost         string           `json:"client_host"`
	Epoch              int32            `json:"epoch"`
	PrevEpoch          int32            `json:"prev_epoch"`
	RebalanceTimeoutMs int32            `json:"rebalance_timeout_ms"`
	Topics             []string         `json:"topics,omitempty"`
	Regex              *string          `json:"regex,omitempty"`
	Assignor           *string          `json:"assignor,omitempty"`
	Assigned           assignmentRecord `json:"assigned"`
	Revoking           bool             `json:"revoking,omitempty"`
	Left               bool             `json:"left,omitempty"`
	Classic            *classicRecord   `json:"classic,omitempty"`
}

// classicRecord is a classic member's protocol state in a consumer group.
type classicRecord struct {
	Protocols          []protocolMeta   `json:"protocols"`
	SessionTimeoutMs   int64            `json:"session_timeout_ms"`
	RebalanceTimeoutMs int64            `json:"rebalance_timeout_ms"`
	Pending            assignmentRecord `json:"pending"`
}

func (cg *consumerGroup) record() *consumerRecord {
	rec := &consumerRecord{Epoch: cg.epoch, AssignmentEpoch: cg.assignmentEpoch, Assignor: cg.assignorName,
		SubHash: cg.subHash, Target: map[string]assignmentRecord{}}
	for _, id := range cg.memberIDs() {
		m := cg.members[id]
		rec.Members = append(rec.Members, cmemberRecord{
			ID: m.id, InstanceID: m.instanceID, Rack: m.rack, ClientID: m.clientID, ClientHost: m.clientHost,
			Epoch: m.epoch, PrevEpoch: m.prevEpoch, RebalanceTimeoutMs: m.rebalanceTimeoutMs,
			Topics: m.topics, Regex: m.regex, Assignor: m.assignor, Assigned: m.assigned.record(),
			Revoking: m.revoking, Left: m.left, Classic: m.classic.record(),
		})
	}
	for id, a := range cg.target {
		rec.Target[id] = a.record()
	}
	return rec
}

func (rec *consumerRecord) restore() *consumerGroup {
	cg := newConsumerGroup()
	cg.epoch, cg.assignmentEpoch, cg.assignorName, cg.subHash = rec.Epoch, rec.AssignmentEpoch, rec.Assignor, rec.SubHash
	for _, mr := range rec.Members {
		cg.members[mr.ID] = &cmember{
			id: mr.ID, instanceID: mr.InstanceID, rack: mr.Rack, clientID: mr.ClientID, clientHost: mr.ClientHost,
			epoch: mr.Epoch, prevEpoch: mr.PrevEpoch, rebalanceTimeoutMs: mr.RebalanceTimeoutMs,
			topics: mr.Topics, regex: mr.Regex, assignor: mr.Assignor, assigned: mr.Assigned.assignment(),
			revoking: mr.Revoking, left: mr.Left, classic: mr.Classic.state(),
		}
	}
	for id, a := range rec.Target {
		cg.target[id] = a.assignment()
	}
	return cg
}

func (cs *classicState) record() *classicRecord {
	if cs == nil {
		return nil
	}
	return &classicRecord{Protocols: cs.protocols, SessionTimeoutMs: cs.sessionTimeout.Milliseconds(),
		RebalanceTimeoutMs: cs.rebalanceTimeout.Milliseconds(), Pending: cs.pending.record()}
}

func (r *classicRecord) state() *classicState {
	if r == nil {
		return nil
	}
	return &classicState{protocols: r.Protocols, sessionTimeout: time.Duration(r.SessionTimeoutMs) * time.Millisecond,
		rebalanceTimeout: time.Duration(r.RebalanceTimeoutMs) * time.Millisecond, pending: r.Pending.assignment()}
}

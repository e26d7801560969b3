package groups

// ShareGroupHeartbeat (key 76) and ShareGroupDescribe (77): KIP-932 share
// group membership on top of shareGroup (share.go). A heartbeat that changed
// the group is persisted (one Txn on the shard owner's fence) before it is
// answered, and before a response first names a partition the partition's
// share state is initialised (ShareStates.Initialize), so
// share.auto.offset.reset=latest starts at the high watermark of the moment
// the partition was assigned. share.session.timeout.ms and
// share.heartbeat.interval.ms come from the group's configs.
//
// A group id is of one type at a time: a share heartbeat for a classic or
// consumer group answers GROUP_ID_NOT_FOUND, and the classic and consumer
// APIs answer a share group as Kafka's GroupMetadataManager does
// (INCONSISTENT_GROUP_PROTOCOL for JoinGroup, UNKNOWN_MEMBER_ID for the
// rest of the classic protocol, GROUP_ID_NOT_FOUND otherwise).
//
// Validation is Kafka 4.2's: the client generates its member id, an empty
// group or member id is INVALID_REQUEST. Deliberately unlike Kafka, a
// known member rejoining with epoch 0 is answered with its current
// assignment instead of FENCED_MEMBER_EPOCH: nothing a share member holds
// is exclusive, so there is nothing to fence, and a client that lost a
// response recovers at once instead of waiting out its session.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
)

// ShareStates is what the coordinator needs of the share-partition state
// store (internal/share's Engine implements it).
type ShareStates interface {
	// Initialize creates the share partitions' state if missing, with the start offset from
	// the group's share.auto.offset.reset; existing ones are untouched.
	Initialize(ctx context.Context, keys []share.Key) error
	// StartOffsets lists the group's share partitions (every one it has state for).
	StartOffsets(ctx context.Context, group string) ([]share.PartitionOffset, error)
	// SetStartOffset sets a share partition's start offset, discarding its in-flight state
	// (the caller has checked the group is empty).
	SetStartOffset(ctx context.Context, key share.Key, offset int64) error
	// DeleteState removes the group's share partitions of one topic (topic != nil) or all.
	DeleteState(ctx context.Context, group string, topic *stream.TopicID) error
}

// Defaults of group.share.session.timeout.ms and
// group.share.heartbeat.interval.ms.
const (
	DefaultShareSessionTimeout    = 45 * time.Second
	DefaultShareHeartbeatInterval = 5 * time.Second
)

// shareTimer is a share group member's session timer.
type shareTimer struct {
	t   *time.Timer
	seq uint64
}

// groupMs reads a millisecond group config override that passes
// validation.
func groupMs(over map[string]string, name string) (time.Duration, bool) {
	v, ok := over[name]
	if !ok || config.ValidateGroupConfig(name, v) != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// groupTimeouts returns a group's session timeout and heartbeat interval:
// its overrides of the named configs, else the broker's defaults.
func (c *Coordinator) groupTimeouts(group, sessionName, intervalName string, session, interval time.Duration) (time.Duration, time.Duration) {
	if c.opts.GroupConfigs == nil {
		return session, interval
	}
	over := c.opts.GroupConfigs.GroupConfig(group)
	if d, ok := groupMs(over, sessionName); ok {
		session = d
	}
	if d, ok := groupMs(over, intervalName); ok {
		interval = d
	}
	return session, interval
}

func (c *Coordinator) shareTimeouts(group string) (time.Duration, time.Duration) {
	return c.groupTimeouts(group, config.GroupShareSessionTimeout, config.GroupShareHeartbeatInterval,
		c.opts.ShareSessionTimeout, c.opts.ShareHeartbeatInterval)
}

func (c *Coordinator) consumerTimeouts(group string) (time.Duration, time.Duration) {
	return c.groupTimeouts(group, config.GroupConsumerSessionTimeout, config.GroupConsumerHeartbeatInterval,
		c.opts.ConsumerSessionTimeout, c.opts.ConsumerHeartbeatInterval)
}

// blank reports whether g holds nothing: an entry a lookup made that no
// request has given a type yet.
func (g *group) blank() bool {
	return g.sg == nil && g.cg == nil && g.protocolType == "" && len(g.members) == 0 && len(g.offsets) == 0
}

// dropIfBlank forgets a group a failed request created.
func (c *Coordinator) dropIfBlank(g *group) {
	if g.blank() {
		c.killGroupLocked(g)
		c.forget(g)
	}
}

// ShareGroupHeartbeat serves one KIP-932 heartbeat.
func (c *Coordinator) ShareGroupHeartbeat(ctx context.Context, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	resp := kmsg.NewPtrShareGroupHeartbeatResponse()
	resp.Version = req.Version
	resp.MemberEpoch = -1
	session, interval := c.shareTimeouts(req.GroupID)
	resp.HeartbeatIntervalMillis = int32(interval.Milliseconds())
	fail := func(code int16, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg == "" {
			msg = kerr.ErrorForCode(code).Error()
		}
		resp.ErrorMessage = &msg
		return resp
	}
	if req.GroupID == "" {
		return fail(kerr.InvalidRequest.Code, "GroupId can't be empty") // INVALID_REQUEST, as Kafka
	}
	if req.MemberID == "" {
		return fail(kerr.InvalidRequest.Code, "MemberId can't be empty")
	}
	g, code := c.lookup(req.GroupID, req.MemberEpoch == 0)
	if code != 0 {
		return fail(code, "")
	}
	if g == nil {
		return fail(kerr.UnknownMemberID.Code, "the group does not exist")
	}
	defer g.mu.Unlock()
	created := false
	if g.sg == nil {
		if !g.blank() {
			return fail(kerr.GroupIDNotFound.Code, "group "+g.id+" is not a share group")
		}
		if req.MemberEpoch != 0 {
			c.dropIfBlank(g)
			return fail(kerr.UnknownMemberID.Code, "the group does not exist")
		}
		g.sg, g.protocolType, created = newShareGroup(), shareProtocolType, true
	}
	// Keep the state to roll back to if the change cannot be made durable.
	before := g.sg.record()
	rollback := func() {
		if created {
			g.sg, g.protocolType = nil, ""
			c.dropIfBlank(g)
			return
		}
		g.sg = before.restore()
	}
	res := g.sg.heartbeat(req, clientIDFrom(ctx), clientHostFrom(ctx), c.topicMetas())
	if res.code != 0 {
		rollback()
		return fail(res.code, res.msg)
	}
	if err := c.initializeShareLocked(ctx, g); err != nil {
		c.log.Warn("initialize share partitions", "group", g.id, "err", err)
		rollback()
		return fail(kerr.CoordinatorNotAvailable.Code, "the share partitions could not be initialized; retry")
	}
	if res.changed {
		if err := g.persistMetaLocked(); err != nil {
			c.log.Warn("persist share group", "group", g.id, "err", err)
			rollback()
			return fail(errorCode(err), "")
		}
	}
	if res.left != "" {
		g.stopShareTimer(res.left)
		for _, mr := range before.Members {
			if mr.ID == res.left {
				c.releaseShareMember(ctx, g.id, mr.ID, mr.Assigned.assignment())
			}
		}
	} else {
		g.scheduleShareSession(res.memberID, session)
	}
	id := res.memberID
	resp.MemberID, resp.MemberEpoch = &id, res.epoch
	if res.assignment != nil {
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		for _, tid := range res.assignment.topicIDs() {
			if len(res.assignment[tid]) == 0 {
				continue
			}
			t := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			t.TopicID, t.Partitions = tid, slices.Clone(res.assignment[tid])
			a.TopicPartitions = append(a.TopicPartitions, t)
		}
		if a.TopicPartitions == nil {
			a.TopicPartitions = []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{}
		}
		resp.Assignment = &a
	}
	return resp
}

// initializeShareLocked initialises the share state of every target
// partition not initialised since the group was loaded (Initialize leaves
// existing state untouched, so doing it again after a load is harmless).
func (c *Coordinator) initializeShareLocked(ctx context.Context, g *group) error {
	if c.opts.ShareStates == nil {
		return nil
	}
	var keys []share.Key
	target := g.sg.targetPartitions()
	for _, tid := range target.topicIDs() {
		for _, p := range target[tid] {
			if !g.inited[tp{tid, p}] {
				keys = append(keys, share.Key{Group: g.id, Topic: tid, Partition: p})
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if err := c.opts.ShareStates.Initialize(ctx, keys); err != nil {
		return err
	}
	if g.inited == nil {
		g.inited = map[tp]bool{}
	}
	for _, k := range keys {
		g.inited[tp{k.Topic, k.Partition}] = true
	}
	return nil
}

// scheduleShareSession (re)arms a share member's session expiry.
func (g *group) scheduleShareSession(id string, timeout time.Duration) {
	if g.stimers == nil {
		g.stimers = map[string]*shareTimer{}
	}
	st := g.stimers[id]
	if st == nil {
		st = &shareTimer{}
		g.stimers[id] = st
	}
	if st.t != nil {
		st.t.Stop()
	}
	st.seq++
	seq := st.seq
	st.t = time.AfterFunc(timeout, func() { g.expireShareMember(id, seq) })
}

func (g *group) stopShareTimer(id string) {
	if st := g.stimers[id]; st != nil {
		if st.t != nil {
			st.t.Stop()
		}
		delete(g.stimers, id)
	}
}

// expireShareMember removes a member whose session lapsed (seq guards
// against timers armed before the last heartbeat). The others get the new
// assignment on their next heartbeat.
func (g *group) expireShareMember(id string, seq uint64) {
	g.mu.Lock()
	st := g.stimers[id]
	if g.dead || g.sg == nil || st == nil || st.seq != seq || g.sg.members[id] == nil {
		g.mu.Unlock()
		return
	}
	g.c.log.Info("share group member removed", "group", g.id, "member", id, "reason", "session timed out")
	held := g.sg.members[id].assigned
	g.stopShareTimer(id)
	g.sg.remove(id)
	err := g.persistMetaLocked()
	g.mu.Unlock()
	if err != nil {
		g.c.log.Warn("persist share group", "group", g.id, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(g.c.ctx, defaultWriteTimeout)
	defer cancel()
	g.c.releaseShareMember(ctx, g.id, id, held)
}

// memberReleaser is an optional capability of ShareStates (internal/share's
// Engine has it): releasing every record a member holds in a share
// partition.
type memberReleaser interface {
	ReleaseMember(ctx context.Context, key share.Key, member string) error
}

// releaseShareMember releases what a member that left or expired still
// holds in the partitions it was assigned, so they are redelivered at once
// rather than at their lock deadlines. A failure only delays that: the
// locks still expire.
func (c *Coordinator) releaseShareMember(ctx context.Context, group, member string, held assignment) {
	r, ok := c.opts.ShareStates.(memberReleaser)
	if !ok {
		return
	}
	for _, tid := range held.topicIDs() {
		for _, p := range held[tid] {
			if err := r.ReleaseMember(ctx, share.Key{Group: group, Topic: tid, Partition: p}, member); err != nil {
				c.log.Warn("release a departed share member's records", "group", group, "member", member, "partition", p, "err", err)
			}
		}
	}
}

// ShareGroupDescribe describes share groups.
func (c *Coordinator) ShareGroupDescribe(_ context.Context, req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse {
	resp := kmsg.NewPtrShareGroupDescribeResponse()
	resp.Version = req.Version
	names := map[stream.TopicID]string{}
	for _, t := range c.topicMetas() {
		names[t.ID] = t.Name
	}
	for _, id := range req.GroupIDs {
		dg := kmsg.NewShareGroupDescribeResponseGroup()
		dg.GroupID = id
		dg.AuthorizedOperations = -2147483648
		g, code := c.lookup(id, false)
		switch {
		case code != 0:
			dg.ErrorCode = code
		case g == nil:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + id + " not found"
			dg.ErrorMessage = &msg
		case g.sg == nil:
			g.mu.Unlock()
			dg.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + id + " is not a share group"
			dg.ErrorMessage = &msg
		default:
			sg := g.sg
			dg.GroupState, dg.GroupEpoch, dg.AssignmentEpoch, dg.Assignor = sg.state(), sg.epoch, sg.assignmentEpoch, shareAssignorName
			for _, mid := range sg.memberIDs() {
				m := sg.members[mid]
				dm := kmsg.NewShareGroupDescribeResponseGroupMember()
				dm.MemberID, dm.RackID, dm.MemberEpoch = m.id, m.rack, m.epoch
				dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
				dm.SubscribedTopicNames = slices.Clone(m.topics)
				if dm.SubscribedTopicNames == nil {
					dm.SubscribedTopicNames = []string{}
				}
				for _, tid := range m.assigned.topicIDs() {
					if len(m.assigned[tid]) == 0 {
						continue
					}
					t := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
					t.TopicID, t.Topic, t.Partitions = tid, names[tid], slices.Clone(m.assigned[tid])
					dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, t)
				}
				dg.Members = append(dg.Members, dm)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// shareRecord is a share group's durable state.
type shareRecord struct {
	Epoch           int32                       `json:"epoch"`
	AssignmentEpoch int32                       `json:"assignment_epoch"`
	SubHash         uint64                      `json:"sub_hash"`
	Members         []smemberRecord             `json:"members"`
	Target          map[string]assignmentRecord `json:"target"`
}

type smemberRecord struct {
	ID         string           `json:"id"`
	Rack       *string          `json:"rack,omitempty"`
	ClientID   string           `json:"client_id"`
	ClientHost string           `json:"client_host"`
	Epoch      int32            `json:"epoch"`
	PrevEpoch  int32            `json:"prev_epoch"`
	Topics     []string         `json:"topics,omitempty"`
	Assigned   assignmentRecord `json:"assigned"`
}

func (sg *shareGroup) record() *shareRecord {
	rec := &shareRecord{Epoch: sg.epoch, AssignmentEpoch: sg.assignmentEpoch, SubHash: sg.subHash,
		Target: map[string]assignmentRecord{}}
	for _, id := range sg.memberIDs() {
		m := sg.members[id]
		rec.Members = append(rec.Members, smemberRecord{
			ID: m.id, Rack: m.rack, ClientID: m.clientID, ClientHost: m.clientHost,
			Epoch: m.epoch, PrevEpoch: m.prevEpoch, Topics: slices.Clone(m.topics), Assigned: m.assigned.record(),
		})
	}
	for id, a := range sg.target {
		rec.Target[id] = a.record()
	}
	return rec
}

func (rec *shareRecord) restore() *shareGroup {
	sg := newShareGroup()
	sg.epoch, sg.assignmentEpoch, sg.subHash = rec.Epoch, rec.AssignmentEpoch, rec.SubHash
	for _, mr := range rec.Members {
		sg.members[mr.ID] = &smember{
			id: mr.ID, rack: mr.Rack, clientID: mr.ClientID, clientHost: mr.ClientHost,
			epoch: mr.Epoch, prevEpoch: mr.PrevEpoch, topics: slices.Clone(mr.Topics), assigned: mr.Assigned.assignment(),
		}
	}
	for id, a := range rec.Target {
		sg.target[id] = a.assignment()
	}
	return sg
}

// deleteShareData removes an empty share group's share-partition state and
// its group configs (DeleteGroups), before the group itself goes.
func (c *Coordinator) deleteShareData(ctx context.Context, g *group) int16 {
	if c.opts.ShareStates != nil {
		if err := c.opts.ShareStates.DeleteState(ctx, g.id, nil); err != nil {
			c.log.Warn("delete share group state", "group", g.id, "err", err)
			return shareErrorCode(err)
		}
		g.inited = nil
	}
	if c.opts.GroupConfigs != nil {
		if err := c.opts.GroupConfigs.DeleteGroupConfig(ctx, g.id); err != nil {
			c.log.Warn("delete group configs", "group", g.id, "err", err)
			return kerr.CoordinatorNotAvailable.Code
		}
	}
	return 0
}

// shareErrorCode maps a share-state store error to the code a client
// expects; anything unexpected is retriable.
func shareErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, share.ErrUnknownTopicOrPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, share.ErrGroupNotEmpty):
		return kerr.NonEmptyGroup.Code
	case errors.Is(err, share.ErrInvalidRequest):
		return kerr.InvalidRequest.Code
	default:
		return kerr.CoordinatorNotAvailable.Code
	}
}

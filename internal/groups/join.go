package groups

// JoinGroup v0-v9, SyncGroup v0-v5, Heartbeat v0-v4, LeaveGroup v0-v5.
// Covers KIP-394 (MEMBER_ID_REQUIRED, v4+), KIP-345 (static membership:
// a rejoin with a known group.instance.id replaces the old member id and
// fences it), KIP-559 (protocol type/name in SyncGroup v5+), KIP-800
// (reasons, logged), KIP-814 (skip assignment for a static leader rejoining
// a stable group, v9+). Not done: group.max.size.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	u := hex.EncodeToString(b[:])
	return prefix + "-" + u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
}

// JoinGroup adds or refreshes a member and blocks until the join phase of
// the rebalance completes (or ctx ends).
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	r := c.joinGroup(ctx, req)
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = req.Version
	resp.ErrorCode = r.code
	resp.MemberID = r.memberID
	if r.code != 0 && r.code != kerr.MemberIDRequired.Code && r.memberID == "" {
		resp.MemberID = req.MemberID
	}
	resp.Generation = -1
	if r.code == 0 {
		resp.Generation = r.generation
		resp.LeaderID = r.leader
		resp.Members = r.members
		resp.SkipAssignment = r.skip && req.Version >= 9
		pt, proto := r.protocolType, r.protocol
		resp.ProtocolType = &pt
		resp.Protocol = &proto
	} else if req.Version < 7 {
		empty := ""
		resp.Protocol = &empty
	}
	return resp
}

func (c *Coordinator) joinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) joinResult {
	if req.Group == "" {
		return joinResult{code: kerr.InvalidGroupID.Code}
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.opts.MinSessionTimeout || session > c.opts.MaxSessionTimeout {
		return joinResult{code: kerr.InvalidSessionTimeout.Code}
	}
	rebalance := session
	if req.Version >= 1 && req.RebalanceTimeoutMillis > 0 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return joinResult{code: kerr.InconsistentGroupProtocol.Code}
	}
	protocols := make([]protocolMeta, 0, len(req.Protocols))
	seen := map[string]bool{}
	for _, p := range req.Protocols {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		protocols = append(protocols, protocolMeta{Name: p.Name, Metadata: p.Metadata})
	}
	var instanceID *string
	if req.Version >= 5 && req.InstanceID != nil {
		id := *req.InstanceID
		instanceID = &id
	}
	g, code := c.lookup(req.Group, req.MemberID == "")
	if code != 0 {
		return joinResult{code: code}
	}
	if g == nil {
		return joinResult{code: kerr.UnknownMemberID.Code}
	}
	defer func() {
		if g != nil {
			g.mu.Unlock()
		}
	}()
	if g.sg != nil {
		return joinResult{code: kerr.InconsistentGroupProtocol.Code} // a share group
	}
	if g.cg != nil {
		if len(g.cg.members) > 0 {
			// A classic member of a consumer group (convert.go).
			return g.classicJoin(req, clientIDFrom(ctx), clientHostFrom(ctx), protocols, session, rebalance, instanceID)
		}
		g.cg = nil // an empty consumer group becomes classic again
	}
	if req.Reason != nil {
		c.log.Debug("join group", "group", g.id, "member", req.MemberID, "reason", *req.Reason)
	}
	if !g.supportsProtocols(req.ProtocolType, protocols, req.MemberID) {
		return joinResult{code: kerr.InconsistentGroupProtocol.Code}
	}
	newMember := func(id string) *member {
		return &member{
			id: id, instanceID: instanceID, clientID: clientIDFrom(ctx), clientHost: clientHostFrom(ctx),
			sessionTimeout: session, rebalanceTimeout: rebalance, protocols: protocols,
		}
	}
	var m *member
	var immediate *joinResult
	switch {
	case req.MemberID == "" && instanceID != nil:
		if oldID, ok := g.static[*instanceID]; ok {
			m, immediate = g.replaceStatic(g.members[oldID], newMemberID(*instanceID), req.ProtocolType, protocols, session, rebalance)
			if immediate != nil && immediate.code != 0 {
				return *immediate
			}
		} else {
			m = newMember(newMemberID(*instanceID))
			g.addMember(m)
		}
	case req.MemberID == "":
		id := newMemberID(prefixOr(clientIDFrom(ctx), "member"))
		if req.Version >= 4 {
			// KIP-394: hand out the id; the member must come back with it.
			mid := id
			g.pending[mid] = time.AfterFunc(session, func() {
				g.mu.Lock()
				defer g.mu.Unlock()
				if t, ok := g.pending[mid]; ok && !g.dead {
					t.Stop()
					delete(g.pending, mid)
					g.tryCompleteJoin()
				}
			})
			return joinResult{code: kerr.MemberIDRequired.Code, memberID: id}
		}
		m = newMember(id)
		g.addMember(m)
	default:
		if t, ok := g.pending[req.MemberID]; ok {
			t.Stop()
			delete(g.pending, req.MemberID)
			if instanceID != nil {
				if _, taken := g.static[*instanceID]; taken {
					return joinResult{code: kerr.FencedInstanceID.Code, memberID: req.MemberID}
				}
			}
			m = newMember(req.MemberID)
			g.addMember(m)
			break
		}
		m = g.members[req.MemberID]
		if m == nil || g.state == stateEmpty || g.state == stateDead {
			return joinResult{code: kerr.UnknownMemberID.Code, memberID: req.MemberID}
		}
		if g.fenced(m, instanceID) {
			return joinResult{code: kerr.FencedInstanceID.Code, memberID: req.MemberID}
		}
		same := sameProtocols(m.protocols, protocols)
		m.sessionTimeout, m.rebalanceTimeout = session, rebalance
		switch g.state {
		case stateCompletingRebalance:
			if same {
				r := g.joinResultFor(m)
				immediate = &r
			}
		case stateStable:
			if same && m.id != g.leader {
				r := g.joinResultFor(m)
				immediate = &r
			}
		}
		if immediate == nil {
			m.protocols = protocols
		}
	}
	if immediate != nil {
		g.scheduleSession(m)
		return *immediate
	}
	if g.protocolType == "" || len(g.members) == 1 {
		g.protocolType = req.ProtocolType
	}
	ch := make(chan joinResult, 1)
	if m.joinCh != nil {
		// A duplicate join from the same member replaces the older request.
		g.answerJoin(m, joinResult{code: kerr.RebalanceInProgress.Code})
	}
	m.joinCh = ch
	g.scheduleSession(m)
	if g.state == statePreparingRebalance {
		g.tryCompleteJoin()
	} else {
		g.prepareRebalance()
	}
	g.mu.Unlock()
	g = nil
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return joinResult{code: kerr.RebalanceInProgress.Code, memberID: m.id}
	}
}

// replaceStatic gives a static member a new member id (KIP-345). The old id
// is fenced. If the group is stable and nothing changed, the member gets the
// current generation at once.
func (g *group) replaceStatic(old *member, newID, protocolType string, protocols []protocolMeta, session, rebalance time.Duration) (*member, *joinResult) {
	g.answerJoin(old, joinResult{code: kerr.FencedInstanceID.Code})
	g.answerSync(old, syncResult{code: kerr.FencedInstanceID.Code})
	if old.timer != nil {
		old.timer.Stop()
	}
	old.timerSeq++
	delete(g.members, old.id)
	oldID := old.id
	m := &member{
		id: newID, instanceID: old.instanceID, clientID: old.clientID, clientHost: old.clientHost,
		sessionTimeout: session, rebalanceTimeout: rebalance, protocols: old.protocols,
		assignment: old.assignment, joinSeq: old.joinSeq,
	}
	g.members[newID] = m
	g.static[*m.instanceID] = newID
	wasLeader := g.leader == oldID
	if wasLeader {
		g.leader = newID
	}
	if g.state == stateStable && sameProtocols(old.protocols, protocols) {
		if err := g.persistMetaLocked(); err != nil {
			// Revert: the old id stays the member of record.
			delete(g.members, newID)
			old.timerSeq++
			g.members[oldID] = old
			g.static[*old.instanceID] = oldID
			if wasLeader {
				g.leader = oldID
			}
			g.scheduleSession(old)
			return nil, &joinResult{code: errorCode(err)}
		}
		r := g.joinResultFor(m)
		if wasLeader {
			r.skip = true
			r.members = g.memberList()
		} else {
			r.members = nil
		}
		return m, &r
	}
	m.protocols = protocols
	return m, nil
}

// fenced reports whether a request naming instanceID conflicts with m
// (KIP-345).
func (g *group) fenced(m *member, instanceID *string) bool {
	if instanceID == nil {
		return false
	}
	return g.static[*instanceID] != m.id
}

// member finds the member a request names. A known instance id held by a
// different member id is FENCED_INSTANCE_ID (KIP-345), checked first so a
// replaced static member learns it was fenced.
func (g *group) member(memberID string, instanceID *string) (*member, int16) {
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if g.fenced(m, instanceID) {
		return nil, kerr.FencedInstanceID.Code
	}
	return m, 0
}

// SyncGroup distributes the leader's assignment. The assignment is
// persisted before anyone is answered.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	r, pt, proto := c.syncGroup(ctx, req)
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = req.Version
	resp.ErrorCode = r.code
	resp.MemberAssignment = r.assignment
	if r.code == 0 && req.Version >= 5 {
		resp.ProtocolType = &pt
		resp.Protocol = &proto
	}
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

func (c *Coordinator) syncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (syncResult, string, string) {
	if req.Group == "" {
		return syncResult{code: kerr.InvalidGroupID.Code}, "", ""
	}
	g, code := c.lookup(req.Group, false)
	if code != 0 {
		return syncResult{code: code}, "", ""
	}
	if g == nil {
		return syncResult{code: kerr.UnknownMemberID.Code}, "", ""
	}
	locked := true
	defer func() {
		if locked {
			g.mu.Unlock()
		}
	}()
	if g.sg != nil {
		return syncResult{code: kerr.UnknownMemberID.Code}, "", "" // a share group
	}
	if g.cg != nil {
		return g.classicSync(req)
	}
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	m, code := g.member(req.MemberID, instanceID)
	switch {
	case code != 0:
		return syncResult{code: code}, "", ""
	case req.Generation != g.generation:
		return syncResult{code: kerr.IllegalGeneration.Code}, "", ""
	case req.Version >= 5 && req.ProtocolType != nil && *req.ProtocolType != g.protocolType:
		return syncResult{code: kerr.InconsistentGroupProtocol.Code}, "", ""
	case req.Version >= 5 && req.Protocol != nil && *req.Protocol != g.protocol:
		return syncResult{code: kerr.InconsistentGroupProtocol.Code}, "", ""
	}
	pt, proto := g.protocolType, g.protocol
	switch g.state {
	case statePreparingRebalance:
		return syncResult{code: kerr.RebalanceInProgress.Code}, "", ""
	case stateStable:
		g.scheduleSession(m)
		return syncResult{assignment: m.assignment}, pt, proto
	case stateCompletingRebalance:
	default:
		return syncResult{code: kerr.UnknownMemberID.Code}, "", ""
	}
	ch := make(chan syncResult, 1)
	if m.syncCh != nil {
		g.answerSync(m, syncResult{code: kerr.RebalanceInProgress.Code})
	}
	m.syncCh = ch
	g.scheduleSession(m)
	if m.id == g.leader {
		for _, a := range req.GroupAssignment {
			if o, ok := g.members[a.MemberID]; ok {
				o.assignment = a.MemberAssignment
			}
		}
		prev := g.stateTime
		g.setState(stateStable)
		if err := g.persistMetaLocked(); err != nil {
			c.log.Warn("persist group assignment", "group", g.id, "err", err)
			g.state, g.stateTime = stateCompletingRebalance, prev
			code := errorCode(err)
			for _, o := range g.members {
				o.assignment = nil
				g.answerSync(o, syncResult{code: code})
			}
			if code != kerr.NotCoordinator.Code {
				g.prepareRebalance()
			}
		} else {
			for _, o := range g.members {
				g.answerSync(o, syncResult{assignment: o.assignment})
			}
		}
	}
	g.mu.Unlock()
	locked = false
	select {
	case r := <-ch:
		return r, pt, proto
	case <-ctx.Done():
		return syncResult{code: kerr.RebalanceInProgress.Code}, "", ""
	}
}

// Heartbeat refreshes a member's session and tells it whether to rejoin.
func (c *Coordinator) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = req.Version
	resp.ErrorCode = c.heartbeat(req)
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g, code := c.lookup(req.Group, false)
	if code != 0 {
		return code
	}
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	defer g.mu.Unlock()
	if g.sg != nil {
		return kerr.UnknownMemberID.Code // a share group
	}
	if g.cg != nil {
		return g.classicHeartbeat(req)
	}
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	m, code := g.member(req.MemberID, instanceID)
	switch {
	case g.state == stateEmpty:
		return kerr.UnknownMemberID.Code
	case code != 0:
		return code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	g.scheduleSession(m)
	if g.state == statePreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveGroup removes members (v3+: a batch, by member or instance id).
func (c *Coordinator) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	leaving := req.Members
	if req.Version < 3 {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = req.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{lm}
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, code := c.lookup(req.Group, false)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	codes := make([]int16, len(leaving))
	if g != nil && g.sg != nil {
		g.mu.Unlock() // a share group has no classic members
		g = nil
	}
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
	} else {
		removed := false
		for i, lm := range leaving {
			if g.cg != nil {
				codes[i] = g.classicLeave(lm)
			} else {
				codes[i] = g.leave(lm)
			}
			removed = removed || codes[i] == 0
		}
		switch {
		case removed && g.cg != nil:
			if err := g.persistMetaLocked(); err != nil {
				c.log.Warn("persist consumer group", "group", g.id, "err", err)
			}
		case removed:
			g.afterMembershipChange()
		}
		g.mu.Unlock()
	}
	if req.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp
	}
	for i, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		rm.InstanceID = lm.InstanceID
		rm.ErrorCode = codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (g *group) leave(lm kmsg.LeaveGroupRequestMember) int16 {
	if lm.InstanceID != nil {
		id, ok := g.static[*lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if lm.MemberID != "" && lm.MemberID != id {
			return kerr.FencedInstanceID.Code
		}
		g.removeMember(g.members[id], kerr.UnknownMemberID.Code)
		return 0
	}
	if t, ok := g.pending[lm.MemberID]; ok {
		t.Stop()
		delete(g.pending, lm.MemberID)
		return 0
	}
	m := g.members[lm.MemberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	g.removeMember(m, kerr.UnknownMemberID.Code)
	return 0
}

func prefixOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

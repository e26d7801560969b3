package groups

import (
	"bytes"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// String is the Kafka name of the state (DescribeGroups, ListGroups).
func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// joinResult is what a waiting JoinGroup is answered with.
type joinResult struct {
	code         int16
	generation   int32
	protocolType string
	protocol     string
	leader       string
	memberID     string
	members      []kmsg.JoinGroupResponseMember
	skip         bool
}

// syncResult is what a waiting SyncGroup is answered with.
type syncResult struct {
	code       int16
	assignment []byte
}

type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []protocolMeta
	assignment       []byte
	joinSeq          uint64 // order of first join; the oldest joined member leads

	joinCh chan joinResult // set while a JoinGroup waits
	syncCh chan syncResult // set while a SyncGroup waits

	timer    *time.Timer
	timerSeq uint64
}

// group is one classic group. All fields are guarded by mu.
type group struct {
	c  *Coordinator
	sh *shard
	id string

	mu           sync.Mutex
	dead         bool
	state        groupState
	stateTime    time.Time
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string      // instance id -> member id
	pending      map[string]*time.Timer // member ids handed out with MEMBER_ID_REQUIRED
	seq          uint64

	rebalanceTimer *time.Timer
	rebalanceSeq   uint64
	initialDelay   bool // the first rebalance of an empty group is waiting for more members
	offsets        map[string]map[int32]offsetRecord

	// cg is set while the group uses the KIP-848 consumer protocol
	// (consumer.go); ctimers are its members' timers.
	cg      *consumerGroup
	ctimers map[string]*consumerTimers

	// sg is set for a KIP-932 share group (share.go); stimers are its
	// members' session timers and inited the partitions whose share state
	// was initialised since the group was loaded.
	sg      *shareGroup
	stimers map[string]*shareTimer
	inited  map[tp]bool
}

func newGroup(c *Coordinator, sh *shard, id string) *group {
	return &group{
		c:         c,
		sh:        sh,
		id:        id,
		state:     stateEmpty,
		stateTime: time.Now(),
		members:   map[string]*member{},
		static:    map[string]string{},
		pending:   map[string]*time.Timer{},
		offsets:   map[string]map[int32]offsetRecord{},
	}
}

func (g *group) setState(s groupState) {
	g.state = s
	g.stateTime = time.Now()
}

func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].joinSeq < ms[j].joinSeq })
	return ms
}

// killGroupLocked marks the group dead (deleted or unloaded) and answers
// everyone waiting on it with NOT_COORDINATOR.
func (c *Coordinator) killGroupLocked(g *group) {
	if g.dead {
		return
	}
	for id := range g.ctimers {
		g.stopConsumerTimers(id)
	}
	for id := range g.stimers {
		g.stopShareTimer(id)
	}
	g.dead = true
	g.state = stateDead
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	for _, t := range g.pending {
		t.Stop()
	}
	g.pending = map[string]*time.Timer{}
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
		g.answerJoin(m, joinResult{code: kerr.NotCoordinator.Code})
		g.answerSync(m, syncResult{code: kerr.NotCoordinator.Code})
	}
}

func (g *group) answerJoin(m *member, r joinResult) {
	if m.joinCh == nil {
		return
	}
	if r.memberID == "" {
		r.memberID = m.id
	}
	m.joinCh <- r
	m.joinCh = nil
}

func (g *group) answerSync(m *member, r syncResult) {
	if m.syncCh == nil {
		return
	}
	m.syncCh <- r
	m.syncCh = nil
}

// startSessionsLocked arms every member's session timer (after a load).
func (g *group) startSessionsLocked() {
	for _, m := range g.members {
		g.scheduleSession(m)
	}
	if g.cg != nil {
		for _, m := range g.cg.members {
			g.scheduleConsumerSession(m)
			g.scheduleConsumerRebalance(m)
		}
	}
	if g.sg != nil {
		session, _ := g.c.shareTimeouts(g.id)
		for id := range g.sg.members {
			g.scheduleShareSession(id, session)
		}
	}
}

// scheduleSession (re)arms m's session expiry.
func (g *group) scheduleSession(m *member) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timerSeq++
	seq := m.timerSeq
	m.timer = time.AfterFunc(m.sessionTimeout, func() { g.expire(m, seq) })
}

// expire removes a member whose session lapsed. Members waiting in JoinGroup
// or SyncGroup are alive by definition and are kept.
func (g *group) expire(m *member, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || g.members[m.id] != m || m.timerSeq != seq {
		return
	}
	if m.joinCh != nil || m.syncCh != nil {
		g.scheduleSession(m)
		return
	}
	g.c.log.Info("member session expired", "group", g.id, "member", m.id)
	g.removeMember(m, kerr.UnknownMemberID.Code)
	g.afterMembershipChange()
}

// removeMember drops m from the group, answering anything it waits on.
func (g *group) removeMember(m *member, code int16) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timerSeq++
	g.answerJoin(m, joinResult{code: code})
	g.answerSync(m, syncResult{code: code})
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// afterMembershipChange moves the state machine on after members left.
func (g *group) afterMembershipChange() {
	switch g.state {
	case statePreparingRebalance:
		g.tryCompleteJoin()
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance()
	case stateEmpty:
	}
}

// addMember registers a new member that joins the current rebalance.
func (g *group) addMember(m *member) {
	m.joinSeq = g.seq
	g.seq++
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		if m.rebalanceTimeout > d {
			d = m.rebalanceTimeout
		}
	}
	return d
}

// prepareRebalance starts a rebalance: members must rejoin within the
// longest rebalance timeout.
func (g *group) prepareRebalance() {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			g.answerSync(m, syncResult{code: kerr.RebalanceInProgress.Code})
		}
	}
	wasEmpty := g.state == stateEmpty
	g.setState(statePreparingRebalance)
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	g.rebalanceSeq++
	seq := g.rebalanceSeq
	timeout := g.maxRebalanceTimeout()
	if delay := g.c.opts.InitialRebalanceDelay; wasEmpty && delay > 0 {
		if delay > timeout {
			delay = timeout
		}
		g.initialDelay = true
		g.scheduleInitialDelay(seq, delay, timeout-delay, len(g.members))
		return
	}
	g.initialDelay = false
	g.rebalanceTimer = time.AfterFunc(timeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.dead && g.rebalanceSeq == seq && g.state == statePreparingRebalance {
			g.completeJoin()
		}
	})
	g.tryCompleteJoin()
}

// scheduleInitialDelay implements group.initial.rebalance.delay.ms: the wait
// is extended while new members keep arriving, up to the rebalance timeout.
func (g *group) scheduleInitialDelay(seq uint64, delay, remaining time.Duration, seen int) {
	g.rebalanceTimer = time.AfterFunc(delay, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.dead || g.rebalanceSeq != seq || g.state != statePreparingRebalance {
			return
		}
		if len(g.members) > seen && remaining > 0 {
			next := g.c.opts.InitialRebalanceDelay
			if next > remaining {
				next = remaining
			}
			g.scheduleInitialDelay(seq, next, remaining-next, len(g.members))
			return
		}
		g.initialDelay = false
		g.completeJoin()
	})
}

// tryCompleteJoin finishes the join phase early once every member rejoined.
func (g *group) tryCompleteJoin() {
	if g.state != statePreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are removed
// (static members are kept, KIP-345), the generation advances, a protocol
// and leader are chosen and every waiting member is answered.
func (g *group) completeJoin() {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	g.rebalanceSeq++
	for _, m := range g.members {
		if m.joinCh == nil && m.instanceID == nil {
			g.removeMember(m, kerr.UnknownMemberID.Code)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.setState(stateEmpty)
		g.protocol = ""
		g.leader = ""
		if err := g.persistMetaLocked(); err != nil {
			g.c.log.Warn("persist empty group", "group", g.id, "err", err)
		}
		return
	}
	g.protocol = g.selectProtocol()
	if l, ok := g.members[g.leader]; !ok || l.joinCh == nil {
		g.leader = ""
		for _, m := range g.sortedMembers() {
			if m.joinCh != nil {
				g.leader = m.id
				break
			}
		}
		if g.leader == "" {
			g.leader = g.sortedMembers()[0].id
		}
	}
	g.setState(stateCompletingRebalance)
	for _, m := range g.sortedMembers() {
		m.assignment = nil
		if m.joinCh == nil {
			continue
		}
		r := g.joinResultFor(m)
		g.answerJoin(m, r)
		g.scheduleSession(m)
	}
}

// joinResultFor is the current generation as m should see it.
func (g *group) joinResultFor(m *member) joinResult {
	r := joinResult{
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
		memberID:     m.id,
	}
	if m.id == g.leader {
		r.members = g.memberList()
	}
	return r
}

func (g *group) memberList() []kmsg.JoinGroupResponseMember {
	var out []kmsg.JoinGroupResponseMember
	for _, o := range g.sortedMembers() {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = o.id
		jm.InstanceID = o.instanceID
		jm.ProtocolMetadata = o.metadataFor(g.protocol)
		out = append(out, jm)
	}
	return out
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports that gets the
// most first-choice votes; ties go to the leader's preference order.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	var candidates []string
	ref := ms[0]
	if l, ok := g.members[g.leader]; ok {
		ref = l
	}
	for _, p := range ref.protocols {
		all := true
		for _, m := range ms {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, name := range candidates {
		if votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// supportsProtocols reports whether a member with these protocols may join:
// the protocol type must match and at least one protocol must be supported
// by every other member.
func (g *group) supportsProtocols(protocolType string, protocols []protocolMeta, self string) bool {
	others := 0
	for id := range g.members {
		if id != self {
			others++
		}
	}
	if others == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != self && !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []protocolMeta) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

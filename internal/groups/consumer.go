package groups

// KIP-848 consumer groups: the broker computes the assignment.
//
// A consumer group has a group epoch, bumped whenever membership,
// subscriptions or the subscribed topics' partitions change, and a target
// assignment computed by a server-side assignor (assign.go) for that epoch.
// Each member reconciles towards its target one heartbeat at a time:
//
//  1. partitions it owns that its target no longer holds are revoked first:
//     the member is told its assignment minus those, keeps its epoch, and
//     must report (in a later heartbeat's owned partitions) that it let
//     them go, within its rebalance timeout;
//  2. then it moves to the assignment epoch and gets the partitions of its
//     target that no other member still owns; partitions others are still
//     revoking come on a later heartbeat, once released.
//
// Members not involved in a change keep consuming: nothing stops the world.
// A request must carry the member's current epoch (or its previous one
// with no partitions beyond what it was given); otherwise it is fenced
// (FENCED_MEMBER_EPOCH) and must rejoin with epoch 0. Static members
// (group.instance.id) leave with epoch -2 and keep their assignment until
// their session times out, so a restart with the same instance id picks it
// up unchanged.
//
// consumerGroup's methods are deterministic functions of their inputs (no
// clock, no I/O): the coordinator calls them under the group lock, persists
// the group when they report a change, and runs the timers.

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// assignment maps topic ids to sorted partitions.
type assignment map[stream.TopicID][]int32

func (a assignment) clone() assignment {
	out := make(assignment, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

func (a assignment) has(t stream.TopicID, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

func (a assignment) add(t stream.TopicID, p int32) {
	i, ok := slices.BinarySearch(a[t], p)
	if !ok {
		a[t] = slices.Insert(a[t], i, p)
	}
}

func (a assignment) size() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// intersect returns the partitions of a that b holds too.
func (a assignment) intersect(b assignment) assignment {
	out := assignment{}
	for t, ps := range a {
		for _, p := range ps {
			if b.has(t, p) {
				out.add(t, p)
			}
		}
	}
	return out
}

// minus returns the partitions of a that b does not hold.
func (a assignment) minus(b assignment) assignment {
	out := assignment{}
	for t, ps := range a {
		for _, p := range ps {
			if !b.has(t, p) {
				out.add(t, p)
			}
		}
	}
	return out
}

func (a assignment) equal(b assignment) bool {
	if a.size() != b.size() {
		return false
	}
	return a.minus(b).size() == 0
}

// topicsOf converts an assignment to its wire form, sorted by topic id.
func (a assignment) wire() []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic {
	ids := a.topicIDs()
	out := make([]kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic, 0, len(ids))
	for _, id := range ids {
		if len(a[id]) == 0 {
			continue
		}
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, slices.Clone(a[id])
		out = append(out, t)
	}
	return out
}

func (a assignment) topicIDs() []stream.TopicID {
	ids := make([]stream.TopicID, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// assignmentRecord is an assignment's durable form.
type assignmentRecord map[string][]int32 // hex topic id -> partitions

func (a assignment) record() assignmentRecord {
	out := make(assignmentRecord, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			out[hex.EncodeToString(t[:])] = ps
		}
	}
	return out
}

func (r assignmentRecord) assignment() assignment {
	out := assignment{}
	for k, ps := range r {
		var id stream.TopicID
		if b, err := hex.DecodeString(k); err == nil && len(b) == len(id) {
			copy(id[:], b)
			for _, p := range ps {
				out.add(id, p)
			}
		}
	}
	return out
}

// ownedFromRequest reads a heartbeat's owned partitions (nil: unchanged).
func ownedFromRequest(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) assignment {
	if ts == nil {
		return nil
	}
	out := assignment{}
	for _, t := range ts {
		for _, p := range t.Partitions {
			out.add(t.TopicID, p)
		}
	}
	return out
}

// topicMeta is one live topic as the assignors see it.
type topicMeta struct {
	ID         stream.TopicID
	Name       string
	Partitions int32
}

// cmember is one member of a consumer group.
type cmember struct {
	id         string
	instanceID *string
	rack       *string
	clientID   string
	clientHost string
	epoch      int32
	prevEpoch  int32
	// rebalanceTimeoutMs bounds how long the member may take to revoke.
	rebalanceTimeoutMs int32
	topics             []string // subscribed topic names, sorted
	regex              *string  // subscribed topic regex (v1+)
	assignor           *string  // requested server assignor
	assigned           assignment
	// revoking is set while the member must give up partitions.
	revoking bool
	// left marks a static member that left with epoch -2.
	left bool
	// classic is set for a member speaking the classic protocol in a
	// converted group (convert.go).
	classic *classicState
}

// consumerGroup is a KIP-848 group's state.
type consumerGroup struct {
	epoch           int32
	assignmentEpoch int32
	assignorName    string
	members         map[string]*cmember
	target          map[string]assignment
	// subHash fingerprints the resolved subscriptions (topic ids and
	// partition counts) the group epoch was last computed from.
	subHash uint64
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{members: map[string]*cmember{}, target: map[string]assignment{}}
}

// Server-side assignors (group.consumer.assignors); the first is the
// default.
var serverAssignors = []string{"uniform", "range"}

// hbResult is what a heartbeat produced.
type hbResult struct {
	code     int16
	msg      string
	memberID string
	epoch    int32
	// assignment is sent when set.
	assignment assignment
	// changed means durable state changed: persist before answering.
	changed bool
	// joined and left name members added or removed, for the timers.
	joined, left []string
}

func hbError(code int16, msg string, args ...any) hbResult {
	return hbResult{code: code, msg: fmt.Sprintf(msg, args...), epoch: -1}
}

// heartbeat applies one ConsumerGroupHeartbeat. newID makes a member id
// for v0 joins that bring none.
func (cg *consumerGroup) heartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string, topics []topicMeta, newID func() string) hbResult {
	if req.ServerAssignor != nil && *req.ServerAssignor != "" && !slices.Contains(serverAssignors, *req.ServerAssignor) {
		return hbError(kerr.UnsupportedAssignor.Code, "server assignor %q is not one of %v", *req.ServerAssignor, serverAssignors)
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := regexp.Compile(*req.SubscribedTopicRegex); err != nil {
			return hbError(kerr.InvalidRegularExpression.Code, "subscribed topic regex: %v", err)
		}
	}
	var res hbResult
	var m *cmember
	switch {
	case req.MemberEpoch == -1 || req.MemberEpoch == -2:
		m = cg.members[req.MemberID]
		if m == nil {
			return hbError(kerr.UnknownMemberID.Code, "member %q is not in the group", req.MemberID)
		}
		if req.MemberEpoch == -2 && m.instanceID != nil {
			// A static member leaves for now: its assignment waits for it.
			m.left = true
			return hbResult{memberID: m.id, epoch: -2, changed: true}
		}
		cg.remove(m.id)
		return hbResult{memberID: m.id, epoch: -1, changed: true, left: []string{m.id}}
	case req.MemberEpoch == 0:
		if req.SubscribedTopicNames == nil && (req.SubscribedTopicRegex == nil || *req.SubscribedTopicRegex == "") {
			return hbError(kerr.InvalidRequest.Code, "a joining member must send SubscribedTopicNames or SubscribedTopicRegex")
		}
		id := req.MemberID
		if id == "" {
			if req.Version >= 1 {
				return hbError(kerr.InvalidRequest.Code, "from version 1 the client generates its member id")
			}
			id = newID()
		}
		m = &cmember{id: id, instanceID: req.InstanceID, assigned: assignment{}}
		if old := cg.members[id]; old != nil {
			// A rejoin: the old incarnation is fenced.
			cg.remove(id)
			res.left = append(res.left, id)
		}
		if req.InstanceID != nil {
			if prev := cg.staticMember(*req.InstanceID); prev != nil {
				if !prev.left && prev.id != id {
					return hbError(kerr.UnreleasedInstanceID.Code, "instance id %q is in use by member %q", *req.InstanceID, prev.id)
				}
				// The static member returns under a new member id with
				// its epoch and assignment.
				m.epoch, m.prevEpoch, m.assigned, m.revoking = prev.epoch, prev.prevEpoch, prev.assigned, prev.revoking
				cg.target[id] = cg.target[prev.id]
				delete(cg.members, prev.id)
				delete(cg.target, prev.id)
				res.left = append(res.left, prev.id)
			}
		}
		cg.members[id] = m
		res.joined = append(res.joined, id)
		res.changed = true
		if m.epoch == 0 {
			cg.epoch++
		}
	default:
		m = cg.members[req.MemberID]
		if m == nil {
			return hbError(kerr.UnknownMemberID.Code, "member %q is not in the group", req.MemberID)
		}
		owned := ownedFromRequest(req.Topics)
		if req.MemberEpoch != m.epoch && !(req.MemberEpoch == m.prevEpoch && owned != nil && owned.minus(m.assigned).size() == 0) {
			return hbError(kerr.FencedMemberEpoch.Code, "member epoch %d is not the current %d", req.MemberEpoch, m.epoch)
		}
		m.left = false
	}
	m.clientID, m.clientHost = clientID, clientHost
	if cg.updateSubscription(m, req) {
		if req.MemberEpoch != 0 { // a join already bumped the epoch
			cg.epoch++
		}
		res.changed = true
	}
	if h := cg.subscriptionHash(topics); h != cg.subHash {
		if cg.subHash != 0 && !res.changed {
			cg.epoch++
		}
		cg.subHash = h
		res.changed = true
	}
	if cg.epoch > cg.assignmentEpoch {
		cg.computeTarget(topics)
		res.changed = true
	}
	out, changed := cg.reconcile(m, ownedFromRequest(req.Topics))
	res.changed = res.changed || changed
	res.memberID, res.epoch = m.id, m.epoch
	owned := ownedFromRequest(req.Topics)
	if req.MemberEpoch == 0 || changed || (owned != nil && !owned.equal(out)) {
		res.assignment = out
	}
	return res
}

// updateSubscription applies the subscription fields a heartbeat carries
// (nil means unchanged) and reports whether the subscription changed.
func (cg *consumerGroup) updateSubscription(m *cmember, req *kmsg.ConsumerGroupHeartbeatRequest) bool {
	changed := false
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics, changed = names, true
		}
	}
	if req.Version >= 1 && req.SubscribedTopicRegex != nil {
		var cur string
		if m.regex != nil {
			cur = *m.regex
		}
		if *req.SubscribedTopicRegex != cur {
			changed = true
			m.regex = nil
			if *req.SubscribedTopicRegex != "" {
				re := *req.SubscribedTopicRegex
				m.regex = &re
			}
		}
	}
	if req.ServerAssignor != nil {
		if m.assignor == nil || *m.assignor != *req.ServerAssignor {
			a := *req.ServerAssignor
			m.assignor, changed = &a, true
		}
	}
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalanceTimeoutMs = req.RebalanceTimeoutMillis
	}
	if req.RackID != nil {
		r := *req.RackID
		m.rack = &r
	}
	if req.InstanceID != nil && m.instanceID == nil {
		id := *req.InstanceID
		m.instanceID = &id
	}
	return changed
}

// subscribed returns the topics a member's subscription resolves to.
func (m *cmember) subscribed(topics []topicMeta) []topicMeta {
	var re *regexp.Regexp
	if m.regex != nil {
		re, _ = regexp.Compile("^(?:" + *m.regex + ")$")
	}
	var out []topicMeta
	for _, t := range topics {
		if _, ok := slices.BinarySearch(m.topics, t.Name); ok || (re != nil && re.MatchString(t.Name)) {
			out = append(out, t)
		}
	}
	return out
}

// subscriptionHash fingerprints every member's resolved subscription.
func (cg *consumerGroup) subscriptionHash(topics []topicMeta) uint64 {
	h := fnv.New64a()
	for _, id := range cg.memberIDs() {
		h.Write([]byte(id))
		for _, t := range cg.members[id].subscribed(topics) {
			h.Write(t.ID[:])
			fmt.Fprintf(h, "/%d;", t.Partitions)
		}
	}
	return h.Sum64() | 1 // never 0, the "not computed yet" value
}

func (cg *consumerGroup) memberIDs() []string {
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (cg *consumerGroup) staticMember(instanceID string) *cmember {
	for _, m := range cg.members {
		if m.instanceID != nil && *m.instanceID == instanceID {
			return m
		}
	}
	return nil
}

// remove drops a member and bumps the group epoch.
func (cg *consumerGroup) remove(id string) {
	delete(cg.members, id)
	delete(cg.target, id)
	cg.epoch++
}

// chooseAssignor picks the assignor most members asked for (ties by name);
// the default when none did.
func (cg *consumerGroup) chooseAssignor() string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != nil && *m.assignor != "" {
			votes[*m.assignor]++
		}
	}
	best, n := serverAssignors[0], 0
	for _, name := range serverAssignors {
		if votes[name] > n {
			best, n = name, votes[name]
		}
	}
	return best
}

// computeTarget computes the target assignment of the current epoch.
func (cg *consumerGroup) computeTarget(topics []topicMeta) {
	cg.assignorName = cg.chooseAssignor()
	subs := map[string][]topicMeta{}
	for id, m := range cg.members {
		subs[id] = m.subscribed(topics)
	}
	if cg.assignorName == "range" {
		cg.target = assignRange(subs)
	} else {
		cg.target = assignUniform(subs, cg.target)
	}
	cg.assignmentEpoch = cg.epoch
}

// reconcile moves m one step towards its target and returns the assignment
// to tell it. owned is what the member reports owning (nil: unchanged).
func (cg *consumerGroup) reconcile(m *cmember, owned assignment) (assignment, bool) {
	target := cg.target[m.id]
	if target == nil {
		target = assignment{}
	}
	keep := m.assigned.intersect(target)
	changed := false
	if m.revoking {
		if owned == nil || owned.minus(keep).size() > 0 {
			return keep, false // still revoking
		}
		m.assigned, m.revoking, changed = keep, false, true
	}
	if m.assigned.minus(target).size() > 0 {
		m.revoking = true
		return keep, true
	}
	// Grant the partitions of the target no other member still owns.
	next := m.assigned.clone()
	for t, ps := range target {
		for _, p := range ps {
			if !next.has(t, p) && !cg.ownedByOther(m.id, t, p) {
				next.add(t, p)
			}
		}
	}
	if m.epoch != cg.assignmentEpoch || !next.equal(m.assigned) {
		if m.epoch != cg.assignmentEpoch {
			m.prevEpoch, m.epoch = m.epoch, cg.assignmentEpoch
		}
		m.assigned, changed = next, true
	}
	return m.assigned.clone(), changed
}

func (cg *consumerGroup) ownedByOther(id string, t stream.TopicID, p int32) bool {
	for oid, o := range cg.members {
		if oid != id && o.assigned.has(t, p) {
			return true
		}
	}
	return false
}

// state is the group's KIP-848 state name (ConsumerGroupDescribe,
// ListGroups).
func (cg *consumerGroup) state() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.assignmentEpoch < cg.epoch:
		return "Assigning"
	}
	for id, m := range cg.members {
		if m.epoch != cg.assignmentEpoch || m.revoking || !m.assigned.equal(cg.target[id]) {
			return "Reconciling"
		}
	}
	return "Stable"
}

// checkCommit validates an offset commit against a consumer group: a
// member id must be a member and the epoch its current one; a commit with
// neither (epoch < 0, no member) is a standalone commit, allowed only while
// the group is empty. staleCode selects STALE_MEMBER_EPOCH (OffsetCommit
// v9+, TxnOffsetCommit) over ILLEGAL_GENERATION for a wrong epoch.
func (cg *consumerGroup) checkCommit(memberID string, epoch int32, staleCode bool) int16 {
	if memberID == "" && epoch < 0 {
		if len(cg.members) > 0 {
			return kerr.IllegalGeneration.Code
		}
		return 0
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if epoch != m.epoch {
		if staleCode {
			return kerr.StaleMemberEpoch.Code
		}
		return kerr.IllegalGeneration.Code
	}
	return 0
}

package groups

// KIP-932 share groups: membership and assignment.
//
// A share group's members read the same partitions together (records are
// acquired one by one through ShareFetch, internal/share), so assignment
// only spreads the load: every subscribed partition is assigned to at
// least one member, members get as many partitions as each other (±1), and
// when there are more members than partitions each partition is shared by
// ⌈members/partitions⌉ of them. That is Kafka's "simple" assignor; like it
// the assignment is sticky (a member keeps what it had where balance
// allows) and members with different subscriptions are assigned topic by
// topic.
//
// As in KIP-848 a group epoch is bumped whenever membership, subscriptions
// or the subscribed topics' partitions change, and the target assignment is
// recomputed for it. There is no revocation step: nothing is exclusive, so
// a member moves to the target at once, taking the assignment epoch.
//
// shareGroup's methods are deterministic functions of their inputs (no
// clock, no I/O): the coordinator calls them under the group lock, persists
// the group when they report a change, and runs the session timers.

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

const (
	shareGroupType    = "share"
	shareProtocolType = "share"
	shareAssignorName = "simple"
)

// smember is one member of a share group.
type smember struct {
	id         string
	rack       *string
	clientID   string
	clientHost string
	epoch      int32
	prevEpoch  int32
	topics     []string // subscribed topic names, sorted
	assigned   assignment
}

// shareGroup is a share group's state.
type shareGroup struct {
	epoch           int32
	assignmentEpoch int32
	members         map[string]*smember
	target          map[string]assignment
	// subHash fingerprints the resolved subscriptions the group epoch was
	// last computed from (0: never).
	subHash uint64
}

func newShareGroup() *shareGroup {
	return &shareGroup{members: map[string]*smember{}, target: map[string]assignment{}}
}

// shbResult is what a share heartbeat produced.
type shbResult struct {
	code     int16
	msg      string
	memberID string
	epoch    int32
	// assignment is sent when set.
	assignment assignment
	// changed means durable state changed: persist before answering.
	changed bool
	// left names a member that left.
	left string
}

func shbError(code int16, msg string, args ...any) shbResult {
	return shbResult{code: code, msg: fmt.Sprintf(msg, args...), epoch: -1}
}

// heartbeat applies one ShareGroupHeartbeat. The client always generates
// its member id (KIP-932 as in Kafka 4.1+).
func (sg *shareGroup) heartbeat(req *kmsg.ShareGroupHeartbeatRequest, clientID, clientHost string, topics []topicMeta) shbResult {
	if req.MemberID == "" {
		return shbError(kerr.InvalidRequest.Code, "MemberId can't be empty")
	}
	if req.RackID != nil && *req.RackID == "" {
		return shbError(kerr.InvalidRequest.Code, "RackId can't be empty")
	}
	var res shbResult
	var m *smember
	bumped := false // the group epoch moved in this heartbeat
	switch {
	case req.MemberEpoch == -1:
		if sg.members[req.MemberID] == nil {
			return shbError(kerr.UnknownMemberID.Code, "member %q is not in the group", req.MemberID)
		}
		sg.remove(req.MemberID)
		return shbResult{memberID: req.MemberID, epoch: -1, changed: true, left: req.MemberID}
	case req.MemberEpoch == 0:
		if len(req.SubscribedTopicNames) == 0 {
			return shbError(kerr.InvalidRequest.Code, "SubscribedTopicNames must be set in the first request")
		}
		id := req.MemberID
		m = sg.members[id]
		if m == nil {
			// A member that rejoins with epoch 0 (after a fence or a lost
			// response) keeps its entry: nothing it held is exclusive.
			m = &smember{id: id, assigned: assignment{}}
			sg.members[id] = m
			sg.epoch++
			bumped, res.changed = true, true
		}
	case req.MemberEpoch > 0:
		m = sg.members[req.MemberID]
		if m == nil {
			return shbError(kerr.UnknownMemberID.Code, "member %q is not in the group", req.MemberID)
		}
		// The previous epoch is accepted: the response that moved the
		// member on may have been lost.
		if req.MemberEpoch != m.epoch && req.MemberEpoch != m.prevEpoch {
			return shbError(kerr.FencedMemberEpoch.Code, "member epoch %d is not the current %d", req.MemberEpoch, m.epoch)
		}
	default:
		return shbError(kerr.InvalidRequest.Code, "member epoch %d is invalid", req.MemberEpoch)
	}
	m.clientID, m.clientHost = clientID, clientHost
	if req.RackID != nil && (m.rack == nil || *m.rack != *req.RackID) {
		r := *req.RackID
		m.rack, res.changed = &r, true
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics = names
			if !bumped {
				sg.epoch++
				bumped = true
			}
			res.changed = true
		}
	}
	if h := sg.subscriptionHash(topics); h != sg.subHash {
		if sg.subHash != 0 && !bumped && sg.epoch == sg.assignmentEpoch {
			// The subscribed topics' partitions changed (a member that
			// left has bumped the epoch already).
			sg.epoch++
		}
		sg.subHash = h
		res.changed = true
	}
	if sg.epoch > sg.assignmentEpoch {
		sg.computeTarget(topics)
		res.changed = true
	}
	before := m.assigned
	if sg.reconcile(m) {
		res.changed = true
	}
	res.memberID, res.epoch = m.id, m.epoch
	// A member still at its previous epoch missed the response that moved
	// it on: it gets the assignment again.
	if req.MemberEpoch == 0 || req.MemberEpoch != m.epoch || !before.equal(m.assigned) {
		res.assignment = m.assigned.clone()
	}
	return res
}

// reconcile moves m to the target of the assignment epoch and reports
// whether anything changed.
func (sg *shareGroup) reconcile(m *smember) bool {
	target := sg.target[m.id]
	if target == nil {
		target = assignment{}
	}
	if m.epoch == sg.assignmentEpoch && m.assigned.equal(target) {
		return false
	}
	if m.epoch != sg.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, sg.assignmentEpoch
	}
	m.assigned = target.clone()
	return true
}

// remove drops a member and bumps the group epoch.
func (sg *shareGroup) remove(id string) {
	delete(sg.members, id)
	delete(sg.target, id)
	sg.epoch++
}

func (sg *shareGroup) memberIDs() []string {
	ids := make([]string, 0, len(sg.members))
	for id := range sg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// state is the group's KIP-932 state name.
func (sg *shareGroup) state() string {
	if len(sg.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// subscribed returns the live topics m subscribes to.
func (m *smember) subscribed(topics []topicMeta) []topicMeta {
	var out []topicMeta
	for _, t := range topics {
		if _, ok := slices.BinarySearch(m.topics, t.Name); ok {
			out = append(out, t)
		}
	}
	return out
}

// subscriptionHash fingerprints every member's resolved subscription.
func (sg *shareGroup) subscriptionHash(topics []topicMeta) uint64 {
	h := fnv.New64a()
	for _, id := range sg.memberIDs() {
		h.Write([]byte(id))
		for _, t := range sg.members[id].subscribed(topics) {
			h.Write(t.ID[:])
			fmt.Fprintf(h, "/%d;", t.Partitions)
		}
	}
	return h.Sum64() | 1 // never 0, the "not computed yet" value
}

// computeTarget computes the target assignment of the current epoch.
func (sg *shareGroup) computeTarget(topics []topicMeta) {
	subs := make(map[string][]topicMeta, len(sg.members))
	for id, m := range sg.members {
		subs[id] = m.subscribed(topics)
	}
	sg.target = assignSimple(subs, sg.target)
	sg.assignmentEpoch = sg.epoch
}

// targetPartitions lists every partition of the target assignment.
func (sg *shareGroup) targetPartitions() assignment {
	out := assignment{}
	for _, a := range sg.target {
		for t, ps := range a {
			for _, p := range ps {
				out.add(t, p)
			}
		}
	}
	return out
}

// tp is one topic partition.
type tp struct {
	topic     stream.TopicID
	partition int32
}

func (a tp) compare(b tp) int {
	if c := cmp.Compare(string(a.topic[:]), string(b.topic[:])); c != 0 {
		return c
	}
	return cmp.Compare(a.partition, b.partition)
}

// assignSimple is the simple share assignor. Members with the same
// subscription are assigned together over every partition of it; with
// different subscriptions each topic is assigned on its own among its
// subscribers. prev is the previous target, kept where balance allows.
func assignSimple(subs map[string][]topicMeta, prev map[string]assignment) map[string]assignment {
	out := make(map[string]assignment, len(subs))
	ids := make([]string, 0, len(subs))
	for id := range subs {
		ids = append(ids, id)
		out[id] = assignment{}
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return out
	}
	homogeneous := true
	for _, id := range ids[1:] {
		if !slices.EqualFunc(subs[id], subs[ids[0]], func(a, b topicMeta) bool { return a.ID == b.ID && a.Partitions == b.Partitions }) {
			homogeneous = false
			break
		}
	}
	partitionsOf := func(ts []topicMeta) []tp {
		var out []tp
		for _, t := range ts {
			for p := int32(0); p < t.Partitions; p++ {
				out = append(out, tp{t.ID, p})
			}
		}
		slices.SortFunc(out, tp.compare)
		return out
	}
	load := map[string]int{}
	if homogeneous {
		shareOut(ids, partitionsOf(subs[ids[0]]), prev, load, out)
		return out
	}
	// Topic by topic, in topic id order; quotas go first to the members
	// that have the least so far, so the totals stay even.
	byID := map[stream.TopicID]topicMeta{}
	subscribers := map[stream.TopicID][]string{}
	for _, id := range ids {
		for _, t := range subs[id] {
			byID[t.ID] = t
			subscribers[t.ID] = append(subscribers[t.ID], id)
		}
	}
	tids := make([]stream.TopicID, 0, len(byID))
	for id := range byID {
		tids = append(tids, id)
	}
	slices.SortFunc(tids, func(a, b stream.TopicID) int { return cmp.Compare(string(a[:]), string(b[:])) })
	for _, tid := range tids {
		shareOut(subscribers[tid], partitionsOf([]topicMeta{byID[tid]}), prev, load, out)
	}
	return out
}

// shareOut assigns parts among members (sorted ids), adding to out and
// load. Each partition gets sharing = ⌈members/partitions⌉ members; the
// sharing×partitions slots are spread so member totals differ by at most
// one. A member keeps partitions it had in prev while its quota and the
// partition's sharing allow.
func shareOut(members []string, parts []tp, prev map[string]assignment, load map[string]int, out map[string]assignment) {
	if len(members) == 0 || len(parts) == 0 {
		return
	}
	in := map[tp]bool{}
	for _, p := range parts {
		in[p] = true
	}
	kept := map[string][]tp{}
	for _, id := range members {
		for t, ps := range prev[id] {
			for _, p := range ps {
				if k := (tp{t, p}); in[k] {
					kept[id] = append(kept[id], k)
				}
			}
		}
		slices.SortFunc(kept[id], tp.compare)
	}
	sharing := (len(members) + len(parts) - 1) / len(parts)
	slots := sharing * len(parts)
	// Quotas: slots/members each, one more for the first slots%members
	// members in this order: least loaded so far, then most to keep.
	order := slices.Clone(members)
	slices.SortStableFunc(order, func(a, b string) int {
		if c := cmp.Compare(load[a], load[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(len(kept[b]), len(kept[a])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	quota := map[string]int{}
	for i, id := range order {
		quota[id] = slots / len(members)
		if i < slots%len(members) {
			quota[id]++
		}
	}
	holders := map[tp][]string{}
	has := map[string]map[tp]bool{}
	give := func(id string, p tp) {
		holders[p] = append(holders[p], id)
		has[id][p] = true
	}
	for _, id := range order {
		has[id] = map[tp]bool{}
		for _, p := range kept[id] {
			if len(has[id]) < quota[id] && len(holders[p]) < sharing {
				give(id, p)
			}
		}
	}
	// Fill every partition to its sharing, round robin over the members
	// with room, most room first.
	next := 0
	for _, p := range parts {
		for len(holders[p]) < sharing {
			var pick string
			best := 0
			for i := range order {
				id := order[(next+i)%len(order)]
				if room := quota[id] - len(has[id]); room > best && !has[id][p] {
					pick, best = id, room
				}
			}
			if pick == "" {
				pick = swapForRoom(order, p, quota, has, holders)
			}
			if pick == "" {
				break // cannot happen: quotas add up to the slots
			}
			give(pick, p)
			next++
		}
	}
	for _, id := range members {
		for p := range has[id] {
			out[id].add(p.topic, p.partition)
		}
		load[id] += len(has[id])
	}
}

// swapForRoom frees a member to take p when every member with room already
// holds p: some member o without p hands one of its partitions q to a
// member m with room that lacks q, and o takes p instead. It returns o (with
// the room now free), or "" if no such exchange exists.
func swapForRoom(order []string, p tp, quota map[string]int, has map[string]map[tp]bool, holders map[tp][]string) string {
	for _, m := range order {
		if quota[m]-len(has[m]) <= 0 {
			continue
		}
		for _, o := range order {
			if has[o][p] {
				continue
			}
			qs := make([]tp, 0, len(has[o]))
			for q := range has[o] {
				qs = append(qs, q)
			}
			slices.SortFunc(qs, tp.compare)
			for _, q := range qs {
				if has[m][q] {
					continue
				}
				delete(has[o], q)
				holders[q] = slices.DeleteFunc(holders[q], func(h string) bool { return h == o })
				holders[q] = append(holders[q], m)
				has[m][q] = true
				return o
			}
		}
	}
	return ""
}

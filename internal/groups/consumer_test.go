package groups

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

func testTopic(n byte, name string, parts int32) topicMeta {
	var id stream.TopicID
	id[15] = n
	return topicMeta{ID: id, Name: name, Partitions: parts}
}

// simMember is a well-behaved KIP-848 client: it heartbeats with its epoch
// and the partitions it owns, and gives up revoked partitions at once.
type simMember struct {
	id     string
	epoch  int32
	owned  assignment
	topics []string
}

func (s *simMember) heartbeat(t *testing.T, cg *consumerGroup, topics []topicMeta) hbResult {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = "g", s.id, s.epoch
	req.RebalanceTimeoutMillis = 60000
	if s.epoch == 0 {
		req.SubscribedTopicNames = s.topics
	}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, id := range s.owned.topicIDs() {
		rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		rt.TopicID, rt.Partitions = id, s.owned[id]
		req.Topics = append(req.Topics, rt)
	}
	res := cg.heartbeat(req, "client", "host", topics, func() string { return "generated" })
	if res.code != 0 {
		t.Fatalf("member %s heartbeat: %v %s", s.id, kerr.ErrorForCode(res.code), res.msg)
	}
	s.epoch = res.epoch
	if res.assignment != nil {
		s.owned = res.assignment.clone()
	}
	return res
}

// checkExclusive fails if two members own one partition.
func checkExclusive(t *testing.T, ms []*simMember) {
	t.Helper()
	seen := map[string]string{}
	for _, m := range ms {
		for id, ps := range m.owned {
			for _, p := range ps {
				k := fmt.Sprintf("%x/%d", id[15], p)
				if other, dup := seen[k]; dup {
					t.Fatalf("partition %s owned by %s and %s at once", k, other, m.id)
				}
				seen[k] = m.id
			}
		}
	}
}

// converge heartbeats every member in turn until the group is stable.
func converge(t *testing.T, cg *consumerGroup, ms []*simMember, topics []topicMeta) int {
	t.Helper()
	for round := 1; round <= 20; round++ {
		for _, m := range ms {
			m.heartbeat(t, cg, topics)
			checkExclusive(t, ms)
		}
		if cg.state() == "Stable" {
			return round
		}
	}
	t.Fatalf("group did not converge: state %s", cg.state())
	return 0
}

func TestConsumerGroupReconciliation(t *testing.T) {
	for _, assignor := range []string{"uniform", "range"} {
		t.Run(assignor, func(t *testing.T) {
			topics := []topicMeta{testTopic(1, "a", 6), testTopic(2, "b", 3)}
			cg := newConsumerGroup()
			a := &simMember{id: "a", topics: []string{"a", "b"}}
			res := a.heartbeat(t, cg, topics)
			if res.epoch != 1 || a.owned.size() != 9 {
				t.Fatalf("first member: epoch %d, %d partitions", res.epoch, a.owned.size())
			}
			if assignor == "range" {
				cg.members["a"].assignor = &assignor
			}
			b := &simMember{id: "b", topics: []string{"a", "b"}}
			ms := []*simMember{a, b}
			converge(t, cg, ms, topics)
			if cg.assignorName != assignor {
				t.Fatalf("assignor %s, want %s", cg.assignorName, assignor)
			}
			if na, nb := a.owned.size(), b.owned.size(); na+nb != 9 || na < 4 || nb < 4 {
				t.Fatalf("split %d/%d", na, nb)
			}
			// A third member joins: the others keep consuming what they
			// keep; only moved partitions change hands.
			before := a.owned.clone()
			c := &simMember{id: "c", topics: []string{"a"}}
			ms = append(ms, c)
			converge(t, cg, ms, topics)
			if c.owned.size() == 0 {
				t.Fatal("the new member got nothing")
			}
			if assignor == "uniform" && a.owned.minus(before).size() > 0 {
				t.Fatalf("uniform moved partitions to a member that lost some: before %v after %v", before, a.owned)
			}
			if got := a.owned.size() + b.owned.size() + c.owned.size(); got != 9 {
				t.Fatalf("%d partitions assigned, want 9", got)
			}
			// c subscribes only to a: it never gets b's partitions.
			if len(c.owned[topics[1].ID]) != 0 {
				t.Fatalf("member c got partitions of a topic it does not subscribe to: %v", c.owned)
			}
			// A member leaves: the rest take its partitions.
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", "b", -1
			if res := cg.heartbeat(req, "", "", topics, nil); res.code != 0 || res.epoch != -1 {
				t.Fatalf("leave: %+v", res)
			}
			ms = []*simMember{a, c}
			converge(t, cg, ms, topics)
			if got := a.owned.size() + c.owned.size(); got != 9 {
				t.Fatalf("after the leave %d partitions assigned, want 9", got)
			}
		})
	}
}

func TestConsumerGroupFencingAndErrors(t *testing.T) {
	topics := []topicMeta{testTopic(1, "a", 2)}
	cg := newConsumerGroup()
	a := &simMember{id: "a", topics: []string{"a"}}
	a.heartbeat(t, cg, topics)
	hb := func(mut func(r *kmsg.ConsumerGroupHeartbeatRequest)) hbResult {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", "a", a.epoch
		mut(req)
		return cg.heartbeat(req, "", "", topics, func() string { return "x" })
	}
	cases := []struct {
		name string
		mut  func(r *kmsg.ConsumerGroupHeartbeatRequest)
		code int16
	}{
		{"stale epoch", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 7 }, kerr.FencedMemberEpoch.Code},
		{"unknown member", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "nobody" }, kerr.UnknownMemberID.Code},
		{"join without subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "n", 0 }, kerr.InvalidRequest.Code},
		{"v1 join without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberID, r.MemberEpoch, r.SubscribedTopicNames = "", 0, []string{"a"}
		}, kerr.InvalidRequest.Code},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { s := "sticky"; r.ServerAssignor = &s }, kerr.UnsupportedAssignor.Code},
		{"bad regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) { s := "a("; r.SubscribedTopicRegex = &s }, kerr.InvalidRegularExpression.Code},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if res := hb(tc.mut); res.code != tc.code {
				t.Fatalf("code %v, want %v", kerr.ErrorForCode(res.code), kerr.ErrorForCode(tc.code))
			}
		})
	}
	// v0 joins get a generated member id.
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.SubscribedTopicNames = "g", []string{"a"}
	if res := cg.heartbeat(req, "", "", topics, func() string { return "generated" }); res.code != 0 || res.memberID != "generated" {
		t.Fatalf("v0 join: %+v", res)
	}
}

func TestConsumerGroupStaticMemberKeepsAssignment(t *testing.T) {
	topics := []topicMeta{testTopic(1, "a", 4)}
	cg := newConsumerGroup()
	join := func(id, instance string) hbResult {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", id, 0
		req.InstanceID, req.SubscribedTopicNames = &instance, []string{"a"}
		return cg.heartbeat(req, "", "", topics, nil)
	}
	a := &simMember{id: "a1", topics: []string{"a"}}
	b := &simMember{id: "b1", topics: []string{"a"}}
	for _, s := range []*simMember{a, b} {
		res := join(s.id, strings.ToUpper(s.id[:1]))
		if res.code != 0 {
			t.Fatal(res.msg)
		}
		s.epoch, s.owned = res.epoch, res.assignment
	}
	converge(t, cg, []*simMember{a, b}, topics)
	epoch, owned := cg.epoch, a.owned.clone()
	// Static leave (-2): the assignment waits; another member may not take
	// the instance id while it is live, but may once it left.
	if res := join("a2", "A"); res.code != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("taking a live instance id: %v", kerr.ErrorForCode(res.code))
	}
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", "a1", -2
	if res := cg.heartbeat(req, "", "", topics, nil); res.code != 0 || res.epoch != -2 {
		t.Fatalf("static leave: %+v", res)
	}
	res := join("a2", "A")
	if res.code != 0 || cg.epoch != epoch || !res.assignment.equal(owned) {
		t.Fatalf("static rejoin: code %v, epoch %d (was %d), assignment %v (was %v)", kerr.ErrorForCode(res.code), cg.epoch, epoch, res.assignment, owned)
	}
	if got := slices.Sorted(maps.Keys(cg.members)); strings.Join(got, ",") != "a2,b1" {
		t.Fatalf("members %v", got)
	}
}

func TestConsumerGroupRecordRoundTrip(t *testing.T) {
	topics := []topicMeta{testTopic(1, "a", 5), testTopic(2, "b", 2)}
	cg := newConsumerGroup()
	ms := []*simMember{{id: "a", topics: []string{"a"}}, {id: "b", topics: []string{"a", "b"}}}
	converge(t, cg, ms, topics)
	back := cg.record().restore()
	if got, want := fmt.Sprint(back.record()), fmt.Sprint(cg.record()); got != want {
		t.Fatalf("round trip:\n got %s\nwant %s", got, want)
	}
	if back.state() != "Stable" {
		t.Fatalf("restored state %s", back.state())
	}
}

func TestAssignorsBalance(t *testing.T) {
	a, b := testTopic(1, "a", 7), testTopic(2, "b", 3)
	subs := map[string][]topicMeta{"m1": {a, b}, "m2": {a, b}, "m3": {a}}
	for name, got := range map[string]map[string]assignment{
		"uniform": assignUniform(subs, nil),
		"range":   assignRange(subs),
	} {
		total := 0
		for _, as := range got {
			total += as.size()
		}
		if total != 10 {
			t.Fatalf("%s assigned %d partitions, want 10", name, total)
		}
		if len(got["m3"][b.ID]) != 0 {
			t.Fatalf("%s gave m3 a topic it does not subscribe to", name)
		}
		if name == "uniform" {
			for m, as := range got {
				if n := as.size(); n < 3 || n > 4 {
					t.Fatalf("uniform gave %s %d partitions: %v", m, n, got)
				}
			}
		}
	}
	// Range: contiguous ranges, first members one more.
	r := assignRange(map[string][]topicMeta{"x": {a}, "y": {a}})
	if fmt.Sprint(r["x"][a.ID]) != "[0 1 2 3]" || fmt.Sprint(r["y"][a.ID]) != "[4 5 6]" {
		t.Fatalf("range = %v", r)
	}
}

// TestConsumerGroupRegexSubscription subscribes by regex (v1): matching
// topics are assigned, and a topic created later that matches moves the
// group to a new epoch that includes it.
func TestConsumerGroupRegexSubscription(t *testing.T) {
	topics := []topicMeta{testTopic(1, "orders.eu", 2), testTopic(2, "orders.us", 2), testTopic(3, "audit", 4)}
	cg := newConsumerGroup()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID = 1, "g", "m"
	re := `orders\..*`
	req.SubscribedTopicRegex = &re
	res := cg.heartbeat(req, "", "", topics, nil)
	if res.code != 0 || res.assignment.size() != 4 || len(res.assignment[topics[2].ID]) != 0 {
		t.Fatalf("regex join: %v %s, assignment %v", kerr.ErrorForCode(res.code), res.msg, res.assignment)
	}
	epoch := cg.epoch
	topics = append(topics, testTopic(4, "orders.ap", 3))
	req = kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", "m", res.epoch
	res = cg.heartbeat(req, "", "", topics, nil)
	if res.code != 0 || cg.epoch != epoch+1 || res.assignment.size() != 7 {
		t.Fatalf("after a matching topic appeared: epoch %d (was %d), assignment %v", cg.epoch, epoch, res.assignment)
	}
	// The regex matches whole names only.
	if m := cg.members["m"]; len(m.subscribed([]topicMeta{testTopic(5, "xorders.eu", 1)})) != 0 {
		t.Fatal("the regex matched part of a name")
	}
}

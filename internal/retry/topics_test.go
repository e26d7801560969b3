package retry

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/stream"
)

func TestPolicyOf(t *testing.T) {
	if _, ok := PolicyOf("g", map[string]string{"errors.retry.ordered": "true"}); ok {
		t.Fatal("a group without delays has a policy")
	}
	p, ok := PolicyOf("g", map[string]string{"errors.retry.delays.ms": "100,2000", "errors.retry.ordered": "true"})
	if !ok || !reflect.DeepEqual(p.Delays, []time.Duration{100 * time.Millisecond, 2 * time.Second}) || !p.Ordered || p.DeadLetterTopic != "dlq.g" {
		t.Fatalf("policy %+v", p)
	}
	p, _ = PolicyOf("g", map[string]string{"errors.retry.delays.ms": "100", "errors.deadletterqueue.topic.name": "dead"})
	if p.DeadLetterTopic != "dead" || p.Ordered {
		t.Fatalf("policy %+v", p)
	}
}

func TestCheckGroup(t *testing.T) {
	for _, tc := range []struct {
		group string
		ok    bool
	}{
		{"orders", true},
		{"team.orders_v2-x", true},
		{"", false},
		{"has space", false},
		{"slash/y", false},
		{string(make([]byte, 240)), false},
	} {
		if err := CheckGroup(tc.group); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidGroup) {
			t.Errorf("CheckGroup(%q) = %v, want ok=%v", tc.group, err, tc.ok)
		}
	}
}

func TestPlanTopics(t *testing.T) {
	p := Policy{Group: "g", Delays: []time.Duration{time.Second, 10 * time.Second}, DeadLetterTopic: "dlq.g"}
	lvl := func(d string) map[string]string {
		return map[string]string{"delivery.delay.ms": d, "message.timestamp.type": "LogAppendTime"}
	}
	for _, tc := range []struct {
		name     string
		ordered  bool
		existing map[string]map[string]string
		want     []topicAction
	}{
		{"nothing exists", false, nil, []topicAction{
			{Topic: "retry.g.1", Create: true, Configs: lvl("1000")},
			{Topic: "retry.g.2", Create: true, Configs: lvl("10000")},
			{Topic: "dlq.g", Create: true},
		}},
		{"ordered adds the parked topic", true, map[string]map[string]string{
			"retry.g.1": lvl("1000"), "retry.g.2": lvl("10000"), "dlq.g": nil,
		}, []topicAction{
			{Topic: "retry.g.parked", Create: true, Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		}},
		{"a changed delay is altered, nothing else", false, map[string]map[string]string{
			"retry.g.1": lvl("1000"), "retry.g.2": lvl("5000"), "dlq.g": {"retention.ms": "1"}, "retry.g.3": lvl("7"),
		}, []topicAction{
			{Topic: "retry.g.2", Configs: map[string]string{"delivery.delay.ms": "10000"}},
		}},
		{"a level created by hand with CreateTime is fixed", false, map[string]map[string]string{
			"retry.g.1": {"delivery.delay.ms": "1000"}, "retry.g.2": lvl("10000"), "dlq.g": nil,
		}, []topicAction{
			{Topic: "retry.g.1", Configs: map[string]string{"message.timestamp.type": "LogAppendTime"}},
		}},
		{"all in place", false, map[string]map[string]string{
			"retry.g.1": lvl("1000"), "retry.g.2": lvl("10000"), "dlq.g": nil,
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := p
			p.Ordered = tc.ordered
			got := planTopics(p, func(name string) (stream.TopicInfo, bool) {
				c, ok := tc.existing[name]
				return stream.TopicInfo{Name: name, Configs: c}, ok
			})
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("plan\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// fakeLog creates topics in memory; create fails once with ErrTopicExists
// for names in raced (another broker got there first).
type fakeLog struct {
	topics map[string]map[string]string
	raced  map[string]bool
}

func (l *fakeLog) Topic(name string) (stream.TopicInfo, bool) {
	c, ok := l.topics[name]
	return stream.TopicInfo{Name: name, Configs: c}, ok
}

func (l *fakeLog) CreateTopic(_ context.Context, name string, _ int32, configs map[string]string, _ bool) (stream.TopicInfo, error) {
	if l.raced[name] {
		delete(l.raced, name)
		l.topics[name] = map[string]string{"delivery.delay.ms": "1"}
		return stream.TopicInfo{}, stream.ErrTopicExists
	}
	if _, ok := l.topics[name]; ok {
		return stream.TopicInfo{}, stream.ErrTopicExists
	}
	l.topics[name] = configs
	return stream.TopicInfo{Name: name}, nil
}

func (l *fakeLog) AlterTopicConfigs(_ context.Context, name string, changes []stream.ConfigChange, _, _ bool) error {
	c := map[string]string{}
	for k, v := range l.topics[name] {
		c[k] = v
	}
	for _, ch := range changes {
		c[ch.Name] = *ch.Value
	}
	l.topics[name] = c
	return nil
}

// TestApplyAfterRace: a level topic created by another broker with other
// configs meanwhile is configured as the policy says.
func TestApplyAfterRace(t *testing.T) {
	l := &fakeLog{topics: map[string]map[string]string{}, raced: map[string]bool{"retry.g.1": true}}
	s := New(Options{Log: l})
	p := Policy{Group: "g", Delays: []time.Duration{300 * time.Millisecond}, DeadLetterTopic: "dlq.g"}
	if err := s.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := l.topics["retry.g.1"]; got["delivery.delay.ms"] != "300" || got["message.timestamp.type"] != "LogAppendTime" {
		t.Fatalf("retry.g.1 configs %v", got)
	}
	if _, ok := l.topics["dlq.g"]; !ok {
		t.Fatal("no dead-letter topic")
	}
	if err := s.Apply(context.Background(), Policy{Group: "a b", Delays: p.Delays}); !errors.Is(err, ErrInvalidGroup) {
		t.Fatalf("bad group: %v", err)
	}
}

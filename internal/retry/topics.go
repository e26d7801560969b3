package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Log is what the service needs of the partitioned log (stream.Engine
// satisfies it). CreateTopic with partitions 0 uses the broker default and
// fails with stream.ErrTopicExists when the name is taken.
type Log interface {
	Topic(name string) (stream.TopicInfo, bool)
	CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (stream.TopicInfo, error)
	AlterTopicConfigs(ctx context.Context, name string, changes []stream.ConfigChange, replace, validateOnly bool) error
}

// Options configure a Service.
type Options struct {
	Log    Log
	Logger *slog.Logger
}

// Service applies retry policies: it creates and updates their topics.
// It holds no state of its own; every broker may run one.
type Service struct {
	log    Log
	logger *slog.Logger
}

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{log: o.Log, logger: o.Logger.With("component", "retry")}
}

// topicAction creates a topic (partitions 0: the broker default) or sets
// configs of an existing one.
type topicAction struct {
	Topic      string
	Create     bool
	Partitions int32
	Configs    map[string]string
}

// levelConfigs are the configs of a retry topic of the given delay.
func levelConfigs(d int64) map[string]string {
	return map[string]string{
		config.TopicDeliveryDelay: strconv.FormatInt(d, 10),
		"message.timestamp.type":  "LogAppendTime",
	}
}

// planTopics returns what makes p's topics exist with the configs p needs:
// every level topic (delay, LogAppendTime), the dead-letter topic and, in
// ordered mode, the compacted parked-keys topic (one partition). Topics of
// levels a shorter policy no longer has are left alone: records may still
// wait there, and the group's consumers still read them.
func planTopics(p Policy, lookup func(string) (stream.TopicInfo, bool)) []topicAction {
	var out []topicAction
	want := func(name string, partitions int32, cfg map[string]string) {
		ti, ok := lookup(name)
		if !ok {
			out = append(out, topicAction{Topic: name, Create: true, Partitions: partitions, Configs: cfg})
			return
		}
		changes := map[string]string{}
		for k, v := range cfg {
			if ti.Configs[k] != v {
				changes[k] = v
			}
		}
		if len(changes) > 0 {
			out = append(out, topicAction{Topic: name, Configs: changes})
		}
	}
	for i, d := range p.Delays {
		want(LevelTopic(p.Group, i+1), 0, levelConfigs(d.Milliseconds()))
	}
	want(p.DeadLetterTopic, 0, nil)
	if p.Ordered {
		want(ParkedTopic(p.Group), 1, map[string]string{"cleanup.policy": "compact"})
	}
	return out
}

// Apply makes p's topics exist with the configs p needs (planTopics).
// A topic another broker creates meanwhile is checked again.
func (s *Service) Apply(ctx context.Context, p Policy) error {
	if err := CheckGroup(p.Group); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		raced := false
		for _, a := range planTopics(p, s.log.Topic) {
			if a.Create {
				_, err := s.log.CreateTopic(ctx, a.Topic, a.Partitions, a.Configs, false)
				if errors.Is(err, stream.ErrTopicExists) && attempt == 0 {
					raced = true
					continue
				}
				if err != nil {
					return fmt.Errorf("retry: create %s for group %s: %w", a.Topic, p.Group, err)
				}
				s.logger.Info("retry topic created", "group", p.Group, "topic", a.Topic)
				continue
			}
			var changes []stream.ConfigChange
			for _, k := range slices.Sorted(maps.Keys(a.Configs)) {
				v := a.Configs[k]
				changes = append(changes, stream.ConfigChange{Name: k, Value: &v})
			}
			if err := s.log.AlterTopicConfigs(ctx, a.Topic, changes, false, false); err != nil {
				return fmt.Errorf("retry: configure %s for group %s: %w", a.Topic, p.Group, err)
			}
		}
		if !raced {
			return nil
		}
	}
}

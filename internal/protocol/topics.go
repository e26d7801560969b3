package protocol

// CreateTopics (key 19) v2–7, DeleteTopics (key 20) v1–6, CreatePartitions
// (key 37) v0–3.
//
// CreateTopics validates names, partition counts and configs (through the
// config table, then the Log), honours validate-only, and from v5 returns the
// resulting configs, partition count and replication factor (v7: topic id).
// Replication: data durability comes from the object store, so one logical
// replica exists; a replication factor of -1 (broker default) or 1..number of
// live brokers is accepted and reported, anything else is
// INVALID_REPLICATION_FACTOR (as Kafka answers when rf exceeds the broker
// count). Manual replica assignments cannot be honoured (leaders are
// derived by rendezvous hashing) and get INVALID_REPLICA_ASSIGNMENT, as do
// CreatePartitions assignments. A topic named twice in one request gets
// INVALID_REQUEST. DeleteTopics accepts names (v0–5) and names or ids (v6).
// Authorization (as Kafka): CreateTopics needs CREATE on the cluster or on
// the topic (TOPIC_AUTHORIZATION_FAILED), and returns the new topic's
// configs only with DESCRIBE_CONFIGS on it (otherwise its config error code
// is TOPIC_AUTHORIZATION_FAILED); DeleteTopics needs DELETE, and a topic
// named by id without DESCRIBE on it is answered with the id only;
// CreatePartitions needs ALTER. A topic named twice stays INVALID_REQUEST.
// Not done: controller-side timeouts (TimeoutMillis); the Log applies
// changes before returning.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

func handleCreateTopics(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int)
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	brokers := len(s.opts.Cluster.Brokers())
	createAny := s.authorizedCluster(rc, kmsg.ACLOperationCreate)
	create := s.topicChecker(rc, kmsg.ACLOperationCreate)
	describeConfigs := s.topicChecker(rc, kmsg.ACLOperationDescribeConfigs)
	for _, rt := range req.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		t.NumPartitions, t.ReplicationFactor = -1, -1
		fail := func(e *kerr.Error, msg string) {
			t.ErrorCode, t.ErrorMessage = e.Code, strp(msg)
		}
		configs := make(map[string]string)
		var cfgErr error
		for _, c := range rt.Configs {
			if c.Value == nil {
				continue
			}
			if err := config.ValidateTopicConfig(c.Name, *c.Value); err != nil && cfgErr == nil {
				cfgErr = err
			}
			configs[c.Name] = *c.Value
		}
		switch {
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest, fmt.Sprintf("topic %q is named more than once in the request", rt.Topic))
		case !createAny && !create.ok(rt.Topic):
			fail(kerr.TopicAuthorizationFailed, "Authorization failed.")
		case len(rt.ReplicaAssignment) > 0:
			fail(kerr.InvalidReplicaAssignment, "manual replica assignment is not supported: leaders are derived from live brokers")
		case rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 || int(rt.ReplicationFactor) > brokers:
			fail(kerr.InvalidReplicationFactor, fmt.Sprintf("replication factor %d: must be -1 or between 1 and the %d live brokers", rt.ReplicationFactor, brokers))
		case rt.NumPartitions == 0 || rt.NumPartitions < -1:
			fail(kerr.InvalidPartitions, fmt.Sprintf("number of partitions %d: must be -1 or positive", rt.NumPartitions))
		case cfgErr != nil:
			t.ErrorCode, t.ErrorMessage = errorCode(rc.log, cfgErr), errorMessage(cfgErr)
		default:
			ti, err := s.opts.Log.CreateTopic(ctx, rt.Topic, rt.NumPartitions, configs, req.ValidateOnly)
			if err != nil {
				t.ErrorCode, t.ErrorMessage = errorCode(rc.log.With("topic", rt.Topic), err), errorMessage(err)
				break
			}
			t.TopicID = ti.ID
			t.NumPartitions = ti.Partitions
			t.ReplicationFactor = rt.ReplicationFactor
			if t.ReplicationFactor == -1 {
				t.ReplicationFactor = 1
			}
			if ti.Configs == nil {
				ti.Configs = configs
			}
			if !describeConfigs.ok(rt.Topic) {
				t.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
			} else {
				for _, e := range s.topicConfigEntries(ti.Configs, nil, false, false) {
					c := kmsg.NewCreateTopicsResponseTopicConfig()
					c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.Name, e.Value, e.ReadOnly, int8(e.Source), e.IsSensitive
					t.Configs = append(t.Configs, c)
				}
			}
			if !req.ValidateOnly {
				rc.log.Info("created topic", "topic", rt.Topic, "partitions", ti.Partitions)
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

func handleDeleteTopics(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   TopicID
	}
	var targets []target
	if req.Version >= 6 {
		for _, rt := range req.Topics {
			targets = append(targets, target{rt.Topic, rt.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{strp(n), TopicID{}})
		}
	}
	del := s.topicChecker(rc, kmsg.ACLOperationDelete)
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	for _, tg := range targets {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = tg.name, tg.id
		var ti TopicInfo
		var ok bool
		switch {
		case tg.name != nil && *tg.name != "":
			if !del.ok(*tg.name) {
				t.ErrorCode = kerr.TopicAuthorizationFailed.Code
				break
			}
			ti, ok = s.opts.Log.Topic(*tg.name)
			if !ok {
				t.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
		case tg.id != TopicID{}:
			ti, ok = s.opts.Log.TopicByID(tg.id)
			switch {
			case !ok:
				t.ErrorCode = kerr.UnknownTopicID.Code
			case !describe.ok(ti.Name):
				// The id is not secret; the name is withheld.
				t.ErrorCode, ok = kerr.TopicAuthorizationFailed.Code, false
			case !del.ok(ti.Name):
				t.Topic, t.ErrorCode, ok = strp(ti.Name), kerr.TopicAuthorizationFailed.Code, false
			}
		default:
			t.ErrorCode = kerr.InvalidRequest.Code
			t.ErrorMessage = strp("neither topic name nor topic id given")
		}
		if ok {
			t.Topic, t.TopicID = strp(ti.Name), ti.ID
			if err := s.opts.Log.DeleteTopic(ctx, ti.Name); err != nil {
				t.ErrorCode, t.ErrorMessage = errorCode(rc.log.With("topic", ti.Name), err), errorMessage(err)
			} else {
				rc.log.Info("deleted topic", "topic", ti.Name)
				s.metrics.forgetTopic(ti.Name)
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

func handleCreatePartitions(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	alter := s.topicChecker(rc, kmsg.ACLOperationAlter)
	seen := make(map[string]int)
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic = rt.Topic
		switch {
		case seen[rt.Topic] > 1:
			t.ErrorCode, t.ErrorMessage = kerr.InvalidRequest.Code, strp("topic named more than once in the request")
		case !alter.ok(rt.Topic):
			t.ErrorCode, t.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("The topic authorization is failed.")
		case len(rt.Assignment) > 0:
			t.ErrorCode, t.ErrorMessage = kerr.InvalidReplicaAssignment.Code, strp("manual replica assignment is not supported")
		default:
			if err := s.opts.Log.CreatePartitions(ctx, rt.Topic, rt.Count, req.ValidateOnly); err != nil {
				t.ErrorCode, t.ErrorMessage = errorCode(rc.log.With("topic", rt.Topic), err), errorMessage(err)
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

package protocol

// Metadata (key 3), versions 0–12.
//
// Brokers come from Cluster.Brokers, the leader of every partition from
// Cluster.Leader and its epoch from Log.State; replicas = ISR = [leader]
// because durability is the object store's, not replication's. A null topic
// list (v1+; empty list in v0) means every topic. Topics may be named by id
// from v10 (UNKNOWN_TOPIC_ID when unknown). Unknown topics are created when
// Options.AutoCreateTopics is set and the request allows it (always before
// v4, AllowAutoTopicCreation from v4), with Options.DefaultPartitions;
// invalid names get INVALID_TOPIC_EXCEPTION. Internal topics are flagged
// from TopicInfo.Internal.
//
// Authorization (as Kafka): topics without DESCRIBE are left out of an
// all-topics answer and answered TOPIC_AUTHORIZATION_FAILED when named
// (before existence is looked at, so it is not disclosed; named by id, the
// id is echoed and the name withheld). Auto-creating a topic needs CREATE on
// the cluster or on the topic, else TOPIC_AUTHORIZATION_FAILED.
// Authorized-operation bit sets (KIP-430) are computed when asked: per topic
// (v8+), and for the cluster (v8–10; 0 without DESCRIBE on it). Without an
// Authorizer they keep the "not requested" value.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/stream"
)

func handleMetadata(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, b := range s.brokers(rc) {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, mb)
	}
	cid := s.opts.Cluster.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = s.opts.Cluster.ControllerID()

	if req.IncludeClusterAuthorizedOperations && s.opts.Authorizer != nil {
		resp.AuthorizedOperations = 0
		if s.authorizedCluster(rc, kmsg.ACLOperationDescribe) {
			resp.AuthorizedOperations = s.authorizedOps(rc, kmsg.ACLResourceTypeCluster, auth.ClusterName)
		}
	}
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	topic := func(ti TopicInfo) kmsg.MetadataResponseTopic {
		mt := s.metadataTopic(ti)
		if req.IncludeTopicAuthorizedOperations {
			mt.AuthorizedOperations = s.authorizedOps(rc, kmsg.ACLResourceTypeTopic, ti.Name)
		}
		return mt
	}

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, ti := range s.opts.Log.Topics() {
			if describe.ok(ti.Name) {
				resp.Topics = append(resp.Topics, topic(ti))
			}
		}
		return resp, nil
	}
	allowCreate := s.opts.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	var createOnCluster *bool // decided once, on the first topic to create
	mayCreate := func(name string) bool {
		if s.opts.Authorizer == nil {
			return true
		}
		if createOnCluster == nil {
			v := s.authorizedCluster(rc, kmsg.ACLOperationCreate)
			createOnCluster = &v
		}
		return *createOnCluster || s.authorizedTopic(rc, kmsg.ACLOperationCreate, name)
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil || *rt.Topic == "" {
			mt := kmsg.NewMetadataResponseTopic()
			mt.TopicID = rt.TopicID
			if ti, ok := s.opts.Log.TopicByID(rt.TopicID); ok && rt.TopicID != (TopicID{}) {
				if !describe.ok(ti.Name) {
					// A topic id is not secret; its name is.
					mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
					resp.Topics = append(resp.Topics, mt)
					continue
				}
				resp.Topics = append(resp.Topics, topic(ti))
				continue
			}
			mt.ErrorCode = kerr.UnknownTopicID.Code
			if rt.TopicID == (TopicID{}) {
				mt.ErrorCode = kerr.InvalidTopicException.Code
				mt.Topic = strp("")
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		name := *rt.Topic
		if !describe.ok(name) {
			// Whether it exists is not disclosed.
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = strp(name)
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		ti, ok := s.opts.Log.Topic(name)
		if !ok && allowCreate && validTopicName(name) && !mayCreate(name) {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = strp(name)
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if !ok && allowCreate {
			var err error
			ti, err = s.opts.Log.CreateTopic(ctx, name, s.opts.DefaultPartitions, nil, false)
			switch {
			case err == nil:
				ok = true
				rc.log.Info("auto-created topic", "topic", name, "partitions", ti.Partitions)
			case errors.Is(err, stream.ErrTopicExists):
				ti, ok = s.opts.Log.Topic(name)
			default:
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = strp(name)
				mt.ErrorCode = errorCode(rc.log.With("topic", name), err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		if !ok {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = strp(name)
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if !validTopicName(name) {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, topic(ti))
	}
	return resp, nil
}

func (s *Server) metadataTopic(ti TopicInfo) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = strp(ti.Name)
	mt.TopicID = ti.ID
	mt.IsInternal = ti.Internal
	for p := int32(0); p < ti.Partitions; p++ {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.Leader = s.opts.Cluster.Leader(ti.ID, p)
		if st, err := s.opts.Log.State(ti.Name, p); err == nil {
			mp.LeaderEpoch = st.LeaderEpoch
		} else {
			mp.LeaderEpoch = 0
		}
		mp.Replicas = []int32{mp.Leader}
		mp.ISR = []int32{mp.Leader}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// validTopicName is Kafka's topic name rule: 1–249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func validTopicName(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

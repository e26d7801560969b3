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
// invalid names get INVALID_TOPIC_EXCEPTION. Authorized-operation bit sets
// (KIP-430) are not computed (no ACLs yet) and keep Kafka's "not requested"
// value. Internal topics are flagged from TopicInfo.Internal.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, ti := range s.opts.Log.Topics() {
			resp.Topics = append(resp.Topics, s.metadataTopic(ti))
		}
		return resp, nil
	}
	allowCreate := s.opts.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		if rt.Topic == nil || *rt.Topic == "" {
			mt := kmsg.NewMetadataResponseTopic()
			mt.TopicID = rt.TopicID
			if ti, ok := s.opts.Log.TopicByID(rt.TopicID); ok && rt.TopicID != (TopicID{}) {
				resp.Topics = append(resp.Topics, s.metadataTopic(ti))
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
		ti, ok := s.opts.Log.Topic(name)
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
		resp.Topics = append(resp.Topics, s.metadataTopic(ti))
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

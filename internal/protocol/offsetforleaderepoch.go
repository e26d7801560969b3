package protocol

// OffsetForLeaderEpoch (key 23), versions 0–4.
//
// Answers, per partition, the end offset of the requested leader epoch
// (Log.EndOffsetForEpoch: the first offset of the next larger epoch, or the
// high watermark for the current one). The Log is synced once first
// (DESIGN §5a rule 7); if that read barrier fails every partition is
// answered NOT_LEADER_OR_FOLLOWER (barrier.go). Leader epochs come from the log, never from broker
// membership. ReplicaID (v3+) is ignored: there are no followers.
// Authorization: each topic needs DESCRIBE (TOPIC_AUTHORIZATION_FAILED),
// as Kafka asks of clients (brokers' CLUSTER_ACTION does not arise: there
// are no followers).
// Not done: CurrentLeaderEpoch fencing (FENCED_LEADER_EPOCH) — one logical
// replica means a client cannot hold a stale leader.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	syncErr := s.readBarrier(ctx)
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetForLeaderEpochResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			p.Partition = rp.Partition
			p.LeaderEpoch, p.EndOffset = -1, -1
			log := rc.log.With("topic", rt.Topic, "partition", rp.Partition)
			if !describe.ok(rt.Topic) {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if syncErr != nil {
				p.ErrorCode = errorCode(log, syncErr)
			} else if epoch, end, err := s.opts.Log.EndOffsetForEpoch(ctx, rt.Topic, rp.Partition, rp.LeaderEpoch); err != nil {
				p.ErrorCode = errorCode(log, err)
			} else {
				p.LeaderEpoch, p.EndOffset = epoch, end
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

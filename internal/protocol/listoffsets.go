package protocol

// ListOffsets (key 2), versions 1–9.
//
// Timestamps: -2 earliest, -1 latest (the high watermark, or the last stable
// offset for IsolationLevel 1), -3 max timestamp (KIP-734, v7+), -4
// earliest-local (KIP-405, v8+; all data is "local" here, so it equals
// earliest), -5 earliest pending upload (KIP-1023, v9+); any other value
// finds the first offset with a timestamp at or after it. The Log is synced
// once (DESIGN §5a rule 7) before answering, so a partition written through
// another broker is seen; if that read barrier fails every partition is
// answered NOT_LEADER_OR_FOLLOWER (barrier.go). Leader epochs come from
// Log.State.
//
// Authorization (as Kafka): each topic needs DESCRIBE, or its partitions
// are answered TOPIC_AUTHORIZATION_FAILED.
//
// Not done: v0's old-style offset lists (v0 is not served);
// CurrentLeaderEpoch fencing (one logical replica).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListOffsets(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	if req.IsolationLevel != 0 && req.IsolationLevel != 1 {
		return nil, errInvalidIsolation(req.IsolationLevel)
	}
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	if err := s.readBarrier(ctx); err != nil {
		code := errorCode(rc.log, err)
		for _, rt := range req.Topics {
			t := kmsg.NewListOffsetsResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewListOffsetsResponseTopicPartition()
				p.Partition, p.ErrorCode, p.Offset, p.Timestamp = rp.Partition, code, -1, -1
				if !describe.ok(rt.Topic) {
					p.ErrorCode = kerr.TopicAuthorizationFailed.Code
				}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			p.Offset, p.Timestamp, p.LeaderEpoch = -1, -1, -1
			if !describe.ok(rt.Topic) {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
				t.Partitions = append(t.Partitions, p)
				continue
			}
			log := rc.log.With("topic", rt.Topic, "partition", rp.Partition)
			st, err := s.opts.Log.State(rt.Topic, rp.Partition)
			if err != nil {
				p.ErrorCode = errorCode(log, err)
				t.Partitions = append(t.Partitions, p)
				continue
			}
			p.LeaderEpoch = st.LeaderEpoch
			switch ts := rp.Timestamp; {
			case ts == -1 && req.IsolationLevel == 1:
				p.Offset = st.LastStableOffset
			case ts == -1:
				p.Offset = st.HighWatermark
			case ts == -2 || ts == -4:
				p.Offset = st.LogStartOffset
			case ts < -5 || (ts == -3 && req.Version < 7) || (ts == -4 && req.Version < 8) || (ts == -5 && req.Version < 9):
				p.ErrorCode = kerr.InvalidRequest.Code
			default:
				off, pts, err := s.opts.Log.OffsetForTimestamp(ctx, rt.Topic, rp.Partition, ts)
				if err != nil {
					p.ErrorCode = errorCode(log, err)
					break
				}
				p.Offset, p.Timestamp = off, pts
				if off >= 0 && req.IsolationLevel == 1 && off >= st.LastStableOffset && ts >= 0 {
					// Not yet committed: read_committed clients must not see it.
					p.Offset, p.Timestamp = -1, -1
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

package protocol

// DeleteRecords (key 21), versions 0–2.
//
// Moves each partition's log start offset through Log.DeleteRecords
// (an entry in the intake log, so every broker agrees) and returns the new
// low watermark. Offset -1 means "up to the high watermark"; other negative
// offsets and offsets past the high watermark are OFFSET_OUT_OF_RANGE (from
// the Log). TimeoutMillis bounds the wait (REQUEST_TIMED_OUT).
// Authorization (as Kafka): each topic needs DELETE, or its partitions are
// answered TOPIC_AUTHORIZATION_FAILED.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	del := s.topicChecker(rc, kmsg.ACLOperationDelete)
	for _, rt := range req.Topics {
		t := kmsg.NewDeleteRecordsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDeleteRecordsResponseTopicPartition()
			p.Partition, p.LowWatermark = rp.Partition, -1
			if !del.ok(rt.Topic) {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if rp.Offset < -1 {
				p.ErrorCode = kerr.OffsetOutOfRange.Code
			} else if low, err := s.opts.Log.DeleteRecords(ctx, rt.Topic, rp.Partition, rp.Offset); err != nil {
				p.ErrorCode = errorCode(rc.log.With("topic", rt.Topic, "partition", rp.Partition), err)
			} else {
				p.LowWatermark = low
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

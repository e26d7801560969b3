package protocol

// DescribeLogDirs (key 35), versions 1–4.
//
// Runnel keeps record data in the object store, so exactly one "log dir" is
// reported, named Options.LogDir (the object store's name), holding every
// partition with its size from Log.State. A null topic list means every
// topic; unknown topics or partitions are left out, as Kafka does. Total and
// usable bytes (v4, KIP-827) are -1: an object store has no fixed capacity.
// OffsetLag is 0 and IsFuture false (no replica movement exists).
//
// Authorization (as Kafka): DESCRIBE on the cluster, or no directory at all
// with CLUSTER_AUTHORIZATION_FAILED (v3+ carry the code; older versions see
// only the empty answer).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeLogDirs(_ context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeLogDirsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !s.authorizedCluster(rc, kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	d := kmsg.NewDescribeLogDirsResponseDir()
	d.Dir = s.opts.LogDir
	d.TotalBytes, d.UsableBytes = -1, -1

	type want struct {
		ti    TopicInfo
		parts []int32
	}
	var wants []want
	if req.Topics == nil {
		for _, ti := range s.opts.Log.Topics() {
			wants = append(wants, want{ti: ti})
		}
	} else {
		for _, rt := range req.Topics {
			if ti, ok := s.opts.Log.Topic(rt.Topic); ok {
				wants = append(wants, want{ti: ti, parts: rt.Partitions})
			}
		}
	}
	for _, w := range wants {
		parts := w.parts
		if parts == nil {
			for p := int32(0); p < w.ti.Partitions; p++ {
				parts = append(parts, p)
			}
		}
		t := kmsg.NewDescribeLogDirsResponseDirTopic()
		t.Topic = w.ti.Name
		for _, p := range parts {
			st, err := s.opts.Log.State(w.ti.Name, p)
			if err != nil {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = p, st.SizeBytes
			t.Partitions = append(t.Partitions, dp)
		}
		if len(t.Partitions) > 0 {
			d.Topics = append(d.Topics, t)
		}
	}
	resp.Dirs = append(resp.Dirs, d)
	return resp, nil
}

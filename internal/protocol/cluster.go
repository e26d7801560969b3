package protocol

// DescribeCluster (key 60), versions 0–1 (KIP-700, KIP-919).
//
// Reports the cluster id, the controller id and the live brokers from
// Cluster. EndpointType 1 (brokers) is the only endpoint type served;
// asking for controllers (2) gets UNSUPPORTED_ENDPOINT_TYPE, as a broker
// does. Authorized operations (KIP-430) are not computed (no ACLs yet).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(_ context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = strp("only broker endpoints (type 1) are served")
		return resp, nil
	}
	resp.ClusterID = s.opts.Cluster.ClusterID()
	resp.ControllerID = s.opts.Cluster.ControllerID()
	for _, b := range s.brokers(rc) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp, nil
}

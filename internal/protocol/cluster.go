package protocol

// DescribeCluster (key 60), versions 0–1 (KIP-700, KIP-919).
//
// Reports the cluster id, the controller id and the live brokers from
// Cluster. EndpointType 1 (brokers) is the only endpoint type served;
// asking for controllers (2) gets UNSUPPORTED_ENDPOINT_TYPE, as a broker
// does.
//
// Authorization (as Kafka): none is needed to describe the cluster; the
// cluster's authorized operations (KIP-430) are computed when asked, 0
// without DESCRIBE on the cluster (and left "not requested" without an
// Authorizer).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

func handleDescribeCluster(_ context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = strp("only broker endpoints (type 1) are served")
		return resp, nil
	}
	if req.IncludeClusterAuthorizedOperations && s.opts.Authorizer != nil {
		resp.ClusterAuthorizedOperations = 0
		if s.authorizedCluster(rc, kmsg.ACLOperationDescribe) {
			resp.ClusterAuthorizedOperations = s.authorizedOps(rc, kmsg.ACLResourceTypeCluster, auth.ClusterName)
		}
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

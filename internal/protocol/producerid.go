package protocol

// InitProducerId (key 22), versions 0–5.
//
// With a null transactional id this allocates an idempotent producer id
// through Log.InitProducerID, or bumps the epoch of the producer named by
// ProducerID/ProducerEpoch (v3+, KIP-360). Producer ids and epochs are
// sequencer state, identical on every broker.
//
// With a transactional id (non-empty) it goes to Log.InitTxnProducer: a new
// id gets a producer id, an existing one has its open transaction aborted
// and its epoch bumped, fencing the previous incarnation.
// TransactionTimeoutMillis must be in (0, transaction.max.timeout.ms]
// (INVALID_TRANSACTION_TIMEOUT). PRODUCER_FENCED is answered from v4.
//
// Authorization (as Kafka 3+): a transactional id needs WRITE on it
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer needs
// IDEMPOTENT_WRITE on the cluster or WRITE on at least one topic
// (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	pid, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		pid, epoch = req.ProducerID, req.ProducerEpoch
	}
	if req.TransactionalID != nil {
		if !s.authorizedTxn(rc, kmsg.ACLOperationWrite, *req.TransactionalID) {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return resp, nil
		}
		if *req.TransactionalID == "" {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp, nil
		}
		id, ep, err := s.opts.Log.InitTxnProducer(ctx, *req.TransactionalID, req.TransactionTimeoutMillis, pid, epoch)
		if err != nil {
			resp.ErrorCode = txnCode(rc, err, req.Version, 4)
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch = id, ep
		return resp, nil
	}
	if a := s.opts.Authorizer; a != nil && !s.authorizedCluster(rc, kmsg.ACLOperationIdempotentWrite) &&
		!a.AuthorizeAny(rc.sess.principal, rc.sess.host, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	id, ep, err := s.opts.Log.InitProducerID(ctx, pid, epoch)
	if err != nil {
		resp.ErrorCode = errorCode(rc.log, err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, ep
	return resp, nil
}

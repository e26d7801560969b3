package protocol

// InitProducerId (key 22), versions 0–5.
//
// With a null transactional id this allocates an idempotent producer id
// through Log.InitProducerID, or bumps the epoch of the producer named by
// ProducerID/ProducerEpoch (v3+, KIP-360). Producer ids and epochs are
// sequencer state, identical on every broker.
//
// Not done yet: transactions. A non-null transactional id is answered with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients treat as fatal with a
// clear message rather than retrying forever; DESIGN §5a rule 4 describes
// the transaction support that will replace this.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		rc.log.Info("transactional producer refused: transactions are not supported yet", "transactional_id", *req.TransactionalID)
		return resp, nil
	}
	pid, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		pid, epoch = req.ProducerID, req.ProducerEpoch
	}
	id, ep, err := s.opts.Log.InitProducerID(ctx, pid, epoch)
	if err != nil {
		resp.ErrorCode = errorCode(rc.log, err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, ep
	return resp, nil
}

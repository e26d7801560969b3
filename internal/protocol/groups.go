package protocol

// Classic consumer group APIs, forwarded to Groups (internal/groups):
// FindCoordinator (10) v0–5, JoinGroup (11) v0–9, Heartbeat (12) v0–4,
// LeaveGroup (13) v0–5, SyncGroup (14) v0–5, DescribeGroups (15) v0–5,
// ListGroups (16) v0–5, OffsetCommit (8) v0–9, OffsetFetch (9) v0–9 (v8+
// batched groups), DeleteGroups (42) v0–2, OffsetDelete (47) v0.
//
// FindCoordinator answers group keys (type 0) through Groups.Coordinator,
// one key before v4 and batched keys from v4 (KIP-699); transaction
// coordinator keys (type 1) get COORDINATOR_NOT_AVAILABLE until transactions
// exist, other key types INVALID_REQUEST. The other APIs pass the kmsg
// request through unchanged and set the response version; Groups fills every
// error code. Not served: KIP-848 ConsumerGroupHeartbeat/Describe and share
// groups (they will get their own files), topic-id OffsetCommit/Fetch v10.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var errNilGroupResponse = errors.New("protocol: group coordinator returned no response")

func handleFindCoordinator(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	find := func(key string) kmsg.FindCoordinatorResponseCoordinator {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port = key, -1, -1
		switch req.CoordinatorType {
		case 0:
			b, code := s.opts.Groups.Coordinator(ctx, key, req.CoordinatorType)
			if code != 0 {
				c.ErrorCode = code
				break
			}
			c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
		case 1:
			c.ErrorCode, c.ErrorMessage = kerr.CoordinatorNotAvailable.Code, strp("transactions are not supported yet")
		default:
			c.ErrorCode, c.ErrorMessage = kerr.InvalidRequest.Code, strp(fmt.Sprintf("unsupported coordinator type %d", req.CoordinatorType))
		}
		if c.ErrorCode != 0 && c.ErrorMessage == nil {
			c.ErrorMessage = strp(kerr.ErrorForCode(c.ErrorCode).Error())
		}
		return c
	}
	if req.Version >= 4 {
		for _, k := range req.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, find(k))
		}
		return resp, nil
	}
	c := find(req.CoordinatorKey)
	resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
	return resp, nil
}

// groupAPI adapts a Groups method (a method expression such as
// Groups.JoinGroup) to a handler: the request passes through unchanged and
// the coordinator must answer.
func groupAPI[Req kmsg.Request, R any](method func(Groups, context.Context, Req) *R) handlerFunc {
	return typed(func(ctx context.Context, s *Server, _ *reqCtx, req Req) (kmsg.Response, error) {
		resp := method(s.opts.Groups, ctx, req)
		if resp == nil {
			return nil, errNilGroupResponse
		}
		r, ok := any(resp).(kmsg.Response)
		if !ok {
			return nil, fmt.Errorf("protocol: group coordinator answered %T", resp)
		}
		return r, nil
	})
}

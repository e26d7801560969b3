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

// forward calls a Groups method and checks it answered.
func forward[Req any, Resp kmsg.Response](ctx context.Context, req Req, f func(context.Context, Req) Resp) (kmsg.Response, error) {
	resp := f(ctx, req)
	if any(resp) == nil || isNilPtr(resp) {
		return nil, errNilGroupResponse
	}
	return resp, nil
}

func isNilPtr(r kmsg.Response) bool {
	switch v := r.(type) {
	case *kmsg.JoinGroupResponse:
		return v == nil
	case *kmsg.SyncGroupResponse:
		return v == nil
	case *kmsg.HeartbeatResponse:
		return v == nil
	case *kmsg.LeaveGroupResponse:
		return v == nil
	case *kmsg.OffsetCommitResponse:
		return v == nil
	case *kmsg.OffsetFetchResponse:
		return v == nil
	case *kmsg.OffsetDeleteResponse:
		return v == nil
	case *kmsg.DescribeGroupsResponse:
		return v == nil
	case *kmsg.ListGroupsResponse:
		return v == nil
	case *kmsg.DeleteGroupsResponse:
		return v == nil
	}
	return false
}

func handleJoinGroup(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.JoinGroup)
}

func handleSyncGroup(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.SyncGroup)
}

func handleHeartbeat(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.Heartbeat)
}

func handleLeaveGroup(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.LeaveGroup)
}

func handleOffsetCommit(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.OffsetCommit)
}

func handleOffsetFetch(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.OffsetFetch)
}

func handleOffsetDelete(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.OffsetDelete)
}

func handleDescribeGroups(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.DescribeGroups)
}

func handleListGroups(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.ListGroups)
}

func handleDeleteGroups(ctx context.Context, s *Server, _ *reqCtx, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	return forward(ctx, req, s.opts.Groups.DeleteGroups)
}

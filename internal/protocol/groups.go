package protocol

// Classic consumer group APIs, forwarded to Groups (internal/groups):
// FindCoordinator (10) v0–5, JoinGroup (11) v0–9, Heartbeat (12) v0–4,
// LeaveGroup (13) v0–5, SyncGroup (14) v0–5, DescribeGroups (15) v0–5,
// ListGroups (16) v0–5, OffsetCommit (8) v0–9, OffsetFetch (9) v0–9 (v8+
// batched groups), DeleteGroups (42) v0–2, OffsetDelete (47) v0.
//
// FindCoordinator answers group keys (type 0) through Groups.Coordinator,
// one key before v4 and batched keys from v4 (KIP-699); transaction
// coordinator keys (type 1) get a live broker by rendezvous hash (any broker
// fronts any transaction, see txn.go); other key types INVALID_REQUEST.
// The first look-up of a type creates its internal topic, as Kafka does:
// __consumer_offsets or __transaction_state, 50 partitions, no records
// (offsets live in the group stores, transactions in the log), listed by
// Metadata as internal.
// TxnOffsetCommit (28) v0–5 goes to Groups like the other group APIs. The
// other APIs pass the kmsg request through unchanged and set the response
// version; Groups fills every error code. ConsumerGroupHeartbeat (68) v0–1 and ConsumerGroupDescribe
// (69) v0–1 serve KIP-848 groups the same way. Not served: share groups
// (they will get their own file) and topic-id OffsetCommit/Fetch v10.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/peer"
	"github.com/runnel-dev/runnel/internal/stream"
)

var errNilGroupResponse = errors.New("protocol: group coordinator returned no response")

func handleFindCoordinator(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	ensureCoordinatorTopic(ctx, s, rc, req.CoordinatorType, keys)
	find := func(key string) kmsg.FindCoordinatorResponseCoordinator {
		var ok bool
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port = key, -1, -1
		switch req.CoordinatorType {
		case 0:
			b, code := s.opts.Groups.Coordinator(ctx, key, req.CoordinatorType)
			if code != 0 {
				c.ErrorCode = code
				break
			}
			if b, ok = b.On(rc.sess.listener.Name); !ok {
				c.ErrorCode = kerr.CoordinatorNotAvailable.Code
				break
			}
			c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
		case 1:
			if key == "" {
				c.ErrorCode = kerr.InvalidRequest.Code
				break
			}
			b := txnCoordinator(s.brokers(rc), key)
			c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
		default:
			c.ErrorCode, c.ErrorMessage = kerr.InvalidRequest.Code, strp(fmt.Sprintf("unsupported coordinator type %d", req.CoordinatorType))
		}
		if c.ErrorCode != 0 && c.ErrorMessage == nil {
			c.ErrorMessage = strp(kerr.ErrorForCode(c.ErrorCode).Error())
		}
		return c
	}
	if req.Version >= 4 {
		for _, k := range keys {
			resp.Coordinators = append(resp.Coordinators, find(k))
		}
		return resp, nil
	}
	c := find(req.CoordinatorKey)
	resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
	return resp, nil
}

// ensureCoordinatorTopic creates the internal topic of a coordinator type
// (__consumer_offsets for groups, __transaction_state for transactions) on
// the first look-up that names a key, as Kafka does. The topic holds no
// records here; it exists so that Metadata lists it, flagged internal, and
// nothing depends on it: a failure to create it is logged and the next
// look-up tries again, while coordinators keep being found.
func ensureCoordinatorTopic(ctx context.Context, s *Server, rc *reqCtx, typ int8, keys []string) {
	var name string
	switch typ {
	case 0:
		name = stream.ConsumerOffsetsTopic
	case 1:
		name = stream.TransactionStateTopic
	default:
		return
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return k != "" }) {
		return
	}
	if _, ok := s.opts.Log.Topic(name); ok {
		return
	}
	_, err := s.opts.Log.CreateTopic(ctx, name, stream.InternalTopicPartitions, nil, false)
	switch {
	case err == nil:
		rc.log.Info("created internal topic", "topic", name, "partitions", stream.InternalTopicPartitions)
	case errors.Is(err, stream.ErrTopicExists):
	default:
		rc.log.Warn("creating internal topic", "topic", name, "err", err)
	}
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

// txnCoordinator picks the broker that fronts a transactional id: its
// rendezvous owner among the live brokers, so ids spread evenly and move
// only when their broker leaves. Any broker could serve it (transactions
// are sequencer state); the choice only spreads the load.
func txnCoordinator(brokers []Broker, key string) Broker {
	b, _ := peer.Owner([]byte(key), brokers)
	return b
}

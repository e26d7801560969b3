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
// (69) v0–1 serve KIP-848 groups the same way. Share groups (KIP-932) are
// sharegroups.go's and sharefetch.go's. Not served: topic-id
// OffsetCommit/Fetch v10.
//
// Authorization of the group APIs, checked here around the calls to Groups
// (which knows nothing of ACLs), as Kafka's KafkaApis checks them:
//   - FindCoordinator: DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED)
//     or transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
//   - JoinGroup, SyncGroup, Heartbeat, LeaveGroup: READ on the group;
//   - OffsetCommit: READ on the group, then READ on each topic (an
//     unauthorized topic's partitions TOPIC_AUTHORIZATION_FAILED, the rest
//     committed);
//   - TxnOffsetCommit: WRITE on the transactional id, READ on the group,
//     READ on each topic;
//   - OffsetFetch: DESCRIBE on each group, DESCRIBE on each named topic
//     (TOPIC_AUTHORIZATION_FAILED per partition); a request for all topics
//     leaves out the topics the principal may not DESCRIBE;
//   - DescribeGroups: DESCRIBE on each group, with its authorized
//     operations when asked; ListGroups: every group with DESCRIBE on the
//     cluster, otherwise only those with DESCRIBE on the group;
//     DeleteGroups: DELETE on each group; OffsetDelete: DELETE on the
//     group, READ on each topic;
//   - ConsumerGroupHeartbeat (KIP-848): READ on the group, and DESCRIBE on
//     every subscribed topic name, else TOPIC_AUTHORIZATION_FAILED (as Kafka
//     4.0); ConsumerGroupDescribe: DESCRIBE on each group, and a group whose
//     members are assigned a topic the principal may not DESCRIBE is
//     answered TOPIC_AUTHORIZATION_FAILED instead of disclosing it.
// A request whose every item was refused does not reach Groups.
// Not done: a KIP-848 regex subscription is resolved by Groups over every
// topic; Kafka 4.0 (KAFKA-18813) leaves out the topics the member that
// triggered the resolution may not DESCRIBE, which needs the authorizer in
// the coordinator. Such a member is refused at Fetch instead (READ).

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
	// Kafka's checks: DESCRIBE on the group or transactional id.
	allowed := func(key string) (bool, int16) {
		switch req.CoordinatorType {
		case 0:
			return s.authorizedGroup(rc, kmsg.ACLOperationDescribe, key), kerr.GroupAuthorizationFailed.Code
		case 1:
			return s.authorizedTxn(rc, kmsg.ACLOperationDescribe, key), kerr.TransactionalIDAuthorizationFailed.Code
		}
		return true, 0
	}
	var permitted []string
	for _, k := range keys {
		if ok, _ := allowed(k); ok {
			permitted = append(permitted, k)
		}
	}
	ensureCoordinatorTopic(ctx, s, rc, req.CoordinatorType, permitted)
	find := func(key string) kmsg.FindCoordinatorResponseCoordinator {
		var ok bool
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port = key, -1, -1
		if ok, code := allowed(key); !ok {
			c.ErrorCode, c.ErrorMessage = code, strp(kerr.ErrorForCode(code).Error())
			return c
		}
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

// groupDenied is the error answer of a group API refused as a whole.
func groupDenied(req kmsg.Request) (kmsg.Response, bool) {
	code := kerr.GroupAuthorizationFailed.Code
	switch r := req.ResponseKind().(type) {
	case *kmsg.JoinGroupResponse:
		r.ErrorCode, r.Generation = code, -1
		if req.GetVersion() < 7 {
			r.Protocol = strp("")
		}
		return r, true
	case *kmsg.SyncGroupResponse:
		r.ErrorCode, r.MemberAssignment = code, []byte{}
		return r, true
	case *kmsg.HeartbeatResponse:
		r.ErrorCode = code
		return r, true
	case *kmsg.LeaveGroupResponse:
		r.ErrorCode = code
		return r, true
	case *kmsg.ConsumerGroupHeartbeatResponse:
		r.ErrorCode, r.ErrorMessage = code, strp(kerr.GroupAuthorizationFailed.Message)
		return r, true
	case *kmsg.OffsetDeleteResponse:
		r.ErrorCode = code
		return r, true
	}
	return nil, false
}

// readGroupAPI adapts a Groups method that needs READ on the request's
// group.
func readGroupAPI[Req kmsg.Request, R any](method func(Groups, context.Context, Req) *R, group func(Req) string) handlerFunc {
	call := groupAPI(method)
	return typed(func(ctx context.Context, s *Server, rc *reqCtx, req Req) (kmsg.Response, error) {
		if !s.authorizedGroup(rc, kmsg.ACLOperationRead, group(req)) {
			if resp, ok := groupDenied(req); ok {
				return resp, nil
			}
		}
		return call(ctx, s, rc, req)
	})
}

func handleOffsetCommit(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	denied := func(code int16) (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = offsetCommitErrors(req.Topics, code)
		return resp, nil
	}
	if !s.authorizedGroup(rc, kmsg.ACLOperationRead, req.Group) {
		return denied(kerr.GroupAuthorizationFailed.Code)
	}
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	allowed, refused := splitTopics(req.Topics, func(t kmsg.OffsetCommitRequestTopic) bool { return read.ok(t.Topic) })
	if len(refused) == 0 {
		return callGroup(s.opts.Groups.OffsetCommit(ctx, req))
	}
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	if len(allowed) > 0 {
		fwd := *req
		fwd.Topics = allowed
		if resp = s.opts.Groups.OffsetCommit(ctx, &fwd); resp == nil {
			return nil, errNilGroupResponse
		}
	}
	resp.Topics = append(resp.Topics, offsetCommitErrors(refused, kerr.TopicAuthorizationFailed.Code)...)
	return resp, nil
}

func offsetCommitErrors(topics []kmsg.OffsetCommitRequestTopic, code int16) []kmsg.OffsetCommitResponseTopic {
	var out []kmsg.OffsetCommitResponseTopic
	for _, t := range topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}

func handleTxnOffsetCommit(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	errs := func(topics []kmsg.TxnOffsetCommitRequestTopic, code int16) []kmsg.TxnOffsetCommitResponseTopic {
		var out []kmsg.TxnOffsetCommitResponseTopic
		for _, t := range topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			out = append(out, rt)
		}
		return out
	}
	denied := func(code int16) (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		resp.Topics = errs(req.Topics, code)
		return resp, nil
	}
	switch {
	case !s.authorizedTxn(rc, kmsg.ACLOperationWrite, req.TransactionalID):
		return denied(kerr.TransactionalIDAuthorizationFailed.Code)
	case !s.authorizedGroup(rc, kmsg.ACLOperationRead, req.Group):
		return denied(kerr.GroupAuthorizationFailed.Code)
	}
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	allowed, refused := splitTopics(req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool { return read.ok(t.Topic) })
	if len(refused) == 0 {
		return callGroup(s.opts.Groups.TxnOffsetCommit(ctx, req))
	}
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	if len(allowed) > 0 {
		fwd := *req
		fwd.Topics = allowed
		if resp = s.opts.Groups.TxnOffsetCommit(ctx, &fwd); resp == nil {
			return nil, errNilGroupResponse
		}
	}
	resp.Topics = append(resp.Topics, errs(refused, kerr.TopicAuthorizationFailed.Code)...)
	return resp, nil
}

func handleOffsetDelete(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	if !s.authorizedGroup(rc, kmsg.ACLOperationDelete, req.Group) {
		resp, _ := groupDenied(req)
		return resp, nil
	}
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	allowed, refused := splitTopics(req.Topics, func(t kmsg.OffsetDeleteRequestTopic) bool { return read.ok(t.Topic) })
	if len(refused) == 0 {
		return callGroup(s.opts.Groups.OffsetDelete(ctx, req))
	}
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if len(allowed) > 0 {
		fwd := *req
		fwd.Topics = allowed
		if resp = s.opts.Groups.OffsetDelete(ctx, &fwd); resp == nil {
			return nil, errNilGroupResponse
		}
	}
	for _, t := range refused {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func handleOffsetFetch(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	if s.opts.Authorizer == nil {
		return callGroup(s.opts.Groups.OffsetFetch(ctx, req))
	}
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	if req.Version < 8 {
		return offsetFetchOne(ctx, s, rc, req, describe)
	}
	// Batched groups (v8+): refused groups are answered here, the others
	// go to Groups with their topics filtered.
	type slot struct {
		refusedGroup bool
		refused      []kmsg.OffsetFetchRequestGroupTopic
	}
	fwd := *req
	fwd.Groups = nil
	slots := make([]slot, len(req.Groups))
	for i, g := range req.Groups {
		if !s.authorizedGroup(rc, kmsg.ACLOperationDescribe, g.Group) {
			slots[i].refusedGroup = true
			continue
		}
		if g.Topics != nil {
			allowed, refused := splitTopics(g.Topics, func(t kmsg.OffsetFetchRequestGroupTopic) bool { return describe.ok(t.Topic) })
			g.Topics, slots[i].refused = allowed, refused
		}
		fwd.Groups = append(fwd.Groups, g)
	}
	var answered []kmsg.OffsetFetchResponseGroup
	if len(fwd.Groups) > 0 {
		r := s.opts.Groups.OffsetFetch(ctx, &fwd)
		if r == nil {
			return nil, errNilGroupResponse
		}
		answered = r.Groups
	}
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	byName := answersByName(answered, func(g kmsg.OffsetFetchResponseGroup) string { return g.Group })
	for i, g := range req.Groups {
		if slots[i].refusedGroup {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg, ok := byName.take(g.Group)
		if !ok {
			return nil, fmt.Errorf("protocol: group coordinator did not answer for group %q", g.Group)
		}
		if g.Topics == nil { // all topics: leave out those not describable
			rg.Topics = slices.DeleteFunc(rg.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool { return !describe.ok(t.Topic) })
		}
		for _, t := range slots[i].refused {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, -1, -1, strp("")
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			rg.Topics = append(rg.Topics, rt)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

// offsetFetchOne answers OffsetFetch v0–7 (one group) with authorization.
func offsetFetchOne(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.OffsetFetchRequest, describe *topicChecker) (kmsg.Response, error) {
	unauthorized := func(topics []kmsg.OffsetFetchRequestTopic, code int16) []kmsg.OffsetFetchResponseTopic {
		var out []kmsg.OffsetFetchResponseTopic
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p, -1, -1, strp(""), code
				rt.Partitions = append(rt.Partitions, rp)
			}
			out = append(out, rt)
		}
		return out
	}
	if !s.authorizedGroup(rc, kmsg.ACLOperationDescribe, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		if req.Version < 2 { // no top-level error code before v2
			resp.Topics = unauthorized(req.Topics, kerr.GroupAuthorizationFailed.Code)
		}
		return resp, nil
	}
	all := req.Topics == nil && req.Version >= 2
	fwd := *req
	var refused []kmsg.OffsetFetchRequestTopic
	if !all {
		fwd.Topics, refused = splitTopics(req.Topics, func(t kmsg.OffsetFetchRequestTopic) bool { return describe.ok(t.Topic) })
	}
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if all || len(fwd.Topics) > 0 {
		if resp = s.opts.Groups.OffsetFetch(ctx, &fwd); resp == nil {
			return nil, errNilGroupResponse
		}
	}
	if all {
		resp.Topics = slices.DeleteFunc(resp.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return !describe.ok(t.Topic) })
	}
	resp.Topics = append(resp.Topics, unauthorized(refused, kerr.TopicAuthorizationFailed.Code)...)
	return resp, nil
}

func handleDescribeGroups(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	if s.opts.Authorizer == nil {
		return callGroup(s.opts.Groups.DescribeGroups(ctx, req))
	}
	fwd := *req
	var refused map[string]bool
	fwd.Groups, refused = s.splitGroups(rc, kmsg.ACLOperationDescribe, req.Groups)
	var answered []kmsg.DescribeGroupsResponseGroup
	if len(fwd.Groups) > 0 {
		r := s.opts.Groups.DescribeGroups(ctx, &fwd)
		if r == nil {
			return nil, errNilGroupResponse
		}
		answered = r.Groups
	}
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	byName := answersByName(answered, func(g kmsg.DescribeGroupsResponseGroup) string { return g.Group })
	for _, g := range req.Groups {
		if refused[g] {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg, ok := byName.take(g)
		if !ok {
			return nil, fmt.Errorf("protocol: group coordinator did not answer for group %q", g)
		}
		if req.IncludeAuthorizedOperations && rg.ErrorCode == 0 {
			rg.AuthorizedOperations = s.authorizedOps(rc, kmsg.ACLResourceTypeGroup, g)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func handleListGroups(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := s.opts.Groups.ListGroups(ctx, req)
	if resp == nil {
		return nil, errNilGroupResponse
	}
	if s.opts.Authorizer != nil && !s.authorizedCluster(rc, kmsg.ACLOperationDescribe) {
		resp.Groups = slices.DeleteFunc(resp.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
			return !s.authorizedGroup(rc, kmsg.ACLOperationDescribe, g.Group)
		})
	}
	return resp, nil
}

func handleDeleteGroups(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	fwd := *req
	var refused map[string]bool
	fwd.Groups, refused = s.splitGroups(rc, kmsg.ACLOperationDelete, req.Groups)
	if len(refused) == 0 {
		return callGroup(s.opts.Groups.DeleteGroups(ctx, req))
	}
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	if len(fwd.Groups) > 0 {
		if resp = s.opts.Groups.DeleteGroups(ctx, &fwd); resp == nil {
			return nil, errNilGroupResponse
		}
	}
	for _, g := range req.Groups {
		if !refused[g] {
			continue
		}
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func handleConsumerGroupHeartbeat(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	if !s.authorizedGroup(rc, kmsg.ACLOperationRead, req.Group) {
		resp, _ := groupDenied(req)
		return resp, nil
	}
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	for _, t := range req.SubscribedTopicNames {
		if !describe.ok(t) {
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode, resp.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp(kerr.TopicAuthorizationFailed.Message)
			return resp, nil
		}
	}
	return callGroup(s.opts.Groups.ConsumerGroupHeartbeat(ctx, req))
}

func handleConsumerGroupDescribe(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	if s.opts.Authorizer == nil {
		return callGroup(s.opts.Groups.ConsumerGroupDescribe(ctx, req))
	}
	fwd := *req
	var refused map[string]bool
	fwd.Groups, refused = s.splitGroups(rc, kmsg.ACLOperationDescribe, req.Groups)
	var answered []kmsg.ConsumerGroupDescribeResponseGroup
	if len(fwd.Groups) > 0 {
		r := s.opts.Groups.ConsumerGroupDescribe(ctx, &fwd)
		if r == nil {
			return nil, errNilGroupResponse
		}
		answered = r.Groups
	}
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	byName := answersByName(answered, func(g kmsg.ConsumerGroupDescribeResponseGroup) string { return g.Group })
	for _, g := range req.Groups {
		if refused[g] {
			rg := kmsg.NewConsumerGroupDescribeResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg, ok := byName.take(g)
		if !ok {
			return nil, fmt.Errorf("protocol: group coordinator did not answer for group %q", g)
		}
		if rg.ErrorCode == 0 && !assignedTopicsDescribable(rg, describe) {
			hidden := kmsg.NewConsumerGroupDescribeResponseGroup()
			hidden.Group, hidden.ErrorCode = g, kerr.TopicAuthorizationFailed.Code
			hidden.ErrorMessage = strp("the group is assigned topics the principal may not describe")
			rg = hidden
		}
		if req.IncludeAuthorizedOperations && rg.ErrorCode == 0 {
			rg.AuthorizedOperations = s.authorizedOps(rc, kmsg.ACLResourceTypeGroup, g)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

// assignedTopicsDescribable reports whether every topic assigned (or to be
// assigned) to a member of the group may be described.
func assignedTopicsDescribable(g kmsg.ConsumerGroupDescribeResponseGroup, describe *topicChecker) bool {
	for _, m := range g.Members {
		for _, a := range [][]kmsg.AssignmentTopicPartition{m.Assignment.TopicPartitions, m.TargetAssignment.TopicPartitions} {
			for _, tp := range a {
				if !describe.ok(tp.Topic) {
					return false
				}
			}
		}
	}
	return true
}

// answers hands out a coordinator's per-group answers by group id, each
// once, whatever order they came in.
type answers[T any] struct {
	items []T
	used  []bool
	name  func(T) string
}

func answersByName[T any](items []T, name func(T) string) *answers[T] {
	return &answers[T]{items: items, used: make([]bool, len(items)), name: name}
}

// take returns the first unused answer for id.
func (a *answers[T]) take(id string) (T, bool) {
	for i, it := range a.items {
		if !a.used[i] && a.name(it) == id {
			a.used[i] = true
			return it, true
		}
	}
	var zero T
	return zero, false
}

// callGroup checks a coordinator's answer.
func callGroup[R any, P interface {
	*R
	kmsg.Response
}](resp P) (kmsg.Response, error) {
	if resp == nil {
		return nil, errNilGroupResponse
	}
	return resp, nil
}

// splitTopics splits request topics by ok, keeping order; allowed is
// non-nil when topics is (a nil topic list means "all" to Groups).
func splitTopics[T any](topics []T, ok func(T) bool) (allowed, refused []T) {
	if topics != nil {
		allowed = make([]T, 0, len(topics))
	}
	for _, t := range topics {
		if ok(t) {
			allowed = append(allowed, t)
		} else {
			refused = append(refused, t)
		}
	}
	return allowed, refused
}

// splitGroups separates the groups rc's principal may perform op on, in
// request order, from the refused ones.
func (s *Server) splitGroups(rc *reqCtx, op kmsg.ACLOperation, groups []string) (allowed []string, refused map[string]bool) {
	refused = make(map[string]bool)
	for _, g := range groups {
		if s.authorizedGroup(rc, op, g) {
			allowed = append(allowed, g)
		} else {
			refused[g] = true
		}
	}
	return allowed, refused
}

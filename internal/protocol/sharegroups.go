package protocol

// The share group coordinator APIs of KIP-932, forwarded to ShareGroups
// (share.go) at the versions Kafka 4.2 serves: ShareGroupHeartbeat (76) v1,
// ShareGroupDescribe (77) v1, DescribeShareGroupOffsets (90) v0–1 (v1 adds
// Lag), AlterShareGroupOffsets (91) v0, DeleteShareGroupOffsets (92) v0.
// ShareGroups fills every error code (NOT_COORDINATOR when this broker does
// not own the group, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, ...); the
// handlers validate, check ACLs and forward only what the principal may
// see or change.
//
// Authorization, as Kafka's KafkaApis checks it:
//   - ShareGroupHeartbeat: READ on the group (GROUP_AUTHORIZATION_FAILED),
//     and DESCRIBE on every subscribed topic (TOPIC_AUTHORIZATION_FAILED);
//   - ShareGroupDescribe: DESCRIBE on each group; a group whose members are
//     assigned a topic the principal may not DESCRIBE is answered
//     TOPIC_AUTHORIZATION_FAILED instead of disclosing it; authorized
//     operations when asked;
//   - DescribeShareGroupOffsets: DESCRIBE on each group, DESCRIBE on each
//     named topic (its partitions TOPIC_AUTHORIZATION_FAILED, start offset
//     -1); a request for all topics leaves out those the principal may not
//     DESCRIBE;
//   - AlterShareGroupOffsets: READ on the group, READ on each topic (its
//     partitions TOPIC_AUTHORIZATION_FAILED); an unknown topic's partitions
//     UNKNOWN_TOPIC_OR_PARTITION;
//   - DeleteShareGroupOffsets: DELETE on the group, READ on each topic
//     (TOPIC_AUTHORIZATION_FAILED for that topic).
// A request whose every item was refused does not reach ShareGroups.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleShareGroupHeartbeat(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ShareGroupHeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	if !s.authorizedGroup(rc, kmsg.ACLOperationRead, req.GroupID) {
		resp.ErrorCode, resp.ErrorMessage = kerr.GroupAuthorizationFailed.Code, strp(kerr.GroupAuthorizationFailed.Message)
		return resp, nil
	}
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	for _, t := range req.SubscribedTopicNames {
		if !describe.ok(t) {
			resp.ErrorCode, resp.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp(kerr.TopicAuthorizationFailed.Message)
			return resp, nil
		}
	}
	return callGroup(s.opts.ShareGroups.ShareGroupHeartbeat(ctx, req))
}

func handleShareGroupDescribe(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ShareGroupDescribeRequest) (kmsg.Response, error) {
	fwd := *req
	var refused map[string]bool
	fwd.GroupIDs, refused = s.splitGroups(rc, kmsg.ACLOperationDescribe, req.GroupIDs)
	var answered []kmsg.ShareGroupDescribeResponseGroup
	if len(fwd.GroupIDs) > 0 {
		r := s.opts.ShareGroups.ShareGroupDescribe(ctx, &fwd)
		if r == nil {
			return nil, errNilGroupResponse
		}
		answered = r.Groups
	}
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	byName := answersByName(answered, func(g kmsg.ShareGroupDescribeResponseGroup) string { return g.GroupID })
	for _, g := range req.GroupIDs {
		if refused[g] {
			rg := kmsg.NewShareGroupDescribeResponseGroup()
			rg.GroupID, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg, ok := byName.take(g)
		if !ok {
			return nil, fmt.Errorf("protocol: share group coordinator did not answer for group %q", g)
		}
		if rg.ErrorCode == 0 && s.opts.Authorizer != nil && !shareAssignedDescribable(rg, describe) {
			hidden := kmsg.NewShareGroupDescribeResponseGroup()
			hidden.GroupID, hidden.ErrorCode = g, kerr.TopicAuthorizationFailed.Code
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

// shareAssignedDescribable reports whether every topic assigned to a member
// of g may be described.
func shareAssignedDescribable(g kmsg.ShareGroupDescribeResponseGroup, describe *topicChecker) bool {
	for _, m := range g.Members {
		for _, tp := range m.Assignment.TopicPartitions {
			if !describe.ok(tp.Topic) {
				return false
			}
		}
	}
	return true
}

func handleDescribeShareGroupOffsets(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	// Each group is answered in request order; the allowed part of every
	// group goes to the coordinator in one request.
	fwd := *req
	fwd.Groups = nil
	refusedTopics := map[int][]kmsg.DescribeShareGroupOffsetsRequestGroupTopic{} // by request index: a group may be named twice
	deniedGroup := map[int]bool{}
	for i, g := range req.Groups {
		if !s.authorizedGroup(rc, kmsg.ACLOperationDescribe, g.GroupID) {
			deniedGroup[i] = true
			continue
		}
		fg := g
		if g.Topics != nil {
			var allowed []kmsg.DescribeShareGroupOffsetsRequestGroupTopic
			allowed, refusedTopics[i] = splitTopics(g.Topics, func(t kmsg.DescribeShareGroupOffsetsRequestGroupTopic) bool { return describe.ok(t.Topic) })
			fg.Topics = allowed
			if fg.Topics == nil {
				fg.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{} // not "all topics"
			}
		}
		fwd.Groups = append(fwd.Groups, fg)
	}
	var answered []kmsg.DescribeShareGroupOffsetsResponseGroup
	if len(fwd.Groups) > 0 {
		r := s.opts.ShareGroups.DescribeShareGroupOffsets(ctx, &fwd)
		if r == nil {
			return nil, errNilGroupResponse
		}
		answered = r.Groups
	}
	byName := answersByName(answered, func(g kmsg.DescribeShareGroupOffsetsResponseGroup) string { return g.GroupID })
	for i, g := range req.Groups {
		if deniedGroup[i] {
			rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			rg.GroupID, rg.ErrorCode = g.GroupID, kerr.GroupAuthorizationFailed.Code
			rg.ErrorMessage = strp(kerr.GroupAuthorizationFailed.Message)
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg, ok := byName.take(g.GroupID)
		if !ok {
			return nil, fmt.Errorf("protocol: share group coordinator did not answer for group %q", g.GroupID)
		}
		if rg.ErrorCode == 0 {
			if g.Topics == nil { // all topics: leave out what may not be described
				rg.Topics, _ = splitTopics(rg.Topics, func(t kmsg.DescribeShareGroupOffsetsResponseGroupTopic) bool { return describe.ok(t.Topic) })
			}
			for _, t := range refusedTopics[i] {
				rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
					rp.Partition, rp.StartOffset = p, -1
					rp.ErrorCode, rp.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp(kerr.TopicAuthorizationFailed.Message)
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func handleAlterShareGroupOffsets(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.AlterShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	if !s.authorizedGroup(rc, kmsg.ACLOperationRead, req.GroupID) {
		resp.ErrorCode, resp.ErrorMessage = kerr.GroupAuthorizationFailed.Code, strp(kerr.GroupAuthorizationFailed.Message)
		return resp, nil
	}
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	var refused []kmsg.AlterShareGroupOffsetsResponseTopic
	fwd := *req
	fwd.Topics = nil
	for _, t := range req.Topics {
		var code int16
		var id TopicID
		if !read.ok(t.Topic) {
			code = kerr.TopicAuthorizationFailed.Code
		} else if ti, ok := s.opts.Log.Topic(t.Topic); !ok {
			code = kerr.UnknownTopicOrPartition.Code
		} else {
			id = ti.ID
		}
		if code == 0 {
			fwd.Topics = append(fwd.Topics, t)
			continue
		}
		rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, id
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, code, strp(kerr.ErrorForCode(code).(*kerr.Error).Message)
			rt.Partitions = append(rt.Partitions, rp)
		}
		refused = append(refused, rt)
	}
	if len(fwd.Topics) == 0 && len(req.Topics) > 0 {
		resp.Topics = refused
		return resp, nil
	}
	r := s.opts.ShareGroups.AlterShareGroupOffsets(ctx, &fwd)
	if r == nil {
		return nil, errNilGroupResponse
	}
	if r.ErrorCode == 0 {
		r.Topics = append(r.Topics, refused...)
	}
	return callGroup(r)
}

func handleDeleteShareGroupOffsets(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DeleteShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	if !s.authorizedGroup(rc, kmsg.ACLOperationDelete, req.GroupID) {
		resp.ErrorCode, resp.ErrorMessage = kerr.GroupAuthorizationFailed.Code, strp(kerr.GroupAuthorizationFailed.Message)
		return resp, nil
	}
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	fwd := *req
	var refused []kmsg.DeleteShareGroupOffsetsRequestTopic
	fwd.Topics, refused = splitTopics(req.Topics, func(t kmsg.DeleteShareGroupOffsetsRequestTopic) bool { return read.ok(t.Topic) })
	var denied []kmsg.DeleteShareGroupOffsetsResponseTopic
	for _, t := range refused {
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, kerr.TopicAuthorizationFailed.Code, strp(kerr.TopicAuthorizationFailed.Message)
		denied = append(denied, rt)
	}
	if len(fwd.Topics) == 0 && len(req.Topics) > 0 {
		resp.Topics = denied
		return resp, nil
	}
	r := s.opts.ShareGroups.DeleteShareGroupOffsets(ctx, &fwd)
	if r == nil {
		return nil, errNilGroupResponse
	}
	if r.ErrorCode == 0 {
		r.Topics = append(denied, r.Topics...)
	}
	return callGroup(r)
}

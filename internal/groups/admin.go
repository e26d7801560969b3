package groups

// DescribeGroups v0-v6 (KIP-1043 GROUP_ID_NOT_FOUND v6+; a share group is
// "Dead", as it is not a classic group), ListGroups v0-v5 (KIP-518 state
// filter v4+, KIP-848 type filter v5+: "classic", "consumer" or "share"),
// DeleteGroups v0-v3 (a share group also loses its share-partition state
// and its group configs). AuthorizedOperations is left at its
// "not requested" default for the handler (which owns authorisation) to fill.

import (
	"context"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DescribeGroups reports state and members of each group.
func (c *Coordinator) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = req.Version
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		g, code := c.lookup(id, false)
		switch {
		case code != 0:
			rg.ErrorCode = code
		case g == nil:
			rg.State = stateDead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := "group " + id + " not found"
				rg.ErrorMessage = &msg
			}
		case g.cg != nil:
			rg = g.describeConsumerGroup(c.topicMetas())
			g.mu.Unlock()
		case g.sg != nil:
			g.mu.Unlock()
			rg.State = stateDead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := "group " + id + " is not a classic group"
				rg.ErrorMessage = &msg
			}
		default:
			rg.State = g.state.String()
			rg.ProtocolType = g.protocolType
			stable := g.state == stateStable
			if stable {
				rg.Protocol = g.protocol
			}
			for _, m := range g.sortedMembers() {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID = m.id
				dm.InstanceID = m.instanceID
				dm.ClientID = m.clientID
				dm.ClientHost = m.clientHost
				dm.ProtocolMetadata = []byte{}
				dm.MemberAssignment = []byte{}
				if stable {
					if md := m.metadataFor(g.protocol); md != nil {
						dm.ProtocolMetadata = md
					}
					if m.assignment != nil {
						dm.MemberAssignment = m.assignment
					}
				}
				rg.Members = append(rg.Members, dm)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// ListGroups lists the groups of the shards this broker owns.
func (c *Coordinator) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = req.Version
	states := map[string]bool{}
	types := map[string]bool{} // empty: every type
	if req.Version >= 4 {
		for _, s := range req.StatesFilter {
			states[strings.ToLower(s)] = true
		}
	}
	if req.Version >= 5 && len(req.TypesFilter) > 0 {
		for _, t := range req.TypesFilter {
			types[strings.ToLower(t)] = true
		}
	}
	c.mu.RLock()
	var shards []*shard
	for _, sh := range c.shards {
		if sh.loading || sh.stale {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			continue
		}
		shards = append(shards, sh)
	}
	c.mu.RUnlock()
	for _, sh := range shards {
		for _, g := range sh.list() {
			g.mu.Lock()
			dead, state, pt, typ := g.dead, g.state.String(), g.protocolType, classicGroupType
			if g.cg != nil {
				state, pt, typ = g.cg.state(), consumerProtocolType, consumerGroupType
			}
			if g.sg != nil {
				state, pt, typ = g.sg.state(), shareProtocolType, shareGroupType
			}
			g.mu.Unlock()
			if dead || (len(states) > 0 && !states[strings.ToLower(state)]) || (len(types) > 0 && !types[typ]) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group = g.id
			lg.ProtocolType = pt
			lg.GroupState = state
			lg.GroupType = typ
			resp.Groups = append(resp.Groups, lg)
		}
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

// DeleteGroups deletes empty groups and their offsets.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = req.Version
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		rg.ErrorCode = c.deleteGroup(ctx, id)
		if rg.ErrorCode != 0 && req.Version >= 3 {
			msg := kerr.ErrorForCode(rg.ErrorCode).Error()
			rg.ErrorMessage = &msg
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, id string) int16 {
	if id == "" {
		return kerr.InvalidGroupID.Code
	}
	g, code := c.lookup(id, false)
	if code != 0 {
		return code
	}
	if g == nil {
		return kerr.GroupIDNotFound.Code
	}
	defer g.mu.Unlock()
	if g.sg != nil {
		if len(g.sg.members) > 0 {
			return kerr.NonEmptyGroup.Code
		}
		if code := c.deleteShareData(ctx, g); code != 0 {
			return code
		}
	} else if g.state != stateEmpty {
		return kerr.NonEmptyGroup.Code
	}
	if err := c.writeTxn(g.sh, clientv3.OpDelete(c.groupPrefix(g), clientv3.WithPrefix())); err != nil {
		c.log.Warn("delete group", "group", g.id, "err", err)
		return errorCode(err)
	}
	c.killGroupLocked(g)
	c.forget(g)
	return 0
}

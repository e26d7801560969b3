package groups

// DescribeShareGroupOffsets (key 90), AlterShareGroupOffsets (91) and
// DeleteShareGroupOffsets (92): the start offsets of a share group's share
// partitions, kept by ShareStates (internal/share). Describe reports every
// share partition the group has state for when Topics is nil, else the
// named ones (-1 where there is no state yet). Alter and Delete act only on
// an empty group (NON_EMPTY_GROUP otherwise, as Kafka); Alter on a group id
// nobody uses yet creates the empty share group, so its offsets can be set
// before its first consumer starts. A group id of another type answers
// GROUP_ID_NOT_FOUND.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
)

// partitionCount returns the partitions of a live topic by id.
func (c *Coordinator) partitionCount(id stream.TopicID) (int32, bool) {
	for _, t := range c.topicMetas() {
		if t.ID == id {
			return t.Partitions, true
		}
	}
	return 0, false
}

// shareGroupFor looks up a share group for the offsets APIs and returns it
// locked, or an error code. A nil group with code 0 means "no such group".
func (c *Coordinator) shareGroupFor(id string, create bool) (*group, int16) {
	if id == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	if c.opts.ShareStates == nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	g, code := c.lookup(id, create)
	if code != 0 || g == nil {
		return nil, code
	}
	if g.sg != nil {
		return g, 0
	}
	if !g.blank() {
		g.mu.Unlock()
		return nil, kerr.GroupIDNotFound.Code
	}
	if !create {
		c.dropIfBlank(g)
		g.mu.Unlock()
		return nil, 0
	}
	return g, 0
}

// DescribeShareGroupOffsets reports share partitions' start offsets and lag.
func (c *Coordinator) DescribeShareGroupOffsets(ctx context.Context, req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse {
	resp := kmsg.NewPtrDescribeShareGroupOffsetsResponse()
	resp.Version = req.Version
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, c.describeShareOffsets(ctx, rg))
	}
	return resp
}

func (c *Coordinator) describeShareOffsets(ctx context.Context, rg kmsg.DescribeShareGroupOffsetsRequestGroup) kmsg.DescribeShareGroupOffsetsResponseGroup {
	out := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
	out.GroupID = rg.GroupID
	fail := func(code int16, msg string) kmsg.DescribeShareGroupOffsetsResponseGroup {
		out.ErrorCode = code
		if msg == "" {
			msg = kerr.ErrorForCode(code).Error()
		}
		out.ErrorMessage = &msg
		return out
	}
	g, code := c.shareGroupFor(rg.GroupID, false)
	if code != 0 {
		return fail(code, "")
	}
	if g == nil {
		return fail(kerr.GroupIDNotFound.Code, "group "+rg.GroupID+" not found")
	}
	offsets, err := c.opts.ShareStates.StartOffsets(ctx, g.id)
	g.mu.Unlock()
	if err != nil {
		c.log.Warn("read share start offsets", "group", rg.GroupID, "err", err)
		return fail(shareErrorCode(err), "")
	}
	byKey := map[tp]share.PartitionOffset{}
	for _, po := range offsets {
		byKey[tp{po.Topic, po.Partition}] = po
	}
	partition := func(po share.PartitionOffset) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
		p := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
		p.Partition, p.StartOffset, p.LeaderEpoch, p.Lag = po.Partition, po.StartOffset, po.LeaderEpoch, po.Lag
		return p
	}
	if rg.Topics == nil {
		// Every share partition the group has state for, by topic.
		var topics []kmsg.DescribeShareGroupOffsetsResponseGroupTopic
		for _, po := range offsets {
			name, ok := c.topicNameOf(po.Topic)
			if !ok {
				continue // the topic was deleted
			}
			if n := len(topics); n == 0 || topics[n-1].TopicID != po.Topic {
				t := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
				t.Topic, t.TopicID = name, po.Topic
				topics = append(topics, t)
			}
			t := &topics[len(topics)-1]
			t.Partitions = append(t.Partitions, partition(po))
		}
		out.Topics = topics
		if out.Topics == nil {
			out.Topics = []kmsg.DescribeShareGroupOffsetsResponseGroupTopic{}
		}
		return out
	}
	for _, rt := range rg.Topics {
		t := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
		t.Topic = rt.Topic
		id, known := c.topicID(rt.Topic)
		parts, _ := c.partitionCount(id)
		if known {
			t.TopicID = id
		}
		for _, p := range rt.Partitions {
			rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.Lag = p, -1, -1, -1
			switch po, ok := byKey[tp{id, p}]; {
			case !known || p < 0 || p >= parts:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := kerr.UnknownTopicOrPartition.Error()
				rp.ErrorMessage = &msg
			case ok:
				rp = partition(po)
			}
			t.Partitions = append(t.Partitions, rp)
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

// topicNameOf names a live topic by id.
func (c *Coordinator) topicNameOf(id stream.TopicID) (string, bool) {
	if c.opts.TopicName != nil {
		return c.opts.TopicName(id)
	}
	for _, t := range c.topicMetas() {
		if t.ID == id {
			return t.Name, true
		}
	}
	return "", false
}

// AlterShareGroupOffsets sets share partitions' start offsets of an empty
// share group (creating it when the id is unused).
func (c *Coordinator) AlterShareGroupOffsets(ctx context.Context, req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := kmsg.NewPtrAlterShareGroupOffsetsResponse()
	resp.Version = req.Version
	for _, rt := range req.Topics {
		t := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		t.Topic = rt.Topic
		if id, ok := c.topicID(rt.Topic); ok {
			t.TopicID = id
		}
		for _, rp := range rt.Partitions {
			p := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	setCode := func(ti, pi int, code int16) {
		p := &resp.Topics[ti].Partitions[pi]
		p.ErrorCode = code
		if code != 0 {
			msg := kerr.ErrorForCode(code).Error()
			p.ErrorMessage = &msg
		}
	}
	fail := func(code int16, msg string) *kmsg.AlterShareGroupOffsetsResponse {
		resp.ErrorCode = code
		if msg == "" {
			msg = kerr.ErrorForCode(code).Error()
		}
		resp.ErrorMessage = &msg
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				setCode(ti, pi, code)
			}
		}
		return resp
	}
	g, code := c.shareGroupFor(req.GroupID, true)
	if code != 0 {
		return fail(code, "")
	}
	defer g.mu.Unlock()
	if g.sg != nil && len(g.sg.members) > 0 {
		return fail(kerr.NonEmptyGroup.Code, "the share group has members; stop its consumers first")
	}
	if g.sg == nil {
		// The id is unused: the alter creates the empty share group.
		g.sg, g.protocolType = newShareGroup(), shareProtocolType
		if err := g.persistMetaLocked(); err != nil {
			c.log.Warn("persist share group", "group", g.id, "err", err)
			g.sg, g.protocolType = nil, ""
			c.dropIfBlank(g)
			return fail(errorCode(err), "")
		}
	}
	for ti, rt := range req.Topics {
		id, known := c.topicID(rt.Topic)
		parts, _ := c.partitionCount(id)
		for pi, rp := range rt.Partitions {
			switch {
			case !known || rp.Partition < 0 || rp.Partition >= parts:
				setCode(ti, pi, kerr.UnknownTopicOrPartition.Code)
			case rp.StartOffset < 0:
				setCode(ti, pi, kerr.InvalidRequest.Code)
			default:
				key := share.Key{Group: g.id, Topic: id, Partition: rp.Partition}
				if err := c.opts.ShareStates.SetStartOffset(ctx, key, rp.StartOffset); err != nil {
					c.log.Warn("set share start offset", "group", g.id, "topic", rt.Topic, "partition", rp.Partition, "err", err)
					setCode(ti, pi, shareErrorCode(err))
					continue
				}
				if g.inited == nil {
					g.inited = map[tp]bool{}
				}
				g.inited[tp{id, rp.Partition}] = true
			}
		}
	}
	return resp
}

// DeleteShareGroupOffsets removes an empty share group's share partitions
// of the named topics.
func (c *Coordinator) DeleteShareGroupOffsets(ctx context.Context, req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := kmsg.NewPtrDeleteShareGroupOffsetsResponse()
	resp.Version = req.Version
	for _, rt := range req.Topics {
		t := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		t.Topic = rt.Topic
		if id, ok := c.topicID(rt.Topic); ok {
			t.TopicID = id
		}
		resp.Topics = append(resp.Topics, t)
	}
	setCode := func(ti int, code int16) {
		resp.Topics[ti].ErrorCode = code
		if code != 0 {
			msg := kerr.ErrorForCode(code).Error()
			resp.Topics[ti].ErrorMessage = &msg
		}
	}
	fail := func(code int16, msg string) *kmsg.DeleteShareGroupOffsetsResponse {
		resp.ErrorCode = code
		if msg == "" {
			msg = kerr.ErrorForCode(code).Error()
		}
		resp.ErrorMessage = &msg
		for ti := range resp.Topics {
			setCode(ti, code)
		}
		return resp
	}
	g, code := c.shareGroupFor(req.GroupID, false)
	if code != 0 {
		return fail(code, "")
	}
	if g == nil {
		return fail(kerr.GroupIDNotFound.Code, "group "+req.GroupID+" not found")
	}
	defer g.mu.Unlock()
	if len(g.sg.members) > 0 {
		return fail(kerr.NonEmptyGroup.Code, "the share group has members; stop its consumers first")
	}
	for ti, rt := range req.Topics {
		id, known := c.topicID(rt.Topic)
		if !known {
			setCode(ti, kerr.UnknownTopicOrPartition.Code)
			continue
		}
		if err := c.opts.ShareStates.DeleteState(ctx, g.id, &id); err != nil {
			c.log.Warn("delete share state", "group", g.id, "topic", rt.Topic, "err", err)
			setCode(ti, shareErrorCode(err))
			continue
		}
		for k := range g.inited {
			if k.topic == id {
				delete(g.inited, k)
			}
		}
	}
	return resp
}

package groups

// OffsetCommit v0-v10, OffsetFetch v0-v10 (multi-group v8+, topic ids
// v10+), OffsetDelete v0. Commits are stored one etcd key per (group, topic)
// and one Txn per request (split only past etcd's per-Txn operation limit).
// Offsets expire per offsets.retention.minutes (KIP-211): for a group that
// had members, once it has been empty that long; for standalone commits,
// that long after the commit. Transactional offsets are overlaid from the
// log until their coordinator publishes them; RequireStable (KIP-447) makes
// partitions with offsets in an open transaction answer
// UNSTABLE_OFFSET_COMMIT (see txn.go). Not done: expiring offsets of topics an
// active consumer group no longer subscribes to.

import (
	"context"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/stream"
)

// OffsetCommit stores a group's offsets after generation and member checks;
// generation -1 with no member is a standalone (simple) commit.
func (c *Coordinator) OffsetCommit(_ context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = req.Version
	type item struct {
		ti, pi int
		topic  string
		rec    offsetRecord
	}
	var items []item
	now := time.Now()
	for ti, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		name, topicCode := t.Topic, int16(0)
		if req.Version >= 10 {
			name, topicCode = c.topicName(t.TopicID)
		}
		for pi, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = topicCode
			rt.Partitions = append(rt.Partitions, rp)
			if topicCode != 0 {
				continue
			}
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			rec := offsetRecord{Offset: p.Offset, LeaderEpoch: -1, Metadata: meta, CommitMs: now.UnixMilli()}
			if req.Version >= 6 {
				rec.LeaderEpoch = p.LeaderEpoch
			}
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis > 0 {
				rec.ExpireMs = now.UnixMilli() + req.RetentionTimeMillis
			}
			items = append(items, item{ti: ti, pi: pi, topic: name, rec: rec})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.OffsetCommitResponse {
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
					resp.Topics[ti].Partitions[pi].ErrorCode = code
				}
			}
		}
		return resp
	}
	generation := req.Generation
	if req.Version == 0 {
		generation = -1
	}
	g, code := c.lookup(req.Group, generation < 0)
	if code != 0 {
		return setAll(code)
	}
	if g == nil {
		return setAll(kerr.IllegalGeneration.Code)
	}
	defer g.mu.Unlock()
	if g.sg != nil {
		return setAll(kerr.GroupIDNotFound.Code) // a share group commits no offsets
	}
	var instanceID *string
	if req.Version >= 7 {
		instanceID = req.InstanceID
	}
	if g.cg != nil {
		// A KIP-848 group: the generation field carries the member epoch.
		if code := g.cg.checkCommit(req.MemberID, generation, req.Version >= 9); code != 0 {
			return setAll(code)
		}
	} else {
		var m *member
		simple := generation < 0 && g.state == stateEmpty
		if !simple {
			var mcode int16
			m, mcode = g.member(req.MemberID, instanceID)
			if g.state != stateCompletingRebalance && mcode != 0 {
				return setAll(mcode)
			}
		}
		switch {
		case simple:
		case g.state == stateCompletingRebalance:
			return setAll(kerr.RebalanceInProgress.Code)
		case generation != g.generation:
			return setAll(kerr.IllegalGeneration.Code)
		}
		if m != nil {
			g.scheduleSession(m)
		}
	}
	// Validate, then group accepted partitions by topic.
	byTopic := map[string][]item{}
	var topics []string
	for _, it := range items {
		rp := &resp.Topics[it.ti].Partitions[it.pi]
		switch {
		case c.opts.TopicExists != nil && !c.opts.TopicExists(it.topic, rp.Partition):
			rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		case len(it.rec.Metadata) > c.opts.MaxOffsetMetadata:
			rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			continue
		}
		if _, ok := byTopic[it.topic]; !ok {
			topics = append(topics, it.topic)
		}
		byTopic[it.topic] = append(byTopic[it.topic], it)
	}
	for start := 0; start < len(topics); start += maxOpsPerTxn {
		chunk := topics[start:min(start+maxOpsPerTxn, len(topics))]
		next := map[string]map[int32]offsetRecord{}
		var ops []clientv3.Op
		var encErr error
		for _, t := range chunk {
			parts := make(map[int32]offsetRecord, len(g.offsets[t])+len(byTopic[t]))
			for p, r := range g.offsets[t] {
				parts[p] = r
			}
			for _, it := range byTopic[t] {
				parts[resp.Topics[it.ti].Partitions[it.pi].Partition] = it.rec
			}
			val, err := encodeTopicOffsets(parts)
			if err != nil {
				encErr = err
				break
			}
			next[t] = parts
			ops = append(ops, clientv3.OpPut(c.offsetsKey(g, t), val))
		}
		err := encErr
		if err == nil {
			err = c.writeTxn(g.sh, ops...)
		}
		code := errorCode(err)
		if err != nil {
			c.log.Warn("commit offsets", "group", g.id, "err", err)
		}
		for _, t := range chunk {
			if err == nil {
				g.offsets[t] = next[t]
			}
			for _, it := range byTopic[t] {
				resp.Topics[it.ti].Partitions[it.pi].ErrorCode = code
			}
		}
	}
	return resp
}

func (c *Coordinator) topicName(id stream.TopicID) (string, int16) {
	if c.opts.TopicName == nil {
		return "", kerr.UnknownTopicID.Code
	}
	name, ok := c.opts.TopicName(id)
	if !ok {
		return "", kerr.UnknownTopicID.Code
	}
	return name, 0
}

// fetchTopic is one topic an OffsetFetch asks about.
type fetchTopic struct {
	name       string
	id         stream.TopicID
	code       int16 // e.g. UNKNOWN_TOPIC_ID
	partitions []int32
}

type fetchPartition struct {
	partition int32
	rec       offsetRecord
	code      int16
}

type fetchResult struct {
	name  string
	id    stream.TopicID
	parts []fetchPartition
}

// fetchOffsets reads a group's committed offsets; topics nil means every
// committed topic.
func (c *Coordinator) fetchOffsets(group string, topics []fetchTopic, all, byID, requireStable bool) ([]fetchResult, int16) {
	g, code := c.lookup(group, false)
	if code != 0 {
		return nil, code
	}
	var offsets map[string]map[int32]offsetRecord
	if g != nil && g.sg != nil {
		g.mu.Unlock()
		return nil, kerr.GroupIDNotFound.Code // a share group has no committed offsets
	}
	if g != nil {
		offsets = g.offsets
		defer g.mu.Unlock()
	}
	offsets, unstable := c.overlayTxnOffsets(group, offsets)
	none := offsetRecord{Offset: -1, LeaderEpoch: -1}
	if all {
		names := make([]string, 0, len(offsets))
		for t := range offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		topics = topics[:0]
		for _, t := range names {
			ft := fetchTopic{name: t}
			if byID {
				id, ok := c.topicID(t)
				if !ok {
					continue // topic deleted: nothing addressable to report
				}
				ft.id = id
			}
			for p := range offsets[t] {
				ft.partitions = append(ft.partitions, p)
			}
			sort.Slice(ft.partitions, func(i, j int) bool { return ft.partitions[i] < ft.partitions[j] })
			topics = append(topics, ft)
		}
	}
	out := make([]fetchResult, 0, len(topics))
	for _, t := range topics {
		fr := fetchResult{name: t.name, id: t.id}
		for _, p := range t.partitions {
			fp := fetchPartition{partition: p, rec: none, code: t.code}
			switch {
			case t.code != 0:
			case requireStable && unstable[t.name][p]:
				fp.code = kerr.UnstableOffsetCommit.Code
			default:
				if r, ok := offsets[t.name][p]; ok {
					fp.rec = r
				}
			}
			fr.parts = append(fr.parts, fp)
		}
		out = append(out, fr)
	}
	return out, 0
}

func (c *Coordinator) topicID(name string) (stream.TopicID, bool) {
	if c.opts.TopicID == nil {
		return stream.TopicID{}, false
	}
	return c.opts.TopicID(name)
}

// OffsetFetch returns committed offsets (-1 where none).
func (c *Coordinator) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = req.Version
	if req.Version < 8 {
		var topics []fetchTopic
		for _, t := range req.Topics {
			topics = append(topics, fetchTopic{name: t.Topic, partitions: t.Partitions})
		}
		all := req.Topics == nil && req.Version >= 2
		res, code := c.fetchOffsets(req.Group, topics, all, false, req.Version >= 7 && req.RequireStable)
		if code != 0 {
			res = nil
			for _, t := range topics {
				fr := fetchResult{name: t.name}
				for _, p := range t.partitions {
					fr.parts = append(fr.parts, fetchPartition{partition: p, rec: offsetRecord{Offset: -1, LeaderEpoch: -1}, code: code})
				}
				res = append(res, fr)
			}
			if req.Version >= 2 {
				resp.ErrorCode = code
			}
		}
		for _, fr := range res {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = fr.name
			for _, fp := range fr.parts {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition = fp.partition
				rp.Offset = fp.rec.Offset
				rp.LeaderEpoch = fp.rec.LeaderEpoch
				meta := fp.rec.Metadata
				rp.Metadata = &meta
				rp.ErrorCode = fp.code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	byID := req.Version >= 10
	for _, rg := range req.Groups {
		var topics []fetchTopic
		for _, t := range rg.Topics {
			ft := fetchTopic{name: t.Topic, id: t.TopicID, partitions: t.Partitions}
			if byID {
				ft.name, ft.code = c.topicName(t.TopicID)
			}
			topics = append(topics, ft)
		}
		res, code := c.fetchOffsets(rg.Group, topics, rg.Topics == nil, byID, req.RequireStable)
		gr := kmsg.NewOffsetFetchResponseGroup()
		gr.Group = rg.Group
		gr.ErrorCode = code
		for _, fr := range res {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic, rt.TopicID = fr.name, fr.id
			for _, fp := range fr.parts {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition = fp.partition
				rp.Offset = fp.rec.Offset
				rp.LeaderEpoch = fp.rec.LeaderEpoch
				meta := fp.rec.Metadata
				rp.Metadata = &meta
				rp.ErrorCode = fp.code
				rt.Partitions = append(rt.Partitions, rp)
			}
			gr.Topics = append(gr.Topics, rt)
		}
		resp.Groups = append(resp.Groups, gr)
	}
	return resp
}

// OffsetDelete deletes committed offsets of topics the group does not
// consume (KIP-496).
func (c *Coordinator) OffsetDelete(_ context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = req.Version
	g, code := c.lookup(req.Group, false)
	if code == 0 && g == nil {
		code = kerr.GroupIDNotFound.Code
	}
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	defer g.mu.Unlock()
	if g.sg != nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code // see DeleteShareGroupOffsets
		return resp
	}
	var subscribed map[string]bool
	if g.state != stateEmpty {
		if g.protocolType != consumerProtocolType {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp
		}
		subscribed = g.subscribedTopics()
	}
	next := map[string]map[int32]offsetRecord{}
	var touched []string
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case subscribed[t.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case c.opts.TopicExists != nil && !c.opts.TopicExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				if _, ok := g.offsets[t.Topic][p.Partition]; ok {
					parts, ok := next[t.Topic]
					if !ok {
						parts = map[int32]offsetRecord{}
						for k, v := range g.offsets[t.Topic] {
							parts[k] = v
						}
						next[t.Topic] = parts
						touched = append(touched, t.Topic)
					}
					delete(parts, p.Partition)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if err := c.writeOffsetMaps(g, touched, next); err != nil {
		c.log.Warn("delete offsets", "group", g.id, "err", err)
		code := errorCode(err)
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
					resp.Topics[ti].Partitions[pi].ErrorCode = code
				}
			}
		}
	}
	return resp
}

// writeOffsetMaps replaces the stored offsets of topics with next (an empty
// map deletes the key) and, on success, the in-memory copy.
func (c *Coordinator) writeOffsetMaps(g *group, topics []string, next map[string]map[int32]offsetRecord) error {
	for start := 0; start < len(topics); start += maxOpsPerTxn {
		chunk := topics[start:min(start+maxOpsPerTxn, len(topics))]
		var ops []clientv3.Op
		for _, t := range chunk {
			if len(next[t]) == 0 {
				ops = append(ops, clientv3.OpDelete(c.offsetsKey(g, t)))
				continue
			}
			val, err := encodeTopicOffsets(next[t])
			if err != nil {
				return err
			}
			ops = append(ops, clientv3.OpPut(c.offsetsKey(g, t), val))
		}
		if err := c.writeTxn(g.sh, ops...); err != nil {
			return err
		}
		for _, t := range chunk {
			if len(next[t]) == 0 {
				delete(g.offsets, t)
			} else {
				g.offsets[t] = next[t]
			}
		}
	}
	return nil
}

// subscribedTopics decodes the consumer protocol subscriptions of the
// group's members.
func (g *group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	for _, m := range g.members {
		md := m.metadataFor(g.protocol)
		if md == nil && len(m.protocols) > 0 {
			md = m.protocols[0].Metadata
		}
		var sub kmsg.ConsumerMemberMetadata
		if err := sub.ReadFrom(md); err != nil {
			continue
		}
		for _, t := range sub.Topics {
			out[t] = true
		}
		var asg kmsg.ConsumerMemberAssignment
		if err := asg.ReadFrom(m.assignment); err == nil {
			for _, t := range asg.Topics {
				out[t.Topic] = true
			}
		}
	}
	return out
}

// retentionLoop expires offsets on a schedule (offsets.retention.check.interval.ms).
func (c *Coordinator) retentionLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			c.expireOffsets(now)
		}
	}
}

// expireOffsets deletes expired offsets of empty groups and removes groups
// left with nothing.
func (c *Coordinator) expireOffsets(now time.Time) {
	c.mu.RLock()
	var shards []*shard
	for _, sh := range c.shards {
		if !sh.loading {
			shards = append(shards, sh)
		}
	}
	c.mu.RUnlock()
	retention := c.opts.OffsetsRetention.Milliseconds()
	nowMs := now.UnixMilli()
	for _, sh := range shards {
		for _, g := range sh.list() {
			g.mu.Lock()
			if g.dead || g.state != stateEmpty {
				g.mu.Unlock()
				continue
			}
			next := map[string]map[int32]offsetRecord{}
			var touched []string
			for t, parts := range g.offsets {
				for p, r := range parts {
					expireAt := r.CommitMs + retention
					if g.protocolType != "" {
						expireAt = g.stateTime.UnixMilli() + retention
					}
					if r.ExpireMs > 0 {
						expireAt = r.ExpireMs
					}
					if nowMs < expireAt {
						continue
					}
					np, ok := next[t]
					if !ok {
						np = map[int32]offsetRecord{}
						for k, v := range parts {
							np[k] = v
						}
						next[t] = np
						touched = append(touched, t)
					}
					delete(np, p)
				}
			}
			sort.Strings(touched)
			if err := c.writeOffsetMaps(g, touched, next); err != nil {
				c.log.Warn("expire offsets", "group", g.id, "err", err)
			} else if len(g.offsets) == 0 && len(g.members) == 0 && len(touched) > 0 {
				if err := c.writeTxn(g.sh, clientv3.OpDelete(c.groupPrefix(g), clientv3.WithPrefix())); err == nil {
					c.killGroupLocked(g)
					c.forget(g)
				}
			}
			g.mu.Unlock()
		}
	}
}

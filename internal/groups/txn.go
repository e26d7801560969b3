package groups

// TxnOffsetCommit v0–5 and the group side of transactional offsets.
//
// A transaction's offsets are sequencer state until it ends (DESIGN §5a rule
// 4): TxnOffsetCommit checks the member and generation here (KIP-447) and
// appends them to the transaction through the Txns log; EndTxn commits them
// atomically with the markers. The coordinator owning the group's shard then
// writes the committed offsets to the group's store and records that in the
// log (publishLoop). Until then OffsetFetch overlays them, so a committed
// transaction's offsets are visible at once; offsets of a transaction still
// open make OffsetFetch with RequireStable answer UNSTABLE_OFFSET_COMMIT for
// those partitions. A regular OffsetCommit racing a transactional one for the
// same partition is ordered by when the coordinator publishes, not by the
// log; Kafka clients do not mix the two for one group.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// Txns is what the coordinator needs from the log for transactional
// offsets; internal/stream's Engine implements it.
type Txns interface {
	// TxnOffsetCommit adds offsets to the producer's transaction; implicit
	// (TxnOffsetCommit v5+) adds the group to it as well.
	TxnOffsetCommit(ctx context.Context, txnID string, pid int64, epoch int16, group string, offsets []stream.TxnOffset, implicit bool) error
	// GroupTxnOffsets returns a group's committed-but-unpublished offsets
	// (later ones last) and the offsets of its open transactions.
	GroupTxnOffsets(group string) (committed, pending []stream.TxnOffset)
	// UnpublishedTxnOffsets lists committed offsets not yet in the groups'
	// stores, in commit order.
	UnpublishedTxnOffsets() []stream.CommittedTxnOffsets
	// TxnOffsetsPublished records that one commit's offsets were written.
	TxnOffsetsPublished(ctx context.Context, group string, rev int64) error
	// TxnOffsetsChanged is closed when committed transactional offsets are
	// next added or published.
	TxnOffsetsChanged() <-chan struct{}
}

// TxnOffsetCommit checks the committing member (KIP-447) and adds the
// offsets to its producer's transaction.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = req.Version
	var offsets []stream.TxnOffset
	bad := false
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			switch {
			case c.opts.TopicExists != nil && !c.opts.TopicExists(t.Topic, p.Partition):
				rp.ErrorCode, bad = kerr.UnknownTopicOrPartition.Code, true
			case len(meta) > c.opts.MaxOffsetMetadata:
				rp.ErrorCode, bad = kerr.OffsetMetadataTooLarge.Code, true
			default:
				epoch := int32(-1)
				if req.Version >= 2 {
					epoch = p.LeaderEpoch
				}
				offsets = append(offsets, stream.TxnOffset{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: epoch, Metadata: meta})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.TxnOffsetCommitResponse {
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
					resp.Topics[ti].Partitions[pi].ErrorCode = code
				}
			}
		}
		return resp
	}
	switch {
	case c.opts.Txns == nil:
		return setAll(kerr.CoordinatorNotAvailable.Code)
	case req.Group == "":
		return setAll(kerr.InvalidGroupID.Code)
	case bad:
		return setAll(kerr.OperationNotAttempted.Code)
	}
	if code := c.checkTxnMember(req); code != 0 {
		return setAll(code)
	}
	err := c.opts.Txns.TxnOffsetCommit(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offsets, req.Version >= 5)
	return setAll(txnErrorCode(err, req.Version))
}

// checkTxnMember applies Kafka's checks of a transactional commit's member
// and generation (KIP-447): a member id must be in the group, a generation
// (>= 0) must be the current one.
func (c *Coordinator) checkTxnMember(req *kmsg.TxnOffsetCommitRequest) int16 {
	g, code := c.lookup(req.Group, true)
	if code != 0 {
		return code
	}
	defer g.mu.Unlock()
	if g.sg != nil {
		return kerr.GroupIDNotFound.Code // a share group commits no offsets
	}
	if req.Version < 3 {
		return 0
	}
	if g.cg != nil {
		return g.cg.checkCommit(req.MemberID, req.Generation, true)
	}
	if req.MemberID != "" {
		if _, mcode := g.member(req.MemberID, req.InstanceID); mcode != 0 {
			return mcode
		}
	}
	if req.Generation >= 0 && req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// txnErrorCode maps a log error of a transactional commit to a Kafka code.
func txnErrorCode(err error, version int16) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, stream.ErrProducerFenced):
		if version < 3 {
			return kerr.InvalidProducerEpoch.Code
		}
		return kerr.ProducerFenced.Code
	case errors.Is(err, stream.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, stream.ErrInvalidProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, stream.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, stream.ErrInvalidGroupID):
		return kerr.InvalidGroupID.Code
	case errors.Is(err, stream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.CoordinatorNotAvailable.Code
	}
}

// publishLoop writes committed transactional offsets of the groups this
// broker coordinates to their stores, in commit order, and records each in
// the log.
func (c *Coordinator) publishLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		changed := c.opts.Txns.TxnOffsetsChanged()
		c.publish()
		select {
		case <-c.ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

func (c *Coordinator) publish() {
	blocked := map[string]bool{} // a group whose earlier commit failed waits
	for _, co := range c.opts.Txns.UnpublishedTxnOffsets() {
		if blocked[co.Group] {
			continue
		}
		if _, owned := c.opts.Cluster.OwnedShard(c.opts.Cluster.ShardFor(co.Group)); !owned {
			continue
		}
		if err := c.publishOne(co); err != nil {
			blocked[co.Group] = true
			c.log.Debug("publish transactional offsets", "group", co.Group, "err", err)
		}
	}
}

// publishOne writes one commit's offsets to the group's store. Writing them
// twice (a crash before the log records it) writes the same values.
func (c *Coordinator) publishOne(co stream.CommittedTxnOffsets) error {
	g, code := c.lookup(co.Group, true)
	if code != 0 {
		return kerr.ErrorForCode(code)
	}
	next := map[string]map[int32]offsetRecord{}
	var topics []string
	now := time.Now().UnixMilli()
	for _, o := range co.Offsets {
		parts, ok := next[o.Topic]
		if !ok {
			parts = make(map[int32]offsetRecord, len(g.offsets[o.Topic])+1)
			for p, r := range g.offsets[o.Topic] {
				parts[p] = r
			}
			next[o.Topic] = parts
			topics = append(topics, o.Topic)
		}
		parts[o.Partition] = offsetRecord{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: now}
	}
	err := c.writeOffsetMaps(g, topics, next)
	g.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, defaultWriteTimeout)
	defer cancel()
	return c.opts.Txns.TxnOffsetsPublished(ctx, co.Group, co.Rev)
}

// overlayTxnOffsets returns offsets with the group's committed but
// unpublished transactional offsets on top (offsets itself is not
// modified), and the partitions with offsets pending in open transactions.
func (c *Coordinator) overlayTxnOffsets(group string, offsets map[string]map[int32]offsetRecord) (map[string]map[int32]offsetRecord, map[string]map[int32]bool) {
	if c.opts.Txns == nil {
		return offsets, nil
	}
	committed, pending := c.opts.Txns.GroupTxnOffsets(group)
	if len(committed) > 0 {
		merged := make(map[string]map[int32]offsetRecord, len(offsets))
		for t, parts := range offsets {
			merged[t] = parts
		}
		copied := map[string]bool{}
		for _, o := range committed {
			if !copied[o.Topic] {
				parts := make(map[int32]offsetRecord, len(merged[o.Topic])+1)
				for p, r := range merged[o.Topic] {
					parts[p] = r
				}
				merged[o.Topic] = parts
				copied[o.Topic] = true
			}
			merged[o.Topic][o.Partition] = offsetRecord{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
		}
		offsets = merged
	}
	var unstable map[string]map[int32]bool
	for _, o := range pending {
		if unstable == nil {
			unstable = map[string]map[int32]bool{}
		}
		if unstable[o.Topic] == nil {
			unstable[o.Topic] = map[int32]bool{}
		}
		unstable[o.Topic][o.Partition] = true
	}
	return offsets, unstable
}

package stream

import (
	"cmp"
	"context"
	"slices"
)

// The Engine's transaction API: each call is one log entry (DESIGN §5a rule
// 4) and returns once this broker has applied it, so every broker answers
// the same. Errors are the sentinels of errors.go.

// InitTxnProducer answers InitProducerId for a transactional id. pid and
// epoch are -1 unless a producer recovers its own id (KIP-360).
func (e *Engine) InitTxnProducer(ctx context.Context, txnID string, timeoutMs int32, pid int64, epoch int16) (int64, int16, error) {
	if pid < 0 {
		pid, epoch = -1, -1
	}
	res, err := e.propose(ctx, &entry{Kind: kindInitProducer, TxnID: txnID, TimeoutMs: timeoutMs, ProducerID: pid, Epoch: epoch})
	if err != nil {
		return 0, 0, err
	}
	e.countProducerIDLimit(res.Err)
	return res.ProducerID, res.Epoch, res.Err
}

// AddPartitionsToTxn adds partitions to the producer's transaction.
func (e *Engine) AddPartitionsToTxn(ctx context.Context, txnID string, pid int64, epoch int16, parts []TxnPartition) error {
	return e.proposeErr(ctx, &entry{Kind: kindAddPartitions, TxnID: txnID, ProducerID: pid, Epoch: epoch, TxnParts: parts})
}

// AddOffsetsToTxn adds a consumer group to the producer's transaction.
func (e *Engine) AddOffsetsToTxn(ctx context.Context, txnID string, pid int64, epoch int16, group string) error {
	return e.proposeErr(ctx, &entry{Kind: kindAddOffsets, TxnID: txnID, ProducerID: pid, Epoch: epoch, Group: group})
}

// TxnOffsetCommit records offsets that the group gets when the transaction
// commits. implicit (TxnOffsetCommit v5+) adds the group to the transaction.
func (e *Engine) TxnOffsetCommit(ctx context.Context, txnID string, pid int64, epoch int16, group string, offsets []TxnOffset, implicit bool) error {
	return e.proposeErr(ctx, &entry{Kind: kindTxnOffsets, TxnID: txnID, ProducerID: pid, Epoch: epoch, Group: group, TxnOffsets: offsets, Implicit: implicit})
}

// EndTxn commits or aborts the producer's transaction. bump (Transactions
// V2, EndTxn v5+) moves the producer to a new epoch, returned with its id.
func (e *Engine) EndTxn(ctx context.Context, txnID string, pid int64, epoch int16, commit, bump bool) (int64, int16, error) {
	res, err := e.propose(ctx, &entry{Kind: kindEndTxn, TxnID: txnID, ProducerID: pid, Epoch: epoch, Commit: commit, Bump: bump})
	if err != nil {
		return 0, 0, err
	}
	return res.ProducerID, res.Epoch, res.Err
}

func (e *Engine) proposeErr(ctx context.Context, ent *entry) error {
	res, err := e.propose(ctx, ent)
	if err != nil {
		return err
	}
	return res.Err
}

// TxnPartitionName is a partition of a transaction, by topic name.
type TxnPartitionName struct {
	Topic     string
	Partition int32
}

// TxnInfo describes one transactional id (DescribeTransactions,
// ListTransactions).
type TxnInfo struct {
	ID         string
	ProducerID int64
	Epoch      int16
	TimeoutMs  int32
	// State is Kafka's name for it: Empty, Ongoing, CompleteCommit or
	// CompleteAbort.
	State string
	// StartMs is when the ongoing transaction began (log clock), or -1.
	StartMs    int64
	Partitions []TxnPartitionName
	Groups     []string
}

// Transactions returns every transactional id, sorted.
func (e *Engine) Transactions() []TxnInfo {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]TxnInfo, 0, len(e.st.Txns))
	for _, t := range e.st.Txns {
		info := TxnInfo{ID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch, TimeoutMs: t.TimeoutMs,
			State: t.Phase.String(), StartMs: -1, Groups: slices.Clone(t.Groups)}
		if t.Phase == txnOngoing {
			info.StartMs = t.Started
		}
		for _, tp := range t.Parts {
			if top, ok := e.st.Topics[tp.Topic]; ok {
				info.Partitions = append(info.Partitions, TxnPartitionName{Topic: top.Name, Partition: tp.Partition})
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b TxnInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ProducerInfo is one producer with state on a partition
// (DescribeProducers).
type ProducerInfo struct {
	ProducerID    int64
	Epoch         int16
	LastSequence  int32
	LastTimestamp int64 // log clock of its last batch
	// TxnStartOffset is the first offset of its open transaction, or -1.
	TxnStartOffset int64
}

// Producers returns the producers with state on a partition, by id.
func (e *Engine) Producers(topic string, partition int32) ([]ProducerInfo, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	p, err := e.partByName(topic, partition)
	if err != nil {
		return nil, err
	}
	out := make([]ProducerInfo, 0, len(p.Producers))
	for pid, ps := range p.Producers {
		info := ProducerInfo{ProducerID: pid, Epoch: ps.Epoch, LastSequence: -1, LastTimestamp: ps.LastSeen, TxnStartOffset: -1}
		if n := len(ps.Recent); n > 0 {
			info.LastSequence = ps.Recent[n-1].Last
		}
		if first, ok := p.Open[pid]; ok {
			info.TxnStartOffset = first
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out, nil
}

// CommittedTxnOffsets are a committed transaction's offsets for one group
// that its coordinator has yet to write to the group's store.
type CommittedTxnOffsets struct {
	Group   string
	Rev     int64
	Offsets []TxnOffset
}

// UnpublishedTxnOffsets returns the committed transactional offsets not yet
// in their groups' stores, in commit order.
func (e *Engine) UnpublishedTxnOffsets() []CommittedTxnOffsets {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]CommittedTxnOffsets, 0, len(e.st.TxnOffsets))
	for _, c := range e.st.TxnOffsets {
		out = append(out, CommittedTxnOffsets{Group: c.Group, Rev: c.Rev, Offsets: c.Offsets})
	}
	return out
}

// TxnOffsetsPublished records that a group's coordinator wrote the offsets
// committed at rev to the group's store.
func (e *Engine) TxnOffsetsPublished(ctx context.Context, group string, rev int64) error {
	return e.proposeErr(ctx, &entry{Kind: kindTxnPublished, Group: group, Offset: rev})
}

// GroupTxnOffsets returns, for one group, the offsets of committed
// transactions not yet in its store (later ones last) and the offsets
// pending in open transactions. OffsetFetch overlays the first and answers
// UNSTABLE_OFFSET_COMMIT for the second when asked for stable offsets.
func (e *Engine) GroupTxnOffsets(group string) (committed, pending []TxnOffset) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, c := range e.st.TxnOffsets {
		if c.Group == group {
			committed = append(committed, c.Offsets...)
		}
	}
	for _, t := range e.st.Txns {
		if t.Phase == txnOngoing {
			pending = append(pending, t.Offsets[group]...)
		}
	}
	return committed, pending
}

// AbortTimedOutTxns aborts, with an epoch bump that fences the producer,
// every transaction open longer than its timeout. The sequencer re-checks
// the timeout by the log clock, so a stale view only costs a rejected entry.
func (e *Engine) AbortTimedOutTxns(ctx context.Context) error {
	// Transactions start and time out on the log clock, which the sequencer
	// checks the abort against too; the maintainer's own clock has no say.
	e.mu.RLock()
	now := e.st.Clock
	e.mu.RUnlock()
	type victim struct {
		id    string
		pid   int64
		epoch int16
	}
	var vs []victim
	e.mu.RLock()
	for _, t := range e.st.Txns {
		if t.Phase == txnOngoing && now-t.Started > int64(t.TimeoutMs) {
			vs = append(vs, victim{t.ID, t.ProducerID, t.Epoch})
		}
	}
	e.mu.RUnlock()
	slices.SortFunc(vs, func(a, b victim) int { return cmp.Compare(a.id, b.id) })
	for _, v := range vs {
		res, err := e.propose(ctx, &entry{Kind: kindEndTxn, TxnID: v.id, ProducerID: v.pid, Epoch: v.epoch, Timeout: true, Bump: true})
		if err != nil {
			return err
		}
		if res.Err == nil {
			e.log.Info("stream: aborted a timed-out transaction", "transactional_id", v.id, "producer_id", v.pid)
		}
	}
	return nil
}

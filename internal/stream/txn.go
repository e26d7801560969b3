package stream

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
)

// Transactions are sequencer state (DESIGN §5a rule 4). InitProducerId with a
// transactional id, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
// EndTxn and timeout aborts are log entries; every broker derives the same
// open transactions, last stable offsets, control markers and aborted
// transaction index from them, so any broker can front any transaction.

// txnPhase is where a transactional id's current transaction stands.
type txnPhase uint8

const (
	txnEmpty          txnPhase = iota // no transaction since the producer was initialised
	txnOngoing                        // partitions or groups were added
	txnCompleteCommit                 // the last transaction committed
	txnCompleteAbort                  // the last transaction aborted
)

func (p txnPhase) String() string {
	switch p {
	case txnEmpty:
		return "Empty"
	case txnOngoing:
		return "Ongoing"
	case txnCompleteCommit:
		return "CompleteCommit"
	case txnCompleteAbort:
		return "CompleteAbort"
	}
	return "Unknown"
}

// TxnPartition names one partition of a transaction.
type TxnPartition struct {
	Topic     TopicID
	Partition int32
}

func cmpTxnPartition(a, b TxnPartition) int {
	if c := slices.Compare(a.Topic[:], b.Topic[:]); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// TxnOffset is one offset committed inside a transaction (TxnOffsetCommit).
type TxnOffset struct {
	Topic       string `json:"t"`
	Partition   int32  `json:"p"`
	Offset      int64  `json:"o"`
	LeaderEpoch int32  `json:"e"`
	Metadata    string `json:"m,omitempty"`
}

// txnState is one transactional id.
type txnState struct {
	ID         string
	ProducerID int64
	Epoch      int16
	// PrevProducerID and PrevEpoch identify the producer of the transaction
	// that ended last, when ending it bumped the epoch (Transactions V2 and
	// timeouts), so a retried EndTxn is answered instead of fenced.
	PrevProducerID int64
	PrevEpoch      int16
	TimeoutMs      int32
	Phase          txnPhase
	Parts          []TxnPartition         // sorted
	Groups         []string               // sorted
	Offsets        map[string][]TxnOffset // group -> pending offsets, in commit order
	Started        int64                  // log clock when the transaction began
	LastSeen       int64                  // log clock of the last request
}

// abortedTxn is one aborted transaction of a partition: the producer, its
// first offset there and the offset of its abort marker.
type abortedTxn struct {
	ProducerID int64
	First      int64
	Last       int64
}

// ctlMarker is a control batch the sequencer placed: a commit or abort
// marker. Its bytes are derived from these fields (markerBatch), so the
// extent needs no object until archival writes it into a segment.
type ctlMarker struct {
	Commit     bool
	ProducerID int64
	Epoch      int16
}

// committedOffsets are a committed transaction's offsets for one group,
// waiting to be written to the group's offset store (the group
// coordinator publishes them and then appends a txnOffsetsPublished entry).
type committedOffsets struct {
	Group   string
	Rev     int64 // revision of the EndTxn entry that committed them
	Offsets []TxnOffset
}

// Transaction limits (Kafka's defaults).
const (
	// maxTxnTimeoutMs is transaction.max.timeout.ms.
	maxTxnTimeoutMs = 15 * 60 * 1000
	// txnIDExpiryMs is transactional.id.expiration.ms.
	txnIDExpiryMs = int64(7 * 24 * 60 * 60 * 1000)
	// maxTxnPartitions bounds one transaction.
	maxTxnPartitions = 10000
)

// markerLen is the length of a control batch with one record.
const markerLen = batchHeaderLen + 17

// markerBatch renders the control batch of a marker extent at its offset.
func markerBatch(x extent) []byte {
	m := x.Ctl
	// Record: length 16, attributes 0, timestamp delta 0, offset delta 0,
	// key (version 0, type 0 abort / 1 commit), value (version 0,
	// coordinator epoch 0), no headers.
	rec := []byte{
		32,      // varint 16
		0, 0, 0, // attributes, timestamp delta, offset delta
		8, 0, 0, 0, 0, // key length 4, version, type
		12, 0, 0, 0, 0, 0, 0, // value length 6, version, coordinator epoch
		0, // headers
	}
	if m.Commit {
		rec[8] = 1
	}
	out := make([]byte, batchHeaderLen+len(rec))
	be := binary.BigEndian
	be.PutUint64(out[offBaseOffset:], uint64(x.Base))
	be.PutUint32(out[offBatchLength:], uint32(len(out)-12))
	be.PutUint32(out[offLeaderEpoch:], 0)
	out[offMagic] = 2
	be.PutUint16(out[offAttributes:], uint16(attrControl|attrTransactional))
	be.PutUint32(out[offLastOffsetDelta:], 0)
	be.PutUint64(out[offFirstTimestamp:], uint64(x.MaxTS))
	be.PutUint64(out[offMaxTimestamp:], uint64(x.MaxTS))
	be.PutUint64(out[offProducerID:], uint64(m.ProducerID))
	be.PutUint16(out[offProducerEpoch:], uint16(m.Epoch))
	be.PutUint32(out[offBaseSequence:], 0xffffffff)
	be.PutUint32(out[offRecordCount:], 1)
	copy(out[batchHeaderLen:], rec)
	be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], crcTable))
	return out
}

// lastStable is the partition's last stable offset: the first offset of its
// oldest open transaction, or the high watermark.
func (p *partState) lastStable() int64 {
	lso := p.Next
	for _, first := range p.Open {
		lso = min(lso, first)
	}
	return lso
}

// abortedIn returns the aborted transactions that overlap [from, to].
func (p *partState) abortedIn(from, to int64) []AbortedTxn {
	var out []AbortedTxn
	i := sort.Search(len(p.Aborted), func(i int) bool { return p.Aborted[i].Last >= from })
	for ; i < len(p.Aborted); i++ {
		a := p.Aborted[i]
		if a.First <= to {
			out = append(out, AbortedTxn{ProducerID: a.ProducerID, FirstOffset: a.First})
		}
	}
	return out
}

// isAborted reports whether a batch of producer pid at offset off belongs to
// one of the aborted transactions (an aborted index, in marker order).
func isAborted(aborted []abortedTxn, pid, off int64) bool {
	i := sort.Search(len(aborted), func(i int) bool { return aborted[i].Last >= off })
	for ; i < len(aborted); i++ {
		a := aborted[i]
		if a.ProducerID == pid && a.First <= off {
			return true
		}
	}
	return false
}

// pruneAborted forgets aborted transactions wholly below the log start.
func (p *partState) pruneAborted() {
	n := 0
	for n < len(p.Aborted) && p.Aborted[n].Last < p.LogStart {
		n++
	}
	if n > 0 {
		p.Aborted = append(p.Aborted[:0:0], p.Aborted[n:]...)
	}
}

// txnFor checks that a request names the transactional id's current
// producer and epoch.
func (s *state) txnFor(id string, pid int64, epoch int16) (*txnState, error) {
	t := s.Txns[id]
	if t == nil || t.ProducerID != pid {
		return nil, fmt.Errorf("%w: transactional id %q is not producer %d", ErrInvalidProducerIDMapping, id, pid)
	}
	if epoch < t.Epoch {
		return nil, fmt.Errorf("%w: epoch %d of transactional id %q is older than the current %d", ErrProducerFenced, epoch, id, t.Epoch)
	}
	if epoch > t.Epoch {
		return nil, fmt.Errorf("%w: epoch %d is newer than the current %d", ErrInvalidProducerEpoch, epoch, t.Epoch)
	}
	t.LastSeen = s.Clock
	return t, nil
}

// begin makes t's transaction ongoing if it is not yet.
func (s *state) begin(t *txnState) {
	if t.Phase != txnOngoing {
		t.Phase = txnOngoing
		t.Started = s.Clock
	}
}

// applyInitTxnProducer answers InitProducerId with a transactional id: a new
// id gets a producer id (the entry's revision) and epoch 0; an existing one
// has its ongoing transaction aborted and its epoch bumped, which fences the
// previous incarnation.
func (s *state) applyInitTxnProducer(rev int64, e *entry) applyResult {
	if e.TimeoutMs <= 0 || e.TimeoutMs > maxTxnTimeoutMs {
		return applyResult{Err: fmt.Errorf("%w: %d ms is not in (0, %d]", ErrInvalidTxnTimeout, e.TimeoutMs, maxTxnTimeoutMs)}
	}
	t := s.Txns[e.TxnID]
	if t == nil {
		if e.ProducerID >= 0 {
			return applyResult{Err: fmt.Errorf("%w: transactional id %q has no producer %d", ErrInvalidProducerIDMapping, e.TxnID, e.ProducerID)}
		}
		if err := s.checkProducerIDLimit(); err != nil {
			return applyResult{Err: err}
		}
		t = &txnState{ID: e.TxnID, ProducerID: rev, PrevProducerID: -1, PrevEpoch: -1}
		s.Txns[e.TxnID] = t
		s.TxnByPID[rev] = e.TxnID
		s.Producers[rev] = 0
		s.ProducerSeen[rev] = s.Clock
		t.TimeoutMs, t.LastSeen = e.TimeoutMs, s.Clock
		return applyResult{ProducerID: rev, Epoch: 0}
	}
	if e.ProducerID >= 0 {
		// KIP-360: a producer recovering names the id and epoch it had.
		cur := e.ProducerID == t.ProducerID && e.Epoch == t.Epoch
		prev := e.ProducerID == t.PrevProducerID && e.Epoch == t.PrevEpoch
		if !cur && !prev {
			return applyResult{Err: fmt.Errorf("%w: producer %d epoch %d is not the current %d epoch %d of %q", ErrProducerFenced, e.ProducerID, e.Epoch, t.ProducerID, t.Epoch, e.TxnID)}
		}
	}
	if t.Phase == txnOngoing {
		s.endTxn(rev, t, false)
	}
	s.bumpEpoch(rev, t)
	t.Phase = txnEmpty
	t.TimeoutMs, t.LastSeen = e.TimeoutMs, s.Clock
	return applyResult{ProducerID: t.ProducerID, Epoch: t.Epoch}
}

// bumpEpoch gives t's producer the next epoch, or a fresh producer id (the
// entry's revision) when the epoch is exhausted.
func (s *state) bumpEpoch(rev int64, t *txnState) {
	t.PrevProducerID, t.PrevEpoch = t.ProducerID, t.Epoch
	if t.Epoch >= 32766 {
		delete(s.Producers, t.ProducerID)
		delete(s.ProducerSeen, t.ProducerID)
		delete(s.TxnByPID, t.ProducerID)
		t.ProducerID, t.Epoch = rev, 0
		s.TxnByPID[rev] = t.ID
	} else {
		t.Epoch++
	}
	s.Producers[t.ProducerID] = t.Epoch
	s.ProducerSeen[t.ProducerID] = s.Clock
}

// applyAddPartitions adds partitions to the ongoing transaction, beginning
// one if needed.
func (s *state) applyAddPartitions(e *entry) error {
	t, err := s.txnFor(e.TxnID, e.ProducerID, e.Epoch)
	if err != nil {
		return err
	}
	for _, tp := range e.TxnParts {
		if _, err := s.partition(tp.Topic, tp.Partition); err != nil {
			return err
		}
	}
	if len(t.Parts)+len(e.TxnParts) > maxTxnPartitions {
		return fmt.Errorf("%w: a transaction may span at most %d partitions", ErrInvalidTxnState, maxTxnPartitions)
	}
	s.begin(t)
	for _, tp := range e.TxnParts {
		t.addPart(tp)
	}
	return nil
}

func (t *txnState) addPart(tp TxnPartition) {
	i, found := slices.BinarySearchFunc(t.Parts, tp, cmpTxnPartition)
	if !found {
		t.Parts = slices.Insert(t.Parts, i, tp)
	}
}

func (t *txnState) hasPart(tp TxnPartition) bool {
	_, found := slices.BinarySearchFunc(t.Parts, tp, cmpTxnPartition)
	return found
}

// applyAddOffsets adds a consumer group to the ongoing transaction.
func (s *state) applyAddOffsets(e *entry) error {
	t, err := s.txnFor(e.TxnID, e.ProducerID, e.Epoch)
	if err != nil {
		return err
	}
	if e.Group == "" {
		return fmt.Errorf("%w: empty group id", ErrInvalidGroupID)
	}
	s.begin(t)
	if i, found := slices.BinarySearch(t.Groups, e.Group); !found {
		t.Groups = slices.Insert(t.Groups, i, e.Group)
	}
	return nil
}

// applyTxnOffsets records offsets committed inside the transaction; they
// take effect when it commits.
func (s *state) applyTxnOffsets(e *entry) error {
	t, err := s.txnFor(e.TxnID, e.ProducerID, e.Epoch)
	if err != nil {
		return err
	}
	i, found := slices.BinarySearch(t.Groups, e.Group)
	if e.Implicit && !found && e.Group != "" {
		s.begin(t)
		t.Groups = slices.Insert(t.Groups, i, e.Group)
		found = true
	}
	if !found || t.Phase != txnOngoing {
		return fmt.Errorf("%w: group %q was not added to the transaction of %q", ErrInvalidTxnState, e.Group, e.TxnID)
	}
	if t.Offsets == nil {
		t.Offsets = map[string][]TxnOffset{}
	}
	t.Offsets[e.Group] = append(t.Offsets[e.Group], e.TxnOffsets...)
	return nil
}

// applyEndTxn commits or aborts a transaction. With Bump (Transactions V2,
// and timeout aborts) the epoch moves on, so a delayed or retried EndTxn of
// this transaction can never end a later one (KAFKA-17754).
func (s *state) applyEndTxn(rev int64, e *entry) applyResult {
	t := s.Txns[e.TxnID]
	if t == nil {
		return applyResult{Err: fmt.Errorf("%w: unknown transactional id %q", ErrInvalidProducerIDMapping, e.TxnID)}
	}
	want := txnCompleteAbort
	if e.Commit {
		want = txnCompleteCommit
	}
	ended := t.Phase == txnCompleteCommit || t.Phase == txnCompleteAbort
	if e.Bump && e.ProducerID == t.PrevProducerID && e.Epoch == t.PrevEpoch && ended {
		// A retry of the EndTxn that ended the previous transaction.
		if t.Phase == want {
			return applyResult{ProducerID: t.ProducerID, Epoch: t.Epoch}
		}
		return applyResult{Err: fmt.Errorf("%w: the transaction of %q already ended the other way", ErrInvalidTxnState, e.TxnID)}
	}
	if e.Timeout {
		// The maintainer's abort: valid only if that very transaction is
		// still open past its timeout by the log clock.
		if t.ProducerID != e.ProducerID || t.Epoch != e.Epoch || t.Phase != txnOngoing || s.Clock-t.Started <= int64(t.TimeoutMs) {
			return applyResult{Err: fmt.Errorf("%w: transaction of %q is not timed out", ErrStaleEntry, e.TxnID)}
		}
	} else if _, err := s.txnFor(e.TxnID, e.ProducerID, e.Epoch); err != nil {
		return applyResult{Err: err}
	}
	switch {
	case t.Phase == txnOngoing:
		s.endTxn(rev, t, e.Commit)
	case e.Commit:
		// Nothing is open to commit. Transactions V1 answers a retry of
		// the commit that ended the last transaction at the same epoch.
		if t.Phase != txnCompleteCommit || e.Bump {
			return applyResult{Err: fmt.Errorf("%w: no transaction of %q is open to commit", ErrInvalidTxnState, e.TxnID)}
		}
		return applyResult{ProducerID: t.ProducerID, Epoch: t.Epoch}
	case e.Bump:
		// Transactions V2: an abort at the current epoch with nothing
		// open is accepted and bumps the epoch, as Kafka does. A client
		// whose transactional produce failed or timed out cannot know
		// whether it added the partition, so it aborts to be sure; the
		// new epoch fences that produce if it is sequenced later.
		t.Phase = txnCompleteAbort
	default:
		// Transactions V1: an abort with nothing open, or a retry of the
		// abort that ended the last transaction.
		if t.Phase == txnCompleteCommit {
			return applyResult{Err: fmt.Errorf("%w: no transaction of %q is open to abort", ErrInvalidTxnState, e.TxnID)}
		}
		t.Phase = txnCompleteAbort
		return applyResult{ProducerID: t.ProducerID, Epoch: t.Epoch}
	}
	if e.Bump {
		s.bumpEpoch(rev, t)
	}
	return applyResult{ProducerID: t.ProducerID, Epoch: t.Epoch}
}

// endTxn writes a marker into every partition of t's transaction, records
// an abort in the aborted index, hands committed offsets to the group
// coordinators, and closes the transaction.
func (s *state) endTxn(rev int64, t *txnState, commit bool) {
	for _, tp := range t.Parts {
		p, err := s.partition(tp.Topic, tp.Partition)
		if err != nil {
			continue // the topic was deleted
		}
		off := p.Next
		p.Extents = append(p.Extents, extent{Base: off, Last: off, Len: markerLen, MaxTS: s.Clock,
			Ctl: &ctlMarker{Commit: commit, ProducerID: t.ProducerID, Epoch: t.Epoch}})
		p.Next++
		p.Bytes += markerLen
		if first, ok := p.Open[t.ProducerID]; ok {
			delete(p.Open, t.ProducerID)
			if !commit {
				p.Aborted = append(p.Aborted, abortedTxn{ProducerID: t.ProducerID, First: first, Last: off})
			}
		}
	}
	if commit {
		for _, g := range t.Groups {
			if offs := t.Offsets[g]; len(offs) > 0 {
				s.TxnOffsets = append(s.TxnOffsets, committedOffsets{Group: g, Rev: rev, Offsets: offs})
			}
		}
	}
	t.Parts, t.Groups, t.Offsets = nil, nil, nil
	t.Phase = txnCompleteAbort
	if commit {
		t.Phase = txnCompleteCommit
	}
}

// checkTxnBatch applies the transaction rules to a produced batch before it
// is sequenced: a transactional batch needs its producer's transaction to be
// open on the partition (KIP-890 verification), or is added to it when the
// client relies on Transactions V2's implicit add.
func (s *state) checkTxnBatch(d *batchDesc, tp TxnPartition) error {
	id, isTxn := s.TxnByPID[d.ProducerID]
	transactional := d.Attrs&attrTransactional != 0
	if !transactional {
		if isTxn {
			return fmt.Errorf("%w: producer %d is transactional but sent a non-transactional batch", ErrInvalidTxnState, d.ProducerID)
		}
		return nil
	}
	if !isTxn || d.ProducerID < 0 {
		return fmt.Errorf("%w: transactional batch from producer %d that has no transactional id", ErrInvalidTxnState, d.ProducerID)
	}
	t := s.Txns[id]
	if d.Epoch != t.Epoch {
		return nil // checkSequence reports the epoch error
	}
	if t.Phase == txnOngoing && t.hasPart(tp) {
		return nil
	}
	if d.Attrs&attrImplicitAdd == 0 {
		return fmt.Errorf("%w: partition %d was not added to the transaction of %q", ErrInvalidTxnState, tp.Partition, id)
	}
	if len(t.Parts) >= maxTxnPartitions {
		return fmt.Errorf("%w: a transaction may span at most %d partitions", ErrInvalidTxnState, maxTxnPartitions)
	}
	s.begin(t)
	t.addPart(tp)
	return nil
}

// applyTxnOffsetsPublished drops committed offsets a group coordinator has
// written to the group's store.
func (s *state) applyTxnOffsetsPublished(e *entry) {
	s.TxnOffsets = slices.DeleteFunc(s.TxnOffsets, func(c committedOffsets) bool {
		return c.Group == e.Group && c.Rev == e.Offset
	})
}

// expireTxnIDs forgets transactional ids idle for txnIDExpiryMs with no
// transaction open.
func (s *state) expireTxnIDs() {
	cutoff := s.Clock - txnIDExpiryMs
	for id, t := range s.Txns {
		if t.Phase != txnOngoing && t.LastSeen < cutoff {
			delete(s.Txns, id)
			delete(s.TxnByPID, t.ProducerID)
			delete(s.Producers, t.ProducerID)
			delete(s.ProducerSeen, t.ProducerID)
		}
	}
}

// cloneTxns deep-copies the transaction state for a checkpoint.
func cloneTxns(m map[string]*txnState) map[string]*txnState {
	out := make(map[string]*txnState, len(m))
	for id, t := range m {
		c := *t
		c.Parts = slices.Clone(t.Parts)
		c.Groups = slices.Clone(t.Groups)
		if t.Offsets != nil {
			c.Offsets = make(map[string][]TxnOffset, len(t.Offsets))
			for g, o := range t.Offsets {
				c.Offsets[g] = slices.Clone(o)
			}
		}
		out[id] = &c
	}
	return out
}

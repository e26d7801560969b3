package stream

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
)

// TopicID is a topic's UUID.
type TopicID = [16]byte

// extent is one piece of a partition's log: either one batch of an intake
// object or one chunk of a segment object.
type extent struct {
	Base    int64
	Last    int64
	Obj     string
	Pos     int64
	Len     int64
	MaxTS   int64
	Segment bool
	// Ctl is set on a control marker the sequencer placed; such an extent
	// has no object until archival writes it into a segment.
	Ctl *ctlMarker
}

// seqRange remembers one recent batch of an idempotent producer.
type seqRange struct {
	First, Last int32
	Base        int64
	Count       int32
}

// prodState is one producer's state on one partition (DESIGN §5a rule 3).
type prodState struct {
	Epoch    int16
	Recent   []seqRange // at most maxRecentBatches, oldest first
	LastSeen int64      // log clock of its last batch
}

const maxRecentBatches = 5

// partState is the sequencer's view of one partition: the partition index.
type partState struct {
	LogStart  int64
	Next      int64 // high watermark: the next offset to assign
	Extents   []extent
	Producers map[int64]*prodState
	Bytes     int64
	Epoch     int32
	// Open maps each producer with an open transaction here to the first
	// offset it wrote in it; the last stable offset is the smallest.
	Open map[int64]int64
	// Aborted is the aborted transaction index, in marker offset order.
	Aborted []abortedTxn
}

// topicState is one live topic.
type topicState struct {
	ID         TopicID
	Name       string
	Configs    map[string]string
	Parts      []*partState
	CreatedRev int64
}

// garbageObj is an object no extent references any more. It is deleted
// from the store after the grace period, once a checkpoint taken after it
// became garbage exists (DESIGN §5a rule 8).
type garbageObj struct {
	Obj   string
	Rev   int64
	Clock int64
}

// state is everything the sequencer derives from the log. Every broker
// computes the same state from the same entries (DESIGN §5a).
type state struct {
	Rev       int64 // revision of the last applied entry
	Clock     int64 // log clock: largest broker time carried by entries (ms)
	Topics    map[TopicID]*topicState
	ByName    map[string]TopicID
	Producers map[int64]int16 // producer id -> current epoch
	// ProducerSeen is the log clock of each producer id's last InitProducerId
	// or batch; ids idle longer than the expiry are forgotten (§5a rule 10).
	ProducerSeen map[int64]int64
	ObjRefs      map[string]int32
	Garbage      []garbageObj
	// LastExpiry is the log clock of the last producer-state expiry sweep.
	LastExpiry int64
	Entries    int64 // entries applied since the log began
	// Txns holds every transactional id; TxnByPID maps its producer id
	// back. TxnOffsets are committed transactions' offsets not yet written
	// to their groups' stores, in commit order.
	Txns       map[string]*txnState
	TxnByPID   map[int64]string
	TxnOffsets []committedOffsets
	// BrokerClocks is how each broker's clock maps onto the log clock.
	BrokerClocks map[int32]*brokerClock

	// maxProducerIDs caps the producer ids held (DESIGN §5a rule 10); the
	// same on every broker (tests lower it). Not part of a checkpoint.
	maxProducerIDs int
}

// defaultMaxProducerIDs caps producer ids: each costs its entry here, a
// checkpoint's share and, per partition written, its recent batches. A
// client looping on InitProducerId hits it instead of growing state,
// checkpoints and etcd without bound; ids come free as idle ones expire
// (producer.id.expiration.ms, a day).
const defaultMaxProducerIDs = 200_000

// checkProducerIDLimit refuses a new producer id once the cap is reached.
func (s *state) checkProducerIDLimit() error {
	if max := s.maxProducerIDs; max > 0 && len(s.Producers) >= max {
		return fmt.Errorf("%w: %d producer ids are held, the most the cluster keeps; idle ids expire after a day", ErrProducerIDLimit, len(s.Producers))
	}
	return nil
}

// brokerClock is one broker's clock as the log sees it (DESIGN §5a rule 1).
type brokerClock struct {
	// Off is added to the broker's time to get its view of the log clock:
	// set when the broker is first seen, and again when its clock steps.
	Off int64
	// At is the log clock when its last entry was applied.
	At int64
}

func newState() *state {
	return &state{
		Topics:       map[TopicID]*topicState{},
		ByName:       map[string]TopicID{},
		Producers:    map[int64]int16{},
		ProducerSeen: map[int64]int64{},
		ObjRefs:      map[string]int32{},
		Txns:         map[string]*txnState{},
		TxnByPID:     map[int64]string{},
		BrokerClocks: map[int32]*brokerClock{},

		maxProducerIDs: defaultMaxProducerIDs,
	}
}

// batchResult is the sequencer's verdict on one produced batch.
type batchResult struct {
	Base     int64
	LogStart int64
	Err      error
	// Dup marks a duplicate of a recent batch, answered with its offset.
	Dup bool
}

// applyResult is what applying one entry produced, for the broker that
// proposed it.
type applyResult struct {
	Batches    []batchResult
	Err        error
	ProducerID int64
	Epoch      int16
	Offset     int64
	// snap and digest answer a checkpoint mark's proposer: a copy of the
	// state right after the mark, and its digest.
	snap   *state
	digest uint64
}

// Limits that keep replay deterministic and bounded.
const (
	// objectMaxAge is T of DESIGN §5a rule 5: an intake entry whose object
	// is older than the log clock minus T is rejected, so garbage collection
	// may delete unreferenced objects older than 2T.
	objectMaxAge = int64(5 * 60 * 1000)
	// producerExpiryMs drops a producer's partition state after this long
	// without a batch (producer.id.expiration.ms).
	producerExpiryMs = int64(24 * 60 * 60 * 1000)
	expirySweepMs    = int64(60 * 1000)
	// maxClockStep is how far past the log clock one entry may move it
	// while other brokers are active: a broker whose clock jumps ahead, or
	// that joins minutes ahead, cannot make everyone else's entries "too
	// old" or expire state early (DESIGN §5a rule 1).
	maxClockStep = int64(10 * 1000)
	// clockActiveMs: a broker with no entry for this long (log clock) no
	// longer holds the others' clocks back. The maintainer ticks every
	// second, so the log clock moves while the log is quiet.
	clockActiveMs = int64(60 * 1000)
)

// advanceClock moves the log clock for an entry of broker e.Broker and
// returns that broker's offset onto the log clock.
//
// Each broker's time is mapped onto the log clock by an offset learnt when
// it is first seen, so brokers whose clocks disagree by a constant still
// agree on durations. While another broker is active, an entry may move the
// clock at most maxClockStep past it: a larger step is the broker's clock
// jumping, and its offset is adjusted instead. A broker whose view falls
// more than maxClockStep behind (its clock stepped back) is re-synchronised
// without moving the clock. A broker alone in the log is its only
// reference: it moves the clock freely forward (a restart after downtime).
func (s *state) advanceClock(e *entry) int64 {
	if e.Time == 0 {
		return 0 // entries written before the log clock existed
	}
	if s.BrokerClocks == nil {
		s.BrokerClocks = map[int32]*brokerClock{}
	}
	others := false
	for id, o := range s.BrokerClocks {
		if id != e.Broker && o.At >= s.Clock-clockActiveMs {
			others = true
			break
		}
	}
	bc := s.BrokerClocks[e.Broker]
	if bc == nil {
		bc = &brokerClock{}
		if others || e.Time < s.Clock {
			bc.Off = s.Clock - e.Time
		}
		s.BrokerClocks[e.Broker] = bc
	}
	view := e.Time + bc.Off
	switch {
	case view < s.Clock-maxClockStep:
		bc.Off = s.Clock - e.Time
	case others && view > s.Clock+maxClockStep:
		bc.Off = s.Clock + maxClockStep - e.Time
	}
	s.Clock = max(s.Clock, e.Time+bc.Off)
	bc.At = s.Clock
	return bc.Off
}

// apply applies one entry at revision rev. It is deterministic: it reads no
// clock, no randomness and iterates maps only in sorted order where the
// order matters.
func (s *state) apply(rev int64, e *entry) applyResult {
	s.Rev = rev
	s.Entries++
	off := s.advanceClock(e)
	var res applyResult
	switch e.Kind {
	case kindTick:
		// Only moves the log clock.
	case kindIntake:
		res = s.applyIntake(e, off)
	case kindCreateTopic:
		res.Err = s.applyCreateTopic(rev, e)
	case kindDeleteTopic:
		res.Err = s.applyDeleteTopic(e)
	case kindCreatePartitions:
		res.Err = s.applyCreatePartitions(e)
	case kindAlterConfigs:
		res.Err = s.applyAlterConfigs(e)
	case kindInitProducer:
		res = s.applyInitProducer(rev, e)
	case kindTrim:
		res.Offset, res.Err = s.applyTrim(e)
	case kindArchive, kindCompact:
		res.Err = s.applyReplace(e, off)
	case kindCollect:
		s.applyCollect(e)
	case kindAddPartitions:
		res.Err = s.applyAddPartitions(e)
	case kindAddOffsets:
		res.Err = s.applyAddOffsets(e)
	case kindTxnOffsets:
		res.Err = s.applyTxnOffsets(e)
	case kindEndTxn:
		res = s.applyEndTxn(rev, e)
	case kindTxnPublished:
		s.applyTxnOffsetsPublished(e)
	case kindCheckpointMark, kindCheckpointDigest:
		// Bookkeeping only; the engine records and compares digests.
	default:
		res.Err = fmt.Errorf("stream: unknown log entry kind %d", e.Kind)
	}
	if s.Clock-s.LastExpiry >= expirySweepMs {
		s.expireProducers()
		s.expireTxnIDs()
		s.LastExpiry = s.Clock
	}
	return res
}

func (s *state) partition(id TopicID, p int32) (*partState, error) {
	t, ok := s.Topics[id]
	if !ok {
		return nil, ErrUnknownTopicOrPartition
	}
	if p < 0 || int(p) >= len(t.Parts) {
		return nil, ErrUnknownTopicOrPartition
	}
	return t.Parts[p], nil
}

func (s *state) applyIntake(e *entry, off int64) applyResult {
	res := applyResult{Batches: make([]batchResult, len(e.Batches))}
	// The object's time is the proposing broker's clock: compare it on the
	// log clock through that broker's offset.
	if e.ObjectTime+off < s.Clock-objectMaxAge {
		for i := range res.Batches {
			res.Batches[i].Err = fmt.Errorf("%w: intake object %s is too old to be sequenced", ErrTimeout, e.Object)
		}
		return res
	}
	for i := range e.Batches {
		d := &e.Batches[i]
		p, err := s.partition(d.Topic, d.Partition)
		if err != nil {
			res.Batches[i].Err = err
			continue
		}
		if d.Count < 1 || d.Len < 1 {
			res.Batches[i].Err = fmt.Errorf("%w: batch descriptor with %d records in %d bytes", ErrCorruptMessage, d.Count, d.Len)
			continue
		}
		if d.Attrs&attrCompanion != 0 {
			// A dead-letter batch is written only with the batch it goes
			// with (dlq.go).
			m := int(d.BaseSeq)
			if m < 0 || m >= i || e.Batches[m].Attrs&attrCompanion != 0 || res.Batches[m].Err != nil || res.Batches[m].Dup || d.ProducerID >= 0 {
				res.Batches[i].Err = fmt.Errorf("%w: dead-letter batch skipped: the batch it goes with was not written", ErrStaleEntry)
				continue
			}
		}
		base, dup, err := p.checkSequence(d, s)
		if err != nil {
			res.Batches[i] = batchResult{Err: err, LogStart: p.LogStart}
			continue
		}
		if dup {
			res.Batches[i] = batchResult{Base: base, LogStart: p.LogStart, Dup: true}
			continue
		}
		if err := s.checkTxnBatch(d, TxnPartition{Topic: d.Topic, Partition: d.Partition}); err != nil {
			res.Batches[i] = batchResult{Err: err, LogStart: p.LogStart}
			continue
		}
		base = p.Next
		if d.Attrs&attrTransactional != 0 {
			if _, open := p.Open[d.ProducerID]; !open {
				if p.Open == nil {
					p.Open = map[int64]int64{}
				}
				p.Open[d.ProducerID] = base
			}
		}
		last := base + int64(d.Count) - 1
		p.Extents = append(p.Extents, extent{Base: base, Last: last, Obj: e.Object, Pos: int64(d.Pos), Len: int64(d.Len), MaxTS: d.MaxTS})
		p.Next = last + 1
		p.Bytes += int64(d.Len)
		s.ObjRefs[e.Object]++
		if d.ProducerID >= 0 {
			p.recordProducer(d, base, s.Clock)
			s.ProducerSeen[d.ProducerID] = s.Clock
		}
		res.Batches[i] = batchResult{Base: base, LogStart: p.LogStart}
	}
	// Nothing in the object was sequenced: it is garbage right away.
	s.collectIfUnreferenced(e.Object)
	return res
}

// checkSequence applies the idempotence rules to a batch. It returns
// dup=true with the original base offset for a duplicate of a recent batch.
func (p *partState) checkSequence(d *batchDesc, s *state) (int64, bool, error) {
	if d.ProducerID < 0 {
		return 0, false, nil
	}
	cur, known := s.Producers[d.ProducerID]
	if !known {
		return 0, false, fmt.Errorf("%w: producer id %d", ErrUnknownProducerID, d.ProducerID)
	}
	if d.Epoch < cur {
		return 0, false, fmt.Errorf("%w: epoch %d is older than the current %d", ErrInvalidProducerEpoch, d.Epoch, cur)
	}
	if d.Epoch > cur {
		return 0, false, fmt.Errorf("%w: epoch %d is newer than the current %d", ErrInvalidProducerEpoch, d.Epoch, cur)
	}
	ps := p.Producers[d.ProducerID]
	if ps == nil || len(ps.Recent) == 0 {
		// No state here (never written, or expired): any sequence is
		// accepted, as Kafka does when it has no entry for the producer.
		return 0, false, nil
	}
	if ps.Epoch != d.Epoch {
		if d.BaseSeq != 0 {
			return 0, false, fmt.Errorf("%w: a new producer epoch must start at sequence 0, got %d", ErrOutOfOrderSequence, d.BaseSeq)
		}
		return 0, false, nil
	}
	last := addSeq(d.BaseSeq, d.Count-1)
	for _, r := range ps.Recent {
		if r.First == d.BaseSeq && r.Last == last {
			return r.Base, true, nil
		}
	}
	prev := ps.Recent[len(ps.Recent)-1]
	if d.BaseSeq != addSeq(prev.Last, 1) {
		return 0, false, fmt.Errorf("%w: expected sequence %d, got %d", ErrOutOfOrderSequence, addSeq(prev.Last, 1), d.BaseSeq)
	}
	return 0, false, nil
}

func (p *partState) recordProducer(d *batchDesc, base int64, clock int64) {
	if p.Producers == nil {
		p.Producers = map[int64]*prodState{}
	}
	ps := p.Producers[d.ProducerID]
	if ps == nil || ps.Epoch != d.Epoch {
		ps = &prodState{Epoch: d.Epoch}
		p.Producers[d.ProducerID] = ps
	}
	if len(ps.Recent) == maxRecentBatches {
		copy(ps.Recent, ps.Recent[1:])
		ps.Recent = ps.Recent[:maxRecentBatches-1]
	}
	ps.Recent = append(ps.Recent, seqRange{First: d.BaseSeq, Last: addSeq(d.BaseSeq, d.Count-1), Base: base, Count: d.Count})
	ps.LastSeen = clock
}

func (s *state) expireProducers() {
	cutoff := s.Clock - producerExpiryMs
	for pid := range s.Producers {
		if _, txn := s.TxnByPID[pid]; txn {
			continue // lives as long as its transactional id
		}
		if s.ProducerSeen[pid] < cutoff {
			delete(s.Producers, pid)
			delete(s.ProducerSeen, pid)
		}
	}
	for _, t := range s.Topics {
		for _, p := range t.Parts {
			for pid, ps := range p.Producers {
				if _, open := p.Open[pid]; ps.LastSeen < cutoff && !open {
					delete(p.Producers, pid)
				}
			}
		}
	}
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	if len(name) > 249 {
		return fmt.Errorf("%w: %q is longer than 249 characters", ErrInvalidTopic, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains %q (allowed: ASCII letters, digits, '.', '_', '-')", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// maxPartitions caps one topic's partition count.
const maxPartitions = 10000

func newPart() *partState {
	return &partState{}
}

func (s *state) applyCreateTopic(rev int64, e *entry) error {
	if err := validTopicName(e.Name); err != nil {
		return err
	}
	if _, ok := s.ByName[e.Name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, e.Name)
	}
	if e.Partitions <= 0 || e.Partitions > maxPartitions {
		return fmt.Errorf("%w: %d", ErrInvalidPartitions, e.Partitions)
	}
	if _, ok := s.Topics[e.Topic]; ok {
		return fmt.Errorf("%w: topic id collision", ErrTopicExists)
	}
	if e.Topic == (TopicID{}) {
		return fmt.Errorf("%w: zero topic id", ErrInvalidTopic)
	}
	// Kafka refuses names that collide once '.' and '_' are treated alike.
	norm := strings.ReplaceAll(e.Name, ".", "_")
	for name := range s.ByName {
		if strings.ReplaceAll(name, ".", "_") == norm {
			return fmt.Errorf("%w: %q collides with existing topic %q", ErrInvalidTopic, e.Name, name)
		}
	}
	t := &topicState{ID: e.Topic, Name: e.Name, Configs: copyMap(e.Configs), CreatedRev: rev}
	for i := int32(0); i < e.Partitions; i++ {
		t.Parts = append(t.Parts, newPart())
	}
	s.Topics[e.Topic] = t
	s.ByName[e.Name] = e.Topic
	return nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *state) applyDeleteTopic(e *entry) error {
	t, ok := s.Topics[e.Topic]
	if !ok {
		return ErrUnknownTopicOrPartition
	}
	for _, p := range t.Parts {
		s.dropExtents(p, len(p.Extents))
	}
	delete(s.Topics, e.Topic)
	delete(s.ByName, t.Name)
	return nil
}

func (s *state) applyCreatePartitions(e *entry) error {
	t, ok := s.Topics[e.Topic]
	if !ok {
		return ErrUnknownTopicOrPartition
	}
	if e.Partitions <= int32(len(t.Parts)) {
		return fmt.Errorf("%w: topic %q has %d partitions; a new count must be larger, got %d", ErrInvalidPartitions, t.Name, len(t.Parts), e.Partitions)
	}
	if e.Partitions > maxPartitions {
		return fmt.Errorf("%w: %d is more than %d", ErrInvalidPartitions, e.Partitions, maxPartitions)
	}
	for int32(len(t.Parts)) < e.Partitions {
		t.Parts = append(t.Parts, newPart())
	}
	return nil
}

func (s *state) applyAlterConfigs(e *entry) error {
	t, ok := s.Topics[e.Topic]
	if !ok {
		return ErrUnknownTopicOrPartition
	}
	if e.Replace {
		t.Configs = copyMap(e.Configs)
		return nil
	}
	for k, v := range e.Configs {
		t.Configs[k] = v
	}
	for _, k := range e.Deletes {
		delete(t.Configs, k)
	}
	return nil
}

func (s *state) applyInitProducer(rev int64, e *entry) applyResult {
	if e.TxnID != "" {
		return s.applyInitTxnProducer(rev, e)
	}
	if _, txn := s.TxnByPID[e.ProducerID]; txn {
		return applyResult{Err: fmt.Errorf("%w: producer %d belongs to a transactional id", ErrInvalidProducerIDMapping, e.ProducerID)}
	}
	if e.ProducerID < 0 {
		if err := s.checkProducerIDLimit(); err != nil {
			return applyResult{Err: err}
		}
		// A new producer: its id is the revision of this entry, unique and
		// the same on every broker.
		s.Producers[rev] = 0
		s.ProducerSeen[rev] = s.Clock
		return applyResult{ProducerID: rev, Epoch: 0}
	}
	cur, ok := s.Producers[e.ProducerID]
	if !ok {
		return applyResult{Err: fmt.Errorf("%w: producer id %d", ErrUnknownProducerID, e.ProducerID)}
	}
	if e.Epoch != cur {
		return applyResult{Err: fmt.Errorf("%w: epoch %d is not the current %d", ErrInvalidProducerEpoch, e.Epoch, cur)}
	}
	if cur == 32767 {
		// Epoch exhausted: hand out a fresh id, as Kafka does.
		delete(s.Producers, e.ProducerID)
		delete(s.ProducerSeen, e.ProducerID)
		s.Producers[rev] = 0
		s.ProducerSeen[rev] = s.Clock
		return applyResult{ProducerID: rev, Epoch: 0}
	}
	s.Producers[e.ProducerID] = cur + 1
	s.ProducerSeen[e.ProducerID] = s.Clock
	return applyResult{ProducerID: e.ProducerID, Epoch: cur + 1}
}

// applyTrim moves a partition's log start offset forward (DeleteRecords and
// retention) and drops extents wholly below it.
func (s *state) applyTrim(e *entry) (int64, error) {
	p, err := s.partition(e.Topic, e.Partition)
	if err != nil {
		return 0, err
	}
	off := e.Offset
	if off < 0 {
		off = p.Next
	}
	if off > p.Next {
		return 0, fmt.Errorf("%w: offset %d is beyond the high watermark %d", ErrOffsetOutOfRange, off, p.Next)
	}
	if off <= p.LogStart {
		return p.LogStart, nil
	}
	p.LogStart = off
	n := 0
	for n < len(p.Extents) && p.Extents[n].Last < off {
		n++
	}
	s.dropExtents(p, n)
	p.pruneAborted()
	return p.LogStart, nil
}

// dropExtents removes the first n extents of p and releases their objects.
func (s *state) dropExtents(p *partState, n int) {
	for _, x := range p.Extents[:n] {
		p.Bytes -= x.Len
		s.release(x)
	}
	p.Extents = append(p.Extents[:0:0], p.Extents[n:]...)
}

// release drops one reference to an extent's object; an object nothing
// references becomes garbage.
func (s *state) release(x extent) {
	if x.Obj == "" {
		return // a marker the sequencer placed
	}
	s.ObjRefs[x.Obj]--
	s.collectIfUnreferenced(x.Obj)
}

// collectIfUnreferenced puts an object no extent references on the garbage
// list, stamped with the current revision and log clock.
func (s *state) collectIfUnreferenced(obj string) {
	if obj == "" || s.ObjRefs[obj] > 0 {
		return
	}
	delete(s.ObjRefs, obj)
	s.Garbage = append(s.Garbage, garbageObj{Obj: obj, Rev: s.Rev, Clock: s.Clock})
}

// applyReplace swaps a run of extents for new segment chunks (archival and
// compaction). The entry names exactly what it replaces; if the partition
// no longer has exactly that run, the plan is stale and rejected, and its
// segment becomes garbage (DESIGN §5a rule 8).
func (s *state) applyReplace(e *entry, off int64) error {
	reject := func(err error) error {
		s.collectIfUnreferenced(e.Segment)
		return err
	}
	if e.SegmentTime != 0 && e.SegmentTime+off < s.Clock-objectMaxAge {
		// Orphan collection may already have deleted the segment (§5a
		// rule 5, as for intake objects).
		return reject(fmt.Errorf("%w: segment %s is too old to be applied", ErrStaleEntry, e.Segment))
	}
	p, err := s.partition(e.Topic, e.Partition)
	if err != nil {
		return reject(err)
	}
	if err := checkChunks(e.Chunks, e.ReplacedFirst, e.ReplacedLast, e.Segment); err != nil {
		return reject(err)
	}
	i := sort.Search(len(p.Extents), func(i int) bool { return p.Extents[i].Base >= e.ReplacedFirst })
	// Compare the count with what is left before adding, so a huge count
	// cannot overflow.
	if e.ReplacedCount <= 0 || e.ReplacedCount > len(p.Extents)-i ||
		p.Extents[i].Base != e.ReplacedFirst || p.Extents[i+e.ReplacedCount-1].Last != e.ReplacedLast {
		return reject(fmt.Errorf("%w: extents [%d, %d] x%d are no longer current", ErrStaleEntry, e.ReplacedFirst, e.ReplacedLast, e.ReplacedCount))
	}
	j := i + e.ReplacedCount
	for _, x := range p.Extents[i:j] {
		if e.Kind == kindArchive && x.Segment {
			return reject(fmt.Errorf("%w: archive plan covers a segment extent", ErrStaleEntry))
		}
		if e.Kind == kindCompact && !x.Segment {
			return reject(fmt.Errorf("%w: compaction plan covers an unarchived extent", ErrStaleEntry))
		}
	}
	if e.ReplacedDigest != extentsDigest(p.Extents[i:j]) {
		return reject(fmt.Errorf("%w: extents [%d, %d] were rewritten since the plan was made", ErrStaleEntry, e.ReplacedFirst, e.ReplacedLast))
	}
	repl := make([]extent, 0, len(e.Chunks))
	var bytes int64
	for _, c := range e.Chunks {
		repl = append(repl, extent{Base: c.Base, Last: c.Last, Obj: e.Segment, Pos: c.Pos, Len: c.Len, MaxTS: c.MaxTS, Segment: true})
		bytes += c.Len
	}
	for _, x := range p.Extents[i:j] {
		p.Bytes -= x.Len
		s.release(x)
	}
	s.ObjRefs[e.Segment] += int32(len(repl))
	s.collectIfUnreferenced(e.Segment) // a compaction that kept nothing
	p.Bytes += bytes
	out := make([]extent, 0, len(p.Extents)-(j-i)+len(repl))
	out = append(out, p.Extents[:i]...)
	out = append(out, repl...)
	out = append(out, p.Extents[j:]...)
	p.Extents = out
	return nil
}

func (s *state) applyCollect(e *entry) {
	gone := make(map[string]bool, len(e.Objects))
	for _, o := range e.Objects {
		gone[o] = true
	}
	kept := s.Garbage[:0]
	for _, g := range s.Garbage {
		if !gone[g.Obj] {
			kept = append(kept, g)
		}
	}
	s.Garbage = kept
}

// unarchivedExtents counts the extents not yet archived into segments:
// archived extents are always a prefix (archival takes the run right after
// it, compaction only rewrites segments).
func (p *partState) unarchivedExtents() int {
	return len(p.Extents) - sort.Search(len(p.Extents), func(i int) bool { return !p.Extents[i].Segment })
}

// unarchivedBytes is the length of the partition's extents not yet
// archived.
func (p *partState) unarchivedBytes() int64 {
	var n int64
	for _, x := range p.Extents[len(p.Extents)-p.unarchivedExtents():] {
		n += x.Len
	}
	return n
}

// findExtent returns the index of the first extent whose last offset is >=
// off, or len(extents).
func (p *partState) findExtent(off int64) int {
	return sort.Search(len(p.Extents), func(i int) bool { return p.Extents[i].Last >= off })
}

// extentsDigest fingerprints a run of extents: which objects, where, and
// which offsets. Maintenance entries carry it so the sequencer applies a
// plan only to exactly the extents it was made from (DESIGN §5a rule 8).
func extentsDigest(xs []extent) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, x := range xs {
		h.Write([]byte(x.Obj))
		for _, v := range []int64{x.Base, x.Last, x.Pos, x.Len} {
			binary.BigEndian.PutUint64(b[:], uint64(v))
			h.Write(b[:])
		}
	}
	return h.Sum64()
}

// checkChunks verifies that a maintenance entry's chunks are well formed:
// non-empty, in offset order, not overlapping, and inside the offsets of the
// run they replace.
func checkChunks(cs []chunk, first, last int64, segment string) error {
	if len(cs) > 0 && segment == "" {
		return fmt.Errorf("%w: chunks without a segment object", ErrCorruptMessage)
	}
	next := first
	for k, c := range cs {
		if c.Last < c.Base || c.Len < 1 || c.Pos < 0 {
			return fmt.Errorf("%w: chunk %d [%d, %d] at %d+%d is malformed", ErrCorruptMessage, k, c.Base, c.Last, c.Pos, c.Len)
		}
		if c.Base < next || c.Last > last {
			return fmt.Errorf("%w: chunk %d [%d, %d] is out of order or outside [%d, %d]", ErrCorruptMessage, k, c.Base, c.Last, first, last)
		}
		next = c.Last + 1
	}
	return nil
}

// clone returns a deep copy of the state, for encoding a checkpoint without
// holding the engine's lock.
func (s *state) clone() *state {
	c := *s
	c.Topics = make(map[TopicID]*topicState, len(s.Topics))
	for id, t := range s.Topics {
		tc := *t
		tc.Configs = copyMap(t.Configs)
		tc.Parts = make([]*partState, len(t.Parts))
		for i, p := range t.Parts {
			pc := *p
			pc.Extents = append([]extent(nil), p.Extents...)
			pc.Aborted = append([]abortedTxn(nil), p.Aborted...)
			if p.Open != nil {
				pc.Open = make(map[int64]int64, len(p.Open))
				for k, v := range p.Open {
					pc.Open[k] = v
				}
			}
			if p.Producers != nil {
				pc.Producers = make(map[int64]*prodState, len(p.Producers))
				for pid, ps := range p.Producers {
					psc := *ps
					psc.Recent = append([]seqRange(nil), ps.Recent...)
					pc.Producers[pid] = &psc
				}
			}
			tc.Parts[i] = &pc
		}
		c.Topics[id] = &tc
	}
	c.ByName = make(map[string]TopicID, len(s.ByName))
	for k, v := range s.ByName {
		c.ByName[k] = v
	}
	c.Producers = make(map[int64]int16, len(s.Producers))
	for k, v := range s.Producers {
		c.Producers[k] = v
	}
	c.ProducerSeen = make(map[int64]int64, len(s.ProducerSeen))
	for k, v := range s.ProducerSeen {
		c.ProducerSeen[k] = v
	}
	c.ObjRefs = make(map[string]int32, len(s.ObjRefs))
	for k, v := range s.ObjRefs {
		c.ObjRefs[k] = v
	}
	c.Garbage = append([]garbageObj(nil), s.Garbage...)
	c.Txns = cloneTxns(s.Txns)
	c.TxnByPID = make(map[int64]string, len(s.TxnByPID))
	for k, v := range s.TxnByPID {
		c.TxnByPID[k] = v
	}
	c.TxnOffsets = append([]committedOffsets(nil), s.TxnOffsets...)
	c.BrokerClocks = make(map[int32]*brokerClock, len(s.BrokerClocks))
	for id, bc := range s.BrokerClocks {
		cp := *bc
		c.BrokerClocks[id] = &cp
	}
	return &c
}

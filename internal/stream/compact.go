package stream

// Log compaction: Kafka's cleanup.policy=compact (DESIGN §4).
//
// Only archived data is compacted: the run of segment extents at the start
// of a partition's index. The unarchived intake tail plays the part of
// Kafka's active segment: it is read (a newer value there supersedes older
// ones) but never rewritten. A pass works in three steps, each usable on
// its own (tests drive them one by one):
//
//  1. compactPlans snapshots, under the engine lock, every partition of a
//     compacted topic that has archived data;
//  2. compactKeys reads the whole partition up to the high watermark and
//     builds the key → last offset index; compactGroup rewrites one group
//     of segment extents with only the records that survive;
//  3. commitCompaction writes the new segment object and proposes a
//     kindCompact entry naming exactly the extents it replaces. The
//     sequencer applies it only if that run is still current; a stale
//     plan is rejected and its segment becomes garbage (DESIGN §5a rule 8).
//
// Offsets never change: kept records keep their offsets and every rewritten
// batch keeps its base offset and last offset delta, so gaps appear where
// records were removed (DESIGN §8 invariant 2). The last batch of every
// rewritten group is kept, empty if need be (KAFKA-5443), so the offsets a
// group covered stay covered and a consumer that reaches a gap at the end
// of a chunk always finds a batch that moves it past the gap.
//
// Transactions: nothing at or past the last stable offset is indexed or
// removed (an open transaction may yet abort, and must not supersede
// committed values meanwhile); batches of aborted transactions are neither
// indexed nor kept; control batches are kept as they are.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"sort"
	"sync"
	"weak"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// compactKeyBytes caps the memory of one partition's key index. A key costs
// its length plus compactKeyOverhead bytes (string header, map slot, slice
// index and offset). Once the cap is reached the index stops taking new
// keys but keeps updating the ones it has; records whose key it does not
// hold are kept untouched, so a partial index only removes less, never
// wrongly (Kafka's dedupe buffer works the same way).
const (
	compactKeyBytes    = 256 << 20
	compactKeyOverhead = 56
)

// errPlanRejected marks a compaction plan the sequencer refused (it went
// stale); the cause is wrapped next to it.
var errPlanRejected = errors.New("stream: compaction plan rejected")

// compactPlan is a snapshot of one partition of a compacted topic.
type compactPlan struct {
	topic     TopicID
	name      string
	partition int32
	logStart  int64
	// run is the leading run of archived segment extents: what may be
	// rewritten. all is every extent of the partition (run + intake tail):
	// what the key index is built from.
	run []extent
	all []extent
	// minLagMs and deleteRetentionMs are min.compaction.lag.ms and
	// delete.retention.ms.
	minLagMs          int64
	deleteRetentionMs int64
	// lso is the last stable offset and aborted the aborted transaction
	// index, at the snapshot.
	lso     int64
	aborted []abortedTxn
	// fingerprint identifies the run, log start and configs, so a pass can
	// skip a partition it has already compacted.
	fingerprint uint64
}

// compactOutput is one rewritten group of segment extents, ready to commit.
type compactOutput struct {
	first, last int64 // the replaced run: first base offset, last offset
	count       int   // how many extents it replaces
	digest      uint64
	segment     []byte
	chunks      []chunk
	removed     int64 // records removed
	inBytes     int64
}

// Compact rewrites the archived segments of cleanup.policy=compact topics,
// keeping for each key only the record with the highest offset (DESIGN §4).
// Records younger than min.compaction.lag.ms are never removed; a
// tombstone that is the latest for its key is kept until it is older than
// delete.retention.ms. A plan that went stale while it was built is
// rejected by the sequencer and skipped; the next pass tries again.
//
// A partition whose archived run, log start and compaction configs have not
// changed since a pass found nothing to remove is skipped until a kept
// record ages into removability. Newer values in the unarchived tail are
// therefore acted on once the tail is archived (which changes the run),
// much as Kafka cleans only once a log has dirty segments. A partition that
// fails (e.g. a corrupt stored batch) does not stop the others; the errors
// are returned together.
func (e *Engine) Compact(ctx context.Context) error {
	now := e.retentionNow()
	memo := compactMemoFor(e)
	plans := e.compactPlans()
	memo.prune(plans)
	var errs []error
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if memo.fresh(p, now) {
			continue
		}
		if err := e.compactPartition(ctx, p, now, memo); err != nil {
			errs = append(errs, fmt.Errorf("compaction of %s/%d: %w", p.name, p.partition, err))
		}
	}
	return errors.Join(errs...)
}

// compactPlans snapshots every partition of a compacted topic that has
// archived data, in topic id order.
func (e *Engine) compactPlans() []compactPlan {
	e.mu.RLock()
	defer e.mu.RUnlock()
	ids := make([]TopicID, 0, len(e.st.Topics))
	for id := range e.st.Topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	var plans []compactPlan
	for _, id := range ids {
		t := e.st.Topics[id]
		tc := e.topicConfigLocked(t)
		if !tc.CleanupCompact {
			continue
		}
		for pi, p := range t.Parts {
			n := 0
			for n < len(p.Extents) && p.Extents[n].Segment {
				n++
			}
			if n == 0 {
				continue
			}
			all := append([]extent(nil), p.Extents...)
			plan := compactPlan{
				topic:             id,
				name:              t.Name,
				partition:         int32(pi),
				logStart:          p.LogStart,
				run:               all[:n:n],
				all:               all,
				minLagMs:          tc.MinCompactionLagMs,
				deleteRetentionMs: tc.DeleteRetentionMs,
				lso:               p.lastStable(),
				aborted:           append([]abortedTxn(nil), p.Aborted...),
			}
			plan.fingerprint = plan.fingerprintOf()
			plans = append(plans, plan)
		}
	}
	return plans
}

func (p *compactPlan) fingerprintOf() uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v int64) {
		binary.BigEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	put(p.logStart)
	put(p.minLagMs)
	put(p.deleteRetentionMs)
	put(p.lso)
	put(int64(len(p.aborted)))
	for _, x := range p.run {
		put(x.Base)
		put(x.Last)
		put(x.Pos)
		put(x.Len)
		h.Write([]byte(x.Obj))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// compactGroups splits a run into consecutive groups of at most
// maxSegmentBytes of input each (at least one extent), so one rewrite holds
// a bounded amount in memory and small archival segments are merged.
func compactGroups(run []extent) [][]extent {
	var groups [][]extent
	start := 0
	var size int64
	for i, x := range run {
		if i > start && size+x.Len > maxSegmentBytes {
			groups = append(groups, run[start:i])
			start, size = i, 0
		}
		size += x.Len
	}
	if start < len(run) {
		groups = append(groups, run[start:])
	}
	return groups
}

// compactPartition compacts one partition: it builds the key index, then
// rewrites and commits every group that loses records. A partition that
// needed no rewrite is remembered until the time a kept record becomes
// removable.
func (e *Engine) compactPartition(ctx context.Context, p compactPlan, now int64, memo *compactMemo) error {
	keys, err := e.compactKeys(ctx, p)
	if errors.Is(err, objstore.ErrNotFound) {
		// An extent moved (archived, compacted or trimmed) since the
		// snapshot and its object is gone: plan again next pass.
		e.log.Debug("stream: compaction snapshot went stale", "topic", p.name, "partition", p.partition)
		return nil
	}
	if err != nil {
		return err
	}
	c := newCleaner(keys, p, now)
	rewrote := false
	for _, g := range compactGroups(p.run) {
		out, err := e.compactGroup(ctx, g, c)
		if errors.Is(err, objstore.ErrNotFound) {
			e.log.Debug("stream: compaction snapshot went stale", "topic", p.name, "partition", p.partition)
			return nil
		}
		if err != nil {
			return err
		}
		if out.removed == 0 {
			continue
		}
		rewrote = true
		err = e.commitCompaction(ctx, p, out)
		if errors.Is(err, errPlanRejected) {
			e.log.Debug("stream: compaction plan rejected", "topic", p.name, "partition", p.partition, "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		e.log.Info("stream: compacted segment run", "topic", p.name, "partition", p.partition,
			"first", out.first, "last", out.last, "removed_records", out.removed,
			"bytes_before", out.inBytes, "bytes_after", len(out.segment))
	}
	if !rewrote {
		// Nothing to do until the run changes or a kept record ages into
		// removability. After a rewrite the run has changed anyway; the
		// next pass re-reads it once and then remembers it.
		memo.remember(p, c.recheckAt)
	}
	return nil
}

// compactRead returns an extent's bytes for compaction: from the cache if
// the whole object is there, else by a ranged read that is not cached (a
// compaction pass reads everything once and would only evict hot data).
// The result must not be modified. A missing object is objstore.ErrNotFound.
func (e *Engine) compactRead(ctx context.Context, x extent) ([]byte, error) {
	if whole, ok := e.cache.get(x.Obj); ok {
		if x.Pos+x.Len > int64(len(whole)) {
			return nil, fmt.Errorf("%w: extent beyond cached object %s", ErrStorage, x.Obj)
		}
		return whole[x.Pos : x.Pos+x.Len], nil
	}
	b, err := e.store.GetRange(ctx, x.Obj, x.Pos, x.Len)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: reading %s: %v", ErrStorage, x.Obj, err)
	}
	if int64(len(b)) != x.Len {
		return nil, fmt.Errorf("%w: short read of %s", ErrStorage, x.Obj)
	}
	return b, nil
}

// keyIndex maps each key of a partition to the offset of its last record.
type keyIndex struct {
	idx  map[string]int32
	offs []int64
	// bytes estimates the index's memory; once it would pass max, new keys
	// are not added (see compactKeyBytes).
	bytes, max int64
	full       bool
}

func newKeyIndex(max int64) *keyIndex {
	return &keyIndex{idx: map[string]int32{}, max: max}
}

// add records that key has a record at off. Offsets must arrive in
// increasing order.
func (k *keyIndex) add(key []byte, off int64) {
	if i, ok := k.idx[string(key)]; ok {
		k.offs[i] = off
		return
	}
	cost := int64(len(key)) + compactKeyOverhead
	if k.full || k.bytes+cost > k.max || len(k.offs) == math.MaxInt32 {
		k.full = true
		return
	}
	k.idx[string(key)] = int32(len(k.offs))
	k.offs = append(k.offs, off)
	k.bytes += cost
}

// last returns the offset of key's last record, if the index holds the key.
func (k *keyIndex) last(key []byte) (int64, bool) {
	i, ok := k.idx[string(key)]
	if !ok {
		return 0, false
	}
	return k.offs[i], true
}

// addBatch indexes the keys of one stored batch whose records start at
// base; records below from are skipped (they are below the log start).
func (k *keyIndex) addBatch(b []byte, base, from int64) error {
	h, data, err := batchRecordsData(b)
	if err != nil {
		return fmt.Errorf("%w: stored batch: %v", ErrStorage, err)
	}
	if h.control() {
		return nil
	}
	err = iterRecords(data, h.NumRecords, func(_ int32, r *rawRecord) error {
		if off := base + int64(r.OffsetDelta); off >= from && r.HasKey {
			k.add(r.Key, off)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: stored batch: %v", ErrStorage, err)
	}
	return nil
}

// compactKeys builds the key index of a whole partition: every extent of
// the snapshot, archived or not, up to the high watermark.
func (e *Engine) compactKeys(ctx context.Context, p compactPlan) (*keyIndex, error) {
	keys := newKeyIndex(compactKeyBytes)
	for _, x := range p.all {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := e.compactRead(ctx, x)
		if err != nil {
			return nil, err
		}
		var addErr error
		err = forEachBatch(data, func(b []byte, h batchHeader) bool {
			base := h.BaseOffset
			if !x.Segment {
				base = x.Base // intake batches carry the client's base offset
			}
			if p.unstableOrAborted(h, base) {
				return true
			}
			addErr = keys.addBatch(b, base, p.logStart)
			return addErr == nil
		})
		if err == nil {
			err = addErr
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", x.Obj, err)
		}
	}
	if keys.full {
		e.log.Warn("stream: compaction key index is full; compacting only part of the partition",
			"topic", p.name, "partition", p.partition, "keys", len(keys.offs))
	}
	return keys, nil
}

// unstableOrAborted reports whether a batch starting at base is at or past
// the last stable offset, or belongs to an aborted transaction.
func (p *compactPlan) unstableOrAborted(h batchHeader, base int64) bool {
	if base >= p.lso {
		return true
	}
	if !h.transactional() || h.control() {
		return false
	}
	return isAborted(p.aborted, h.ProducerID, base)
}

// cleaner decides, record by record, what survives compaction.
type cleaner struct {
	plan              *compactPlan
	keys              *keyIndex
	now               int64
	logStart          int64
	minLagMs          int64
	deleteRetentionMs int64
	// recheckAt is the earliest log time at which a record kept this pass
	// becomes removable (math.MaxInt64 if none).
	recheckAt int64
	buf       []byte
}

func newCleaner(keys *keyIndex, p compactPlan, now int64) *cleaner {
	return &cleaner{plan: &p, keys: keys, now: now, logStart: p.logStart,
		minLagMs: p.minLagMs, deleteRetentionMs: p.deleteRetentionMs, recheckAt: math.MaxInt64}
}

// satAdd adds two non-negative-ish millisecond values without overflowing.
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// keep reports whether the record at off with timestamp ts survives.
func (c *cleaner) keep(off, ts int64, r *rawRecord) bool {
	if off < c.logStart {
		return false
	}
	if off >= c.plan.lso {
		return true // an open transaction may still abort
	}
	var superseded bool
	if r.HasKey {
		last, ok := c.keys.last(r.Key)
		if !ok {
			return true // not indexed (index full): nothing is known, keep it
		}
		superseded = last > off
		if !superseded && r.HasValue {
			return true // the latest value of its key
		}
	} else {
		// A compacted topic refuses keyless records; one written before
		// the topic was compacted is removed, as Kafka's cleaner does.
		superseded = true
	}
	// Superseded, keyless, or the latest tombstone of its key.
	removableAt := satAdd(ts, c.minLagMs)
	if !superseded {
		removableAt = max(removableAt, satAdd(satAdd(ts, c.deleteRetentionMs), 1))
	}
	if c.now >= removableAt {
		return false
	}
	c.recheckAt = min(c.recheckAt, removableAt)
	return true
}

// cleanBatch appends to sb what survives of one stored segment batch. A
// batch that loses every record is dropped unless retain is set, in which
// case it is kept as an empty batch so its offsets stay covered. Control
// batches are kept untouched. It returns how many records were removed.
func (c *cleaner) cleanBatch(sb *segBuilder, b []byte, h batchHeader, retain bool) (int64, error) {
	last := h.BaseOffset + int64(h.LastOffsetDelta)
	if h.control() {
		sb.add(b, h.BaseOffset, last, h.MaxTimestamp)
		return 0, nil
	}
	if h.BaseOffset < c.plan.lso && c.plan.unstableOrAborted(h, h.BaseOffset) {
		// An aborted transaction's batch: no reader may see it.
		if !retain {
			return int64(h.NumRecords), nil
		}
		nh := h
		nh.NumRecords = 0
		out := buildBatch(nh, h.Attributes&^attrCodecMask, nil)
		setLeaderEpoch(out, 0)
		sb.add(out, h.BaseOffset, last, -1)
		return int64(h.NumRecords), nil
	}
	_, data, err := batchRecordsData(b)
	if err != nil {
		return 0, fmt.Errorf("%w: stored batch at offset %d: %v", ErrStorage, h.BaseOffset, err)
	}
	c.buf = c.buf[:0]
	var kept int32
	var removed int64
	maxTS := int64(-1)
	err = iterRecords(data, h.NumRecords, func(_ int32, r *rawRecord) error {
		off := h.BaseOffset + int64(r.OffsetDelta)
		ts := h.FirstTimestamp + r.TimestampDelta
		if h.logAppendTime() {
			ts = h.MaxTimestamp
		}
		if !c.keep(off, ts, r) {
			removed++
			return nil
		}
		c.buf = append(c.buf, r.Raw...)
		kept++
		maxTS = max(maxTS, ts)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%w: stored batch at offset %d: %v", ErrStorage, h.BaseOffset, err)
	}
	switch {
	case removed == 0:
		sb.add(b, h.BaseOffset, last, h.MaxTimestamp)
		return 0, nil
	case kept == 0 && !retain:
		return removed, nil
	}
	// Rebuild the batch around the kept records. Base offset, last offset
	// delta, first timestamp, producer id/epoch/sequence and attributes
	// stay: the kept records' raw bytes hold deltas relative to them.
	nh := h
	nh.NumRecords = kept
	attrs := h.Attributes
	var payload []byte
	chunkTS := int64(-1) // an empty batch adds no time to the chunk's index
	if kept == 0 {
		attrs &^= attrCodecMask // an empty batch has nothing to compress
	} else {
		if !h.logAppendTime() {
			nh.MaxTimestamp = maxTS
		}
		if payload, err = compress(h.codec(), c.buf); err != nil {
			return 0, fmt.Errorf("%w: recompressing batch at offset %d: %v", ErrStorage, h.BaseOffset, err)
		}
		chunkTS = nh.MaxTimestamp
	}
	out := buildBatch(nh, attrs, payload)
	setLeaderEpoch(out, 0)
	sb.add(out, nh.BaseOffset, last, chunkTS)
	return removed, nil
}

// segBuilder lays batches end to end into a segment object and cuts it
// into chunks of about chunkBytes, each a run of whole batches, the way
// archiveOne does.
type segBuilder struct {
	chunkBytes int64
	data       []byte
	chunks     []chunk
	cur        chunk
	open       bool
}

func (s *segBuilder) add(b []byte, base, last, maxTS int64) {
	if !s.open {
		s.cur = chunk{Base: base, Pos: int64(len(s.data)), MaxTS: -1}
		s.open = true
	}
	s.data = append(s.data, b...)
	s.cur.Last = last
	s.cur.Len = int64(len(s.data)) - s.cur.Pos
	s.cur.MaxTS = max(s.cur.MaxTS, maxTS)
	if s.cur.Len >= s.chunkBytes {
		s.chunks = append(s.chunks, s.cur)
		s.open = false
	}
}

// finish closes the last chunk and makes it end at last, the last offset
// of the replaced run.
func (s *segBuilder) finish(last int64) {
	if s.open {
		s.chunks = append(s.chunks, s.cur)
		s.open = false
	}
	if n := len(s.chunks); n > 0 && s.chunks[n-1].Last < last {
		s.chunks[n-1].Last = last
	}
}

// compactGroup rewrites one group of segment extents through c. The last
// batch of the group is always kept (empty if need be) so the new chunks
// end exactly where the replaced ones did.
func (e *Engine) compactGroup(ctx context.Context, group []extent, c *cleaner) (*compactOutput, error) {
	out := &compactOutput{first: group[0].Base, last: group[len(group)-1].Last, count: len(group), digest: extentsDigest(group)}
	sb := &segBuilder{chunkBytes: e.opts.ChunkBytes}
	for i, x := range group {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := e.compactRead(ctx, x)
		if err != nil {
			return nil, err
		}
		out.inBytes += int64(len(data))
		n, err := c.cleanExtent(sb, data, i == len(group)-1)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", x.Obj, err)
		}
		out.removed += n
	}
	sb.finish(out.last)
	out.segment, out.chunks = sb.data, sb.chunks
	return out, nil
}

// cleanExtent cleans the batches of one segment extent into sb; with
// retainLast the extent's last batch is kept even if it loses every record.
func (c *cleaner) cleanExtent(sb *segBuilder, data []byte, retainLast bool) (int64, error) {
	var removed int64
	var cleanErr error
	rest := len(data)
	err := forEachBatch(data, func(b []byte, h batchHeader) bool {
		lastOfExtent := len(b) == rest
		rest -= len(b)
		var n int64
		n, cleanErr = c.cleanBatch(sb, b, h, retainLast && lastOfExtent)
		removed += n
		return cleanErr == nil
	})
	if err == nil {
		err = cleanErr
	}
	return removed, err
}

// commitCompaction writes a rewritten group's segment object and proposes
// the kindCompact entry that swaps it in. A plan the sequencer rejects
// returns an error wrapping errPlanRejected and the sequencer's reason
// (ErrStaleEntry when the run changed); its segment is garbage.
func (e *Engine) commitCompaction(ctx context.Context, p compactPlan, out *compactOutput) error {
	base := out.first
	if len(out.chunks) > 0 {
		base = out.chunks[0].Base
	}
	name, made := e.segmentName(p.topic, p.partition, base)
	// Like archival's segments, written past the page cache: it rewrites
	// history that was already on the device only (archival wrote it
	// that way), read by consumers reading from far behind.
	if err := e.store.Put(objstore.WithUncachedWrite(ctx), name, out.segment); err != nil {
		return fmt.Errorf("writing segment: %w", err)
	}
	res, err := e.propose(ctx, &entry{
		Kind: kindCompact, Topic: p.topic, Partition: p.partition,
		ReplacedFirst: out.first, ReplacedLast: out.last, ReplacedCount: out.count,
		ReplacedDigest: out.digest, Segment: name, Chunks: out.chunks, SegmentTime: made,
	})
	if err != nil {
		return err
	}
	if res.Err != nil {
		return fmt.Errorf("%w: segment %s: %w", errPlanRejected, name, res.Err)
	}
	return nil
}

// compactMemo remembers, per partition, the run a pass found nothing to
// remove from and until when that holds, so an idle compacted topic is not
// re-read every pass.
//
// The Engine type belongs to engine.go, so the memo lives beside it: a
// registry keyed by a weak pointer to the Engine, with a cleanup that drops
// the entry when the Engine is collected. The memo holds no reference to
// its Engine, so the registry never keeps one alive. Losing the memo only
// costs one extra read of each partition.
type compactMemo struct {
	mu    sync.Mutex
	parts map[compactPart]compactSeen
}

type compactPart struct {
	topic     TopicID
	partition int32
}

type compactSeen struct {
	fingerprint uint64
	recheckAt   int64
}

var compactMemos sync.Map // weak.Pointer[Engine] → *compactMemo

func compactMemoFor(e *Engine) *compactMemo {
	wp := weak.Make(e)
	if m, ok := compactMemos.Load(wp); ok {
		return m.(*compactMemo)
	}
	m, loaded := compactMemos.LoadOrStore(wp, &compactMemo{parts: map[compactPart]compactSeen{}})
	if !loaded {
		runtime.AddCleanup(e, func(k weak.Pointer[Engine]) { compactMemos.Delete(k) }, wp)
	}
	return m.(*compactMemo)
}

// fresh reports whether p's run was already found clean and nothing in it
// has become removable since.
func (m *compactMemo) fresh(p compactPlan, now int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.parts[compactPart{p.topic, p.partition}]
	return ok && s.fingerprint == p.fingerprint && now < s.recheckAt
}

// prune forgets partitions that are no longer compacted (topic deleted or
// its policy changed).
func (m *compactMemo) prune(plans []compactPlan) {
	live := make(map[compactPart]bool, len(plans))
	for _, p := range plans {
		live[compactPart{p.topic, p.partition}] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.parts {
		if !live[k] {
			delete(m.parts, k)
		}
	}
}

func (m *compactMemo) remember(p compactPlan, recheckAt int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts[compactPart{p.topic, p.partition}] = compactSeen{fingerprint: p.fingerprint, recheckAt: recheckAt}
}

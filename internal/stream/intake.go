package stream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/bufs"
	"github.com/runnel-dev/runnel/internal/config"
)

// ProduceBatch is one partition's batch from a Produce request.
type ProduceBatch struct {
	Topic     string
	Partition int32
	Records   []byte
	// ImplicitTxnAdd is set for Produce v12+ (Transactions V2): a
	// transactional batch adds its partition to the producer's
	// transaction instead of needing AddPartitionsToTxn first.
	ImplicitTxnAdd bool
}

// ProduceResult is the outcome for one ProduceBatch.
type ProduceResult struct {
	BaseOffset     int64
	LogAppendTime  int64
	LogStartOffset int64
	Err            error
	RecordErrors   []RecordError
}

// maxEntryBatches caps the batches of one intake entry so an entry stays
// well under etcd's request limit (DESIGN §5a rule 10).
const maxEntryBatches = 4096

// flushBuf is one intake object being filled, then uploaded and logged.
type flushBuf struct {
	key     string
	object  string
	objTime int64
	// parts are the batches' bytes, copied under intake.mu into slabs (or,
	// for a batch larger than a slab, into an array of its own); size is
	// their total. The upload joins them into data at its exact size, so
	// the cache keeps no slack, and gives the slabs back.
	//
	// The copy is what lets a Produce request's frame be reused once the
	// request is answered (protocol): nothing here refers to a request's
	// bytes after Enqueue returns.
	parts   [][]byte
	slabs   [][]byte
	size    int
	data    []byte
	descs   []batchDesc
	slots   []slot // filled under intake.mu until sealed, read-only after
	created time.Time
	// uploaded is closed when the upload finished; upErr is its error.
	uploaded chan struct{}
	upErr    error
}

// ticket collects the results of one Produce call's batches, which may
// span several flushes.
type ticket struct {
	mu      sync.Mutex
	results []ProduceResult
	pending int
	done    chan struct{}
}

func (t *ticket) set(i int, r ProduceResult) {
	t.mu.Lock()
	t.results[i] = r
	t.pending--
	if t.pending == 0 {
		close(t.done)
	}
	t.mu.Unlock()
}

// slot says where in a flush a ticket's batch went.
type slot struct {
	t     *ticket
	index int // index in the ticket's results
	desc  int // index in the flush's descs
}

// intake is the broker's single intake buffer (DESIGN §2): all partitions
// together, flushed by size or linger into one object and one log entry.
type intake struct {
	e *Engine

	mu      sync.Mutex
	cur     *flushBuf
	timer   *time.Timer
	closed  bool
	busy    int // uploads in flight
	sealed  chan *flushBuf
	uploads chan struct{} // semaphore bounding uploads in flight
	wg      sync.WaitGroup
}

func newIntake(e *Engine) *intake {
	in := &intake{
		e:       e,
		sealed:  make(chan *flushBuf, 64),
		uploads: make(chan struct{}, e.opts.MaxUploads),
	}
	in.wg.Add(1)
	go in.putLoop()
	return in
}

// Produce validates the batches, queues them and waits until the sequencer
// has ordered them (or ctx ends).
func (e *Engine) Produce(ctx context.Context, batches []ProduceBatch) []ProduceResult {
	return e.Enqueue(ctx, batches).Wait(ctx)
}

// Pending is a queued produce waiting for its results.
type Pending struct {
	t       *ticket
	waiting []int // indexes of batches that went to the intake buffer
}

// queued is one validated batch on its way into the intake buffer.
type queued struct {
	index     int // in the Produce call (and its results)
	v         validated
	topic     TopicID
	partition int32
	// implicitAdd: see ProduceBatch.ImplicitTxnAdd.
	implicitAdd bool
	// companion marks a dead-letter batch that goes with the batch queued
	// just before it: same flush, sequenced only if that batch is (dlq.go).
	// It answers no request.
	companion bool
}

// Enqueue validates the batches and adds the valid ones to the intake
// buffer before it returns, so batches of successive calls are sequenced in
// call order. ctx is the request's: a batch not yet queued when it ends
// (its data contract check still waiting on the registry, say) is answered
// ErrTimeout and never written.
func (e *Engine) Enqueue(ctx context.Context, batches []ProduceBatch) *Pending {
	now := e.opts.Now().UnixMilli()
	t := &ticket{results: make([]ProduceResult, len(batches)), done: make(chan struct{})}
	pd := &Pending{t: t}
	// Resolve topics under the lock, validate (decompress, walk records)
	// outside it: the sequencer must not wait behind validation. A topic
	// deleted meanwhile is caught by the sequencer.
	type target struct {
		id  TopicID
		tc  config.Topic
		err error
	}
	targets := make([]target, len(batches))
	e.mu.RLock()
	var backlog error
	if n := e.unarchivedBytesLocked(); n >= e.opts.MaxUnarchivedBytes {
		backlog = fmt.Errorf("%w: %d bytes are not yet archived (the cap is %d); archival is behind",
			ErrBackpressure, n, e.opts.MaxUnarchivedBytes)
		e.m.limitHits.WithLabelValues("unarchived_bytes").Inc()
		e.limitWarn("stream: archival is behind; refusing produce", "limit", "unarchived_bytes", "err", backlog)
	}
	for i, b := range batches {
		id, ok := e.st.ByName[b.Topic]
		switch {
		case !ok:
			targets[i].err = fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, b.Topic)
		case b.Partition < 0 || int(b.Partition) >= len(e.st.Topics[id].Parts):
			targets[i].err = fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, b.Topic, b.Partition)
		case backlog != nil:
			targets[i].err = backlog
		case e.st.Topics[id].Parts[b.Partition].unarchivedExtents() >= e.opts.MaxUnarchivedExtents:
			targets[i].err = fmt.Errorf("%w: %s-%d holds %d extents not yet archived (the cap); archival is behind",
				ErrBackpressure, b.Topic, b.Partition, e.opts.MaxUnarchivedExtents)
			e.limitHit("unarchived_extents", targets[i].err)
		default:
			targets[i] = target{id: id, tc: e.topicConfigLocked(e.st.Topics[id])}
		}
	}
	e.mu.RUnlock()
	var acc []queued
	for i, b := range batches {
		r := &t.results[i]
		*r = ProduceResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Err: targets[i].err}
		if r.Err != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			r.Err = fmt.Errorf("%w: %v", ErrTimeout, err)
			continue
		}
		tc := targets[i].tc
		v, recErrs, err := validateBatch(b.Records, tc, now)
		var dlq []queued
		if err == nil && (tc.KeySchemaValidation || tc.ValueSchemaValidation) {
			v, dlq, recErrs, err = e.checkContract(ctx, b.Topic, b.Partition, tc, v)
		}
		r.RecordErrors = recErrs // with no error: the records routed to dead-letter topics
		if err != nil {
			r.Err = err
			continue
		}
		if tc.TimestampType == "LogAppendTime" {
			r.LogAppendTime = now
		}
		acc = append(acc, queued{index: i, v: v, topic: targets[i].id, partition: b.Partition, implicitAdd: b.ImplicitTxnAdd})
		acc = append(acc, dlq...)
		pd.waiting = append(pd.waiting, i)
	}
	if len(acc) == 0 {
		close(t.done)
		return pd
	}
	t.pending = len(pd.waiting)
	if err := e.intake.add(t, acc); err != nil {
		for _, q := range acc {
			if !q.companion {
				t.results[q.index].Err = err
			}
		}
		pd.waiting = nil
		close(t.done)
	}
	return pd
}

// Wait returns the results once every batch is sequenced. If ctx ends
// first, batches still in flight get ErrTimeout (they may yet be sequenced;
// a retrying idempotent producer is deduplicated).
func (pd *Pending) Wait(ctx context.Context) []ProduceResult {
	t := pd.t
	select {
	case <-t.done:
		return t.results
	case <-ctx.Done():
	}
	t.mu.Lock()
	out := append([]ProduceResult(nil), t.results...)
	t.mu.Unlock()
	for _, i := range pd.waiting {
		if out[i].Err == nil && out[i].BaseOffset < 0 {
			out[i].Err = fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
		}
	}
	return out
}

// add appends validated batches to the current flush buffer.
func (in *intake) add(t *ticket, batches []queued) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return ErrNotReady
	}
	mainDesc := -1 // the desc of the last answering batch, for its companions
	for k, q := range batches {
		if in.cur == nil {
			in.cur = in.newBuf()
			in.timer = time.AfterFunc(in.e.opts.FlushLinger, in.lingerExpired(in.cur))
		}
		b := in.cur
		h := q.v.hdr
		// The descriptor-only bits never come from a client's batch.
		attrs := h.Attributes &^ (attrImplicitAdd | attrCompanion)
		if q.implicitAdd && h.transactional() {
			attrs |= attrImplicitAdd
		}
		seq := h.BaseSequence
		if q.companion {
			attrs |= attrCompanion
			seq = int32(mainDesc)
		}
		b.descs = append(b.descs, batchDesc{
			Topic: q.topic, Partition: q.partition, Pos: uint32(b.size), Len: uint32(len(q.v.bytes)),
			Count: h.LastOffsetDelta + 1, MaxTS: h.MaxTimestamp, ProducerID: h.ProducerID,
			Epoch: h.ProducerEpoch, BaseSeq: seq, Attrs: attrs,
		})
		b.parts = append(b.parts, b.hold(q.v.bytes))
		b.size += len(q.v.bytes)
		if !q.companion {
			mainDesc = len(b.descs) - 1
			b.slots = append(b.slots, slot{t: t, index: q.index, desc: mainDesc})
		}
		// A batch and its companions share one flush: never seal between.
		nextIsCompanion := k+1 < len(batches) && batches[k+1].companion
		if !nextIsCompanion && (b.size >= in.e.opts.FlushBytes || len(b.descs) >= maxEntryBatches) {
			in.sealLocked()
		}
	}
	if in.cur != nil && in.busy == 0 {
		// The pipeline is idle: flush at once rather than linger. Under
		// load, batches gather while earlier uploads run, and linger only
		// bounds the wait.
		in.sealLocked()
	}
	return nil
}

// slabSize is the size of the slabs batches are copied into: a batch
// larger than half of one gets an array of its own.
const slabSize = 1 << 20

// slabs keeps the slabs of uploaded flushes for the next ones (a few
// flushes' worth: more are left to the collector).
var slabs = bufs.New(slabSize, slabSize, 64*slabSize)

// PooledBytes is the most memory the stream keeps by design beside the
// read cache: the intake's free slabs and one archival pass's whole intake
// objects (Options.ArchiveReadBytes at its default). The runtime's soft
// memory limit must leave room for it.
func PooledBytes() int64 { return int64(slabs.Limit()) + defaultArchiveReadBytes }

// hold copies batch into b's slabs and returns the copy.
func (b *flushBuf) hold(batch []byte) []byte {
	if len(batch) > slabSize/2 {
		return append([]byte(nil), batch...)
	}
	n := len(b.slabs)
	if n == 0 || cap(b.slabs[n-1])-len(b.slabs[n-1]) < len(batch) {
		b.slabs = append(b.slabs, slabs.Get(slabSize))
		n++
	}
	sl := b.slabs[n-1]
	start := len(sl)
	sl = append(sl, batch...)
	b.slabs[n-1] = sl
	return sl[start:len(sl):len(sl)]
}

func (in *intake) newBuf() *flushBuf {
	key, id := in.e.newKey()
	return &flushBuf{
		key:      key,
		object:   fmt.Sprintf("intake/%08x/%s", uint32(in.e.opts.BrokerID), id.String()),
		objTime:  int64(id.Time()),
		uploaded: make(chan struct{}),
		created:  time.Now(),
	}
}

func (in *intake) lingerExpired(b *flushBuf) func() {
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.cur == b {
			in.sealLocked()
		}
	}
}

// sealLocked closes the current buffer, starts its upload and queues it for
// its log put. Uploads may overlap; puts happen one at a time, in order.
func (in *intake) sealLocked() {
	b := in.cur
	if b == nil {
		return
	}
	in.cur = nil
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	in.uploads <- struct{}{}
	in.busy++
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		start := time.Now()
		b.data = make([]byte, 0, b.size)
		for _, p := range b.parts {
			b.data = append(b.data, p...)
		}
		b.parts = nil
		for _, sl := range b.slabs {
			slabs.Put(sl)
		}
		b.slabs = nil
		ctx, cancel := context.WithTimeout(in.e.ctx, 30*time.Second)
		b.upErr = in.e.store.Put(ctx, b.object, b.data)
		cancel()
		in.e.m.flushSeconds.Observe(time.Since(start).Seconds())
		in.e.m.flushBytes.Add(float64(len(b.data)))
		in.e.intakeBytes.Add(int64(len(b.data)))
		if b.upErr == nil {
			in.e.cache.put(b.object, b.data)
		}
		close(b.uploaded)
		// Release the upload slot before taking in.mu: add holds in.mu
		// while it waits for a slot.
		<-in.uploads
		in.mu.Lock()
		in.busy--
		if in.busy == 0 && in.cur != nil && !in.closed {
			in.sealLocked()
		}
		in.mu.Unlock()
	}()
	in.sealed <- b
}

// maxGroupCommit and maxGroupCommitBytes bound one etcd transaction of
// intake entries, well under etcd's default 1.5 MiB request limit.
const (
	maxGroupCommit      = 32
	maxGroupCommitBytes = 512 << 10
)

// putLoop appends one intake entry per uploaded object, in flush order,
// with at most one put in flight (DESIGN §5a rule 2). Entries whose objects
// finished uploading while the previous put was in flight are committed
// together in one transaction (group commit): same revision, ops in flush
// order, which is also their key order.
func (in *intake) putLoop() {
	defer in.wg.Done()
	var next *flushBuf
	for {
		b := next
		next = nil
		if b == nil {
			var ok bool
			if b, ok = <-in.sealed; !ok {
				return
			}
		}
		<-b.uploaded
		group := []*flushBuf{b}
		size := len(b.descs) * batchDescLen
	gather:
		for len(group) < maxGroupCommit && size < maxGroupCommitBytes {
			select {
			case nb, ok := <-in.sealed:
				if !ok {
					break gather
				}
				select {
				case <-nb.uploaded:
					group = append(group, nb)
					size += len(nb.descs) * batchDescLen
				default:
					next = nb // still uploading: it opens the next group
					break gather
				}
			default:
				break gather
			}
		}
		in.commit(group)
	}
}

// commit puts the entries of uploaded flushes in one transaction.
func (in *intake) commit(group []*flushBuf) {
	var keys []string
	var vals [][]byte
	var ok []*flushBuf
	now := in.e.opts.Now().UnixMilli()
	for _, b := range group {
		if b.upErr != nil {
			in.e.log.Error("stream: intake upload failed", "object", b.object, "err", b.upErr)
			fail(b.slots, fmt.Errorf("%w: writing intake object: %v", ErrStorage, b.upErr))
			continue
		}
		ent := &entry{Kind: kindIntake, Broker: in.e.opts.BrokerID, Time: now, Object: b.object, ObjectTime: b.objTime, Batches: b.descs}
		slots, created := b.slots, b.created
		in.e.addWaiter(b.key, func(r applyResult) {
			in.e.m.ackSeconds.Observe(time.Since(created).Seconds())
			if len(r.Batches) == 0 {
				// The whole entry failed (undecodable, or skipped by a
				// reload): no batch has a verdict of its own.
				fail(slots, r.Err)
				return
			}
			for _, s := range slots {
				br := r.Batches[s.desc]
				pr := s.t.results[s.index]
				pr.Err = br.Err
				if br.Err != nil {
					pr.RecordErrors = nil // nothing of the batch, its dead letters included, was written
				}
				if br.Err == nil {
					pr.BaseOffset = br.Base
					pr.LogStartOffset = br.LogStart
				}
				s.t.set(s.index, pr)
			}
		})
		keys, vals = append(keys, b.key), append(vals, ent.encode())
		ok = append(ok, b)
	}
	if len(ok) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(in.e.ctx, 30*time.Second)
	err := in.e.putEntries(ctx, keys, vals)
	cancel()
	in.e.m.putSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		in.e.log.Error("stream: intake entry put failed", "entries", len(ok), "err", err)
		for _, b := range ok {
			in.e.removeWaiter(b.key)
			fail(b.slots, err)
		}
	}
}

func fail(slots []slot, err error) {
	for _, s := range slots {
		pr := s.t.results[s.index]
		pr.Err = err
		s.t.set(s.index, pr)
	}
}

// close seals what is buffered and waits until it is logged.
func (in *intake) close(ctx context.Context) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.sealLocked()
	in.closed = true
	close(in.sealed)
	in.mu.Unlock()
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		in.e.log.Warn("stream: intake did not drain before shutdown", "err", ctx.Err())
	}
}

// ContractRecord is one produced record as a ContractChecker sees it.
type ContractRecord struct {
	Key, Value []byte
	// NullKey and NullValue mark a null key and a null value (tombstone).
	NullKey, NullValue bool
}

// ContractChecker enforces a topic's data contract (schema registry
// validation) on produced records. It is called, outside the engine's
// locks, only for topics with confluent.key/value.schema.validation on,
// and returns one verdict per failing record. ctx is the produce request's:
// its lookups end with it (the verdicts of a check cut short are ignored,
// the batch is answered ErrTimeout).
type ContractChecker interface {
	CheckRecords(ctx context.Context, topic string, tc config.Topic, records []ContractRecord) []ContractVerdict
}

// ContractVerdict is why one record failed its topic's data contract, and
// what happens to it: with DLQTopic empty the record fails its batch
// (INVALID_RECORD, KIP-467 record error); otherwise it goes, unchanged, to
// that dead-letter topic (dlq.go).
type ContractVerdict struct {
	Index   int32
	Message string
	// Rule and Subject name the failing rule (empty for a schema failure)
	// and the subject checked, for the dead-letter headers.
	Rule, Subject string
	DLQTopic      string
}

// checkContract runs the contract checker over a validated batch. Records
// that fail with ERROR fail the batch; if all failing records are routed to
// dead-letter topics, it returns the batch without them and the dead-letter
// companions to queue after it (dlq.go). Without a checker the check fails
// closed: the topic asks for validation nobody can perform.
func (e *Engine) checkContract(ctx context.Context, topic string, partition int32, tc config.Topic, v validated) (validated, []queued, []RecordError, error) {
	if e.opts.Contracts == nil {
		return v, nil, nil, fmt.Errorf("%w: topic %q requires schema validation but this broker has no schema registry", ErrInvalidRecord, topic)
	}
	recs := make([]ContractRecord, 0, v.hdr.NumRecords)
	err := iterRecords(v.records, v.hdr.NumRecords, func(_ int32, r *rawRecord) error {
		recs = append(recs, ContractRecord{Key: r.Key, Value: r.Value, NullKey: !r.HasKey, NullValue: !r.HasValue})
		return nil
	})
	if err != nil {
		return v, nil, nil, err
	}
	verdicts := e.opts.Contracts.CheckRecords(ctx, topic, tc, recs)
	if err := ctx.Err(); err != nil {
		// A check cut short says nothing about the records.
		return v, nil, nil, fmt.Errorf("%w: data contract check of %s-%d: %v", ErrTimeout, topic, partition, err)
	}
	if len(verdicts) == 0 {
		return v, nil, nil, nil
	}
	reject := false
	for _, vd := range verdicts {
		reject = reject || vd.DLQTopic == ""
	}
	if reject {
		errs := make([]RecordError, 0, len(verdicts))
		for _, vd := range verdicts {
			if vd.DLQTopic == "" {
				errs = append(errs, RecordError{Index: vd.Index, Message: vd.Message})
			}
		}
		return v, nil, errs, fmt.Errorf("%w: record %d: %s", ErrInvalidRecord, errs[0].Index, errs[0].Message)
	}
	return e.routeToDLQ(topic, partition, v, verdicts)
}

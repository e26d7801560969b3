package stream

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"google.golang.org/grpc/metadata"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/objstore"
)

// defaultArchiveReadBytes is Options.ArchiveReadBytes when unset.
const defaultArchiveReadBytes = 64 << 20

// Options configure an Engine.
type Options struct {
	BrokerID int32
	Client   *clientv3.Client
	Store    objstore.Store
	Logger   *slog.Logger
	// Contracts enforces data contracts on produce for topics that ask for
	// schema validation; nil refuses their records.
	Contracts ContractChecker
	// Prefix is the etcd key prefix of the whole cluster (default "/runnel").
	Prefix string

	FlushBytes  int
	FlushLinger time.Duration
	// MaxUploads bounds intake uploads in flight (puts stay one at a time).
	MaxUploads int
	CacheBytes int64

	TopicDefaults     map[string]string
	DefaultPartitions int32

	CheckpointInterval time.Duration
	CheckpointEntries  int64
	ArchiveInterval    time.Duration
	ArchiveMinBytes    int64
	ArchiveMaxAge      time.Duration
	// ArchiveReadBytes bounds the intake objects one archival pass holds
	// after reading them whole from the store (passReads).
	ArchiveReadBytes int64
	// Grace is how long an unreferenced object stays readable before it is
	// deleted from the store.
	Grace time.Duration
	// ChunkBytes is the size of the chunks a segment is indexed by.
	ChunkBytes int64
	// DisableMaintenance keeps this broker out of the maintainer election
	// (tests use it to drive maintenance by hand).
	DisableMaintenance bool
	// CompactEtcd compacts etcd revisions up to each new checkpoint.
	CompactEtcd bool
	// MaxUnarchivedExtents caps a partition's extents not yet archived
	// into segments (DESIGN §5a rule 10): produce to a partition at the cap
	// is refused with a retriable error until archival catches up.
	MaxUnarchivedExtents int
	// MaxUnarchivedBytes caps the bytes of all partitions' extents not yet
	// archived: past it, produce to every partition is refused with a
	// retriable error until archival catches up. Every byte is written
	// twice (intake object, then segment), so a producer can outrun
	// archival, and without this the backlog grows until the store's disk
	// is full. Default 16 GiB.
	MaxUnarchivedBytes int64

	Registerer prometheus.Registerer
	// Now is the broker's wall clock; tests may replace it.
	Now func() time.Time

	hooks *testHooks
	// passHook, if set, is called as each maintenance pass starts, with
	// the pass's context (tests use it to act inside a maintainer's term).
	passHook func(ctx context.Context, pass string)
	// ckptHook, if set, is called after a checkpoint object is written and
	// before the pointer is moved to it.
	ckptHook func(object string)
}

// testHooks let tests stop the log watch at exact points; nil in
// production.
type testHooks struct {
	// beforeWatch runs before each (re)watch of the log from rev+1.
	beforeWatch func(rev int64)
	// afterResponse runs after each watch response is applied; returning
	// true cancels the watch, as a dropped connection would.
	afterResponse func(resp *clientv3.WatchResponse) bool
}

// waiter is a proposer waiting for its entry to be applied.
type waiter struct {
	fn func(applyResult)
	// rev is the revision the entry was put at, once the put returned
	// (guarded by Engine.waitMu); 0 while the put is in flight.
	rev int64
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "/runnel"
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = 4 << 20
	}
	if o.FlushLinger <= 0 {
		o.FlushLinger = 2 * time.Millisecond
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 4
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 256 << 20
	}
	if o.DefaultPartitions <= 0 {
		o.DefaultPartitions = 1
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 30 * time.Second
	}
	if o.CheckpointEntries <= 0 {
		o.CheckpointEntries = 10000
	}
	if o.ArchiveInterval <= 0 {
		o.ArchiveInterval = 10 * time.Second
	}
	if o.ArchiveMinBytes <= 0 {
		o.ArchiveMinBytes = 8 << 20
	}
	if o.ArchiveReadBytes <= 0 {
		o.ArchiveReadBytes = defaultArchiveReadBytes
	}
	if o.ArchiveMaxAge <= 0 {
		o.ArchiveMaxAge = time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Minute
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 1 << 20
	}
	if o.MaxUnarchivedExtents <= 0 {
		o.MaxUnarchivedExtents = 100_000
	}
	if o.MaxUnarchivedBytes <= 0 {
		o.MaxUnarchivedBytes = 16 << 30
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Engine is the partitioned log of one broker: it writes intake objects and
// entries, replays the intake log through the sequencer and serves reads
// from the resulting partition index. See DESIGN §2–5a.
//
// Lock order: Engine.mu, then cfgMu, intake.mu, waitMu, the signals' locks.
type Engine struct {
	opts  Options
	log   *slog.Logger
	cli   *clientv3.Client
	store objstore.Store
	// remote is set for a store where every read is a request (not
	// objstore.IsLocal): archival then reads the objects it lacks whole
	// (passReads), and a fetch reads its partitions' missing extents
	// concurrently (Prefetch). On a local store a read is a system call
	// served from the page cache, and both read only what they need.
	remote bool
	logKey string // prefix of every log entry key
	ptrKey string // checkpoint pointer key

	mu sync.RWMutex
	st *state
	// cfgCache holds resolved topic configs; applyOne invalidates entries
	// (under mu), readers fill them under cfgMu while holding mu for read.
	cfgMu    sync.Mutex
	cfgCache map[TopicID]config.Topic

	appliedRev atomic.Int64
	ckptRev    atomic.Int64 // revision covered by the newest checkpoint seen
	applied    atomic.Int64 // entries applied by this process (start-up replay included)

	// changed fires at every applied batch of entries; txnOffsetsChanged
	// only when committed transactional offsets come or go.
	changed           signal
	txnOffsetsChanged signal

	waitMu  sync.Mutex
	waiters map[string]*waiter

	// digests are this broker's state digests at the last few checkpoint
	// marks, oldest first (digest.go).
	digestMu sync.Mutex
	digests  []markDigest

	ulidMu  sync.Mutex
	entropy *ulid.MonotonicEntropy
	// lastKeyMs is the timestamp of the newest key handed out: keys never
	// go back in time, whatever the wall clock does (DESIGN §5a rule 2).
	lastKeyMs uint64

	// watchCtx carries the metadata that names the log watch's gRPC
	// stream, so progress requests reach that stream and no other.
	watchCtx context.Context

	cache  *objCache
	intake *intake
	// intakeBytes counts bytes flushed; the archiver paces itself by it.
	intakeBytes atomic.Int64
	// unarchived is the bytes of all partitions' unarchived extents as
	// last counted, at unarchivedAt (unix nanoseconds); see
	// unarchivedBytesLocked.
	unarchived, unarchivedAt atomic.Int64
	lastArchivePass          time.Time // owned by the maintainer
	lastArchiveIntake        int64
	lastCompact              time.Time // owned by the maintainer
	m                        *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// deleting is set while a checkpoint's covered entries are being
	// deleted in the background.
	deleting atomic.Bool
	closed   atomic.Bool
	// lastLimitLog rate-limits the log line of a memory cap (unix ms).
	lastLimitLog atomic.Int64
}

// Open starts an engine: it loads the newest checkpoint, replays the log
// entries after it, and then follows the log. It returns once this broker
// has caught up with the log as it stood when Open was called.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	opts.setDefaults()
	if opts.Client == nil || opts.Store == nil {
		return nil, errors.New("stream: Options.Client and Options.Store are required")
	}
	e := &Engine{
		opts:     opts,
		log:      opts.Logger,
		cli:      opts.Client,
		store:    opts.Store,
		remote:   !objstore.IsLocal(opts.Store),
		logKey:   opts.Prefix + "/log/",
		ptrKey:   opts.Prefix + "/checkpoint",
		st:       newState(),
		cfgCache: map[TopicID]config.Topic{},
		waiters:  map[string]*waiter{},
		entropy:  ulid.Monotonic(rand.Reader, 0),
		cache:    newObjCache(opts.CacheBytes),
		m:        newMetrics(opts.Registerer),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.watchCtx = metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(e.ctx), "runnel-stream", "log")
	rev, err := e.load(ctx)
	if err != nil {
		e.cancel()
		return nil, err
	}
	e.intake = newIntake(e)
	e.wg.Add(1)
	go e.follow(rev)
	if !opts.DisableMaintenance {
		e.wg.Add(1)
		go e.maintainLoop()
	}
	return e, nil
}

// Close flushes what was accepted, waits for its acknowledgement and stops.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.intake.close(ctx)
	e.cancel()
	e.wg.Wait()
	e.m.unregister()
	return nil
}

// load reads the checkpoint pointer, loads that checkpoint and replays the
// entries after it as of one revision. It returns that revision.
func (e *Engine) load(ctx context.Context) (int64, error) {
	st, ptr, at, err := e.loadNewest(ctx)
	if err != nil {
		return 0, err
	}
	if ptr.Object != "" {
		e.ckptRev.Store(ptr.Rev)
		e.m.checkpointMs.Store(st.Clock)
	}
	// Range every entry as of revision at, page by key, then order by
	// revision: etcd's revision order is the log's order.
	type kv struct {
		key string
		rev int64
		val []byte
	}
	var kvs []kv
	start := e.logKey
	end := clientv3.GetPrefixRangeEnd(e.logKey)
	for {
		r, err := e.cli.Get(ctx, start, clientv3.WithRange(end), clientv3.WithRev(at), clientv3.WithLimit(512))
		if err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return e.load(ctx)
			}
			return 0, fmt.Errorf("%w: reading the intake log: %v", ErrStorage, err)
		}
		for _, x := range r.Kvs {
			if x.ModRevision > st.Rev {
				kvs = append(kvs, kv{string(x.Key), x.ModRevision, x.Value})
			}
		}
		if !r.More || len(r.Kvs) == 0 {
			break
		}
		start = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
	// Entries of one transaction share a revision; within it the watch
	// delivers them in op order, which is their key order (group commit
	// puts one broker's monotonic keys in order).
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].rev != kvs[j].rev {
			return kvs[i].rev < kvs[j].rev
		}
		return kvs[i].key < kvs[j].key
	})
	for _, x := range kvs {
		e.applyOne(st, x.key, x.rev, x.val)
	}
	e.mu.Lock()
	e.st = st
	e.cfgMu.Lock()
	e.cfgCache = map[TopicID]config.Topic{}
	e.cfgMu.Unlock()
	e.mu.Unlock()
	e.appliedRev.Store(at)
	e.m.appliedRev.Set(float64(at))
	e.failSkippedWaiters(at)
	e.log.Info("stream: loaded", "checkpoint_rev", e.ckptRev.Load(), "replayed_entries", len(kvs), "revision", at)
	e.m.replayed.Add(float64(len(kvs)))
	return at, nil
}

// applyOne decodes and applies one entry to st and answers its waiter.
func (e *Engine) applyOne(st *state, key string, rev int64, val []byte) {
	ent, err := decodeEntry(val)
	var res applyResult
	if err != nil {
		e.log.Error("stream: skipping undecodable log entry", "key", key, "revision", rev, "err", err)
		res.Err = fmt.Errorf("%w: %v", ErrStorage, err)
		st.Rev = rev
	} else {
		before, garbage := len(st.TxnOffsets), len(st.Garbage)
		res = st.apply(rev, ent)
		if len(st.Garbage) > garbage {
			// An object nothing references any more is read by no new
			// fetch: an archived intake object gives its place in the
			// cache to the segment that replaced it (archiveOne) now, not
			// when it is deleted after the grace period. A read that found
			// it before still gets it from the store.
			for _, g := range st.Garbage[garbage:] {
				e.cache.remove(g.Obj)
			}
		}
		if ent.Kind == kindInitProducer {
			e.m.producerIDs.Set(float64(len(st.Producers)))
		}
		if len(st.TxnOffsets) != before {
			e.txnOffsetsChanged.notify()
		}
		if ent.Kind == kindAlterConfigs || ent.Kind == kindDeleteTopic {
			e.cfgMu.Lock()
			delete(e.cfgCache, ent.Topic)
			e.cfgMu.Unlock()
		}
		if ent.Kind == kindCheckpointMark || ent.Kind == kindCheckpointDigest {
			e.onDigestEntry(st, key, rev, ent, &res)
		}
	}
	e.applied.Add(1)
	e.m.applied.Inc()
	e.waitMu.Lock()
	w := e.waiters[key]
	delete(e.waiters, key)
	e.waitMu.Unlock()
	if w != nil {
		w.fn(res)
	}
}

// limitHit counts a request refused by a memory cap and logs it, at most
// once every ten seconds.
func (e *Engine) limitHit(limit string, err error) {
	e.m.limitHits.WithLabelValues(limit).Inc()
	e.limitWarn("stream: memory cap reached; refusing requests", "limit", limit, "err", err)
}

// limitWarn logs a warning about a memory cap, at most once every ten
// seconds (a refused client retries; archival passes run every second).
func (e *Engine) limitWarn(msg string, args ...any) {
	now := time.Now().UnixMilli()
	if last := e.lastLimitLog.Load(); now-last >= 10_000 && e.lastLimitLog.CompareAndSwap(last, now) {
		e.log.Warn(msg, args...)
	}
}

// countProducerIDLimit counts an InitProducerId this broker proposed that
// the producer id cap refused (every broker applies the entry; only the
// one that answers the client counts it).
func (e *Engine) countProducerIDLimit(err error) {
	if errors.Is(err, ErrProducerIDLimit) {
		e.limitHit("producer_ids", err)
	}
}

// failSkippedWaiters answers the waiters whose entries were put at or
// before rev and yet never applied here: a reload from a checkpoint that
// covers them skipped them, so their outcome cannot be known. They get a
// retriable error (an idempotent retry is answered with its original
// offset) instead of waiting forever.
func (e *Engine) failSkippedWaiters(rev int64) {
	e.waitMu.Lock()
	var skipped []*waiter
	for k, w := range e.waiters {
		if w.rev != 0 && w.rev <= rev {
			skipped = append(skipped, w)
			delete(e.waiters, k)
		}
	}
	e.waitMu.Unlock()
	for _, w := range skipped {
		w.fn(applyResult{Err: ErrUnknownOutcome})
	}
}

// follow watches the log from rev+1 and applies entries as they come. On a
// compacted watch it starts over from the newest checkpoint.
//
// rev is only ever the revision of the last event applied, or the header
// of a progress notification (DESIGN §5a rule 7): a watch that is catching
// up receives its backlog in several responses that all carry the current
// revision in their header, so the header says nothing about what was
// applied. A re-watch after a failure starts right after the last applied
// event, whatever the responses before it claimed.
func (e *Engine) follow(rev int64) {
	defer e.wg.Done()
	for e.ctx.Err() == nil {
		if h := e.opts.hooks; h != nil && h.beforeWatch != nil {
			h.beforeWatch(rev)
		}
		wctx, cancel := context.WithCancel(e.watchCtx)
		wc := e.cli.Watch(wctx, e.logKey, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
		for resp := range wc {
			if err := resp.Err(); err != nil {
				if resp.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
					e.log.Warn("stream: log watch compacted; reloading from checkpoint", "revision", rev)
					r, lerr := e.load(e.ctx)
					if lerr == nil {
						rev = r
						e.broadcast()
					}
				} else {
					e.log.Warn("stream: log watch failed", "err", err)
				}
				break
			}
			rev = e.applyResponse(&resp, rev)
			if h := e.opts.hooks; h != nil && h.afterResponse != nil && h.afterResponse(&resp) {
				break
			}
		}
		cancel()
		if e.ctx.Err() != nil {
			return
		}
		select {
		case <-e.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// applyResponse applies one watch response's entries and returns the
// revision replay has now passed: the last event's, or a progress
// notification's header revision.
func (e *Engine) applyResponse(resp *clientv3.WatchResponse, rev int64) int64 {
	puts := false
	for _, ev := range resp.Events {
		puts = puts || ev.Type == mvccpb.PUT
	}
	if puts {
		// Deletions (of entries a checkpoint covers) change nothing:
		// only take the lock readers share for real entries.
		e.mu.Lock()
		for _, ev := range resp.Events {
			if ev.Type != mvccpb.PUT {
				continue
			}
			e.applyOne(e.st, string(ev.Kv.Key), ev.Kv.ModRevision, ev.Kv.Value)
		}
		e.mu.Unlock()
	}
	switch {
	case len(resp.Events) > 0:
		rev = max(rev, resp.Events[len(resp.Events)-1].Kv.ModRevision)
	case resp.IsProgressNotify():
		// Sent only once the watch has delivered every event up to its
		// header revision.
		rev = max(rev, resp.Header.Revision)
	default:
		return rev // created, or nothing to report
	}
	e.appliedRev.Store(rev)
	e.m.appliedRev.Set(float64(rev))
	e.broadcast()
	return rev
}

func (e *Engine) broadcast() { e.changed.notify() }

// Changed returns a channel closed the next time the sequencer applies
// anything.
func (e *Engine) Changed() <-chan struct{} { return e.changed.wait() }

// TxnOffsetsChanged returns a channel closed the next time committed
// transactional offsets are added or published, so their publisher sleeps
// through every other entry.
func (e *Engine) TxnOffsetsChanged() <-chan struct{} { return e.txnOffsetsChanged.wait() }

// signal is a broadcast: wait returns a channel that the next notify
// closes.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) notify() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// AppliedRevision is the etcd revision up to which this broker has replayed.
func (e *Engine) AppliedRevision() int64 { return e.appliedRev.Load() }

// Replayed counts entries this process has applied since Open, start-up
// replay included (tests use it to prove start-up is bounded).
func (e *Engine) Replayed() int64 { return e.applied.Load() }

// SyncRead waits until this broker has replayed everything committed to
// the log when it was called (DESIGN §5a rule 7). It reads etcd's current
// revision once (one cheap read, whatever the log's length) and waits until
// replay has passed it: an applied event at or after it, or a progress
// notification, which etcd sends only once the watch has delivered
// everything up to its header. Progress is requested while waiting, since
// a synced watch on a quiet log gets no events.
func (e *Engine) SyncRead(ctx context.Context) error {
	resp, err := e.cli.Get(ctx, e.ptrKey, clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return e.waitApplied(ctx, resp.Header.Revision)
}

// waitApplied waits until replay has passed revision need.
func (e *Engine) waitApplied(ctx context.Context, need int64) error {
	// A progress request made while the watch is still catching up is
	// dropped by etcd, so ask again until replay gets there.
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		ch := e.Changed()
		if e.appliedRev.Load() >= need {
			return nil
		}
		if err := e.cli.RequestProgress(e.watchCtx); err != nil && e.ctx.Err() == nil {
			e.log.Debug("stream: requesting watch progress", "err", err)
		}
		select {
		case <-ch:
		case <-retry.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for replay to reach revision %d: %v", ErrTimeout, need, ctx.Err())
		case <-e.ctx.Done():
			return ErrNotReady
		}
	}
}

// newKey returns a new log entry key for this broker: monotonic per broker
// whatever the wall clock does (DESIGN §5a rule 2) and unique, so a retried
// put is harmless (rule 5). Entries of one group commit are put in key
// order, so a restarting broker, which ranges them sorted by key, applies
// them in the order the watch delivered them.
func (e *Engine) newKey() (key string, id ulid.ULID) {
	e.ulidMu.Lock()
	ms := max(ulid.Timestamp(e.opts.Now()), e.lastKeyMs)
	id, err := ulid.New(ms, e.entropy)
	if err != nil {
		// The monotonic entropy of this millisecond is used up: go on in
		// the next one.
		ms++
		id = ulid.MustNew(ms, e.entropy)
	}
	e.lastKeyMs = ms
	e.ulidMu.Unlock()
	return fmt.Sprintf("%s%08x/%s", e.logKey, uint32(e.opts.BrokerID), id.String()), id
}

// propose puts one entry into the log and returns what the sequencer made
// of it once this broker has applied it.
func (e *Engine) propose(ctx context.Context, ent *entry) (applyResult, error) {
	key, _ := e.newKey()
	ent.Broker = e.opts.BrokerID
	ent.Time = e.opts.Now().UnixMilli()
	done := make(chan applyResult, 1)
	e.addWaiter(key, func(r applyResult) { done <- r })
	if err := e.putEntries(ctx, []string{key}, [][]byte{ent.encode()}); err != nil {
		e.removeWaiter(key)
		return applyResult{}, err
	}
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		e.removeWaiter(key)
		return applyResult{}, fmt.Errorf("%w: waiting for the sequencer: %v", ErrTimeout, ctx.Err())
	case <-e.ctx.Done():
		return applyResult{}, ErrNotReady
	}
}

func (e *Engine) addWaiter(key string, fn func(applyResult)) {
	e.waitMu.Lock()
	e.waiters[key] = &waiter{fn: fn}
	e.waitMu.Unlock()
}

// putDone records the revision the waiters' entries were put at. If replay
// has passed it and they are still waiting, a reload skipped them: they are
// answered with ErrUnknownOutcome.
func (e *Engine) putDone(keys []string, rev int64) {
	var skipped []*waiter
	e.waitMu.Lock()
	applied := e.appliedRev.Load()
	for _, k := range keys {
		w := e.waiters[k]
		if w == nil {
			continue
		}
		w.rev = rev
		if applied >= rev {
			skipped = append(skipped, w)
			delete(e.waiters, k)
		}
	}
	e.waitMu.Unlock()
	for _, w := range skipped {
		w.fn(applyResult{Err: ErrUnknownOutcome})
	}
}

func (e *Engine) removeWaiter(key string) {
	e.waitMu.Lock()
	delete(e.waiters, key)
	e.waitMu.Unlock()
}

// putEntries writes entries in one transaction, each under its own key and
// only if none of the keys exists yet (DESIGN §5a rule 5): a retried put is
// harmless. Entries of one transaction share a revision and are applied in
// the given order.
func (e *Engine) putEntries(ctx context.Context, keys []string, vals [][]byte) error {
	for i := 1; i < len(keys); i++ {
		if keys[i] <= keys[i-1] {
			// A restart ranges them in key order: they must be put in it.
			panic(fmt.Sprintf("stream: log entries put out of key order: %s after %s", keys[i], keys[i-1]))
		}
	}
	cmps := make([]clientv3.Cmp, len(keys))
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		cmps[i] = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		ops[i] = clientv3.OpPut(k, string(vals[i]))
	}
	resp, err := e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("%w: appending to the intake log: %v", ErrStorage, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: a log entry key already exists", ErrStorage)
	}
	e.putDone(keys, resp.Header.Revision)
	return nil
}

// topicConfig returns a topic's resolved config. Callers hold e.mu.
func (e *Engine) topicConfigLocked(t *topicState) config.Topic {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	if c, ok := e.cfgCache[t.ID]; ok {
		return c
	}
	c, err := config.ResolveTopic(t.Configs, e.opts.TopicDefaults)
	if err != nil {
		// Configs were validated before they entered the log; fall back to
		// the defaults alone rather than refusing to serve the topic.
		e.log.Error("stream: topic config does not resolve", "topic", t.Name, "err", err)
		c, _ = config.ResolveTopic(nil, e.opts.TopicDefaults)
	}
	e.cfgCache[t.ID] = c
	return c
}

// TopicConfig returns the resolved config of a topic by name.
func (e *Engine) TopicConfig(name string) (config.Topic, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	id, ok := e.st.ByName[name]
	if !ok {
		return config.Topic{}, ErrUnknownTopicOrPartition
	}
	return e.topicConfigLocked(e.st.Topics[id]), nil
}

// unarchivedRecount is how old the count of unarchived bytes may be before
// a produce counts again (a variable for tests).
var unarchivedRecount = 250 * time.Millisecond

// unarchivedBytesLocked returns the bytes of all partitions' extents not
// yet archived. The count is reused for unarchivedRecount while it is
// under the cap, so that a produce does not walk every partition's
// extents; at or over the cap, for a 25th of that, so produce resumes soon
// after archival has caught up while refused clients retrying in a loop
// do not walk them on every request. e.mu is held for reading at least.
func (e *Engine) unarchivedBytesLocked() int64 {
	now := time.Now().UnixNano()
	at, n := e.unarchivedAt.Load(), e.unarchived.Load()
	fresh := int64(unarchivedRecount)
	if n >= e.opts.MaxUnarchivedBytes {
		fresh /= 25
	}
	if at != 0 && now-at < fresh {
		return n
	}
	n = 0
	for _, ts := range e.st.Topics {
		for _, p := range ts.Parts {
			n += p.unarchivedBytes()
		}
	}
	e.unarchived.Store(n)
	e.unarchivedAt.Store(now)
	return n
}

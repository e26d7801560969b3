package share

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Log is what the engine needs of the partitioned log; *stream.Engine
// satisfies it.
type Log interface {
	TopicByID(id stream.TopicID) (stream.TopicInfo, bool)
	State(topic string, partition int32) (stream.PartitionState, error)
	// Fetch reads whole batches from the batch holding p.Offset on.
	Fetch(ctx context.Context, p stream.FetchPartition) (stream.FetchResult, error)
	// OffsetForTimestamp returns the first offset with a timestamp >= ts
	// (-1 when none).
	OffsetForTimestamp(ctx context.Context, topic string, partition int32, ts int64) (int64, int64, error)
}

var _ Log = (*stream.Engine)(nil)

// Options configure an Engine.
type Options struct {
	Client *clientv3.Client
	// Prefix is the cluster's etcd key prefix (default "/runnel").
	Prefix string
	Log    Log
	// GroupConfig resolves a group's configuration (default: the table's
	// defaults).
	GroupConfig func(group string) config.ShareGroup
	// DeadLetters writes dead letters; nil: they are only archived.
	DeadLetters DeadLetterWriter
	Now         func() time.Time
	Logger      *slog.Logger
	Metrics     prometheus.Registerer
	// SweepInterval is how often lock expiry and pending dead letters of
	// the cached share partitions are looked at (default 100ms).
	SweepInterval time.Duration
}

// Engine serves share partitions: acquisition, acknowledgements, lock
// timeouts and the start offsets, with the state in etcd (store.go). It
// satisfies the front end's Shares and the coordinator's ShareStates.
//
// Lock order: a share partition's lock (from locks), then locksMu or
// ownMu, then the store's mutex; changedMu and dueMu are leaves.
type Engine struct {
	opts  Options
	log   *slog.Logger
	store *store
	m     *metrics

	locksMu sync.Mutex
	locks   map[Key]*sync.Mutex
	// served is when this engine last served each share partition
	// (acquire, acknowledge, release); the sweep evicts partitions idle
	// for cacheIdle from the cache (guarded by locksMu).
	served    map[Key]time.Time
	cacheIdle time.Duration

	changedMu sync.Mutex
	changed   chan struct{}

	// recordBytes is each share partition's recent bytes per record in
	// the log (Key → int64), which bounds what an acquisition reads.
	recordBytes sync.Map

	// nextDue is the earliest retry due time (unix ms) the sweeper's
	// timer waits for (0: none); dueKick tells it an earlier one was
	// scheduled.
	dueMu   sync.Mutex
	nextDue int64
	dueKick chan struct{}

	// letterKick wakes the sweeper to write dead letters now.
	letterKick chan struct{}
	// retryAt backs off the dead letters of a share partition whose
	// writes failed; pendingSince is when the sweeper first saw letters
	// another broker left (both owned by the sweeper).
	retryAt      map[Key]letterRetry
	pendingSince map[Key]time.Time
	// own holds the pending letters (by share partition and offset) this
	// engine persisted or found at start: it writes them at once; letters
	// other brokers persisted only after foreignLetterGrace, if still
	// pending.
	ownMu sync.Mutex
	own   map[Key]map[int64]bool
	// letterGrace is foreignLetterGrace (tests shorten it).
	letterGrace time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type letterRetry struct {
	at      time.Time
	backoff time.Duration
}

// New returns an engine; Start begins its background work.
func New(opts Options) *Engine {
	if opts.Prefix == "" {
		opts.Prefix = "/runnel"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.GroupConfig == nil {
		opts.GroupConfig = func(string) config.ShareGroup { return config.ResolveShareGroup(nil) }
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 100 * time.Millisecond
	}
	e := &Engine{
		opts:         opts,
		log:          opts.Logger,
		store:        newStore(opts.Client, opts.Prefix, opts.Logger),
		m:            newMetrics(opts.Metrics),
		locks:        map[Key]*sync.Mutex{},
		served:       map[Key]time.Time{},
		cacheIdle:    cacheIdle,
		letterKick:   make(chan struct{}, 1),
		dueKick:      make(chan struct{}, 1),
		retryAt:      map[Key]letterRetry{},
		pendingSince: map[Key]time.Time{},
		own:          map[Key]map[int64]bool{},
		letterGrace:  foreignLetterGrace,
	}
	e.store.onRemote = func(k Key) {
		e.notify()
		if st, ok := e.store.cachedState(k); ok {
			e.scheduleDue(st.NextDue(nowMs(e.opts.Now())))
		}
	}
	return e
}

// Start loads the share partitions with dead letters still to write and
// starts following the state prefix and sweeping locks. Close stops it.
func (e *Engine) Start(ctx context.Context) error {
	rev, pending, err := e.store.loadPending(ctx)
	if err != nil {
		return err
	}
	for _, k := range pending {
		if st, ok := e.store.cachedState(k); ok {
			e.markOwn(k, nil, st)
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(2)
	go func() { defer e.wg.Done(); e.store.follow(bg, rev) }()
	go func() { defer e.wg.Done(); e.sweepLoop(bg) }()
	e.kickLetters()
	return nil
}

// Close stops the background work and waits for it.
func (e *Engine) Close() error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	return nil
}

// Changed is closed when records may have become acquirable without new
// log data (release, lock expiry, start offset moved, a change by another
// broker); call again after it fires.
func (e *Engine) Changed() <-chan struct{} {
	e.changedMu.Lock()
	defer e.changedMu.Unlock()
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	return e.changed
}

func (e *Engine) notify() {
	e.changedMu.Lock()
	defer e.changedMu.Unlock()
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

// LockDuration is group's acquisition lock duration.
func (e *Engine) LockDuration(group string) time.Duration {
	return e.opts.GroupConfig(group).LockDuration
}

func (e *Engine) policy(cfg config.ShareGroup) Policy {
	p := PolicyOf(cfg)
	p.DeadLetters = p.DeadLetters && e.opts.DeadLetters != nil
	return p
}

// lock serialises this broker's changes of one share partition, so its own
// requests never race each other's compare-and-swap.
func (e *Engine) lock(k Key) func() {
	return e.lockAt(k, time.Time{})
}

// serve is lock for a request that serves the share partition's records:
// it also keeps the partition in the cache.
func (e *Engine) serve(k Key) func() {
	return e.lockAt(k, e.opts.Now())
}

func (e *Engine) lockAt(k Key, served time.Time) func() {
	e.locksMu.Lock()
	if !served.IsZero() {
		e.served[k] = served
	}
	mu, ok := e.locks[k]
	if !ok {
		mu = &sync.Mutex{}
		e.locks[k] = mu
	}
	e.locksMu.Unlock()
	mu.Lock()
	return mu.Unlock
}

// partition looks up a share partition's topic and log state.
func (e *Engine) partition(k Key) (stream.TopicInfo, stream.PartitionState, error) {
	ti, ok := e.opts.Log.TopicByID(k.Topic)
	if !ok || k.Partition < 0 || k.Partition >= ti.Partitions {
		return ti, stream.PartitionState{}, ErrUnknownTopicOrPartition
	}
	ps, err := e.opts.Log.State(ti.Name, k.Partition)
	if errors.Is(err, stream.ErrUnknownTopicOrPartition) {
		err = ErrUnknownTopicOrPartition
	}
	return ti, ps, err
}

// initialStart is where a new share partition starts, from the group's
// share.auto.offset.reset.
func (e *Engine) initialStart(ctx context.Context, cfg config.ShareGroup, ti stream.TopicInfo, k Key, ps stream.PartitionState) (int64, error) {
	switch cfg.AutoOffsetReset {
	case "earliest":
		return ps.LogStartOffset, nil
	case "by_duration":
		ts := e.opts.Now().Add(-cfg.ResetDuration).UnixMilli()
		off, _, err := e.opts.Log.OffsetForTimestamp(ctx, ti.Name, k.Partition, ts)
		if err != nil {
			return 0, err
		}
		if off < 0 {
			return ps.HighWatermark, nil
		}
		return off, nil
	}
	return ps.HighWatermark, nil
}

// changedState reports whether next differs from prev in stored form.
func changedState(prev, next *State) bool {
	if prev == nil || next == nil {
		return prev != next
	}
	return !bytes.Equal(prev.Encode(), next.Encode())
}

// Acquire acquires records of one share partition for member: released
// and timed-out records first, then new ones, up to the high watermark (the
// last stable offset under read_committed). The result is persisted
// (delivery counts and locks) before it is returned.
func (e *Engine) Acquire(ctx context.Context, req AcquireRequest) (AcquireResult, error) {
	k := req.Key
	cfg := e.opts.GroupConfig(k.Group)
	p := e.policy(cfg)
	p.RecordLimit = p.RecordLimit || req.RecordLimit
	defer e.serve(k)()
	ti, ps, err := e.partition(k)
	if err != nil {
		return AcquireResult{}, err
	}
	var res AcquireResult
	var stats Stats
	err = e.change(ctx, k, func(st *State) (*State, bool, error) {
		res, stats = AcquireResult{}, Stats{}
		prev := st
		if st == nil {
			start, err := e.initialStart(ctx, cfg, ti, k, ps)
			if err != nil {
				return nil, false, err
			}
			st = NewState(start)
		} else {
			st = st.Clone()
		}
		now := nowMs(e.opts.Now())
		stats.add(st.Expire(now, p))
		st.Truncate(ps.LogStartOffset)
		limit := ps.HighWatermark
		if cfg.ReadCommitted {
			limit = ps.LastStableOffset
		}
		from, ok := st.FetchOffset(p, now)
		if ok && from < limit {
			fr, err := e.opts.Log.Fetch(ctx, stream.FetchPartition{TopicID: k.Topic, Partition: k.Partition, Offset: from, MaxBytes: e.readBytes(k, req), ReadCommitted: cfg.ReadCommitted})
			if errors.Is(err, stream.ErrOffsetOutOfRange) {
				// The log start moved since State: the next request reads
				// from the new one.
				st.Truncate(fr.LogStartOffset)
				return st, changedState(prev, st), nil
			}
			if errors.Is(err, stream.ErrUnknownTopicID) || errors.Is(err, stream.ErrUnknownTopicOrPartition) {
				return nil, false, fmt.Errorf("%w: %v", ErrUnknownTopicOrPartition, err)
			}
			if err != nil {
				return nil, false, err
			}
			st.Truncate(fr.LogStartOffset)
			limit = fr.HighWatermark
			if cfg.ReadCommitted {
				limit = fr.LastStableOffset
			}
			batches, spans, err := parseBatches(fr.Records)
			if err != nil {
				return nil, false, err
			}
			e.noteRecordBytes(k, batches, len(fr.Records))
			ranges, s := st.Acquire(AcquireInput{Batches: batches, Limit: limit, Aborted: fr.Aborted, Member: req.Member, Now: now, MaxRecords: int(req.MaxRecords)}, p)
			stats.add(s)
			if len(ranges) > 0 {
				res.Acquired = ranges
				res.Records = recordsFor(fr.Records, batches, spans, ranges)
			}
		}
		return st, changedState(prev, st), nil
	})
	if err != nil {
		return AcquireResult{}, err
	}
	e.m.record(k.Group, stats)
	if stats.Timeouts > 0 {
		e.notify()
	}
	return res, nil
}

// Bounds of one acquisition's read of the log (readBytes).
const (
	defaultAcquireRecords = 500
	defaultRecordBytes    = 1024
	// readSlack is read beyond the estimate, so a batch that straddles
	// it still arrives whole and a small estimate still reads something.
	readSlack = 64 << 10
)

// readBytes bounds one acquisition's read of the log: the records asked
// for at the partition's recent bytes per record, plus readSlack, never
// more than the request allows. The request's own MaxBytes is the whole
// response's budget (franz-go asks 50 MiB); reading all of it for a few
// hundred records copied up to a hundred times what was returned, and made
// a share group of 8 consumers slower than one.
func (e *Engine) readBytes(k Key, req AcquireRequest) int32 {
	limit := int64(maxBytes(req.MaxBytes))
	n := int64(req.MaxRecords)
	if n <= 0 {
		n = defaultAcquireRecords
	}
	per := int64(defaultRecordBytes)
	if v, ok := e.recordBytes.Load(k); ok {
		per = v.(int64)
	}
	return int32(min(limit, n*per+readSlack))
}

// noteRecordBytes remembers the bytes per record of a read of k's log.
func (e *Engine) noteRecordBytes(k Key, batches []Batch, size int) {
	var records int64
	for _, b := range batches {
		records += b.Last - b.Base + 1
	}
	if records > 0 && size > 0 {
		e.recordBytes.Store(k, max(1, int64(size)/records))
	}
}

func maxBytes(n int32) int32 {
	if n <= 0 {
		return 1 << 20
	}
	return n
}

// parseBatches reads the headers of the batches laid end to end in data;
// spans are each batch's byte range.
func parseBatches(data []byte) ([]Batch, [][2]int, error) {
	var out []Batch
	var spans [][2]int
	for pos := 0; pos < len(data); {
		if len(data)-pos < 61 {
			return nil, nil, fmt.Errorf("%w: %d trailing bytes of a batch", stream.ErrStorage, len(data)-pos)
		}
		b := data[pos:]
		n := int(int32(binary.BigEndian.Uint32(b[8:]))) + 12
		if n < 61 || n > len(b) {
			return nil, nil, fmt.Errorf("%w: batch of length %d in %d bytes", stream.ErrStorage, n, len(b))
		}
		attrs := binary.BigEndian.Uint16(b[21:])
		base := int64(binary.BigEndian.Uint64(b))
		out = append(out, Batch{
			Base:          base,
			Last:          base + int64(int32(binary.BigEndian.Uint32(b[23:]))),
			Transactional: attrs&0x10 != 0,
			Control:       attrs&0x20 != 0,
			ProducerID:    int64(binary.BigEndian.Uint64(b[43:])),
		})
		spans = append(spans, [2]int{pos, pos + n})
		pos += n
	}
	return out, spans, nil
}

// recordsFor returns the bytes of the batches that hold an acquired
// offset: a slice of data when they lie end to end, else a copy of only
// those (batches held by other members in between are left out).
func recordsFor(data []byte, batches []Batch, spans [][2]int, ranges []AcquiredRange) []byte {
	var keep []int
	r := 0
	for i, b := range batches {
		for r < len(ranges) && ranges[r].Last < b.Base {
			r++
		}
		if r < len(ranges) && ranges[r].First <= b.Last {
			keep = append(keep, i)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	if keep[len(keep)-1]-keep[0]+1 == len(keep) {
		return data[spans[keep[0]][0]:spans[keep[len(keep)-1]][1]]
	}
	var n int
	for _, i := range keep {
		n += spans[i][1] - spans[i][0]
	}
	out := make([]byte, 0, n)
	for _, i := range keep {
		out = append(out, data[spans[i][0]:spans[i][1]]...)
	}
	return out
}

// Acknowledge applies member's acknowledgements to one share partition,
// all or nothing, and persists them before it returns. Errors:
// ErrInvalidRequest or ErrRenewDisabled for malformed batches,
// ErrInvalidRecordState for records member does not hold.
func (e *Engine) Acknowledge(ctx context.Context, k Key, member string, acks []AckBatch) error {
	cfg := e.opts.GroupConfig(k.Group)
	p := e.policy(cfg)
	if err := ValidateAcks(acks, p.RenewEnabled); err != nil {
		return err
	}
	// Records below the log start are gone (retention, DeleteRecords):
	// what is said of them is skipped, as Kafka does, rather than failing
	// the acknowledgement of the records still there.
	var logStart int64
	if _, ps, err := e.partition(k); err == nil {
		logStart = ps.LogStartOffset
		acks = ClipAcks(acks, logStart)
	}
	if len(acks) == 0 {
		return nil
	}
	defer e.serve(k)()
	var stats Stats
	var ackErr error
	err := e.change(ctx, k, func(st *State) (*State, bool, error) {
		stats, ackErr = Stats{}, nil
		if st == nil {
			return nil, false, fmt.Errorf("%w: the share partition has no state", ErrInvalidRecordState)
		}
		prev := st
		st = st.Clone()
		now := nowMs(e.opts.Now())
		stats.add(st.Expire(now, p))
		st.Truncate(logStart)
		s, err := st.Acknowledge(member, acks, now, p)
		if err != nil {
			// Nothing is acknowledged; an expiry or truncation found on
			// the way is still persisted.
			ackErr = err
			return st, changedState(prev, st), nil
		}
		stats.add(s)
		return st, changedState(prev, st), nil
	})
	if err != nil {
		return err
	}
	e.m.record(k.Group, stats)
	if stats.Timeouts > 0 || stats.Acked[AckRelease] > 0 || stats.Acked[AckAccept] > 0 || stats.Acked[AckReject] > 0 || stats.Acked[AckGap] > 0 {
		e.notify()
	}
	return ackErr
}

// ReleaseMember releases every record member holds in the share partition.
func (e *Engine) ReleaseMember(ctx context.Context, k Key, member string) error {
	p := e.policy(e.opts.GroupConfig(k.Group))
	defer e.serve(k)()
	var stats Stats
	err := e.change(ctx, k, func(st *State) (*State, bool, error) {
		stats = Stats{}
		if st == nil {
			return nil, false, nil
		}
		prev := st
		st = st.Clone()
		stats.add(st.Expire(nowMs(e.opts.Now()), p))
		stats.add(st.ReleaseMember(member, p))
		return st, changedState(prev, st), nil
	})
	if err != nil {
		return err
	}
	e.m.record(k.Group, stats)
	e.notify()
	return nil
}

// Initialize creates the share partitions' state if missing, with the
// start offset from the group's share.auto.offset.reset; existing ones
// are untouched, and partitions that no longer exist are skipped. The
// existing keys are read with one range read per group and the missing
// ones created in batches, so assigning many partitions costs a few etcd
// round trips.
func (e *Engine) Initialize(ctx context.Context, keys []Key) error {
	existing := map[string]map[Key]*State{}
	create := map[Key]*State{}
	for _, k := range keys {
		if _, ok := existing[k.Group]; !ok {
			states, err := e.store.list(ctx, k.Group)
			if err != nil {
				return err
			}
			existing[k.Group] = states
		}
		if existing[k.Group][k] != nil || create[k] != nil {
			continue
		}
		ti, ps, err := e.partition(k)
		if errors.Is(err, ErrUnknownTopicOrPartition) {
			continue
		}
		if err != nil {
			return err
		}
		start, err := e.initialStart(ctx, e.opts.GroupConfig(k.Group), ti, k, ps)
		if err != nil {
			return err
		}
		create[k] = NewState(start)
	}
	missing := make([]Key, 0, len(create))
	for k := range create {
		missing = append(missing, k)
	}
	sort.Slice(missing, func(i, j int) bool { return keyLess(missing[i], missing[j]) })
	for len(missing) > 0 {
		n := min(len(missing), maxCreateBatch)
		chunk := missing[:n]
		missing = missing[n:]
		ok, err := e.store.createAll(ctx, chunk, create)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		// Someone created one of them meanwhile: one at a time.
		for _, k := range chunk {
			err := e.store.update(ctx, k, func(st *State) (*State, bool, error) {
				if st != nil {
					return nil, false, nil
				}
				return create[k], true, nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// maxCreateBatch bounds the keys of one creating transaction (etcd allows
// 128 operations per transaction by default).
const maxCreateBatch = 64

// StartOffsets lists the group's share partitions (every one it has state
// for), sorted by topic id and partition.
func (e *Engine) StartOffsets(ctx context.Context, group string) ([]PartitionOffset, error) {
	states, err := e.store.list(ctx, group)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionOffset, 0, len(states))
	for k, st := range states {
		po := PartitionOffset{Topic: k.Topic, Partition: k.Partition, StartOffset: st.Start, LeaderEpoch: -1, Lag: -1}
		if _, ps, err := e.partition(k); err == nil {
			po.LeaderEpoch = ps.LeaderEpoch
			po.Lag = lag(st, ps.HighWatermark)
		}
		out = append(out, po)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Topic != b.Topic {
			return bytes.Compare(a.Topic[:], b.Topic[:]) < 0
		}
		return a.Partition < b.Partition
	})
	return out, nil
}

// States returns copies of the group's share partition states (the
// in-flight records with their delivery counts and locks), for tools.
func (e *Engine) States(ctx context.Context, group string) (map[Key]*State, error) {
	return e.store.list(ctx, group)
}

// lag counts the records from the start offset to the high watermark not
// yet acknowledged or archived.
func lag(st *State, hwm int64) int64 {
	if hwm <= st.Start {
		return 0
	}
	n := hwm - st.Start
	for _, r := range st.Runs {
		if done(r.State) && r.First < hwm {
			n -= min(r.Last, hwm-1) - r.First + 1
		}
	}
	return n
}

// SetStartOffset sets a share partition's start offset, discarding its
// in-flight state (the caller has checked the group is empty).
func (e *Engine) SetStartOffset(ctx context.Context, k Key, offset int64) error {
	defer e.lock(k)()
	err := e.store.update(ctx, k, func(st *State) (*State, bool, error) {
		if st == nil {
			return NewState(offset), true, nil
		}
		prev := st
		st = st.Clone()
		st.Reset(offset)
		return st, changedState(prev, st), nil
	})
	if err == nil {
		e.notify()
	}
	return err
}

// DeleteState removes the group's share partitions of one topic (topic !=
// nil) or all of them. Dead letters still pending are handed to the writer
// first (a failure is logged: the state goes regardless, as asked).
func (e *Engine) DeleteState(ctx context.Context, group string, topic *stream.TopicID) error {
	match := func(k Key) bool { return k.Group == group && (topic == nil || k.Topic == *topic) }
	states, err := e.store.list(ctx, group)
	if err != nil {
		return err
	}
	keys := make([]Key, 0, len(states))
	for k, st := range states {
		if match(k) && len(st.Letters) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	cfg := e.opts.GroupConfig(group)
	for _, k := range keys {
		letters := states[k].Letters
		if e.opts.DeadLetters == nil || cfg.DLQTopic == "" {
			e.log.Warn("share: dead letters dropped with the share partition state: the group has no dead-letter topic", "group", group, "partition", k.Partition, "letters", len(letters))
			continue
		}
		if err := e.opts.DeadLetters.Write(ctx, k, cfg, letters); err != nil {
			e.log.Warn("share: dead letters dropped with the share partition state", "group", group, "partition", k.Partition, "letters", len(letters), "err", err)
		}
	}
	prefix := e.store.groupPrefix(group)
	if topic != nil {
		prefix = e.store.topicPrefix(group, *topic)
	}
	return e.store.deletePrefix(ctx, prefix, match)
}

// change is store.update for the engine's changes of records: the dead
// letters the written state adds are this engine's to write, at once; the
// sweeper wakes long polls when the state's waiting records become due
// (also when it did not change: it may just have been loaded here).
func (e *Engine) change(ctx context.Context, k Key, fn func(st *State) (*State, bool, error)) error {
	var prev, next, seen *State
	err := e.store.update(ctx, k, func(st *State) (*State, bool, error) {
		n, changed, err := fn(st)
		prev, next, seen = st, nil, nil
		if err == nil {
			seen = n
			if changed {
				next = n
			}
		}
		return n, changed, err
	})
	if err == nil && next != nil {
		e.markOwn(k, prev, next)
	}
	if err == nil && seen != nil {
		e.scheduleDue(seen.NextDue(nowMs(e.opts.Now())))
	}
	return err
}

// markOwn records the letters of next that prev did not have as this
// engine's, and wakes the sweeper to write them.
func (e *Engine) markOwn(k Key, prev, next *State) {
	had := map[int64]bool{}
	if prev != nil {
		for _, l := range prev.Letters {
			had[l.Offset] = true
		}
	}
	added := false
	e.ownMu.Lock()
	for _, l := range next.Letters {
		if had[l.Offset] {
			continue
		}
		if e.own[k] == nil {
			e.own[k] = map[int64]bool{}
		}
		e.own[k][l.Offset] = true
		added = true
	}
	e.ownMu.Unlock()
	if added {
		e.kickLetters()
	}
}

func (e *Engine) kickLetters() {
	select {
	case e.letterKick <- struct{}{}:
	default:
	}
}

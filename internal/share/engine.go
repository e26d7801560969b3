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
// Lock order: a share partition's lock (locks), then the store's mutex.
type Engine struct {
	opts  Options
	log   *slog.Logger
	store *store
	m     *metrics

	locksMu sync.Mutex
	locks   map[Key]*sync.Mutex

	changedMu sync.Mutex
	changed   chan struct{}

	// letterKick wakes the sweeper to write dead letters now.
	letterKick chan struct{}
	// retryAt backs off the dead letters of a share partition whose
	// writes failed (owned by the sweeper).
	retryAt map[Key]letterRetry

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
		opts:       opts,
		log:        opts.Logger,
		store:      newStore(opts.Client, opts.Prefix, opts.Logger),
		m:          newMetrics(opts.Metrics),
		locks:      map[Key]*sync.Mutex{},
		letterKick: make(chan struct{}, 1),
		retryAt:    map[Key]letterRetry{},
	}
	e.store.onRemote = func(Key) { e.notify() }
	return e
}

// Start loads the share partitions with dead letters still to write and
// starts following the state prefix and sweeping locks. Close stops it.
func (e *Engine) Start(ctx context.Context) error {
	rev, err := e.store.loadPending(ctx)
	if err != nil {
		return err
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
	e.locksMu.Lock()
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
	defer e.lock(k)()
	ti, ps, err := e.partition(k)
	if err != nil {
		return AcquireResult{}, err
	}
	var res AcquireResult
	var stats Stats
	err = e.store.update(ctx, k, func(st *State) (*State, bool, error) {
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
		from, ok := st.FetchOffset(p)
		if ok && from < limit {
			fr, err := e.opts.Log.Fetch(ctx, stream.FetchPartition{TopicID: k.Topic, Partition: k.Partition, Offset: from, MaxBytes: maxBytes(req.MaxBytes), ReadCommitted: cfg.ReadCommitted})
			if errors.Is(err, stream.ErrOffsetOutOfRange) {
				// The log start moved since State: the next request reads
				// from the new one.
				st.Truncate(fr.LogStartOffset)
				return st, changedState(prev, st), nil
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
	e.afterChange(k)
	return res, nil
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

// recordsFor returns the bytes of the batches from the first to the last
// that holds an acquired offset.
func recordsFor(data []byte, batches []Batch, spans [][2]int, ranges []AcquiredRange) []byte {
	first, last := ranges[0].First, ranges[len(ranges)-1].Last
	lo, hi := -1, -1
	for i, b := range batches {
		if b.Last >= first && b.Base <= last {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	if lo < 0 {
		return nil
	}
	return data[spans[lo][0]:spans[hi][1]]
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
	if len(acks) == 0 {
		return nil
	}
	defer e.lock(k)()
	var stats Stats
	var ackErr error
	err := e.store.update(ctx, k, func(st *State) (*State, bool, error) {
		stats, ackErr = Stats{}, nil
		if st == nil {
			return nil, false, fmt.Errorf("%w: the share partition has no state", ErrInvalidRecordState)
		}
		prev := st
		st = st.Clone()
		now := nowMs(e.opts.Now())
		stats.add(st.Expire(now, p))
		s, err := st.Acknowledge(member, acks, now, p)
		if err != nil {
			// Nothing is acknowledged; an expiry found on the way is
			// still persisted.
			ackErr = err
			return st, stats.Timeouts > 0, nil
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
	e.afterChange(k)
	return ackErr
}

// ReleaseMember releases every record member holds in the share partition.
func (e *Engine) ReleaseMember(ctx context.Context, k Key, member string) error {
	p := e.policy(e.opts.GroupConfig(k.Group))
	defer e.lock(k)()
	var stats Stats
	err := e.store.update(ctx, k, func(st *State) (*State, bool, error) {
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
	e.afterChange(k)
	return nil
}

// Initialize creates the share partitions' state if missing, with the
// start offset from the group's share.auto.offset.reset; existing ones
// are untouched.
func (e *Engine) Initialize(ctx context.Context, keys []Key) error {
	for _, k := range keys {
		cfg := e.opts.GroupConfig(k.Group)
		ti, ps, err := e.partition(k)
		if err != nil {
			return err
		}
		unlock := e.lock(k)
		err = e.store.update(ctx, k, func(st *State) (*State, bool, error) {
			if st != nil {
				return nil, false, nil
			}
			start, err := e.initialStart(ctx, cfg, ti, k, ps)
			if err != nil {
				return nil, false, err
			}
			return NewState(start), true, nil
		})
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

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
// nil) or all of them.
func (e *Engine) DeleteState(ctx context.Context, group string, topic *stream.TopicID) error {
	if topic != nil {
		t := *topic
		return e.store.deletePrefix(ctx, e.store.topicPrefix(group, t), func(k Key) bool { return k.Group == group && k.Topic == t })
	}
	return e.store.deletePrefix(ctx, e.store.groupPrefix(group), func(k Key) bool { return k.Group == group })
}

// afterChange wakes the sweeper when k has dead letters to write.
func (e *Engine) afterChange(k Key) {
	if st, ok := e.store.cachedState(k); ok && len(st.Letters) > 0 {
		e.kickLetters()
	}
}

func (e *Engine) kickLetters() {
	select {
	case e.letterKick <- struct{}{}:
	default:
	}
}

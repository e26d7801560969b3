package stream

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// maintainLoop campaigns for the maintainer role; the elected broker
// checkpoints, archives, applies retention and compaction, and collects
// garbage. Every output it produces is checked by the sequencer (stale
// plans are rejected) or by a compare-and-swap, so two maintainers for a
// moment are harmless.
func (e *Engine) maintainLoop() {
	defer e.wg.Done()
	for e.ctx.Err() == nil {
		if err := e.maintainTerm(); err != nil && e.ctx.Err() == nil {
			e.log.Warn("stream: maintainer term ended", "err", err)
			select {
			case <-e.ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (e *Engine) maintainTerm() error {
	sess, err := concurrency.NewSession(e.cli, concurrency.WithTTL(10), concurrency.WithContext(e.ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, e.opts.Prefix+"/maintainer")
	// A cancelled Campaign resigns on the client's own context and so
	// waits for etcd: with etcd out of reach, Close would hang on it. The
	// campaign runs apart and ends, at the latest, when the client closes.
	campaigned := make(chan error, 1)
	go func() { campaigned <- el.Campaign(e.ctx, fmt.Sprint(e.opts.BrokerID)) }()
	select {
	case err := <-campaigned:
		if err != nil {
			return err
		}
	case <-e.ctx.Done():
		return nil
	}
	e.log.Info("stream: elected maintainer")
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = el.Resign(ctx)
		cancel()
	}()
	// The term's passes run on the session's context, which ends with the
	// session (its lease expired or was revoked: another broker may be
	// elected) or the engine, not on the engine's alone (DESIGN §5a rule 6).
	termCtx := sess.Ctx()
	t := &maintainerTerm{ctx: termCtx, cli: e.cli, key: el.Key(), rev: el.Rev()}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastArchive, lastCkpt, lastOrphans time.Time
	var ckptEntries int64 = e.applied.Load()
	lastApplied := e.applied.Load()
	for {
		select {
		case <-e.ctx.Done():
			return nil
		case <-termCtx.Done():
			return fmt.Errorf("maintainer session lost")
		case <-tick.C:
		}
		// A tick and the session's end can be ready together: never start
		// a round once the term is over.
		if termCtx.Err() != nil {
			if e.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("maintainer session lost")
		}
		if n := e.applied.Load(); n == lastApplied {
			e.runPass(t, "tick", e.tick)
		}
		lastApplied = e.applied.Load()
		now := time.Now()
		if now.Sub(lastArchive) >= e.opts.ArchiveInterval {
			lastArchive = now
			e.runPass(t, "archive", e.Archive)
			e.runPass(t, "retention", e.ApplyRetention)
			e.runPass(t, "compaction", e.Compact)
			e.runPass(t, "gc", e.CollectGarbage)
		}
		if n := e.applied.Load(); n-ckptEntries >= e.opts.CheckpointEntries || now.Sub(lastCkpt) >= e.opts.CheckpointInterval {
			ckptEntries, lastCkpt = n, now
			e.runPass(t, "checkpoint", func(ctx context.Context) error { _, err := e.checkpoint(ctx, true); return err })
		}
		e.runPass(t, "txn-timeouts", e.AbortTimedOutTxns)
		if now.Sub(lastOrphans) >= 10*time.Minute {
			lastOrphans = now
			e.runPass(t, "orphans", e.CollectOrphans)
		}
	}
}

// runPass runs one maintenance pass of term t, unless the term is over.
func (e *Engine) runPass(t *maintainerTerm, name string, fn func(context.Context) error) {
	if t.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(withTerm(t.ctx, t), 5*time.Minute)
	defer cancel()
	if e.opts.passHook != nil {
		e.opts.passHook(ctx, name)
	}
	if err := fn(ctx); err != nil && t.ctx.Err() == nil {
		e.log.Warn("stream: maintenance pass failed", "pass", name, "err", err)
	}
}

// maintainerTerm is one term of this broker as the elected maintainer.
type maintainerTerm struct {
	ctx context.Context // ends when the election is lost or the engine closes
	cli *clientv3.Client
	key string // this broker's election key
	rev int64  // its create revision
}

// errNotMaintainer stops a pass whose broker is no longer the maintainer.
var errNotMaintainer = errors.New("stream: no longer the maintainer")

type termKey struct{}

// withTerm marks ctx as belonging to a pass of term t.
func withTerm(ctx context.Context, t *maintainerTerm) context.Context {
	return context.WithValue(ctx, termKey{}, t)
}

// checkMaintainer confirms, before a step that cannot be undone (deleting
// objects), that the pass running on ctx still belongs to the elected
// maintainer: its election key still exists with its create revision. The
// session's end is noticed only when its keep-alive fails, seconds after
// the lease is gone; etcd knows at once. A call outside a maintainer pass
// (tests and tools driving maintenance by hand) is not checked.
func checkMaintainer(ctx context.Context) error {
	t, ok := ctx.Value(termKey{}).(*maintainerTerm)
	if !ok {
		return nil
	}
	if t.ctx.Err() != nil {
		return errNotMaintainer
	}
	resp, err := t.cli.Get(ctx, t.key)
	if err != nil {
		return fmt.Errorf("%w: checking the maintainer election: %v", ErrStorage, err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != t.rev {
		return errNotMaintainer
	}
	return nil
}

// Checkpoint writes a checkpoint now (tests and shutdown use it).
// The log entries it covers are deleted before it returns.
func (e *Engine) Checkpoint(ctx context.Context) (int64, error) { return e.checkpoint(ctx, false) }

// archivePlan is one run of intake extents to rewrite into a segment.
type archivePlan struct {
	topic     TopicID
	partition int32
	extents   []extent
}

// segBufs recycles archival's segment buffers: each is written once and
// dropped, at the intake's rate.
var segBufs sync.Pool

// getSegBuf returns an empty buffer of at least size bytes' capacity.
func getSegBuf(size int64) []byte {
	if p, ok := segBufs.Get().(*[]byte); ok && int64(cap(*p)) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

// maxSegmentBytes caps one archival segment: small enough that one
// segment's fsync does not hold the device for long.
const maxSegmentBytes = 16 << 20

// Archive rewrites runs of intake extents into per-partition segments
// (DESIGN §4) when a run is large enough or old enough.
func (e *Engine) Archive(ctx context.Context) error { return e.archive(ctx, false) }

// ArchiveAll archives every intake extent regardless of size and age,
// without pacing.
func (e *Engine) ArchiveAll(ctx context.Context) error { return e.archive(ctx, true) }

func (e *Engine) archive(ctx context.Context, all bool) error {
	// Pace the segment writes: a burst of large fsync'd writes queues the
	// intake's small fsyncs behind it on the same device and shows up as
	// produce latency. Spread the pass over about one archive interval,
	// but never write slower than 1.5x the intake rate or 32 MiB/s, so
	// archival keeps up, nor slower than drains the backlog in four
	// intervals (below).
	rate := float64(32 << 20)
	if !all { // the pacing state belongs to the maintainer's passes
		now, intake := time.Now(), e.intakeBytes.Load()
		if dt := now.Sub(e.lastArchivePass).Seconds(); !e.lastArchivePass.IsZero() && dt > 0 {
			rate = max(rate, 1.5*float64(intake-e.lastArchiveIntake)/dt)
		}
		e.lastArchivePass, e.lastArchiveIntake = now, intake
	}
	// A pass makes at most one segment of maxSegmentBytes per partition,
	// and a paced pass reads at most about ArchiveReadBytes from the
	// store; while either leaves data behind, further passes follow for up
	// to one archive interval (a partition taking more than a segment a
	// second would otherwise never catch up).
	start := time.Now()
	for {
		plans, more, unarchived, oldest := e.archivePlans(all)
		e.m.unarchived.Set(float64(unarchived))
		e.m.unarchivedAge.Set(oldest.Seconds())
		trimmed := false
		if !all && e.remote {
			plans, trimmed = e.trimPlans(plans, e.opts.ArchiveReadBytes)
		}
		passCtx, passRate := ctx, rate
		if !all {
			// Drain a backlog within a few intervals whatever the intake
			// rate: produce held back by MaxUnarchivedBytes (or stopped)
			// would otherwise pace archival down to the little it lets
			// through, and stay held back.
			passRate = max(rate, float64(unarchived)/(4*e.opts.ArchiveInterval.Seconds()))
			// Spread each segment's writes too, not only the gaps between
			// segments: a segment written at device speed holds the
			// intake's fsyncs behind it for its whole length.
			passCtx = objstore.WithWritePace(ctx, passRate)
		}
		err := e.archivePass(passCtx, plans, all, passRate)
		if err != nil || !(trimmed || more) || time.Since(start) >= e.opts.ArchiveInterval {
			return err
		}
	}
}

// trimPlans shortens plans so that together they read about budget bytes
// that the cache does not hold, the same span of time from each partition
// (every plan then needs the same intake objects). A plan keeps at least
// its first extent and ArchiveMinBytes of the store's data.
func (e *Engine) trimPlans(plans []archivePlan, budget int64) ([]archivePlan, bool) {
	if len(plans) == 0 {
		return plans, false
	}
	limit := max(e.opts.ArchiveMinBytes, budget/int64(len(plans)))
	trimmed := false
	for i, p := range plans {
		var uncached int64
		for j, x := range p.extents {
			if x.Ctl != nil || e.cache.has(x.Obj) {
				continue
			}
			if uncached += x.Len; uncached > limit && j > 0 {
				plans[i].extents, trimmed = p.extents[:j], true
				break
			}
		}
	}
	return plans, trimmed
}

// archivePass archives plans, reading the store's data through one
// passReads, and writing at about rate unless all is set.
func (e *Engine) archivePass(ctx context.Context, plans []archivePlan, all bool, rate float64) error {
	reads := e.newPassReads(ctx, plans, e.opts.ArchiveReadBytes)
	defer reads.end()
	// One partition that fails (an unreadable object, a refused write)
	// does not hold back the others: every plan is tried, and the failures
	// are counted, logged and returned together.
	var errs []error
	for _, p := range plans {
		start := time.Now()
		n, err := e.archiveOne(ctx, p, reads)
		if err != nil {
			if ctx.Err() != nil {
				return errors.Join(append(errs, err)...)
			}
			e.m.archiveFailures.Inc()
			e.log.Error("stream: archiving a partition failed", "topic", hex.EncodeToString(p.topic[:]), "partition", p.partition, "err", err)
			errs = append(errs, fmt.Errorf("topic %x partition %d: %w", p.topic[:], p.partition, err))
			continue
		}
		if all {
			continue
		}
		if pause := time.Duration(float64(n)/rate*float64(time.Second)) - time.Since(start); pause > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
	}
	return errors.Join(errs...)
}

// archivePlans returns the runs of intake extents due for archival, whether
// a run stopped at maxSegmentBytes before its partition's last unarchived
// extent, the bytes still in intake objects and the age of the oldest of
// them (on the log clock).
func (e *Engine) archivePlans(all bool) ([]archivePlan, bool, int64, time.Duration) {
	maxExtents := 0
	defer func() { // after the lock is released (deferred calls run last first)
		e.m.unarchivedMax.Set(float64(maxExtents))
		if maxExtents >= e.opts.MaxUnarchivedExtents/2 {
			e.limitWarn("stream: archival is behind", "unarchived_extents", maxExtents, "cap", e.opts.MaxUnarchivedExtents)
		}
	}()
	e.mu.RLock()
	defer e.mu.RUnlock()
	// Ages on the log clock: an object's time is its writer's clock,
	// mapped through that broker's offset.
	now := time.UnixMilli(e.st.Clock)
	var plans []archivePlan
	var more bool
	var unarchived int64
	var oldestAge time.Duration
	ids := make([]TopicID, 0, len(e.st.Topics))
	for id := range e.st.Topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	for _, id := range ids {
		t := e.st.Topics[id]
		for pi, p := range t.Parts {
			i := 0
			for i < len(p.Extents) && p.Extents[i].Segment {
				i++
			}
			var run []extent
			var bytes int64
			oldest := now
			for j := i; j < len(p.Extents) && !p.Extents[j].Segment; j++ {
				x := p.Extents[j]
				if bytes+x.Len > maxSegmentBytes && len(run) > 0 {
					break
				}
				run = append(run, x)
				bytes += x.Len
				if ot, ok := e.objectLogTimeLocked(x.Obj); ok && ot.Before(oldest) {
					oldest = ot
				}
			}
			unarchived += p.unarchivedBytes()
			if i < len(p.Extents) {
				if ot, ok := e.objectLogTimeLocked(p.Extents[i].Obj); ok {
					oldestAge = max(oldestAge, now.Sub(ot))
				}
			}
			maxExtents = max(maxExtents, len(p.Extents)-i)
			if len(run) == 0 {
				continue
			}
			if all || bytes >= e.opts.ArchiveMinBytes || now.Sub(oldest) >= e.opts.ArchiveMaxAge {
				plans = append(plans, archivePlan{topic: id, partition: int32(pi), extents: run})
				if j := i + len(run); j < len(p.Extents) && !p.Extents[j].Segment {
					more = true
				}
			}
		}
	}
	return plans, more, unarchived, oldestAge
}

// segmentName names a new segment object of a partition starting at base:
// its base offset, the writing broker and a ULID of that broker's clock,
// which it also returns (ms).
func (e *Engine) segmentName(topic TopicID, partition int32, base int64) (string, int64) {
	_, id := e.newKey()
	return fmt.Sprintf("topics/%s/%d/%020d-%08x-%s", hex.EncodeToString(topic[:]), partition, base, uint32(e.opts.BrokerID), id), int64(id.Time())
}

// objectCreator reads which broker wrote an object and when (that broker's
// clock, ms) out of its name: intake/<broker>/<ulid> or
// topics/<id>/<partition>/<base>-<broker>-<ulid>. Segments named before
// they carried the broker report ok=false for the broker.
func objectCreator(obj string) (broker int32, ms int64, brokerOK, ok bool) {
	t, ok := objectTime(obj)
	if !ok {
		return 0, 0, false, false
	}
	ms = t.UnixMilli()
	rest := obj[:len(obj)-26]
	var hexID string
	switch {
	case strings.HasPrefix(obj, "intake/") && len(rest) == len("intake/")+9:
		hexID = rest[len("intake/") : len(rest)-1]
	case strings.HasPrefix(obj, "topics/") && len(rest) > 10 && rest[len(rest)-1] == '-' && rest[len(rest)-10] == '-':
		hexID = rest[len(rest)-9 : len(rest)-1]
	default:
		return 0, ms, false, true
	}
	v, err := strconv.ParseUint(hexID, 16, 32)
	if err != nil {
		return 0, ms, false, true
	}
	return int32(uint32(v)), ms, true, true
}

// objectTime reads the creation time out of an intake object's name.
func objectTime(obj string) (time.Time, bool) {
	if len(obj) < 26 {
		return time.Time{}, false
	}
	id, err := ulid.ParseStrict(obj[len(obj)-26:])
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(id.Time()), true
}

func (e *Engine) archiveOne(ctx context.Context, p archivePlan, reads *passReads) (int64, error) {
	var size int64
	for _, x := range p.extents {
		size += x.Len
	}
	seg := getSegBuf(size)
	cached := false // seg went to the cache, not back to the pool
	defer func() {
		if !cached {
			segBufs.Put(&seg) // Put does not retain data
		}
	}()
	// recent: every extent is in an object the cache holds, data flushed
	// moments ago that consumers are about to read.
	recent := true
	var chunks []chunk
	cur := chunk{Base: -1, MaxTS: -1}
	for _, x := range p.extents {
		recent = recent && (x.Ctl != nil || e.cache.has(x.Obj))
		// Recent objects come from the cache; older ones from the store,
		// read whole once for the pass and never into the cache, so
		// archival never evicts what consumers read.
		data, err := reads.extent(ctx, x)
		if err != nil {
			return 0, fmt.Errorf("archive: reading %s: %w", x.Obj, err)
		}
		start := len(seg)
		seg = append(seg, data...)
		setBaseOffset(seg[start:], x.Base)
		setLeaderEpoch(seg[start:], 0)
		if cur.Base < 0 {
			cur = chunk{Base: x.Base, Pos: int64(start), MaxTS: -1}
		}
		cur.Last = x.Last
		cur.Len = int64(len(seg)) - cur.Pos
		if x.MaxTS > cur.MaxTS {
			cur.MaxTS = x.MaxTS
		}
		if cur.Len >= e.opts.ChunkBytes {
			chunks = append(chunks, cur)
			cur = chunk{Base: -1, MaxTS: -1}
		}
	}
	if cur.Base >= 0 {
		chunks = append(chunks, cur)
	}
	first, last := p.extents[0].Base, p.extents[len(p.extents)-1].Last
	name, made := e.segmentName(p.topic, p.partition, first)
	// The store need not keep the segment in the page cache: a recent
	// one goes to the read cache once applied (below), and an older one
	// is read, if at all, by a consumer far behind.
	if err := e.store.Put(objstore.WithUncachedWrite(ctx), name, seg); err != nil {
		return 0, fmt.Errorf("archive: writing segment: %w", err)
	}
	res, err := e.propose(ctx, &entry{
		Kind: kindArchive, Topic: p.topic, Partition: p.partition,
		ReplacedFirst: first, ReplacedLast: last, ReplacedCount: len(p.extents),
		ReplacedDigest: extentsDigest(p.extents),
		Segment:        name, Chunks: chunks, SegmentTime: made,
	})
	if err != nil {
		return 0, err
	}
	if res.Err != nil {
		e.log.Debug("stream: archive plan rejected", "segment", name, "err", res.Err)
		return int64(len(seg)), nil
	}
	if recent {
		// From now on the segment answers reads of these offsets. Keep it
		// in memory in place of the intake objects (which then fall out of
		// the cache unread), or a consumer a few seconds behind the
		// producers reads from the object store what was in memory a
		// moment ago: on S3, one ranged GET per partition per fetch, and
		// it fell further behind.
		cached = e.cache.put(name, seg)
	}
	e.m.archived.Add(float64(len(seg)))
	return int64(len(seg)), nil
}

// ApplyRetention moves log start offsets forward by retention.ms and
// retention.bytes, whole extents at a time.
func (e *Engine) ApplyRetention(ctx context.Context) error {
	now := e.retentionNow()
	type trim struct {
		id  TopicID
		p   int32
		off int64
	}
	var trims []trim
	e.mu.RLock()
	for id, t := range e.st.Topics {
		tc := e.topicConfigLocked(t)
		if !tc.CleanupDelete {
			continue
		}
		for pi, p := range t.Parts {
			n := 0
			if tc.RetentionMs >= 0 {
				for n < len(p.Extents) && p.Extents[n].MaxTS < now-tc.RetentionMs {
					n++
				}
			}
			if tc.RetentionBytes >= 0 {
				size := p.Bytes
				for _, x := range p.Extents[:n] {
					size -= x.Len
				}
				for n < len(p.Extents) && size > tc.RetentionBytes {
					size -= p.Extents[n].Len
					n++
				}
			}
			if n == 0 {
				continue
			}
			off := p.Next
			if n < len(p.Extents) {
				off = p.Extents[n].Base
			}
			if off > p.LogStart {
				trims = append(trims, trim{id, int32(pi), off})
			}
		}
	}
	e.mu.RUnlock()
	for _, t := range trims {
		res, err := e.propose(ctx, &entry{Kind: kindTrim, Topic: t.id, Partition: t.p, Offset: t.off, Retention: true})
		if err != nil {
			return err
		}
		if res.Err != nil {
			e.log.Debug("stream: retention trim rejected", "err", res.Err)
		}
	}
	return nil
}

// CollectGarbage deletes objects nothing references any more, once they
// are older than the grace period and a checkpoint taken after they became
// garbage exists, then logs what it deleted.
func (e *Engine) CollectGarbage(ctx context.Context) error {
	ckpt := e.ckptRev.Load()
	e.mu.RLock()
	clock := e.st.Clock
	var due []string
	for _, g := range e.st.Garbage {
		if g.Rev <= ckpt && g.Clock <= clock-e.opts.Grace.Milliseconds() {
			due = append(due, g.Obj)
		}
	}
	e.mu.RUnlock()
	for len(due) > 0 {
		n := min(len(due), 1000)
		batch := due[:n]
		due = due[n:]
		if err := checkMaintainer(ctx); err != nil {
			return err
		}
		for _, o := range batch {
			if err := e.store.Delete(ctx, o); err != nil {
				return fmt.Errorf("gc: deleting %s: %w", o, err)
			}
			e.cache.remove(o)
			e.m.collected.Inc()
		}
		if _, err := e.propose(ctx, &entry{Kind: kindCollect, Objects: batch}); err != nil {
			return err
		}
	}
	return nil
}

// CollectOrphans deletes intake and segment objects that no log entry ever
// referenced (a broker died between writing an object and logging it).
// Only objects older than twice the sequencer's object age limit are
// considered: no entry naming them can be accepted any more (§5a rule 5).
// The listing is compared with the state only once this broker has
// replayed everything committed when the listing was taken: an entry
// committed but not yet applied here (replay behind or stuck) references
// its object all the same. Age is judged as the sequencer judges it, on
// the log clock: the time in the object's name is its writer's clock,
// mapped through that broker's offset. The store's modification time must
// agree, on this broker's clock, so an object whose name says nothing is
// never taken for old.
func (e *Engine) CollectOrphans(ctx context.Context) error {
	wallCutoff := e.opts.Now().Add(-2 * time.Duration(objectMaxAge) * time.Millisecond)
	var listed []string
	for _, prefix := range []string{"intake/", "topics/"} {
		err := e.store.List(ctx, prefix, func(o objstore.ObjectInfo) error {
			if !o.ModTime.After(wallCutoff) {
				listed = append(listed, o.Key)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(listed) == 0 {
		return nil
	}
	if err := e.SyncRead(ctx); err != nil {
		return fmt.Errorf("orphans: catching up with the log before comparing: %w", err)
	}
	e.mu.RLock()
	cutoff := time.UnixMilli(e.st.Clock - 2*objectMaxAge)
	known := make(map[string]bool, len(e.st.Garbage))
	for _, g := range e.st.Garbage {
		known[g.Obj] = true
	}
	var del []string
	for _, o := range listed {
		made, ok := e.objectLogTimeLocked(o)
		if ok && made.Before(cutoff) && e.st.ObjRefs[o] == 0 && !known[o] {
			del = append(del, o)
		}
	}
	e.mu.RUnlock()
	if len(del) == 0 {
		return nil
	}
	if err := checkMaintainer(ctx); err != nil {
		return err
	}
	for _, o := range del {
		if err := e.store.Delete(ctx, o); err != nil {
			return err
		}
		e.m.collected.Inc()
	}
	return nil
}

// objectLogTimeLocked returns when an object was written, on the log
// clock: the time in its name mapped through its writer's offset (this
// broker's own offset when the name does not say who wrote it, or no
// offset for a broker the log has not seen). Callers hold e.mu.
func (e *Engine) objectLogTimeLocked(obj string) (time.Time, bool) {
	broker, ms, brokerOK, ok := objectCreator(obj)
	if !ok {
		return time.Time{}, false
	}
	if !brokerOK {
		broker = e.opts.BrokerID
	}
	if bc := e.st.BrokerClocks[broker]; bc != nil {
		ms += bc.Off
	}
	return time.UnixMilli(ms), true
}

// retentionNow is the time retention and compaction compare record
// timestamps with: this broker's clock, but never ahead of its view of
// the log clock, so one broker's fast clock does not delete data early.
func (e *Engine) retentionNow() int64 {
	now := e.opts.Now().UnixMilli()
	e.mu.RLock()
	defer e.mu.RUnlock()
	if bc := e.st.BrokerClocks[e.opts.BrokerID]; bc != nil {
		return min(now, now+bc.Off)
	}
	return now
}

// tick moves the log clock while the log is quiet, so time-driven
// decisions (transaction timeouts, expiry, object ages) keep up with time
// without any broker reading another's clock (DESIGN §5a rule 1).
func (e *Engine) tick(ctx context.Context) error {
	_, err := e.propose(ctx, &entry{Kind: kindTick})
	return err
}

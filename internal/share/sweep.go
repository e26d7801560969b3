package share

import (
	"context"
	"time"
)

// sweepLoop expires the locks of the cached share partitions, writes
// their pending dead letters and fires Changed when a record waiting out a
// retry delay becomes due, until ctx ends.
func (e *Engine) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.opts.SweepInterval)
	defer t.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	e.dueScan()
	e.armDue(due)
	var lastEvict time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.dueKick:
			e.armDue(due)
			continue
		case <-due.C:
			e.fireDue()
			e.armDue(due)
			continue
		case <-t.C:
			e.sweepLocks(ctx)
			if now := e.opts.Now(); now.Sub(lastEvict) >= e.cacheIdle/10 {
				e.evictIdle(now)
				lastEvict = now
			}
		case <-e.letterKick:
		}
		e.writeLetters(ctx)
	}
}

// scheduleDue makes the sweeper fire Changed at due (unix ms on the
// engine's clock; 0: nothing), unless it waits for an earlier time.
func (e *Engine) scheduleDue(due int64) {
	if due == 0 {
		return
	}
	e.dueMu.Lock()
	earlier := e.nextDue == 0 || due < e.nextDue
	if earlier {
		e.nextDue = due
	}
	e.dueMu.Unlock()
	if earlier {
		select {
		case e.dueKick <- struct{}{}:
		default:
		}
	}
}

// fireDue fires Changed when the earliest due time has come (records
// became acquirable with no new log data, so long polls must look again),
// and looks up the next one.
func (e *Engine) fireDue() {
	now := nowMs(e.opts.Now())
	e.dueMu.Lock()
	next := e.nextDue
	e.dueMu.Unlock()
	if next == 0 || next > now {
		return
	}
	e.notify()
	e.dueScan()
}

// dueScan sets the next due time to the earliest after now among the
// cached share partitions (and any scheduled meanwhile).
func (e *Engine) dueScan() {
	now := nowMs(e.opts.Now())
	var next int64
	e.store.snapshot(func(st *State) bool {
		if d := st.NextDue(now); d != 0 && (next == 0 || d < next) {
			next = d
		}
		return false
	})
	e.dueMu.Lock()
	if e.nextDue <= now || (next != 0 && next < e.nextDue) {
		e.nextDue = next
	}
	e.dueMu.Unlock()
}

// armDue sets the timer to the next due time. Timers run on the machine's
// clock, the engine's may differ (tests move it by hand): a timer that
// fires early finds the time not come and is armed again.
func (e *Engine) armDue(t *time.Timer) {
	e.dueMu.Lock()
	next := e.nextDue
	e.dueMu.Unlock()
	wait := time.Hour
	if next != 0 {
		wait = max(time.Duration(next-nowMs(e.opts.Now()))*time.Millisecond, time.Millisecond)
	}
	t.Reset(wait)
}

// cacheIdle is how long a share partition stays cached (and swept) after
// this engine last served it: once a partition's leader moved to another
// broker, this one stops expiring its locks in competition.
const cacheIdle = 10 * time.Minute

// evictIdle drops from the cache the share partitions not served for
// cacheIdle, except those with dead letters to write. A partition first
// seen here (cached by an admin change or at start) counts from now.
func (e *Engine) evictIdle(now time.Time) {
	keys := e.store.snapshotAll(func(st *State) bool { return st == nil || len(st.Letters) == 0 })
	e.locksMu.Lock()
	defer e.locksMu.Unlock()
	for _, k := range keys {
		t, ok := e.served[k]
		if !ok {
			e.served[k] = now
			continue
		}
		if now.Sub(t) >= e.cacheIdle {
			e.store.forget(k)
			delete(e.served, k)
			e.recordBytes.Delete(k)
		}
	}
}

// sweepLocks persists the expiry of every cached share partition with a
// lock past its deadline.
func (e *Engine) sweepLocks(ctx context.Context) {
	now := nowMs(e.opts.Now())
	keys := e.store.snapshot(func(st *State) bool {
		d := st.NextDeadline()
		return d != 0 && d <= now
	})
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		if err := e.expire(ctx, k); err != nil && ctx.Err() == nil {
			e.log.Warn("share: lock expiry not persisted", "group", k.Group, "partition", k.Partition, "err", err)
		}
	}
}

// expire persists the lock expiry of one share partition.
func (e *Engine) expire(ctx context.Context, k Key) error {
	p := e.policy(e.opts.GroupConfig(k.Group))
	defer e.lock(k)()
	var stats Stats
	err := e.change(ctx, k, func(st *State) (*State, bool, error) {
		stats = Stats{}
		if st == nil {
			return nil, false, nil
		}
		st = st.Clone()
		stats = st.Expire(nowMs(e.opts.Now()), p)
		return st, stats.Timeouts > 0, nil
	})
	if err != nil {
		return err
	}
	e.m.record(k.Group, stats)
	if stats.Timeouts > 0 {
		e.notify()
	}
	return nil
}

// foreignLetterGrace is how long letters another broker persisted may stay
// pending before this one writes them (that broker died, or cannot write).
const foreignLetterGrace = 5 * time.Second

// writeLetters hands the pending dead letters of the cached share
// partitions to the writer and removes those written from the state. A
// partition whose write failed is tried again later, backing off.
func (e *Engine) writeLetters(ctx context.Context) {
	keys := e.store.snapshot(func(st *State) bool { return len(st.Letters) > 0 })
	now := e.opts.Now()
	pending := make(map[Key]bool, len(keys))
	for _, k := range keys {
		pending[k] = true
	}
	for k := range e.pendingSince {
		if !pending[k] {
			delete(e.pendingSince, k)
		}
	}
	e.forgetWritten(pending)
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		if r, ok := e.retryAt[k]; ok && now.Before(r.at) {
			continue
		}
		st, ok := e.store.cachedState(k)
		if !ok || len(st.Letters) == 0 {
			continue
		}
		var letters []DeadLetter
		e.ownMu.Lock()
		for _, l := range st.Letters {
			if e.own[k][l.Offset] {
				letters = append(letters, l)
			}
		}
		e.ownMu.Unlock()
		if len(letters) < len(st.Letters) {
			// Some were persisted by another broker, which writes them;
			// take them over only once they have waited the grace.
			since, ok := e.pendingSince[k]
			if !ok {
				e.pendingSince[k] = now
			} else if now.Sub(since) >= e.letterGrace {
				letters = st.Letters
			}
		}
		if len(letters) == 0 {
			continue
		}
		if err := e.writeLettersOf(ctx, k, letters); err != nil {
			if ctx.Err() != nil {
				return
			}
			r := e.retryAt[k]
			r.backoff = min(max(2*r.backoff, 200*time.Millisecond), 30*time.Second)
			r.at = now.Add(r.backoff)
			e.retryAt[k] = r
			e.log.Warn("share: dead letters not written", "group", k.Group, "partition", k.Partition, "letters", len(letters), "err", err)
			continue
		}
		delete(e.retryAt, k)
		if len(letters) == len(st.Letters) {
			delete(e.pendingSince, k)
		}
		e.ownMu.Lock()
		for _, l := range letters {
			delete(e.own[k], l.Offset)
		}
		if len(e.own[k]) == 0 {
			delete(e.own, k)
		}
		e.ownMu.Unlock()
	}
}

// forgetWritten drops from own the letters no longer pending (another
// broker wrote them, or the state was deleted or reset). The cache is read
// under ownMu: markOwn runs after the write that added letters reached the
// cache, so letters marked meanwhile are never mistaken for written ones.
func (e *Engine) forgetWritten(pending map[Key]bool) {
	e.ownMu.Lock()
	defer e.ownMu.Unlock()
	for k, offs := range e.own {
		if pending[k] {
			continue // writeLetters decides
		}
		st, cached := e.store.lookup(k)
		if !cached {
			continue // not known here now: keep
		}
		still := map[int64]bool{}
		if st != nil {
			for _, l := range st.Letters {
				still[l.Offset] = true
			}
		}
		for off := range offs {
			if !still[off] {
				delete(offs, off)
			}
		}
		if len(offs) == 0 {
			delete(e.own, k)
		}
	}
}

// writeLettersOf writes letters of k, then removes them from the state.
func (e *Engine) writeLettersOf(ctx context.Context, k Key, letters []DeadLetter) error {
	cfg := e.opts.GroupConfig(k.Group)
	if e.opts.DeadLetters != nil && cfg.DLQTopic != "" {
		if err := e.opts.DeadLetters.Write(ctx, k, cfg, letters); err != nil {
			return err
		}
	} else {
		e.log.Warn("share: dead letters dropped: the group has no dead-letter topic any more", "group", k.Group, "partition", k.Partition, "letters", len(letters))
	}
	defer e.lock(k)()
	return e.store.update(ctx, k, func(st *State) (*State, bool, error) {
		if st == nil || len(st.Letters) == 0 {
			return nil, false, nil
		}
		st = st.Clone()
		n := len(st.Letters)
		st.RemoveLetters(letters)
		return st, len(st.Letters) != n, nil
	})
}

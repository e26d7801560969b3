package share

import (
	"context"
	"time"
)

// sweepLoop expires the locks of the cached share partitions and writes
// their pending dead letters, until ctx ends.
func (e *Engine) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.sweepLocks(ctx)
		case <-e.letterKick:
		}
		e.writeLetters(ctx)
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
	err := e.store.update(ctx, k, func(st *State) (*State, bool, error) {
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
	e.afterChange(k)
	return nil
}

// writeLetters hands the pending dead letters of the cached share
// partitions to the writer and removes those written from the state. A
// partition whose write failed is tried again later, backing off.
func (e *Engine) writeLetters(ctx context.Context) {
	keys := e.store.snapshot(func(st *State) bool { return len(st.Letters) > 0 })
	now := e.opts.Now()
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
		if err := e.writeLettersOf(ctx, k, st.Letters); err != nil {
			if ctx.Err() != nil {
				return
			}
			r := e.retryAt[k]
			r.backoff = min(max(2*r.backoff, 200*time.Millisecond), 30*time.Second)
			r.at = now.Add(r.backoff)
			e.retryAt[k] = r
			e.log.Warn("share: dead letters not written", "group", k.Group, "partition", k.Partition, "letters", len(st.Letters), "err", err)
			continue
		}
		delete(e.retryAt, k)
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

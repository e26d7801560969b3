package metadata

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrMirrorClosed is returned by Mirror.WaitRev once the mirror is closed.
var ErrMirrorClosed = errors.New("metadata: mirror closed")

// Delays between reloads after a watch broke: the first, and the most the
// doubling reaches.
const (
	mirrorMinDelay = 50 * time.Millisecond
	mirrorMaxDelay = 2 * time.Second
	// mirrorProgressEvery is how often a waiting WaitRev asks again for a
	// progress notification.
	mirrorProgressEvery = 100 * time.Millisecond
)

// MirrorOptions configures a Mirror. Client, Prefix, Decode and Publish
// are required.
type MirrorOptions[T any] struct {
	Client *clientv3.Client
	// Prefix is the etcd key prefix mirrored.
	Prefix string
	// What names the mirrored data in log messages, e.g. "ACLs".
	What string
	// Decode turns a stored key (the whole etcd key) and value into an
	// item. It refuses a value it cannot use by returning false, logging
	// why itself: the key is then left out of a load, and a watched put
	// leaves the key's previous item in place.
	Decode func(key string, value []byte) (T, bool)
	// Publish is called with every item, in key order (as etcd lists
	// them, so every broker builds the same thing even where two keys
	// decode to one name), after the initial load, after each reload and
	// after each watch response, under the mirror's lock and before WaitRev
	// returns for that revision, so a writer that waited sees its write in
	// whatever Publish builds. The slice is Publish's to keep; Publish must
	// not call the mirror.
	Publish func(items []T)
	// Logger receives watch failures; discarded when nil.
	Logger *slog.Logger
}

// Mirror keeps an in-memory copy of everything under an etcd prefix: Start
// loads it and starts a watch from the next revision; the watch applies
// puts and deletes, and when it breaks (a compaction, a lost leader) the
// mirror reloads everything, backing off while etcd fails. WaitRev lets a
// writer return once the copy shows its write.
//
// The watch goroutine is the mirror's: Close stops it and waits for it.
// Safe for concurrent use.
type Mirror[T any] struct {
	o MirrorOptions[T]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	items   map[string]T
	rev     int64         // the etcd revision items reflect
	changed chan struct{} // closed and replaced after every publish
}

// NewMirror returns a mirror of o.Prefix; Start loads it.
func NewMirror[T any](o MirrorOptions[T]) *Mirror[T] {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mirror[T]{o: o, ctx: ctx, cancel: cancel, items: map[string]T{}, changed: make(chan struct{})}
}

// Start loads everything under the prefix, publishes it and starts the
// watch. It returns once the copy holds what etcd held at the call; an
// error is the etcd client's, and nothing is then started. Call it once.
func (m *Mirror[T]) Start(ctx context.Context) error {
	rev, err := m.load(ctx)
	if err != nil {
		return err
	}
	m.watchFrom(rev)
	return nil
}

// watchFrom starts the watch goroutine on the revisions after rev.
func (m *Mirror[T]) watchFrom(rev int64) {
	m.wg.Add(1)
	go m.run(rev)
}

// Close stops the watch and waits for it. WaitRev then fails with
// ErrMirrorClosed. Closing twice, or a mirror never started, is harmless.
func (m *Mirror[T]) Close() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

// Rev returns the etcd revision the copy reflects.
func (m *Mirror[T]) Rev() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev
}

// WaitRev waits until the copy reflects revision rev (a write's response
// header revision) and Publish has seen it. It returns ctx's error when ctx
// ends first and ErrMirrorClosed when the mirror is closed first.
//
// A write need not make an event under the prefix (deleting a key that is
// not there, or a transaction that changed other keys), so while it waits
// WaitRev asks etcd for a progress notification: the watch then reports
// the revision it has caught up to, and the wait ends without an event.
func (m *Mirror[T]) WaitRev(ctx context.Context, rev int64) error {
	var tick <-chan time.Time
	for {
		m.mu.Lock()
		ok, ch := m.rev >= rev, m.changed
		m.mu.Unlock()
		if ok {
			return nil
		}
		if tick == nil {
			t := time.NewTicker(mirrorProgressEvery)
			defer t.Stop()
			tick = t.C
			m.requestProgress()
		}
		select {
		case <-ch:
		case <-tick:
			m.requestProgress()
		case <-ctx.Done():
			return ctx.Err()
		case <-m.ctx.Done():
			return ErrMirrorClosed
		}
	}
}

// requestProgress asks etcd for a progress notification on the mirror's
// watch stream (the one its context selects). A failure only delays the
// wait until the next event or request.
func (m *Mirror[T]) requestProgress() {
	_ = m.o.Client.RequestProgress(clientv3.WithRequireLeader(m.ctx))
}

// load replaces the copy with everything under the prefix and returns the
// revision it was read at.
func (m *Mirror[T]) load(ctx context.Context) (int64, error) {
	resp, err := m.o.Client.Get(ctx, m.o.Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	items := make(map[string]T, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if v, ok := m.o.Decode(string(kv.Key), kv.Value); ok {
			items[string(kv.Key)] = v
		}
	}
	m.mu.Lock()
	m.items = items
	m.publishLocked(resp.Header.Revision)
	m.mu.Unlock()
	return resp.Header.Revision, nil
}

// apply applies one watch response. The copy then reflects the revision
// of the last event applied, not the response's header revision: a watch
// that catches up delivers its backlog in several responses that all carry
// the current revision (DESIGN §5a rule 7). Only a progress notification,
// sent once the watch has caught up, moves the copy to its header revision.
func (m *Mirror[T]) apply(wr clientv3.WatchResponse) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if wr.IsProgressNotify() {
		m.advanceLocked(wr.Header.Revision)
		return
	}
	rev := m.rev
	for _, ev := range wr.Events {
		k := string(ev.Kv.Key)
		if ev.Type == clientv3.EventTypeDelete {
			delete(m.items, k)
		} else if v, ok := m.o.Decode(k, ev.Kv.Value); ok {
			m.items[k] = v
		}
		rev = max(rev, ev.Kv.ModRevision)
	}
	m.publishLocked(rev)
}

// advanceLocked records that the copy reflects rev, with nothing changed,
// and wakes WaitRev. Callers hold mu.
func (m *Mirror[T]) advanceLocked(rev int64) {
	if rev <= m.rev {
		return
	}
	m.rev = rev
	close(m.changed)
	m.changed = make(chan struct{})
}

// publishLocked hands the items to Publish, records rev and wakes WaitRev.
// Callers hold mu.
func (m *Mirror[T]) publishLocked(rev int64) {
	keys := slices.Sorted(maps.Keys(m.items))
	items := make([]T, len(keys))
	for i, k := range keys {
		items[i] = m.items[k]
	}
	m.o.Publish(items)
	if rev > m.rev {
		m.rev = rev
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// run applies changes from rev+1 on until Close, reloading everything when
// the watch breaks.
func (m *Mirror[T]) run(rev int64) {
	defer m.wg.Done()
	delay := mirrorMinDelay
	for {
		wch := m.o.Client.Watch(clientv3.WithRequireLeader(m.ctx), m.o.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if err := wr.Err(); err != nil {
				if m.ctx.Err() == nil {
					m.o.Logger.Warn("watch of "+m.o.What+" broken", "err", err)
				}
				break
			}
			m.apply(wr)
			rev, delay = m.Rev(), mirrorMinDelay
		}
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, mirrorMaxDelay)
			r, err := m.load(m.ctx)
			if err == nil {
				rev = r
				break
			}
			if m.ctx.Err() == nil {
				m.o.Logger.Warn("reloading "+m.o.What, "err", err)
			}
		}
	}
}

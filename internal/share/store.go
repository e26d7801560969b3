package share

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/stream"
)

// store keeps share-partition states in etcd, one key per share partition:
//
//	<prefix>/share/<escaped group>/<topic id hex>/<partition>
//
// Every write is a transaction conditioned on the key's ModRevision (0:
// the key must not exist). The store caches the keys this broker has
// touched and follows the whole prefix with one watch, so a cached state is
// replaced when another broker changes it; a write that loses the race
// learns the current value from the same transaction and is retried by
// the caller on it.
type store struct {
	cli    *clientv3.Client
	prefix string // <prefix>/share/
	log    *slog.Logger
	// onRemote is called (without locks held) when the watch brings a
	// change this store did not write.
	onRemote func(Key)

	mu    sync.Mutex
	cache map[Key]*cached
}

// cached is what the store knows of one key: its state (nil when the key
// does not exist), its ModRevision for the next compare-and-swap (0 when
// absent) and the revision at which this was known.
type cached struct {
	st   *State
	mod  int64
	seen int64
}

// maxCASAttempts bounds the retries of one change lost to other brokers.
const maxCASAttempts = 8

// errConflict: a compare-and-swap lost; the cache holds the winner's value.
var errConflict = errors.New("share: concurrent change of a share partition")

func newStore(cli *clientv3.Client, prefix string, log *slog.Logger) *store {
	return &store{cli: cli, prefix: prefix + "/share/", log: log, cache: map[Key]*cached{}}
}

func (s *store) groupPrefix(group string) string { return s.prefix + url.PathEscape(group) + "/" }

func (s *store) topicPrefix(group string, topic stream.TopicID) string {
	return s.groupPrefix(group) + hex.EncodeToString(topic[:]) + "/"
}

func (s *store) key(k Key) string {
	return s.topicPrefix(k.Group, k.Topic) + strconv.Itoa(int(k.Partition))
}

// parseKey is the inverse of key.
func (s *store) parseKey(etcdKey string) (Key, bool) {
	rest, ok := strings.CutPrefix(etcdKey, s.prefix)
	if !ok {
		return Key{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return Key{}, false
	}
	group, err := url.PathUnescape(parts[0])
	if err != nil {
		return Key{}, false
	}
	id, err := hex.DecodeString(parts[1])
	if err != nil || len(id) != 16 {
		return Key{}, false
	}
	p, err := strconv.ParseInt(parts[2], 10, 32)
	if err != nil || p < 0 {
		return Key{}, false
	}
	k := Key{Group: group, Partition: int32(p)}
	copy(k.Topic[:], id)
	return k, true
}

func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// remember records what is known of k at revision seen, unless the cache
// already knows something newer. It reports whether the cache changed.
func (s *store) remember(k Key, st *State, mod, seen int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[k]; ok && c.seen >= seen {
		return false
	}
	s.cache[k] = &cached{st: st, mod: mod, seen: seen}
	return true
}

// get returns a private copy of k's state (nil when absent) and the
// ModRevision to condition a write on.
func (s *store) get(ctx context.Context, k Key) (*State, int64, error) {
	s.mu.Lock()
	c, ok := s.cache[k]
	s.mu.Unlock()
	if ok {
		return cloneOrNil(c.st), c.mod, nil
	}
	resp, err := s.cli.Get(ctx, s.key(k))
	if err != nil {
		return nil, 0, unavailable(err)
	}
	var st *State
	var mod int64
	if len(resp.Kvs) > 0 {
		kv := resp.Kvs[0]
		if st, err = DecodeState(kv.Value); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", s.key(k), err)
		}
		mod = kv.ModRevision
	}
	s.remember(k, st, mod, resp.Header.Revision)
	s.mu.Lock()
	c = s.cache[k]
	s.mu.Unlock()
	return cloneOrNil(c.st), c.mod, nil
}

func cloneOrNil(st *State) *State {
	if st == nil {
		return nil
	}
	return st.Clone()
}

// put writes st (nil deletes) if k is still at ModRevision mod. On a lost
// race it returns errConflict and the cache holds the current value.
func (s *store) put(ctx context.Context, k Key, st *State, mod int64) error {
	ek := s.key(k)
	var op clientv3.Op
	if st == nil {
		op = clientv3.OpDelete(ek)
	} else {
		op = clientv3.OpPut(ek, string(st.Encode()))
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(ek), "=", mod)).
		Then(op).
		Else(clientv3.OpGet(ek)).
		Commit()
	if err != nil {
		// The outcome is unknown: forget the key so the next use reads it.
		s.forget(k)
		return unavailable(err)
	}
	rev := resp.Header.Revision
	if resp.Succeeded {
		newMod := rev
		if st == nil {
			newMod = 0
		}
		s.remember(k, cloneOrNil(st), newMod, rev)
		return nil
	}
	var cur *State
	var curMod int64
	if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
		if cur, err = DecodeState(r.Kvs[0].Value); err != nil {
			s.forget(k)
			return fmt.Errorf("%s: %w", ek, err)
		}
		curMod = r.Kvs[0].ModRevision
	}
	s.remember(k, cur, curMod, rev)
	return errConflict
}

func (s *store) forget(k Key) {
	s.mu.Lock()
	delete(s.cache, k)
	s.mu.Unlock()
}

// update applies fn to a private copy of k's state (nil when absent) and
// writes the result when fn reports a change, retrying on lost races. fn
// may be called several times; it returns the new state (nil deletes).
func (s *store) update(ctx context.Context, k Key, fn func(st *State) (*State, bool, error)) error {
	for attempt := 0; ; attempt++ {
		st, mod, err := s.get(ctx, k)
		if err != nil {
			return err
		}
		next, changed, err := fn(st)
		if err != nil || !changed {
			return err
		}
		err = s.put(ctx, k, next, mod)
		if !errors.Is(err, errConflict) {
			return err
		}
		if attempt+1 >= maxCASAttempts {
			return fmt.Errorf("%w: %d attempts lost to concurrent changes", ErrUnavailable, maxCASAttempts)
		}
	}
}

// createAll creates the keys with their states in one transaction if none
// of them exists; ok is false (and nothing written) otherwise. Like list,
// it caches nothing.
func (s *store) createAll(ctx context.Context, keys []Key, states map[Key]*State) (bool, error) {
	cmps := make([]clientv3.Cmp, 0, len(keys))
	ops := make([]clientv3.Op, 0, len(keys))
	for _, k := range keys {
		ek := s.key(k)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(ek), "=", 0))
		ops = append(ops, clientv3.OpPut(ek, string(states[k].Encode())))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		for _, k := range keys {
			s.forget(k)
		}
		return false, unavailable(err)
	}
	return resp.Succeeded, nil
}

// list reads every share partition state of a group, fresh from etcd. It
// caches nothing: the cache holds the share partitions this broker serves,
// whose locks its sweep expires, not every one a tool looked at.
func (s *store) list(ctx context.Context, group string) (map[Key]*State, error) {
	resp, err := s.cli.Get(ctx, s.groupPrefix(group), clientv3.WithPrefix())
	if err != nil {
		return nil, unavailable(err)
	}
	out := make(map[Key]*State, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k, ok := s.parseKey(string(kv.Key))
		if !ok || k.Group != group {
			continue
		}
		st, err := DecodeState(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		out[k] = st
	}
	return out, nil
}

// deletePrefix removes every key under p and forgets the cached ones.
func (s *store) deletePrefix(ctx context.Context, p string, match func(Key) bool) error {
	resp, err := s.cli.Delete(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return unavailable(err)
	}
	s.mu.Lock()
	for k := range s.cache {
		if match(k) {
			s.cache[k] = &cached{seen: resp.Header.Revision}
		}
	}
	s.mu.Unlock()
	return nil
}

// snapshot returns the cached keys whose state satisfies pick, sorted.
func (s *store) snapshot(pick func(*State) bool) []Key {
	s.mu.Lock()
	var out []Key
	for k, c := range s.cache {
		if c.st != nil && pick(c.st) {
			out = append(out, k)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i], out[j]) })
	return out
}

// snapshotAll is snapshot including the keys cached as absent (pick gets
// nil for them).
func (s *store) snapshotAll(pick func(*State) bool) []Key {
	s.mu.Lock()
	var out []Key
	for k, c := range s.cache {
		if pick(c.st) {
			out = append(out, k)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i], out[j]) })
	return out
}

func keyLess(a, b Key) bool {
	if a.Group != b.Group {
		return a.Group < b.Group
	}
	if c := strings.Compare(string(a.Topic[:]), string(b.Topic[:])); c != 0 {
		return c < 0
	}
	return a.Partition < b.Partition
}

// lookup returns a copy of k's cached state (nil when cached as absent)
// and whether k is cached at all.
func (s *store) lookup(k Key) (*State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[k]
	if !ok {
		return nil, false
	}
	return cloneOrNil(c.st), true
}

// cachedState returns a copy of k's cached state, if cached and present.
func (s *store) cachedState(k Key) (*State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[k]
	if !ok || c.st == nil {
		return nil, false
	}
	return c.st.Clone(), true
}

// loadPending caches every share partition that has dead letters not yet
// written (after a restart nobody else would write them) and returns them
// with the revision to follow the prefix from.
func (s *store) loadPending(ctx context.Context) (int64, []Key, error) {
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, nil, unavailable(err)
	}
	var pending []Key
	for _, kv := range resp.Kvs {
		k, ok := s.parseKey(string(kv.Key))
		if !ok {
			continue
		}
		st, err := DecodeState(kv.Value)
		if err != nil {
			s.log.Warn("share: unreadable share partition state", "key", string(kv.Key), "err", err)
			continue
		}
		if len(st.Letters) > 0 {
			s.remember(k, st, kv.ModRevision, resp.Header.Revision)
			pending = append(pending, k)
		}
	}
	return resp.Header.Revision, pending, nil
}

// refresh reads every cached key again (a key it cannot read is forgotten,
// so its next use reads it).
func (s *store) refresh(ctx context.Context) {
	s.mu.Lock()
	keys := make([]Key, 0, len(s.cache))
	for k := range s.cache {
		keys = append(keys, k)
	}
	s.cache = map[Key]*cached{}
	s.mu.Unlock()
	for _, k := range keys {
		if _, _, err := s.get(ctx, k); err != nil {
			s.forget(k)
		}
	}
}

// follow watches the prefix from rev+1 until ctx ends, replacing cached
// states with newer ones. After a compaction it reads the cached keys
// again and follows on from the compaction.
func (s *store) follow(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if resp.CompactRevision > 0 {
					// Changes between rev and the compaction are gone
					// from the watch: read the cached keys again.
					s.refresh(ctx)
					rev = resp.CompactRevision - 1
				}
				break
			}
			for _, ev := range resp.Events {
				k, ok := s.parseKey(string(ev.Kv.Key))
				if !ok {
					continue
				}
				s.mu.Lock()
				_, touched := s.cache[k]
				s.mu.Unlock()
				rev = max(rev, ev.Kv.ModRevision)
				if !touched {
					continue
				}
				var st *State
				var mod int64
				if ev.Type == clientv3.EventTypePut {
					var err error
					if st, err = DecodeState(ev.Kv.Value); err != nil {
						s.log.Warn("share: unreadable share partition state", "key", string(ev.Kv.Key), "err", err)
						s.forget(k)
						continue
					}
					mod = ev.Kv.ModRevision
				}
				if s.remember(k, st, mod, ev.Kv.ModRevision) && s.onRemote != nil {
					s.onRemote(k)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

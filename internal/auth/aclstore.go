package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACLSet is an immutable, indexed snapshot of every ACL. The zero value
// and nil are empty.
type ACLSet struct {
	all []ACL
	// byType indexes each resource type's ACLs.
	byType map[kmsg.ACLResourceType]*typeACLs
}

type typeACLs struct {
	literal  map[string][]ACL // by exact name; "*" is the wildcard
	prefixed []ACL
	matchAll bool // any binding at all (for the by-type check)
}

// NewACLSet indexes acls.
func NewACLSet(acls []ACL) *ACLSet {
	s := &ACLSet{all: acls, byType: make(map[kmsg.ACLResourceType]*typeACLs)}
	for _, a := range acls {
		t := s.byType[a.ResourceType]
		if t == nil {
			t = &typeACLs{literal: make(map[string][]ACL)}
			s.byType[a.ResourceType] = t
		}
		t.matchAll = true
		if a.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			t.prefixed = append(t.prefixed, a)
		} else {
			t.literal[a.ResourceName] = append(t.literal[a.ResourceName], a)
		}
	}
	return s
}

// All returns every ACL, in store key order. Callers must not modify it.
func (s *ACLSet) All() []ACL {
	if s == nil {
		return nil
	}
	return s.all
}

// Matching calls fn with every ACL whose pattern applies to the resource
// (literal name, literal "*", prefixes), stopping when fn returns false.
func (s *ACLSet) Matching(typ kmsg.ACLResourceType, name string, fn func(ACL) bool) {
	if s == nil {
		return
	}
	t := s.byType[typ]
	if t == nil {
		return
	}
	for _, a := range t.literal[name] {
		if !fn(a) {
			return
		}
	}
	if name != Wildcard {
		for _, a := range t.literal[Wildcard] {
			if !fn(a) {
				return
			}
		}
	}
	for _, a := range t.prefixed {
		if strings.HasPrefix(name, a.ResourceName) && !fn(a) {
			return
		}
	}
}

// OfType calls fn with every ACL of a resource type.
func (s *ACLSet) OfType(typ kmsg.ACLResourceType, fn func(ACL)) {
	if s == nil || s.byType[typ] == nil {
		return
	}
	for _, a := range s.all {
		if a.ResourceType == typ {
			fn(a)
		}
	}
}

// DefaultACLPrefix is the etcd prefix of the whole cluster.
const DefaultACLPrefix = "/runnel"

// maxTxnOps bounds the operations of one etcd transaction (etcd's default
// limit is 128).
const maxTxnOps = 100

// ACLStore keeps ACLs in etcd, one key per binding under
// "<prefix>/security/acls/", and an in-memory copy kept current by a watch,
// so a binding created through any broker applies on every broker as soon
// as the watch delivers it (well within a second).
//
// Its watch goroutine is owned by the store: Close stops it and waits.
type ACLStore struct {
	cli    *clientv3.Client
	prefix string // "<prefix>/security/acls/"
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	set atomic.Pointer[ACLSet] // read on every authorization, lock-free

	mu      sync.Mutex
	acls    map[string]ACL // by key below prefix
	rev     int64          // etcd revision the cache reflects
	changed chan struct{}  // closed and replaced on every change of rev
}

// ErrStoreClosed is returned by store calls after Close.
var ErrStoreClosed = errors.New("auth: ACL store closed")

// OpenACLStore loads every ACL under prefix (DefaultACLPrefix when empty)
// and starts watching for changes. It returns once the cache holds what
// etcd held at the call.
func OpenACLStore(ctx context.Context, cli *clientv3.Client, prefix string, log *slog.Logger) (*ACLStore, error) {
	if prefix == "" {
		prefix = DefaultACLPrefix
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &ACLStore{
		cli:     cli,
		prefix:  strings.TrimSuffix(prefix, "/") + "/security/acls/",
		log:     log,
		ctx:     sctx,
		cancel:  cancel,
		changed: make(chan struct{}),
	}
	rev, err := s.load(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s.wg.Add(1)
	go s.watchLoop(rev)
	return s, nil
}

// Close stops the watch.
func (s *ACLStore) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Snapshot returns the current ACLs.
func (s *ACLStore) Snapshot() *ACLSet {
	return s.set.Load()
}

// load replaces the cache with everything under the prefix.
func (s *ACLStore) load(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("auth: load ACLs: %w", err)
	}
	m := make(map[string]ACL, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if a, ok := s.decode(kv.Key, kv.Value); ok {
			m[strings.TrimPrefix(string(kv.Key), s.prefix)] = a
		}
	}
	s.mu.Lock()
	s.acls = m
	s.publishLocked(resp.Header.Revision)
	s.mu.Unlock()
	return resp.Header.Revision, nil
}

func (s *ACLStore) decode(key, value []byte) (ACL, bool) {
	var a ACL
	if err := json.Unmarshal(value, &a); err != nil {
		s.log.Warn("ignoring an undecodable ACL", "key", string(key), "err", err)
		return ACL{}, false
	}
	if err := a.Validate(); err != nil {
		s.log.Warn("ignoring an invalid ACL", "key", string(key), "err", err)
		return ACL{}, false
	}
	return a, true
}

// publishLocked rebuilds the snapshot and wakes revision waiters.
func (s *ACLStore) publishLocked(rev int64) {
	keys := make([]string, 0, len(s.acls))
	for k := range s.acls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	all := make([]ACL, 0, len(keys))
	for _, k := range keys {
		all = append(all, s.acls[k])
	}
	s.set.Store(NewACLSet(all))
	if rev > s.rev {
		s.rev = rev
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// watchLoop applies changes from rev+1 on, reloading everything when the
// watch breaks (a compaction, a lost leader).
func (s *ACLStore) watchLoop(rev int64) {
	defer s.wg.Done()
	delay := 50 * time.Millisecond
	for {
		wch := s.cli.Watch(clientv3.WithRequireLeader(s.ctx), s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wresp := range wch {
			if err := wresp.Err(); err != nil {
				s.log.Warn("ACL watch broken", "err", err)
				break
			}
			s.mu.Lock()
			for _, ev := range wresp.Events {
				k := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
				if ev.Type == clientv3.EventTypeDelete {
					delete(s.acls, k)
				} else if a, ok := s.decode(ev.Kv.Key, ev.Kv.Value); ok {
					s.acls[k] = a
				}
			}
			s.publishLocked(wresp.Header.Revision)
			s.mu.Unlock()
			rev = wresp.Header.Revision
			delay = 50 * time.Millisecond
		}
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 2*time.Second)
			r, err := s.load(s.ctx)
			if err == nil {
				rev = r
				break
			}
			s.log.Warn("reloading ACLs", "err", err)
		}
	}
}

// waitRev waits until the cache reflects revision rev.
func (s *ACLStore) waitRev(ctx context.Context, rev int64) error {
	for {
		s.mu.Lock()
		ok, ch := s.rev >= rev, s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrStoreClosed
		}
	}
}

// Create stores each binding (storing one that exists changes nothing) and
// returns one error per binding: ErrInvalidACL for a binding Validate
// rejects, or the store's error. It returns once this store's cache holds
// them.
func (s *ACLStore) Create(ctx context.Context, acls []ACL) []error {
	errs := make([]error, len(acls))
	var ops []clientv3.Op
	var idx []int
	seen := make(map[string]bool) // etcd refuses a key twice in one txn
	for i, a := range acls {
		if err := a.Validate(); err != nil {
			errs[i] = err
			continue
		}
		v, err := json.Marshal(a)
		if err != nil {
			errs[i] = fmt.Errorf("auth: encode ACL: %w", err)
			continue
		}
		idx = append(idx, i)
		if k := s.prefix + a.key(); !seen[k] {
			seen[k] = true
			ops = append(ops, clientv3.OpPut(k, string(v)))
		}
	}
	var last int64
	var failed error
	for start := 0; start < len(ops); start += maxTxnOps {
		end := min(start+maxTxnOps, len(ops))
		resp, err := s.cli.Txn(ctx).Then(ops[start:end]...).Commit()
		if err != nil {
			failed = fmt.Errorf("auth: store ACL: %w", err)
			break
		}
		last = resp.Header.Revision
	}
	if failed != nil {
		// Some may be stored: creating them again is harmless.
		for _, i := range idx {
			errs[i] = failed
		}
		return errs
	}
	if last > 0 {
		if err := s.waitRev(ctx, last); err != nil {
			for _, i := range idx {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("auth: ACL stored, not yet seen: %w", err)
				}
			}
		}
	}
	return errs
}

// Describe returns the bindings a filter selects.
func (s *ACLStore) Describe(f Filter) []ACL {
	var out []ACL
	for _, a := range s.Snapshot().All() {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

// Delete removes the bindings each filter selects, reading etcd itself (not
// the cache, so a binding created through another broker a moment ago is
// found), and returns, per filter, the bindings it removed. A binding
// selected by two filters is reported by the first. It returns once this
// store's cache no longer holds them.
func (s *ACLStore) Delete(ctx context.Context, filters []Filter) ([][]ACL, []error) {
	out := make([][]ACL, len(filters))
	errs := make([]error, len(filters))
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("auth: read ACLs: %w", err)
		}
		return out, errs
	}
	taken := make(map[string]bool)
	var last int64
	for i, f := range filters {
		var ops []clientv3.Op
		var found []ACL
		for _, kv := range resp.Kvs {
			k := string(kv.Key)
			if taken[k] {
				continue
			}
			a, ok := s.decode(kv.Key, kv.Value)
			if !ok || !f.Matches(a) {
				continue
			}
			taken[k] = true
			ops = append(ops, clientv3.OpDelete(k))
			found = append(found, a)
		}
		for start := 0; start < len(ops); start += maxTxnOps {
			end := min(start+maxTxnOps, len(ops))
			r, err := s.cli.Txn(ctx).Then(ops[start:end]...).Commit()
			if err != nil {
				errs[i] = fmt.Errorf("auth: delete ACLs: %w", err)
				break
			}
			out[i] = append(out[i], found[start:end]...)
			last = r.Header.Revision
		}
	}
	if last > 0 {
		if err := s.waitRev(ctx, last); err != nil {
			for i := range errs {
				if errs[i] == nil && len(out[i]) > 0 {
					errs[i] = fmt.Errorf("auth: ACLs deleted, not yet seen: %w", err)
				}
			}
		}
	}
	return out, errs
}

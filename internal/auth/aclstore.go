package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/metadata"
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
	mirror *metadata.Mirror[ACL]

	set atomic.Pointer[ACLSet] // read on every authorization, lock-free
	// changed is closed, and replaced, each time a new snapshot is
	// published (Changed).
	changed atomic.Pointer[chan struct{}]
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
	s := &ACLStore{
		cli:    cli,
		prefix: strings.TrimSuffix(prefix, "/") + "/security/acls/",
		log:    log,
	}
	ch := make(chan struct{})
	s.changed.Store(&ch)
	s.mirror = metadata.NewMirror(metadata.MirrorOptions[ACL]{
		Client:  cli,
		Prefix:  s.prefix,
		What:    "ACLs",
		Decode:  s.decode,
		Publish: s.publish,
		Logger:  log,
	})
	if err := s.mirror.Start(ctx); err != nil {
		return nil, fmt.Errorf("auth: load ACLs: %w", err)
	}
	return s, nil
}

// Close stops the watch.
func (s *ACLStore) Close() error {
	return s.mirror.Close()
}

// Snapshot returns the current ACLs.
func (s *ACLStore) Snapshot() *ACLSet {
	return s.set.Load()
}

func (s *ACLStore) decode(key string, value []byte) (ACL, bool) {
	var a ACL
	if err := json.Unmarshal(value, &a); err != nil {
		s.log.Warn("ignoring an undecodable ACL", "key", key, "err", err)
		return ACL{}, false
	}
	if err := a.Validate(); err != nil {
		s.log.Warn("ignoring an invalid ACL", "key", key, "err", err)
		return ACL{}, false
	}
	return a, true
}

// publish rebuilds the snapshot from the mirror's ACLs (in key order)
// and wakes whoever waits on Changed.
func (s *ACLStore) publish(acls []ACL) {
	s.set.Store(NewACLSet(acls))
	next := make(chan struct{})
	close(*s.changed.Swap(&next))
}

// Changed returns a channel closed when the ACLs next change: a request
// that waits (a long-poll fetch) selects on it to be checked again at
// once rather than when its wait ends.
func (s *ACLStore) Changed() <-chan struct{} {
	return *s.changed.Load()
}

// waitRev waits until the cache reflects revision rev.
func (s *ACLStore) waitRev(ctx context.Context, rev int64) error {
	err := s.mirror.WaitRev(ctx, rev)
	if errors.Is(err, metadata.ErrMirrorClosed) {
		return ErrStoreClosed
	}
	return err
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
			a, ok := s.decode(k, kv.Value)
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

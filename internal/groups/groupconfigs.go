package groups

// The GROUP config store: per group overrides of the consumer and share
// group settings (config.GroupDefs), which DescribeConfigs, AlterConfigs and
// IncrementalAlterConfigs with resource type GROUP read and write. A
// group's configs may be set before the group exists.
//
// Layout: <prefix>/groupconfigs/<escaped group> holds the group's overrides
// as one JSON object (name -> value); no key means no overrides. Every
// broker keeps all of them in memory, loaded once and followed with one
// prefix watch, so reads never touch etcd. A write is a compare-and-swap on
// the key's mod revision (any broker may write any group's configs) and
// returns once this broker's cache shows it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// ErrConfigStoreClosed is returned by GroupConfigStore calls after Close.
var ErrConfigStoreClosed = errors.New("groups: group config store closed")

// maxConfigCASRetries bounds the compare-and-swap retries of one alter
// (another broker altering the same group at the same moment).
const maxConfigCASRetries = 16

// GroupConfigStore keeps the GROUP configs in etcd with a watched cache.
// Its watch goroutine is owned by the store: Close stops it and waits.
type GroupConfigStore struct {
	cli    *clientv3.Client
	prefix string // "<prefix>/groupconfigs/"
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	configs map[string]map[string]string // group -> overrides; never mutated in place
	rev     int64                        // etcd revision the cache reflects
	changed chan struct{}                // closed and replaced whenever rev moves
}

// OpenGroupConfigStore loads every group's configs under prefix
// (DefaultPrefix when empty) and follows changes. It returns once the cache
// holds what etcd held at the call.
func OpenGroupConfigStore(ctx context.Context, cli *clientv3.Client, prefix string, log *slog.Logger) (*GroupConfigStore, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &GroupConfigStore{
		cli:     cli,
		prefix:  strings.TrimRight(prefix, "/") + "/groupconfigs/",
		log:     log.With("component", "groupconfigs"),
		ctx:     sctx,
		cancel:  cancel,
		configs: map[string]map[string]string{},
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
func (s *GroupConfigStore) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *GroupConfigStore) key(group string) string { return s.prefix + url.PathEscape(group) }

// GroupConfig returns a group's overrides (nil when none). The map is the
// caller's to keep.
func (s *GroupConfigStore) GroupConfig(group string) map[string]string {
	s.mu.Lock()
	m := s.configs[group]
	s.mu.Unlock()
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// ShareGroup resolves a share group's configuration from its overrides.
func (s *GroupConfigStore) ShareGroup(group string) config.ShareGroup {
	return config.ResolveShareGroup(s.GroupConfig(group))
}

// AlterGroupConfig applies changes to a group's overrides: a nil Value
// deletes an override; replace (AlterConfigs) removes every override not
// named. Names and values are checked with config.ValidateGroupConfig, so
// errors wrap config.ErrUnknownConfig or config.ErrInvalidConfig. With
// validateOnly nothing is written. It returns once this store's cache shows
// the change.
func (s *GroupConfigStore) AlterGroupConfig(ctx context.Context, group string, changes []stream.ConfigChange, replace, validateOnly bool) error {
	if group == "" {
		return fmt.Errorf("%w: the group name is empty", config.ErrInvalidConfig)
	}
	for _, c := range changes {
		if _, ok := config.LookupGroup(c.Name); !ok {
			return fmt.Errorf("%w: unknown group config name: %s", config.ErrUnknownConfig, c.Name)
		}
		if c.Value != nil {
			if err := config.ValidateGroupConfig(c.Name, *c.Value); err != nil {
				return err
			}
		}
	}
	if validateOnly {
		return nil
	}
	key := s.key(group)
	for range maxConfigCASRetries {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("groups: read group configs of %q: %w", group, err)
		}
		cur := map[string]string{}
		var modRev int64
		if len(resp.Kvs) == 1 {
			modRev = resp.Kvs[0].ModRevision
			if err := json.Unmarshal(resp.Kvs[0].Value, &cur); err != nil {
				s.log.Warn("replacing undecodable group configs", "group", group, "err", err)
				cur = map[string]string{}
			}
		}
		next := applyConfigChanges(cur, changes, replace)
		cmp := clientv3.Compare(clientv3.ModRevision(key), "=", modRev)
		var op clientv3.Op
		if len(next) == 0 {
			op = clientv3.OpDelete(key)
		} else {
			val, err := json.Marshal(next)
			if err != nil {
				return fmt.Errorf("groups: encode group configs: %w", err)
			}
			op = clientv3.OpPut(key, string(val))
		}
		tresp, err := s.cli.Txn(ctx).If(cmp).Then(op).Commit()
		if err != nil {
			return fmt.Errorf("groups: write group configs of %q: %w", group, err)
		}
		if tresp.Succeeded {
			return s.waitRev(ctx, tresp.Header.Revision)
		}
	}
	return fmt.Errorf("groups: write group configs of %q: too many concurrent changes", group)
}

// DeleteGroupConfig removes every override of a group (DeleteGroups).
func (s *GroupConfigStore) DeleteGroupConfig(ctx context.Context, group string) error {
	resp, err := s.cli.Delete(ctx, s.key(group))
	if err != nil {
		return fmt.Errorf("groups: delete group configs of %q: %w", group, err)
	}
	if resp.Deleted == 0 {
		return nil // nothing changed: no watch event will show it
	}
	return s.waitRev(ctx, resp.Header.Revision)
}

// applyConfigChanges returns cur with changes applied (cur is not
// modified).
func applyConfigChanges(cur map[string]string, changes []stream.ConfigChange, replace bool) map[string]string {
	next := map[string]string{}
	if !replace {
		maps.Copy(next, cur)
	}
	for _, c := range changes {
		if c.Value == nil {
			delete(next, c.Name)
		} else {
			next[c.Name] = strings.TrimSpace(*c.Value)
		}
	}
	return next
}

// load replaces the cache with everything under the prefix.
func (s *GroupConfigStore) load(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("groups: load group configs: %w", err)
	}
	m := make(map[string]map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if group, cfg, ok := s.decode(kv.Key, kv.Value); ok {
			m[group] = cfg
		}
	}
	s.mu.Lock()
	s.configs = m
	s.publishLocked(resp.Header.Revision)
	s.mu.Unlock()
	return resp.Header.Revision, nil
}

func (s *GroupConfigStore) decode(key, value []byte) (string, map[string]string, bool) {
	group, err := url.PathUnescape(strings.TrimPrefix(string(key), s.prefix))
	if err != nil {
		s.log.Warn("ignoring an undecodable group config key", "key", string(key))
		return "", nil, false
	}
	var cfg map[string]string
	if err := json.Unmarshal(value, &cfg); err != nil {
		s.log.Warn("ignoring undecodable group configs", "group", group, "err", err)
		return "", nil, false
	}
	return group, cfg, true
}

func (s *GroupConfigStore) publishLocked(rev int64) {
	if rev > s.rev {
		s.rev = rev
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// watchLoop applies changes from rev+1 on, reloading everything when the
// watch breaks (a compaction, a lost leader).
func (s *GroupConfigStore) watchLoop(rev int64) {
	defer s.wg.Done()
	delay := 50 * time.Millisecond
	for {
		wch := s.cli.Watch(clientv3.WithRequireLeader(s.ctx), s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wresp := range wch {
			if err := wresp.Err(); err != nil {
				s.log.Warn("group config watch broken", "err", err)
				break
			}
			s.mu.Lock()
			next := maps.Clone(s.configs)
			for _, ev := range wresp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					if group, err := url.PathUnescape(strings.TrimPrefix(string(ev.Kv.Key), s.prefix)); err == nil {
						delete(next, group)
					}
				} else if group, cfg, ok := s.decode(ev.Kv.Key, ev.Kv.Value); ok {
					next[group] = cfg
				}
			}
			s.configs = next
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
			s.log.Warn("reloading group configs", "err", err)
		}
	}
}

// waitRev waits until the cache reflects revision rev.
func (s *GroupConfigStore) waitRev(ctx context.Context, rev int64) error {
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
			return fmt.Errorf("groups: group configs stored, not yet seen: %w", ctx.Err())
		case <-s.ctx.Done():
			return ErrConfigStoreClosed
		}
	}
}

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

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/metadata"
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
	mirror *metadata.Mirror[storedGroupConfig]

	mu      sync.Mutex
	configs map[string]map[string]string // group -> overrides; never mutated in place
	changed chan struct{}                // closed and replaced whenever configs is
}

// storedGroupConfig is one group's key, decoded.
type storedGroupConfig struct {
	group string
	cfg   map[string]string
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
	s := &GroupConfigStore{
		cli:     cli,
		prefix:  strings.TrimRight(prefix, "/") + "/groupconfigs/",
		log:     log.With("component", "groupconfigs"),
		configs: map[string]map[string]string{},
		changed: make(chan struct{}),
	}
	s.mirror = metadata.NewMirror(metadata.MirrorOptions[storedGroupConfig]{
		Client:  cli,
		Prefix:  s.prefix,
		What:    "group configs",
		Decode:  s.decode,
		Publish: s.publish,
		Logger:  s.log,
	})
	if err := s.mirror.Start(ctx); err != nil {
		return nil, fmt.Errorf("groups: load group configs: %w", err)
	}
	return s, nil
}

// Close stops the watch.
func (s *GroupConfigStore) Close() error {
	return s.mirror.Close()
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

func (s *GroupConfigStore) decode(key string, value []byte) (storedGroupConfig, bool) {
	group, err := url.PathUnescape(strings.TrimPrefix(key, s.prefix))
	if err != nil {
		s.log.Warn("ignoring an undecodable group config key", "key", key)
		return storedGroupConfig{}, false
	}
	var cfg map[string]string
	if err := json.Unmarshal(value, &cfg); err != nil {
		s.log.Warn("ignoring undecodable group configs", "group", group, "err", err)
		return storedGroupConfig{}, false
	}
	return storedGroupConfig{group: group, cfg: cfg}, true
}

// publish replaces the cache with the mirror's configs (in key order: of
// two keys naming one group, escaped differently, the same one wins on
// every broker).
func (s *GroupConfigStore) publish(stored []storedGroupConfig) {
	next := make(map[string]map[string]string, len(stored))
	for _, sg := range stored {
		next[sg.group] = sg.cfg
	}
	s.mu.Lock()
	s.configs = next
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// waitRev waits until the cache reflects revision rev.
func (s *GroupConfigStore) waitRev(ctx context.Context, rev int64) error {
	err := s.mirror.WaitRev(ctx, rev)
	switch {
	case errors.Is(err, metadata.ErrMirrorClosed):
		return ErrConfigStoreClosed
	case err != nil:
		return fmt.Errorf("groups: group configs stored, not yet seen: %w", err)
	}
	return nil
}

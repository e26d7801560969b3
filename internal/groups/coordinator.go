package groups

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/peer"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Shards is what the coordinator needs from internal/cluster: which shard a
// group belongs to, who owns it, and the owner key that fences writes.
type Shards interface {
	// Shards is the fixed number of coordinator shards.
	Shards() int
	// ShardFor maps a group id to its shard.
	ShardFor(key string) int
	// OwnedShard reports whether this broker owns shard, with the owner
	// key's create revision.
	OwnedShard(shard int) (ownerRev int64, ok bool)
	// ShardOwner returns the owning broker of shard, if any.
	ShardOwner(shard int) (peer.Broker, int64, bool)
	// ShardKey is the owner key of shard, whose create revision every write
	// is conditioned on.
	ShardKey(shard int) string
	// Changes is closed at the next ownership or membership change.
	Changes() <-chan struct{}
}

// Defaults for Options.
const (
	DefaultMinSessionTimeout = 6 * time.Second
	DefaultMaxSessionTimeout = 30 * time.Minute
	DefaultOffsetsRetention  = 7 * 24 * time.Hour
	DefaultRetentionCheck    = 10 * time.Minute
	DefaultMaxOffsetMetadata = 4096
	DefaultPrefix            = "/runnel"
	defaultWriteTimeout      = 10 * time.Second
	maxOpsPerTxn             = 100 // etcd's default limit is 128
	classicGroupType         = "classic"
	consumerGroupType        = "consumer"
	consumerProtocolType     = "consumer"
)

// Options configures a Coordinator.
type Options struct {
	Client  *clientv3.Client
	Cluster Shards
	Logger  *slog.Logger
	// Prefix is the etcd key prefix. Default "/runnel".
	Prefix string
	// TopicExists reports whether a partition exists (OffsetCommit answers
	// UNKNOWN_TOPIC_OR_PARTITION otherwise). Nil accepts every partition.
	TopicExists func(topic string, partition int32) bool
	// TopicName and TopicID translate topic ids for OffsetCommit and
	// OffsetFetch v10+. Nil means topic ids are unknown (UNKNOWN_TOPIC_ID).
	TopicName func(id stream.TopicID) (string, bool)
	TopicID   func(name string) (stream.TopicID, bool)
	// Session timeout bounds (group.min/max.session.timeout.ms).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first rebalance of an empty group waits for more members.
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is offsets.retention.minutes: offsets of a group
	// that has been empty this long (or, for standalone commits, committed
	// this long ago) are deleted. Default 7 days; negative disables.
	OffsetsRetention time.Duration
	// RetentionCheckInterval is offsets.retention.check.interval.ms.
	RetentionCheckInterval time.Duration
	// MaxOffsetMetadata is offset.metadata.max.bytes.
	MaxOffsetMetadata int
	// Txns carries transactional offsets (TxnOffsetCommit). Nil answers
	// TxnOffsetCommit with COORDINATOR_NOT_AVAILABLE.
	Txns Txns
	// Topics lists the live topics, for KIP-848 assignments.
	Topics func() []stream.TopicInfo
	// ConsumerHeartbeatInterval and ConsumerSessionTimeout are
	// group.consumer.heartbeat.interval.ms and
	// group.consumer.session.timeout.ms (defaults 5 s and 45 s).
	ConsumerHeartbeatInterval time.Duration
	ConsumerSessionTimeout    time.Duration
	// ShareHeartbeatInterval and ShareSessionTimeout are
	// group.share.heartbeat.interval.ms and group.share.session.timeout.ms
	// (defaults 5 s and 45 s).
	ShareHeartbeatInterval time.Duration
	ShareSessionTimeout    time.Duration
	// GroupConfigs holds the GROUP configs; a group's overrides of the
	// session timeouts and heartbeat intervals apply to it. Nil: none.
	GroupConfigs *GroupConfigStore
	// ShareStates holds the share-partition state of share groups. Nil
	// skips initialisation, and the share offsets APIs answer
	// COORDINATOR_NOT_AVAILABLE.
	ShareStates ShareStates
}

// Coordinator is the classic group coordinator. It implements
// protocol.Groups (internal/broker asserts it, as this package does not
// import the Kafka front end).
//
// Lock order: group.mu → Coordinator.mu → shard.mu; group.mu is never
// taken while holding either of the others (lookups release them first).
// Durable writes happen under group.mu only.
type Coordinator struct {
	opts   Options
	log    *slog.Logger
	cli    *clientv3.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	reconcileMu sync.Mutex // serialises reconcile
	mu          sync.RWMutex
	started     bool
	shards      map[int]*shard // shards owned by this broker (loaded or loading)
}

// shard is the in-memory state of one owned shard.
type shard struct {
	id      int
	rev     int64 // owner key create revision: the fence
	key     string
	loading bool
	stale   bool // a write had an unknown outcome: reload from etcd

	mu     sync.Mutex
	groups map[string]*group
}

// list returns the shard's groups at this moment, so callers can visit
// them without holding the shard lock.
func (sh *shard) list() []*group {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]*group, 0, len(sh.groups))
	for _, g := range sh.groups {
		out = append(out, g)
	}
	return out
}

// New returns a Coordinator; it serves nothing until Start.
func New(opts Options) *Coordinator {
	if opts.ConsumerHeartbeatInterval <= 0 {
		opts.ConsumerHeartbeatInterval = DefaultConsumerHeartbeatInterval
	}
	if opts.ConsumerSessionTimeout <= 0 {
		opts.ConsumerSessionTimeout = DefaultConsumerSessionTimeout
	}
	if opts.ShareHeartbeatInterval <= 0 {
		opts.ShareHeartbeatInterval = DefaultShareHeartbeatInterval
	}
	if opts.ShareSessionTimeout <= 0 {
		opts.ShareSessionTimeout = DefaultShareSessionTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	opts.Prefix = strings.TrimRight(opts.Prefix, "/")
	if opts.MinSessionTimeout <= 0 {
		opts.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if opts.MaxSessionTimeout <= 0 {
		opts.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if opts.OffsetsRetention == 0 {
		opts.OffsetsRetention = DefaultOffsetsRetention
	}
	if opts.RetentionCheckInterval <= 0 {
		opts.RetentionCheckInterval = DefaultRetentionCheck
	}
	if opts.MaxOffsetMetadata <= 0 {
		opts.MaxOffsetMetadata = DefaultMaxOffsetMetadata
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Coordinator{
		opts:   opts,
		log:    opts.Logger.With("component", "groups"),
		cli:    opts.Client,
		ctx:    ctx,
		cancel: cancel,
		kick:   make(chan struct{}, 1),
		shards: map[int]*shard{},
	}
}

// Start loads the shards this broker owns and follows ownership changes.
func (c *Coordinator) Start(ctx context.Context) error {
	if c.cli == nil || c.opts.Cluster == nil {
		return fmt.Errorf("groups: start: etcd client and cluster are required")
	}
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("groups: start: already started")
	}
	c.started = true
	c.mu.Unlock()
	c.reconcile(ctx)
	c.wg.Add(1)
	go c.run()
	if c.opts.OffsetsRetention > 0 {
		c.wg.Add(1)
		go c.retentionLoop()
	}
	if c.opts.Txns != nil {
		c.wg.Add(1)
		go c.publishLoop()
	}
	return nil
}

// Close stops the coordinator; pending joins and syncs are answered with
// NOT_COORDINATOR.
func (c *Coordinator) Close() error {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	shards := c.shards
	c.shards = map[int]*shard{}
	c.mu.Unlock()
	for _, sh := range shards {
		c.dropShard(sh)
	}
	return nil
}

// run follows shard ownership: it loads newly owned shards and drops lost
// ones, woken by cluster changes, stale shards or a retry timer.
func (c *Coordinator) run() {
	defer c.wg.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		changes := c.opts.Cluster.Changes()
		if again := c.reconcile(c.ctx); again {
			retry.Reset(200 * time.Millisecond)
		}
		select {
		case <-c.ctx.Done():
			retry.Stop()
			return
		case <-changes:
		case <-c.kick:
		case <-retry.C:
		}
	}
}

func (c *Coordinator) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// reconcile brings the loaded shards in line with ownership. It reports
// whether some load failed and must be retried.
func (c *Coordinator) reconcile(ctx context.Context) bool {
	c.reconcileMu.Lock()
	defer c.reconcileMu.Unlock()
	n := c.opts.Cluster.Shards()
	var toLoad []*shard
	var toDrop []*shard
	c.mu.Lock()
	for s := 0; s < n; s++ {
		rev, owned := c.opts.Cluster.OwnedShard(s)
		cur := c.shards[s]
		if cur != nil && (!owned || cur.rev != rev || cur.stale) {
			toDrop = append(toDrop, cur)
			delete(c.shards, s)
			cur = nil
		}
		if owned && (cur == nil || cur.loading) {
			if cur == nil {
				cur = &shard{id: s, rev: rev, key: c.opts.Cluster.ShardKey(s), loading: true, groups: map[string]*group{}}
				c.shards[s] = cur
			}
			toLoad = append(toLoad, cur)
		}
	}
	c.mu.Unlock()
	for _, sh := range toDrop {
		c.log.Info("coordinator shard dropped", "shard", sh.id)
		c.dropShard(sh)
	}
	failed := false
	for _, sh := range toLoad {
		groups, err := c.loadShard(ctx, sh)
		if err != nil {
			c.log.Warn("load coordinator shard", "shard", sh.id, "err", err)
			failed = true
			continue
		}
		n := len(groups) // before publishing: lookups write the map afterwards
		c.mu.Lock()
		current := c.shards[sh.id] == sh
		if current {
			sh.mu.Lock()
			sh.groups = groups
			sh.mu.Unlock()
			sh.loading = false
		}
		c.mu.Unlock()
		if !current {
			// Lost while loading.
			for _, g := range groups {
				g.mu.Lock()
				c.killGroupLocked(g)
				g.mu.Unlock()
			}
			continue
		}
		c.log.Debug("coordinator shard loaded", "shard", sh.id, "groups", n)
	}
	return failed
}

// dropShard forgets a lost shard's groups, answering their waiters.
func (c *Coordinator) dropShard(sh *shard) {
	sh.mu.Lock()
	groups := sh.groups
	sh.groups = map[string]*group{}
	sh.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		c.killGroupLocked(g)
		g.mu.Unlock()
	}
}

// markStale schedules a reload of sh after a write with an unknown outcome,
// so memory never diverges from etcd.
func (c *Coordinator) markStale(sh *shard) {
	c.mu.Lock()
	if c.shards[sh.id] == sh {
		sh.stale = true
	}
	c.mu.Unlock()
	c.trigger()
}

// lookup finds (and with create, makes) the group for id and returns it
// locked, or an error code. A nil group with code 0 means "not found".
func (c *Coordinator) lookup(id string, create bool) (*group, int16) {
	s := c.opts.Cluster.ShardFor(id)
	for {
		rev, owned := c.opts.Cluster.OwnedShard(s)
		if !owned {
			return nil, kerr.NotCoordinator.Code
		}
		c.mu.RLock()
		sh := c.shards[s]
		var loading bool
		if sh != nil {
			loading = sh.loading || sh.stale
		}
		c.mu.RUnlock()
		if sh == nil || sh.rev != rev {
			c.trigger()
			return nil, kerr.CoordinatorLoadInProgress.Code
		}
		if loading {
			return nil, kerr.CoordinatorLoadInProgress.Code
		}
		sh.mu.Lock()
		g := sh.groups[id]
		if g == nil {
			if !create {
				sh.mu.Unlock()
				return nil, 0
			}
			g = newGroup(c, sh, id)
			sh.groups[id] = g
		}
		sh.mu.Unlock()
		g.mu.Lock()
		if !g.dead {
			return g, 0
		}
		g.mu.Unlock()
		// Deleted or unloaded concurrently: look again.
	}
}

// forget removes a dead group from its shard's map.
func (c *Coordinator) forget(g *group) {
	g.sh.mu.Lock()
	if g.sh.groups[g.id] == g {
		delete(g.sh.groups, g.id)
	}
	g.sh.mu.Unlock()
}

// Coordinator returns the owner of key's shard. Group (0), transaction (1)
// and share-group (2) keys all map to shards the same way.
func (c *Coordinator) Coordinator(_ context.Context, key string, keyType int8) (peer.Broker, int16) {
	if keyType < 0 || keyType > 2 {
		return peer.Broker{}, kerr.InvalidRequest.Code
	}
	if keyType != 0 && key == "" {
		return peer.Broker{}, kerr.InvalidRequest.Code
	}
	b, _, ok := c.opts.Cluster.ShardOwner(c.opts.Cluster.ShardFor(key))
	if !ok {
		return peer.Broker{}, kerr.CoordinatorNotAvailable.Code
	}
	return b, 0
}

// writeTxn runs ops in one Txn conditioned on sh's owner revision. A
// detached context bounds it so the outcome is known whatever the caller's
// connection does; an unknown outcome marks the shard for reload.
func (c *Coordinator) writeTxn(sh *shard, ops ...clientv3.Op) error {
	ctx, cancel := context.WithTimeout(c.ctx, defaultWriteTimeout)
	defer cancel()
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(sh.key), "=", sh.rev)).
		Then(ops...).
		Commit()
	if err != nil {
		c.markStale(sh)
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	if !resp.Succeeded {
		c.trigger()
		return ErrFenced
	}
	return nil
}

package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/peer"
)

// Sentinel errors.
var (
	// ErrBrokerIDInUse is returned by Register when another live broker
	// holds this broker's node id.
	ErrBrokerIDInUse = errors.New("cluster: broker id is held by another live broker")
	// ErrNotStarted is returned when a method needs Start first.
	ErrNotStarted = errors.New("cluster: not started")
	// ErrInvalidOptions is returned by Start for unusable options.
	ErrInvalidOptions = errors.New("cluster: invalid options")
)

// Defaults for Options.
const (
	DefaultLeaseTTL = 10 * time.Second
	DefaultPrefix   = "/runnel"
	DefaultShards   = 16
)

// Options configures a Cluster.
type Options struct {
	Client    *clientv3.Client
	Self      peer.Broker
	ClusterID string
	// LeaseTTL is the broker lease; a broker whose lease lapses leaves the
	// live set and loses its shards. Default 10s; minimum 1s.
	LeaseTTL time.Duration
	Logger   *slog.Logger
	// Prefix is the etcd key prefix. Default "/runnel".
	Prefix string
	// Shards is the number of coordinator shards. Default 16. Every broker
	// of a cluster must use the same value.
	Shards int
	// CatchUp, when set, is called after a lost lease has been replaced
	// and before the broker re-enters the live set: a broker cut off from
	// etcd for longer than its lease rejoins only once it has replayed the
	// log (DESIGN §5a rule 7). It is retried until it returns nil.
	CatchUp func(context.Context) error
}

type owner struct {
	broker peer.Broker
	rev    int64 // create revision of the owner key
}

// Cluster tracks live brokers and coordinator shard ownership. It
// implements protocol.Cluster (internal/broker asserts it, as this package
// does not import the Kafka front end).
//
// Lock order: mu only; no callbacks run under mu.
type Cluster struct {
	opts   Options
	log    *slog.Logger
	cli    *clientv3.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu         sync.RWMutex
	started    bool
	closed     bool
	lease      clientv3.LeaseID
	leaseAlive time.Time
	registered bool
	// rejoining is set from the loss of a registered broker's lease until
	// it has caught up and registered again under a new one.
	rejoining bool
	brokers   map[int32]peer.Broker // registered brokers seen in etcd
	owners    map[int]owner         // shard -> owner key, as seen in etcd
	owned     map[int]int64         // shards this broker won -> owner key create revision
	absent    map[int]time.Time     // shard -> when its owner key was first seen absent
	changes   chan struct{}
}

// New returns a Cluster; nothing happens until Start.
func New(opts Options) *Cluster {
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < time.Second {
		opts.LeaseTTL = time.Second
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	opts.Prefix = strings.TrimRight(opts.Prefix, "/")
	if opts.Shards <= 0 {
		opts.Shards = DefaultShards
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Cluster{
		opts:    opts,
		log:     opts.Logger.With("component", "cluster", "node_id", opts.Self.NodeID),
		cli:     opts.Client,
		ctx:     ctx,
		cancel:  cancel,
		kick:    make(chan struct{}, 1),
		brokers: map[int32]peer.Broker{},
		owners:  map[int]owner{},
		owned:   map[int]int64{},
		absent:  map[int]time.Time{},
		changes: make(chan struct{}),
	}
}

func (c *Cluster) brokersPrefix() string { return c.opts.Prefix + "/brokers/" }
func (c *Cluster) shardsPrefix() string  { return c.opts.Prefix + "/coordinators/" }
func (c *Cluster) brokerKey(id int32) string {
	return c.brokersPrefix() + strconv.FormatInt(int64(id), 10)
}

// ShardKey is the etcd key whose create revision fences writes of shard.
func (c *Cluster) ShardKey(shard int) string {
	return c.shardsPrefix() + strconv.Itoa(shard)
}

// Shards is the number of coordinator shards.
func (c *Cluster) Shards() int { return c.opts.Shards }

// Start grants the lease, keeps it alive and starts watching brokers and
// shard owners. The broker is not in the live set until Register.
func (c *Cluster) Start(ctx context.Context) error {
	if c.cli == nil {
		return fmt.Errorf("%w: nil etcd client", ErrInvalidOptions)
	}
	if c.opts.Self.NodeID < 0 {
		return fmt.Errorf("%w: negative node id %d", ErrInvalidOptions, c.opts.Self.NodeID)
	}
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("%w: already started", ErrInvalidOptions)
	}
	c.started = true
	c.mu.Unlock()

	lease, err := c.cli.Grant(ctx, int64(c.opts.LeaseTTL/time.Second))
	if err != nil {
		return fmt.Errorf("cluster: grant lease: %w", err)
	}
	c.mu.Lock()
	c.lease = lease.ID
	c.leaseAlive = time.Now()
	c.mu.Unlock()

	brokersRev, err := c.loadBrokers(ctx)
	if err != nil {
		return err
	}
	shardsRev, err := c.loadOwners(ctx)
	if err != nil {
		return err
	}
	c.wg.Add(4)
	go c.leaseLoop(lease.ID)
	go c.watchLoop(c.brokersPrefix(), brokersRev, c.loadBrokers, c.applyBrokerEvent)
	go c.watchLoop(c.shardsPrefix(), shardsRev, c.loadOwners, c.applyOwnerEvent)
	go c.reconcileLoop()
	return nil
}

// Register puts this broker into the live set under the lease. It fails with
// ErrBrokerIDInUse when another live broker holds the id.
func (c *Cluster) Register(ctx context.Context) error {
	c.mu.RLock()
	lease, started := c.lease, c.started
	c.mu.RUnlock()
	if !started || lease == 0 {
		return ErrNotStarted
	}
	if err := c.putRegistration(ctx, lease); err != nil {
		return err
	}
	c.mu.Lock()
	c.registered = true
	c.brokers[c.opts.Self.NodeID] = c.opts.Self
	c.notifyLocked()
	c.mu.Unlock()
	c.trigger()
	return nil
}

func (c *Cluster) putRegistration(ctx context.Context, lease clientv3.LeaseID) error {
	val, err := json.Marshal(c.opts.Self)
	if err != nil {
		return fmt.Errorf("cluster: encode broker: %w", err)
	}
	key := c.brokerKey(c.opts.Self.NodeID)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("cluster: register: %w", err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return c.putRegistration(ctx, lease)
	}
	if clientv3.LeaseID(kvs[0].Lease) == lease {
		// Our own earlier registration: refresh the value.
		if _, err := c.cli.Put(ctx, key, string(val), clientv3.WithLease(lease)); err != nil {
			return fmt.Errorf("cluster: register: %w", err)
		}
		return nil
	}
	if string(kvs[0].Value) == string(val) {
		// The same broker id at the same advertised endpoint: a previous
		// incarnation of this broker that died without revoking its lease
		// (no two processes can serve one endpoint). Revoke that lease so
		// its registration and coordinator shards are released now rather
		// than after its TTL.
		c.log.Info("cluster: releasing the lease of this broker's previous incarnation", "lease", kvs[0].Lease)
		if _, err := c.cli.Revoke(ctx, clientv3.LeaseID(kvs[0].Lease)); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("cluster: register: releasing previous lease: %w", err)
		}
		return c.putRegistration(ctx, lease)
	}
	return fmt.Errorf("%w: node id %d", ErrBrokerIDInUse, c.opts.Self.NodeID)
}

// WaitCoordinators blocks until every coordinator shard has a live owner.
func (c *Cluster) WaitCoordinators(ctx context.Context) error {
	for {
		ch := c.Changes()
		missing := 0
		for s := 0; s < c.opts.Shards; s++ {
			if _, _, ok := c.ShardOwner(s); !ok {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster: %d coordinator shards without an owner: %w", missing, ctx.Err())
		}
	}
}

// Close revokes the lease (so the broker leaves the live set and its shards
// move at once), stops every goroutine and waits for them.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	lease := c.lease
	c.lease = 0
	c.registered = false
	c.owned = map[int]int64{}
	c.notifyLocked()
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := c.cli.Revoke(ctx, lease); err != nil {
			return fmt.Errorf("cluster: revoke lease: %w", err)
		}
	}
	return nil
}

// ClusterID returns the cluster id.
func (c *Cluster) ClusterID() string { return c.opts.ClusterID }

// Self returns this broker.
func (c *Cluster) Self() peer.Broker { return c.opts.Self }

// Brokers returns the live brokers sorted by node id, always including this
// broker.
func (c *Cluster) Brokers() []peer.Broker {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.liveLocked()
}

func (c *Cluster) liveLocked() []peer.Broker {
	out := make([]peer.Broker, 0, len(c.brokers)+1)
	for id, b := range c.brokers {
		if id == c.opts.Self.NodeID {
			continue
		}
		out = append(out, b)
	}
	out = append(out, c.opts.Self)
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Leader returns the rendezvous-preferred live broker for a partition.
func (c *Cluster) Leader(topic [16]byte, partition int32) int32 {
	var key [20]byte
	copy(key[:], topic[:])
	binary.BigEndian.PutUint32(key[16:], uint32(partition))
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, _ := peer.Owner(key[:], c.liveLocked())
	return b.NodeID
}

// ControllerID returns the lowest live node id.
func (c *Cluster) ControllerID() int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.liveLocked()[0].NodeID
}

// Healthy reports whether the lease is alive: false once etcd has not
// acknowledged a keep-alive for longer than the lease TTL, in which case the
// broker must stop serving, and false after a lost lease until the broker
// has caught up and rejoined the live set.
func (c *Cluster) Healthy() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.healthyLocked()
}

func (c *Cluster) healthyLocked() bool {
	return !c.closed && c.lease != 0 && !c.rejoining && time.Since(c.leaseAlive) < c.opts.LeaseTTL
}

// LeaseTTL is the broker's lease TTL: how long etcd keeps it in the live
// set without hearing from it.
func (c *Cluster) LeaseTTL() time.Duration { return c.opts.LeaseTTL }

// Changes returns a channel closed at the next change of the live set or of
// shard ownership. Callers re-read state and call Changes again.
func (c *Cluster) Changes() <-chan struct{} {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.changes
}

// ShardFor maps a coordinator key (e.g. a group id) to its shard.
func (c *Cluster) ShardFor(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(c.opts.Shards))
}

// ShardOwner returns the broker owning shard and its owner key's create
// revision, as last seen in etcd.
func (c *Cluster) ShardOwner(shard int) (peer.Broker, int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.owners[shard]
	if !ok {
		return peer.Broker{}, 0, false
	}
	if b, live := c.brokers[o.broker.NodeID]; live {
		return b, o.rev, true
	}
	return o.broker, o.rev, true
}

// OwnedShard reports whether this broker owns shard, with the owner key
// revision every durable write of the shard must be conditioned on.
func (c *Cluster) OwnedShard(shard int) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.healthyLocked() {
		return 0, false
	}
	rev, ok := c.owned[shard]
	return rev, ok
}

// notifyLocked wakes Changes waiters. c.mu must be held for writing.
func (c *Cluster) notifyLocked() {
	close(c.changes)
	c.changes = make(chan struct{})
}

func (c *Cluster) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// leaseLoop keeps the lease alive and, when it is lost, grants a new one,
// registers again and lets shards be campaigned for afresh.
func (c *Cluster) leaseLoop(lease clientv3.LeaseID) {
	defer c.wg.Done()
	backoff := newBackoff()
	for {
		ch, err := c.cli.KeepAlive(c.ctx, lease)
		if err == nil {
			for range ch {
				c.mu.Lock()
				c.leaseAlive = time.Now()
				c.mu.Unlock()
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("lease lost", "err", err)
		c.mu.Lock()
		c.lease = 0
		c.rejoining = c.registered
		if len(c.owned) > 0 {
			c.owned = map[int]int64{}
		}
		c.notifyLocked()
		registered := c.registered
		c.mu.Unlock()
		// Catch up first: it needs no lease, and a lease granted before a
		// long replay could expire before the registration is put.
		if registered && !c.catchUp() {
			return
		}
		for {
			lease = c.grant(backoff)
			if lease == 0 {
				return
			}
			c.mu.Lock()
			c.lease = lease
			c.leaseAlive = time.Now()
			c.mu.Unlock()
			if !registered {
				break
			}
			ctx, cancel := context.WithTimeout(c.ctx, c.opts.LeaseTTL)
			err := c.putRegistration(ctx, lease)
			cancel()
			if err == nil {
				break
			}
			// Still rejoining (unhealthy, not serving): try again under a
			// new lease rather than serve outside the live set.
			c.log.Error("re-register after lease loss", "err", err)
			if !backoff.wait(c.ctx) {
				return
			}
		}
		backoff.reset()
		if registered {
			c.mu.Lock()
			c.log.Info("rejoined the live set")
			c.rejoining = false
			c.notifyLocked()
			c.mu.Unlock()
		}
		c.trigger()
	}
}

// grant obtains a new lease, retrying with backoff; 0 when the cluster is
// closing.
func (c *Cluster) grant(backoff *backoff) clientv3.LeaseID {
	for {
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.LeaseTTL)
		resp, err := c.cli.Grant(ctx, int64(c.opts.LeaseTTL/time.Second))
		cancel()
		if err == nil {
			return resp.ID
		}
		c.log.Warn("grant lease", "err", err)
		if !backoff.wait(c.ctx) {
			return 0
		}
	}
}

// catchUp runs Options.CatchUp until it succeeds; false when the cluster
// is closing.
func (c *Cluster) catchUp() bool {
	if c.opts.CatchUp == nil {
		return true
	}
	backoff := newBackoff()
	for {
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.LeaseTTL)
		err := c.opts.CatchUp(ctx)
		cancel()
		if err == nil {
			return true
		}
		c.log.Warn("catching up before rejoining the live set", "err", err)
		if !backoff.wait(c.ctx) {
			return false
		}
	}
}

// watchLoop watches prefix from rev+1, re-reading everything when the watch
// breaks (e.g. compaction).
func (c *Cluster) watchLoop(prefix string, rev int64, load func(context.Context) (int64, error), apply func(*clientv3.Event)) {
	defer c.wg.Done()
	backoff := newBackoff()
	for {
		wch := c.cli.Watch(clientv3.WithRequireLeader(c.ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wresp := range wch {
			if err := wresp.Err(); err != nil {
				c.log.Warn("watch broken", "prefix", prefix, "err", err)
				break
			}
			for _, ev := range wresp.Events {
				apply(ev)
			}
			if len(wresp.Events) > 0 {
				c.trigger()
			}
			backoff.reset()
		}
		for {
			if c.ctx.Err() != nil {
				return
			}
			if !backoff.wait(c.ctx) {
				return
			}
			r, err := load(c.ctx)
			if err == nil {
				rev = r
				c.trigger()
				break
			}
			c.log.Warn("reload", "prefix", prefix, "err", err)
		}
	}
}

func (c *Cluster) loadBrokers(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, c.brokersPrefix(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("cluster: load brokers: %w", err)
	}
	m := map[int32]peer.Broker{}
	for _, kv := range resp.Kvs {
		if b, ok := c.decodeBroker(kv.Value); ok {
			m[b.NodeID] = b
		}
	}
	c.mu.Lock()
	if c.registered {
		m[c.opts.Self.NodeID] = c.opts.Self
	}
	c.brokers = m
	c.notifyLocked()
	c.mu.Unlock()
	return resp.Header.Revision, nil
}

func (c *Cluster) decodeBroker(v []byte) (peer.Broker, bool) {
	var b peer.Broker
	if err := json.Unmarshal(v, &b); err != nil {
		c.log.Warn("undecodable broker registration", "err", err)
		return b, false
	}
	return b, true
}

func (c *Cluster) applyBrokerEvent(ev *clientv3.Event) {
	idStr := strings.TrimPrefix(string(ev.Kv.Key), c.brokersPrefix())
	id, err := strconv.ParseInt(idStr, 10, 32)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Type {
	case clientv3.EventTypePut:
		b, ok := c.decodeBroker(ev.Kv.Value)
		if !ok {
			return
		}
		c.brokers[b.NodeID] = b
	case clientv3.EventTypeDelete:
		delete(c.brokers, int32(id))
		if int32(id) == c.opts.Self.NodeID && c.registered {
			c.log.Warn("own registration disappeared")
		}
	}
	c.notifyLocked()
}

func (c *Cluster) loadOwners(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, c.shardsPrefix(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("cluster: load shard owners: %w", err)
	}
	m := map[int]owner{}
	for _, kv := range resp.Kvs {
		s, ok := c.parseShard(kv.Key)
		if !ok {
			continue
		}
		if b, ok := c.decodeBroker(kv.Value); ok {
			m[s] = owner{broker: b, rev: kv.CreateRevision}
		}
	}
	c.mu.Lock()
	c.owners = m
	for s, rev := range c.owned {
		if o, ok := m[s]; !ok || o.rev != rev {
			delete(c.owned, s)
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	return resp.Header.Revision, nil
}

func (c *Cluster) parseShard(key []byte) (int, bool) {
	s, err := strconv.Atoi(strings.TrimPrefix(string(key), c.shardsPrefix()))
	if err != nil || s < 0 || s >= c.opts.Shards {
		return 0, false
	}
	return s, true
}

func (c *Cluster) applyOwnerEvent(ev *clientv3.Event) {
	s, ok := c.parseShard(ev.Kv.Key)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Type {
	case clientv3.EventTypePut:
		b, ok := c.decodeBroker(ev.Kv.Value)
		if !ok {
			return
		}
		c.owners[s] = owner{broker: b, rev: ev.Kv.CreateRevision}
		if rev, mine := c.owned[s]; mine && rev != ev.Kv.CreateRevision {
			delete(c.owned, s)
		}
	case clientv3.EventTypeDelete:
		delete(c.owners, s)
		if rev, mine := c.owned[s]; mine && rev <= ev.Kv.ModRevision {
			delete(c.owned, s)
		}
	}
	c.notifyLocked()
}

// reconcileLoop campaigns for and releases shards whenever membership or
// ownership changes, and when a shard has been ownerless for a lease TTL.
func (c *Cluster) reconcileLoop() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-c.ctx.Done():
			timer.Stop()
			return
		case <-c.kick:
		case <-timer.C:
		}
		if next := c.reconcile(); next > 0 {
			timer.Reset(next)
		}
	}
}

// reconcile returns after how long it must run again (0 = only on events).
func (c *Cluster) reconcile() time.Duration {
	c.mu.Lock()
	if !c.registered || c.rejoining || c.lease == 0 || c.closed {
		c.mu.Unlock()
		return 0
	}
	lease := c.lease
	live := c.liveLocked()
	self := c.opts.Self.NodeID
	now := time.Now()
	grace := c.opts.LeaseTTL
	var next time.Duration
	var campaign []int
	release := map[int]int64{}
	for s := 0; s < c.opts.Shards; s++ {
		pb, _ := peer.Owner(shardHashKey(s), live)
		pref := pb.NodeID
		o, has := c.owners[s]
		if has {
			delete(c.absent, s)
			if rev, mine := c.owned[s]; mine && o.rev == rev && pref != self {
				release[s] = rev
			}
			continue
		}
		if pref == self {
			campaign = append(campaign, s)
			continue
		}
		since, seen := c.absent[s]
		if !seen {
			c.absent[s] = now
			since = now
		}
		if wait := grace - now.Sub(since); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		campaign = append(campaign, s)
	}
	c.mu.Unlock()

	for _, s := range campaign {
		c.campaign(lease, s)
	}
	for s, rev := range release {
		c.release(s, rev)
	}
	return next
}

func (c *Cluster) campaign(lease clientv3.LeaseID, s int) {
	val, err := json.Marshal(c.opts.Self)
	if err != nil {
		return
	}
	key := c.ShardKey(s)
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.LeaseTTL)
	defer cancel()
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
		Commit()
	if err != nil {
		c.log.Warn("campaign for shard", "shard", s, "err", err)
		return
	}
	if !resp.Succeeded {
		return
	}
	rev := resp.Header.Revision
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease != lease || c.closed {
		return
	}
	c.owned[s] = rev
	c.owners[s] = owner{broker: c.opts.Self, rev: rev}
	delete(c.absent, s)
	c.log.Debug("shard acquired", "shard", s, "rev", rev)
	c.notifyLocked()
}

// release hands a shard to its preferred broker: the owner key is deleted
// only if it is still ours.
func (c *Cluster) release(s int, rev int64) {
	c.mu.Lock()
	delete(c.owned, s)
	c.notifyLocked()
	c.mu.Unlock()
	key := c.ShardKey(s)
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.LeaseTTL)
	defer cancel()
	if _, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).
		Commit(); err != nil {
		c.log.Warn("release shard", "shard", s, "err", err)
		return
	}
	c.log.Debug("shard released", "shard", s)
}

func shardHashKey(s int) []byte {
	return []byte("coordinator-shard/" + strconv.Itoa(s))
}

type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }

func (b *backoff) reset() { b.d = 50 * time.Millisecond }

// wait sleeps for the current delay (doubling it, up to 2s); false when ctx ends.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.d)
	defer t.Stop()
	if b.d < 2*time.Second {
		b.d *= 2
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/metadata"
)

// QuotaOptions configures Quotas. Client is required.
type QuotaOptions struct {
	Client *clientv3.Client
	// Prefix is the etcd key prefix ("/runnel" when empty); quotas live
	// under "<prefix>/security/quotas/", the brokers' published rates under
	// "<prefix>/security/quota-usage/".
	Prefix string
	// BrokerID names this broker's published rates.
	BrokerID int32
	// Window and Samples are Kafka's quota.window.size.seconds and
	// quota.window.num (1 s and 11 when zero).
	Window  time.Duration
	Samples int
	// PublishInterval is how often this broker publishes its rates (1 s
	// when zero).
	PublishInterval time.Duration
	Logger          *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Quotas stores client quotas in etcd, caches them from a watch, measures
// every client that has a quota and tells the front end how long to
// throttle it (see the comment at the top of quota.go). It is safe for
// concurrent use; Start starts it and Close stops it.
type Quotas struct {
	opts     QuotaOptions
	log      *slog.Logger
	cfgKey   string // "<prefix>/security/quotas/"
	usageKey string // "<prefix>/security/quota-usage/"

	configs atomic.Pointer[quotaConfigs]  // published by mirror
	mirror  *metadata.Mirror[storedQuota] // follows cfgKey

	mu      sync.Mutex // guards sensors and buckets
	sensors map[usageKey]*sensor
	buckets map[usageKey]*tokenBucket

	remote atomic.Pointer[map[int32]remoteUsage] // published by usage
	usage  *metadata.Mirror[brokerUsage]         // follows usageKey

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type sensor struct {
	mu    sync.Mutex
	rate  sampledRate
	last  time.Time
	limit float64 // the quota at the last record
}

// maxPublished bounds the entities one broker publishes, so its put stays
// far below etcd's request limit (1.5 MiB) however many clients it serves;
// the ones nearest their quota are kept.
const maxPublished = 4096

// remoteUsage is another broker's last published rates and when they came.
type remoteUsage struct {
	at    time.Time
	rates map[usageKey]float64
}

// brokerUsage is one broker's usage key, decoded.
type brokerUsage struct {
	id int32
	remoteUsage
}

// NewQuotas returns a Quotas; call Start before use.
func NewQuotas(opts QuotaOptions) *Quotas {
	if opts.Prefix == "" {
		opts.Prefix = "/runnel"
	}
	if opts.Window <= 0 {
		opts.Window = time.Second
	}
	if opts.Samples < 2 {
		opts.Samples = 11
	}
	if opts.PublishInterval <= 0 {
		opts.PublishInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	q := &Quotas{
		opts:     opts,
		log:      opts.Logger,
		cfgKey:   strings.TrimSuffix(opts.Prefix, "/") + "/security/quotas/",
		usageKey: strings.TrimSuffix(opts.Prefix, "/") + "/security/quota-usage/",
		sensors:  make(map[usageKey]*sensor),
		buckets:  make(map[usageKey]*tokenBucket),
	}
	empty := quotaConfigs{}
	q.configs.Store(&empty)
	noRemote := map[int32]remoteUsage{}
	q.remote.Store(&noRemote)
	q.mirror = metadata.NewMirror(metadata.MirrorOptions[storedQuota]{
		Client:  opts.Client,
		Prefix:  q.cfgKey,
		What:    "quotas",
		Decode:  q.decodeConfig,
		Publish: q.publishConfigs,
		Logger:  opts.Logger,
	})
	q.usage = metadata.NewMirror(metadata.MirrorOptions[brokerUsage]{
		Client:  opts.Client,
		Prefix:  q.usageKey,
		What:    "quota usage",
		Decode:  q.decodeUsage,
		Publish: q.publishUsage,
		Logger:  opts.Logger,
	})
	return q
}

// storedQuota is one quota key, decoded.
type storedQuota struct {
	entity QuotaEntity
	values map[QuotaKey]float64
}

// Start loads the quotas and starts watching them, watching the other
// brokers' rates and publishing this broker's. It returns once the quotas
// and the other brokers' last rates are loaded.
func (q *Quotas) Start(ctx context.Context) error {
	if err := q.mirror.Start(ctx); err != nil {
		return fmt.Errorf("auth: load quotas: %w", err)
	}
	if err := q.usage.Start(ctx); err != nil {
		_ = q.mirror.Close()
		return fmt.Errorf("auth: load quota usage: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	q.cancel = cancel
	q.wg.Add(1)
	go q.publish(rctx)
	return nil
}

// Close stops the watches and the publisher and withdraws this broker's
// published rates.
func (q *Quotas) Close() error {
	if q.cancel != nil {
		q.cancel()
		q.wg.Wait()
		q.cancel = nil
	}
	return errors.Join(q.usage.Close(), q.mirror.Close())
}

// entityPath is an entity's key below the quota prefix: "users/<u>",
// "users/<u>/clients/<c>" or "clients/<c>", names escaped and the default
// spelled <default> (which no escaped name can be).
func entityPath(e QuotaEntity) string {
	part := func(name string, def bool) string {
		if def {
			return "<default>"
		}
		return url.QueryEscape(name)
	}
	var p []string
	if e.HasUser() {
		p = append(p, "users", part(e.User, e.UserDefault))
	}
	if e.HasClientID() {
		p = append(p, "clients", part(e.ClientID, e.ClientIDDefault))
	}
	return strings.Join(p, "/")
}

func parseEntityPath(p string) (QuotaEntity, bool) {
	var e QuotaEntity
	f := strings.Split(p, "/")
	name := func(s string) (string, bool, bool) {
		if s == "<default>" {
			return "", true, true
		}
		n, err := url.QueryUnescape(s)
		return n, false, err == nil && n != ""
	}
	var ok bool
	switch {
	case len(f) == 2 && f[0] == "users":
		e.User, e.UserDefault, ok = name(f[1])
	case len(f) == 2 && f[0] == "clients":
		e.ClientID, e.ClientIDDefault, ok = name(f[1])
	case len(f) == 4 && f[0] == "users" && f[2] == "clients":
		var ok2 bool
		e.User, e.UserDefault, ok = name(f[1])
		e.ClientID, e.ClientIDDefault, ok2 = name(f[3])
		ok = ok && ok2
	}
	return e, ok
}

func decodeValues(b []byte) (map[QuotaKey]float64, error) {
	var raw map[string]float64
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[QuotaKey]float64, len(raw))
	for k, v := range raw {
		if QuotaKey(k).valid() {
			out[QuotaKey(k)] = v
		}
	}
	return out, nil
}

// decodeConfig decodes one stored quota key; a malformed key or value is
// logged and skipped.
func (q *Quotas) decodeConfig(key string, value []byte) (storedQuota, bool) {
	e, ok := parseEntityPath(strings.TrimPrefix(key, q.cfgKey))
	if !ok {
		q.log.Warn("auth: ignoring a malformed quota key", "key", key)
		return storedQuota{}, false
	}
	vs, err := decodeValues(value)
	if err != nil {
		q.log.Warn("auth: ignoring a malformed quota value", "key", key, "err", err)
		return storedQuota{}, false
	}
	return storedQuota{entity: e, values: vs}, true
}

// publishConfigs replaces the quotas Record reads with the mirror's (in
// key order: of two keys naming one entity, escaped differently, the same
// one wins on every broker).
func (q *Quotas) publishConfigs(stored []storedQuota) {
	qc := make(quotaConfigs, len(stored))
	for _, sq := range stored {
		qc[sq.entity] = sq.values
	}
	q.configs.Store(&qc)
}

// Describe returns the quotas the filter selects, read from etcd (so an
// alteration is visible at once), sorted by entity. Errors wrap
// ErrInvalidQuota or ErrUnsupportedQuotaEntity for a bad filter.
func (q *Quotas) Describe(ctx context.Context, f QuotaFilter) ([]QuotaEntry, error) {
	match, err := f.compile()
	if err != nil {
		return nil, err
	}
	resp, err := q.opts.Client.Get(ctx, q.cfgKey, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("auth: describe quotas: %w", err)
	}
	qc := quotaConfigs{}
	for _, kv := range resp.Kvs {
		if sq, ok := q.decodeConfig(string(kv.Key), kv.Value); ok {
			qc[sq.entity] = sq.values
		}
	}
	return qc.matching(match), nil
}

// Alter applies alterations, each to its entity atomically, and returns
// one error per alteration (nil when it applied or, with validateOnly,
// would apply). An alteration naming an entity an earlier one named is
// refused. The error return is for the metadata store failing.
func (q *Quotas) Alter(ctx context.Context, alts []QuotaAlteration, validateOnly bool) ([]error, error) {
	errs := make([]error, len(alts))
	seen := map[QuotaEntity]bool{}
	for i, a := range alts {
		e, err := ParseQuotaEntity(a.Entity)
		if err != nil {
			errs[i] = err
			continue
		}
		if seen[e] {
			errs[i] = fmt.Errorf("%w: Ignoring duplicate entity %s", ErrInvalidQuota, e)
			continue
		}
		seen[e] = true
		if _, err := applyOps(nil, a.Ops); err != nil {
			errs[i] = err
			continue
		}
		if validateOnly {
			continue
		}
		if err := q.alterOne(ctx, e, a.Ops); err != nil {
			return nil, err
		}
	}
	return errs, nil
}

// alterOne applies ops to one entity with a compare-and-swap on its key.
func (q *Quotas) alterOne(ctx context.Context, e QuotaEntity, ops []QuotaOp) error {
	key := q.cfgKey + entityPath(e)
	for {
		resp, err := q.opts.Client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("auth: alter quotas: %w", err)
		}
		var cur map[QuotaKey]float64
		var rev int64
		if len(resp.Kvs) > 0 {
			rev = resp.Kvs[0].ModRevision
			if cur, err = decodeValues(resp.Kvs[0].Value); err != nil {
				cur = nil // a malformed value is replaced
			}
		}
		next, err := applyOps(cur, ops)
		if err != nil {
			return err // checked before; cannot happen
		}
		var op clientv3.Op
		if len(next) == 0 {
			op = clientv3.OpDelete(key)
		} else {
			b, err := json.Marshal(next)
			if err != nil {
				return err
			}
			op = clientv3.OpPut(key, string(b))
		}
		tr, err := q.opts.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(op).Commit()
		if err != nil {
			return fmt.Errorf("auth: alter quotas: %w", err)
		}
		if tr.Succeeded {
			return nil
		}
	}
}

// Record adds value to the rate of key for (user, clientID) when a quota
// applies and returns how long the client must be throttled: zero while
// the rate, this broker's plus what the others last published, is within
// the quota. value is bytes for the byte rates and percent-seconds of one
// thread for request_percentage.
func (q *Quotas) Record(key QuotaKey, user, clientID string, value float64) time.Duration {
	limit, uk, ok := (*q.configs.Load()).resolve(key, user, clientID)
	if !ok {
		return 0
	}
	now := q.opts.Now()
	s := q.sensor(uk)
	s.mu.Lock()
	s.rate.record(value, now, q.opts.Window, q.opts.Samples)
	local, window := s.rate.measure(now, q.opts.Window, q.opts.Samples)
	s.last, s.limit = now, limit
	s.mu.Unlock()
	observed := local + q.remoteRate(uk, now)
	maxThrottle := maxByteThrottle
	if key == RequestPercentage {
		maxThrottle = q.opts.Window
	}
	return throttleFor(observed, limit, window, maxThrottle)
}

// maxByteThrottle only keeps a byte-rate throttle within throttle_time_ms
// (an int32 of milliseconds); Kafka leaves it otherwise unbounded.
const maxByteThrottle = time.Duration(math.MaxInt32) * time.Millisecond

// MaxInWindow is the most a client can record against key without being
// throttled when nothing else is in its window: quota × (Samples-1) ×
// Window (Kafka's getMaxValueInQuotaWindow, which bounds a fetch). ok is
// false when no quota applies.
func (q *Quotas) MaxInWindow(key QuotaKey, user, clientID string) (float64, bool) {
	limit, _, ok := (*q.configs.Load()).resolve(key, user, clientID)
	if !ok {
		return 0, false
	}
	return limit * float64(q.opts.Samples-1) * q.opts.Window.Seconds(), true
}

func (q *Quotas) sensor(uk usageKey) *sensor {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sensors[uk]
	if s == nil {
		s = &sensor{}
		q.sensors[uk] = s
	}
	return s
}

// RecordMutations takes partitions (created or deleted) from the
// controller_mutation_rate bucket of (user, clientID), when a quota
// applies. In strict mode (CreateTopics v6+, CreatePartitions v3+,
// DeleteTopics v5+) a bucket already below zero refuses: nothing is taken
// and ok is false, and the caller answers THROTTLING_QUOTA_EXCEEDED. The
// throttle is the time until the bucket is back to zero. A negative count
// gives partitions back (a mutation that then failed).
func (q *Quotas) RecordMutations(user, clientID string, partitions float64, strict bool) (throttle time.Duration, ok bool) {
	rate, uk, has := (*q.configs.Load()).resolve(ControllerMutationRate, user, clientID)
	if !has {
		return 0, true
	}
	burst := rate * q.opts.Window.Seconds() * float64(q.opts.Samples)
	now := q.opts.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.buckets[uk]
	if b == nil {
		b = &tokenBucket{}
		q.buckets[uk] = b
	}
	b.refill(now, rate, burst)
	if strict && partitions > 0 && b.tokens < 0 {
		return b.throttle(rate), false
	}
	b.tokens = min(burst, b.tokens-partitions)
	return b.throttle(rate), true
}

// remoteRate sums the rates the other live brokers last published for uk.
func (q *Quotas) remoteRate(uk usageKey, now time.Time) float64 {
	stale := 3 * q.opts.PublishInterval
	total := 0.0
	for id, r := range *q.remote.Load() {
		if id == q.opts.BrokerID || now.Sub(r.at) > stale {
			continue
		}
		total += r.rates[uk]
	}
	return total
}

// publishedRate is one entry of a broker's published rates.
type publishedRate struct {
	usageKey
	Rate float64 `json:"r"`
}

// activeRates returns this broker's current rate of every measured entity
// with traffic in the window, and forgets sensors idle for twice the
// window and buckets that have refilled.
func (q *Quotas) activeRates(now time.Time) []publishedRate {
	q.mu.Lock()
	defer q.mu.Unlock()
	idle := 2 * q.opts.Window * time.Duration(q.opts.Samples)
	type active struct {
		publishedRate
		share float64 // of the quota
	}
	var all []active
	for uk, s := range q.sensors {
		s.mu.Lock()
		r, _ := s.rate.measure(now, q.opts.Window, q.opts.Samples)
		last, limit := s.last, s.limit
		s.mu.Unlock()
		if now.Sub(last) > idle {
			delete(q.sensors, uk)
			continue
		}
		if r > 0 {
			all = append(all, active{publishedRate{usageKey: uk, Rate: r}, r / limit})
		}
	}
	for uk, b := range q.buckets {
		if b.full(now) {
			delete(q.buckets, uk)
		}
	}
	if len(all) > maxPublished {
		sort.Slice(all, func(i, j int) bool { return all[i].share > all[j].share })
		all = all[:maxPublished]
	}
	out := make([]publishedRate, len(all))
	for i, a := range all {
		out[i] = a.publishedRate
	}
	return out
}

// publish writes this broker's active rates once an interval under a
// lease of its own, deletes them when none is left, and revokes the lease
// on Close.
func (q *Quotas) publish(ctx context.Context) {
	defer q.wg.Done()
	key := q.usageKey + strconv.Itoa(int(q.opts.BrokerID))
	var lease clientv3.LeaseID
	var refreshed time.Time
	ttl := max(5*q.opts.PublishInterval, 3*time.Second).Round(time.Second)
	published := false
	defer func() {
		if lease != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = q.opts.Client.Revoke(rctx, lease)
			cancel()
		}
	}()
	tick := time.NewTicker(q.opts.PublishInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rates := q.activeRates(q.opts.Now())
		if len(rates) == 0 {
			if published {
				if _, err := q.opts.Client.Delete(ctx, key); err == nil {
					published = false
				}
			}
			continue
		}
		b, err := json.Marshal(rates)
		if err != nil {
			continue
		}
		// The lease only removes a dead broker's rates; readers ignore rates
		// older than three intervals anyway, so it is refreshed every third
		// of its life rather than with each put.
		now := time.Now()
		if lease != 0 && now.Sub(refreshed) > ttl/3 {
			if _, err := q.opts.Client.KeepAliveOnce(ctx, lease); err != nil {
				lease = 0 // expired or lost: grant a new one
			} else {
				refreshed = now
			}
		}
		if lease == 0 {
			lr, err := q.opts.Client.Grant(ctx, int64(ttl/time.Second))
			if err != nil {
				q.log.Warn("auth: quota usage lease", "err", err)
				continue
			}
			lease, refreshed = lr.ID, now
		}
		if _, err := q.opts.Client.Put(ctx, key, string(b), clientv3.WithLease(lease)); err != nil {
			q.log.Warn("auth: publishing quota usage", "err", err)
			continue
		}
		published = true
	}
}

// decodeUsage decodes another broker's published rates, stamped with the
// time they came; this broker's own and keys of no broker are skipped.
func (q *Quotas) decodeUsage(key string, value []byte) (brokerUsage, bool) {
	id, err := strconv.ParseInt(strings.TrimPrefix(key, q.usageKey), 10, 32)
	if err != nil || int32(id) == q.opts.BrokerID {
		return brokerUsage{}, false
	}
	var rates []publishedRate
	if err := json.Unmarshal(value, &rates); err != nil {
		q.log.Warn("auth: ignoring malformed quota usage", "key", key, "err", err)
		return brokerUsage{}, false
	}
	m := make(map[usageKey]float64, len(rates))
	for _, r := range rates {
		m[r.usageKey] = r.Rate
	}
	return brokerUsage{id: int32(id), remoteUsage: remoteUsage{at: q.opts.Now(), rates: m}}, true
}

// publishUsage replaces the other brokers' rates remoteRate reads.
func (q *Quotas) publishUsage(brokers []brokerUsage) {
	remote := make(map[int32]remoteUsage, len(brokers))
	for _, b := range brokers {
		remote[b.id] = b.remoteUsage
	}
	q.remote.Store(&remote)
}

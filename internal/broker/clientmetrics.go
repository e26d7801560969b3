package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics"
)

// clientMetricsPrefix holds the KIP-714 subscriptions (the CLIENT_METRICS
// config resources), one key per name, its configs as a JSON object.
const clientMetricsPrefix = "/runnel/telemetry/subscriptions/"

// clientMetrics keeps the subscriptions durable in etcd and every broker's
// clientmetrics.Manager in step with them through a watch (a change reaches
// every broker within the watch's latency, well under a second).
type clientMetrics struct {
	*clientmetrics.Manager
	fwd    *clientmetrics.OTLPForwarder // nil unless telemetry.client-metrics-otlp-endpoint
	cli    *clientv3.Client
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	configs map[string]map[string]string // by name
	rev     int64                        // the etcd revision configs reflect
	changed chan struct{}                // closed when rev moves
}

// openClientMetrics loads the subscriptions, starts the watch and serves
// KIP-714 through opts; its series go on the broker's registry. With
// telemetry.client-metrics-otlp-endpoint set, accepted pushes are also
// forwarded to that collector.
func (b *Broker) openClientMetrics(ctx context.Context, opts *protocol.Options) (err error) {
	tc := b.cfg.Telemetry
	c := &clientMetrics{
		cli:     b.cli,
		log:     b.log,
		configs: map[string]map[string]string{},
		changed: make(chan struct{}),
	}
	mopts := clientmetrics.Options{MaxBytes: tc.ClientMetricsBytes()}
	if tc.ClientMetricsOTLPEndpoint != "" {
		c.fwd, err = clientmetrics.NewOTLPForwarder(clientmetrics.ForwarderOptions{Endpoint: tc.ClientMetricsOTLPEndpoint, Logger: b.log})
		if err != nil {
			return fmt.Errorf("broker: client metrics: %w", err)
		}
		defer func() {
			if err != nil {
				c.fwd.Close(0)
			}
		}()
		if err := b.registry.Register(c.fwd); err != nil {
			return fmt.Errorf("broker: client metrics forwarding: %w", err)
		}
		mopts.Sink = c.fwd
		b.log.Info("broker: forwarding client metrics", "endpoint", tc.ClientMetricsOTLPEndpoint)
	}
	c.Manager = clientmetrics.New(mopts)
	rev, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("broker: client metrics subscriptions: %w", err)
	}
	if err := b.registry.Register(c.Manager); err != nil {
		return fmt.Errorf("broker: client metrics: %w", err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.watch(rev) // owned by c: ends on close
	b.clientMetrics, opts.ClientMetrics = c, c
	return nil
}

// close stops the watch and waits for it, then sends the pushes still
// queued for the OTLP collector, for at most five seconds; nil-safe.
func (c *clientMetrics) close() error {
	if c == nil {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	if c.fwd == nil {
		return nil
	}
	return c.fwd.Close(5 * time.Second)
}

// load replaces the cache with what etcd holds and returns its revision.
func (c *clientMetrics) load(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, clientMetricsPrefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.configs)
	for _, kv := range resp.Kvs {
		c.put(string(kv.Key), kv.Value)
	}
	c.publishLocked(resp.Header.Revision)
	return resp.Header.Revision, nil
}

// put caches one stored subscription, skipping one that no longer parses.
// Callers hold mu.
func (c *clientMetrics) put(key string, value []byte) {
	name := strings.TrimPrefix(key, clientMetricsPrefix)
	var cfg map[string]string
	if err := json.Unmarshal(value, &cfg); err != nil {
		c.log.Warn("ignoring an undecodable client metrics subscription", "key", key, "err", err)
		return
	}
	if _, err := clientmetrics.ParseSubscription(name, cfg); err != nil {
		c.log.Warn("ignoring an invalid client metrics subscription", "key", key, "err", err)
		return
	}
	c.configs[name] = cfg
}

// publishLocked hands the subscriptions to the Manager in name order and
// wakes Store calls waiting for rev. Callers hold mu.
func (c *clientMetrics) publishLocked(rev int64) {
	names := make([]string, 0, len(c.configs))
	for n := range c.configs {
		names = append(names, n)
	}
	sort.Strings(names)
	subs := make([]clientmetrics.Subscription, 0, len(names))
	for _, n := range names {
		s, _ := clientmetrics.ParseSubscription(n, c.configs[n]) // put checked it
		subs = append(subs, s)
	}
	c.SetSubscriptions(subs)
	if rev > c.rev {
		c.rev = rev
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// watch applies changes after rev, reloading when the watch breaks.
func (c *clientMetrics) watch(rev int64) {
	defer c.wg.Done()
	delay := 50 * time.Millisecond
	for c.ctx.Err() == nil {
		wch := c.cli.Watch(clientv3.WithRequireLeader(c.ctx), clientMetricsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wresp := range wch {
			if err := wresp.Err(); err != nil {
				c.log.Warn("client metrics subscription watch broken", "err", err)
				break
			}
			c.mu.Lock()
			for _, ev := range wresp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					delete(c.configs, strings.TrimPrefix(string(ev.Kv.Key), clientMetricsPrefix))
				} else {
					c.put(string(ev.Kv.Key), ev.Kv.Value)
				}
			}
			c.publishLocked(wresp.Header.Revision)
			c.mu.Unlock()
			rev, delay = wresp.Header.Revision, 50*time.Millisecond
		}
		for c.ctx.Err() == nil {
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 2*time.Second)
			r, err := c.load(c.ctx)
			if err == nil {
				rev = r
				break
			}
			c.log.Warn("reloading client metrics subscriptions", "err", err)
		}
	}
}

// Store writes a subscription (nil configs delete it) and waits until this
// broker's cache reflects the write, so a DescribeConfigs that follows
// sees it.
func (c *clientMetrics) Store(ctx context.Context, name string, configs map[string]string) error {
	key := clientMetricsPrefix + name
	var rev int64
	if configs == nil {
		resp, err := c.cli.Delete(ctx, key)
		if err != nil {
			return fmt.Errorf("broker: deleting client metrics subscription %q: %w", name, err)
		}
		rev = resp.Header.Revision
	} else {
		v, err := json.Marshal(configs)
		if err != nil {
			return err
		}
		resp, err := c.cli.Put(ctx, key, string(v))
		if err != nil {
			return fmt.Errorf("broker: storing client metrics subscription %q: %w", name, err)
		}
		rev = resp.Header.Revision
	}
	for {
		c.mu.Lock()
		ok, ch := c.rev >= rev, c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

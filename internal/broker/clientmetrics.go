package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/metadata"
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
	mirror *metadata.Mirror[clientmetrics.Subscription] // by key; owns the watch
}

// openClientMetrics loads the subscriptions, starts the watch and serves
// KIP-714 through opts; its series go on the broker's registry. With
// telemetry.client-metrics-otlp-endpoint set, accepted pushes are also
// forwarded to that collector.
func (b *Broker) openClientMetrics(ctx context.Context, opts *protocol.Options) (err error) {
	tc := b.cfg.Telemetry
	c := &clientMetrics{cli: b.cli, log: b.log}
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
	c.mirror = metadata.NewMirror(metadata.MirrorOptions[clientmetrics.Subscription]{
		Client:  b.cli,
		Prefix:  clientMetricsPrefix,
		What:    "client metrics subscriptions",
		Decode:  c.decode,
		Publish: c.publish,
		Logger:  b.log,
	})
	if err := c.mirror.Start(ctx); err != nil { // the watch is c's: ends on close
		return fmt.Errorf("broker: client metrics subscriptions: %w", err)
	}
	if err := b.registry.Register(c.Manager); err != nil {
		_ = c.mirror.Close()
		return fmt.Errorf("broker: client metrics: %w", err)
	}
	b.clientMetrics, opts.ClientMetrics = c, c
	return nil
}

// close stops the watch and waits for it, then sends the pushes still
// queued for the OTLP collector, for at most five seconds; nil-safe.
func (c *clientMetrics) close() error {
	if c == nil {
		return nil
	}
	_ = c.mirror.Close()
	if c.fwd == nil {
		return nil
	}
	return c.fwd.Close(5 * time.Second)
}

// decode reads one stored subscription, skipping one that no longer
// parses.
func (c *clientMetrics) decode(key string, value []byte) (clientmetrics.Subscription, bool) {
	name := strings.TrimPrefix(key, clientMetricsPrefix)
	var cfg map[string]string
	if err := json.Unmarshal(value, &cfg); err != nil {
		c.log.Warn("ignoring an undecodable client metrics subscription", "key", key, "err", err)
		return clientmetrics.Subscription{}, false
	}
	sub, err := clientmetrics.ParseSubscription(name, cfg)
	if err != nil {
		c.log.Warn("ignoring an invalid client metrics subscription", "key", key, "err", err)
		return clientmetrics.Subscription{}, false
	}
	return sub, true
}

// publish hands the subscriptions to the Manager in name order (the
// mirror's key order, the names sharing one prefix).
func (c *clientMetrics) publish(subs []clientmetrics.Subscription) {
	c.SetSubscriptions(subs)
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
		if resp.Deleted == 0 {
			return nil // nothing changed: no watch event will show it
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
	return c.mirror.WaitRev(ctx, rev)
}

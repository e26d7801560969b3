package broker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/internal/protocol"
)

// readBarrierTimeout bounds a read barrier (protocol.Options): half the
// lease, so a broker cut off from etcd answers a retriable error well
// before it stops serving, and never more than the protocol's default.
func readBarrierTimeout(leaseTTL time.Duration) time.Duration {
	return min(leaseTTL/2, protocol.DefaultReadBarrierTimeout)
}

// guardServing suspends the Kafka listener while the broker cannot vouch
// for its state and resumes it once it can (DESIGN §5a rule 7). The
// cluster reports unhealthy once etcd has not acknowledged the broker's
// lease for the lease TTL: by then etcd has dropped the broker from the
// live set and the other brokers serve its partitions, while its own
// state is frozen at the last revision it saw. It reports healthy again
// only after the broker has replayed the log and rejoined the live set
// (cluster.Options.CatchUp).
func (b *Broker) guardServing(ctx context.Context) {
	defer b.wg.Done()
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_broker_serving",
		Help: "1 while the broker serves Kafka clients, 0 while it is suspended because it cannot reach etcd or is catching up."})
	b.registry.MustRegister(gauge)
	tick := min(max(b.cluster.LeaseTTL()/10, 20*time.Millisecond), 500*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	serving := true
	gauge.Set(1)
	for {
		changes := b.cluster.Changes()
		healthy := b.cluster.Healthy()
		switch {
		case serving && !healthy:
			b.log.Error("broker: etcd unreachable for longer than the lease or rejoining; suspending the Kafka listener",
				"lease_ttl", b.cluster.LeaseTTL())
			b.server.Suspend()
			gauge.Set(0)
		case !serving && healthy:
			b.log.Info("broker: caught up and back in the live set; serving Kafka clients again")
			b.server.Resume()
			gauge.Set(1)
		}
		serving = healthy
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changes:
		}
	}
}

package broker

import (
	"context"
	"time"

	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/telemetry/tracing"
)

// brokerTracing is the broker's tracer provider; p is nil unless
// tracing.enabled.
type brokerTracing struct{ p *tracing.Provider }

// startTracing starts the tracer provider when tracing.enabled is set and
// gives the Kafka front end its tracer; off, popts.Tracer stays nil and no
// span is ever started.
func (b *Broker) startTracing(ctx context.Context, popts *protocol.Options) error {
	tc := b.cfg.Tracing
	if !tc.Enabled {
		return nil
	}
	p, err := tracing.New(ctx, tracing.Config{
		Endpoint: tc.Endpoint, SampleRatio: tc.SampleRatio, ServiceName: tc.ServiceName, BrokerID: b.cfg.BrokerID,
	})
	if err != nil {
		return err
	}
	b.tracing.p = p
	popts.Tracer = p.Tracer()
	b.log.Info("broker: tracing on", "endpoint", tc.Endpoint, "sample_ratio", tc.SampleRatio)
	return nil
}

// stopTracing exports the spans still buffered, waiting at most a few
// seconds for an unreachable collector.
func (b *Broker) stopTracing() error {
	if b.tracing.p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.tracing.p.Shutdown(ctx)
}

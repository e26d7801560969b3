package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the tracer Runnel's spans come from.
const InstrumentationName = "github.com/runnel-dev/runnel"

// Config configures a Provider.
type Config struct {
	// Endpoint is the OTLP/gRPC collector URL: http://host:port sends in
	// plain text, https://host:port over TLS.
	Endpoint string
	// SampleRatio is the fraction of root spans sampled, 0 to 1; a span
	// with a parent follows its parent's decision.
	SampleRatio float64
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// BrokerID is reported as the runnel.broker.id resource attribute.
	BrokerID int32
}

// Provider is a running tracer provider. Its zero value is not usable;
// build one with New or NewWithExporter.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New starts a Provider exporting over OTLP/gRPC to cfg.Endpoint. The
// exporter connects lazily: an unreachable collector costs dropped spans
// (and an error from the exporter, reported by the SDK), never a failed
// start or a blocked request.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("tracing: no endpoint")
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter %s: %w", cfg.Endpoint, err)
	}
	return newProvider(cfg, sdktrace.WithBatcher(exp)), nil
}

// NewWithExporter is New with spans handed to exp synchronously as each
// ends (tests use an in-memory exporter).
func NewWithExporter(cfg Config, exp sdktrace.SpanExporter) *Provider {
	return newProvider(cfg, sdktrace.WithSyncer(exp))
}

func newProvider(cfg Config, export sdktrace.TracerProviderOption) *Provider {
	name := cfg.ServiceName
	if name == "" {
		name = "runnel"
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", name),
		attribute.Int("runnel.broker.id", int(cfg.BrokerID)),
	)
	return &Provider{tp: sdktrace.NewTracerProvider(
		export,
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)}
}

// Tracer returns the tracer Runnel's spans are started with.
func (p *Provider) Tracer() trace.Tracer { return p.tp.Tracer(InstrumentationName) }

// Shutdown exports the spans still buffered and stops the exporter; ctx
// bounds the wait.
func (p *Provider) Shutdown(ctx context.Context) error {
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

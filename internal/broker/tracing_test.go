package broker

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/runnel-dev/runnel/internal/config"
)

// otlpReceiver is an OTLP/gRPC trace collector keeping what it is sent.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	attrs map[string]string // resource attributes (string values)
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, kv := range rs.GetResource().GetAttributes() {
			r.attrs[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{attrs: map[string]string{}}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return r, "http://" + ln.Addr().String()
}

// TestTracingExportsOTLP runs a broker with tracing on against an
// in-process OTLP/gRPC collector: a produce carrying a traceparent header
// and a fetch arrive as spans, the produce span linked to the producer's
// trace, under the configured service name.
func TestTracingExportsOTLP(t *testing.T) {
	recv, endpoint := startOTLPReceiver(t)
	env := newTestEnv(t, 30*time.Second, func(c *config.Config) {
		c.Tracing = config.TracingConfig{Enabled: true, Endpoint: endpoint, SampleRatio: 1, ServiceName: "runnel-test"}
	}, 1, "traced")
	const producerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := &kgo.Record{Topic: "traced", Value: []byte("v"),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + producerTrace + "-00f067aa0ba902b7-01")}}}
	if err := env.cl.ProduceSync(env.ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.ConsumeTopics("traced"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if fs := cons.PollFetches(env.ctx); fs.NumRecords() != 1 {
		t.Fatalf("fetched %d records: %v", fs.NumRecords(), fs.Errors())
	}
	cons.Close()
	// Close exports what the batcher still holds.
	if err := env.b.Close(); err != nil {
		t.Fatal(err)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if got := recv.attrs["service.name"]; got != "runnel-test" {
		t.Errorf("service.name = %q", got)
	}
	var produce, fetch int
	for _, s := range recv.spans {
		switch s.Name {
		case "kafka.produce":
			for _, l := range s.Links {
				if hex.EncodeToString(l.TraceId) == producerTrace {
					produce++
				}
			}
		case "kafka.fetch":
			fetch++
		}
	}
	if produce != 1 {
		t.Errorf("%d produce spans linked to the producer's trace, want 1 (%d spans received)", produce, len(recv.spans))
	}
	if fetch == 0 {
		t.Errorf("no fetch span received (%d spans)", len(recv.spans))
	}
}

// TestTracingOffStartsNoProvider checks the default: no provider, no tracer.
func TestTracingOffStartsNoProvider(t *testing.T) {
	env := newTestEnv(t, 30*time.Second, nil, 1)
	if env.b.tracing.p != nil {
		t.Fatal("tracing provider started with tracing.enabled false")
	}
}

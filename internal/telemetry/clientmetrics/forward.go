package clientmetrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Forwarder defaults.
const (
	DefaultForwardQueue   = 1000
	DefaultForwardTimeout = 10 * time.Second
)

// ForwarderOptions configure an OTLPForwarder.
type ForwarderOptions struct {
	// Endpoint is the OTLP/gRPC collector: http://host:port in plain
	// text, https://host:port over TLS.
	Endpoint string
	// Queue bounds the pushes waiting to be sent; a push that finds it
	// full is dropped (DefaultForwardQueue when <= 0).
	Queue int
	// Timeout bounds one Export call (DefaultForwardTimeout when <= 0).
	Timeout time.Duration
	// Logger reports failed exports, at most one a minute.
	Logger *slog.Logger
}

// OTLPForwarder is a Sink that sends every push, its resources labelled
// with the client that pushed it, to an OTLP/gRPC collector through the
// metrics service's Export. Forward only queues: a slow or unreachable
// collector costs dropped pushes, counted, never a slower PushTelemetry.
// One goroutine sends, in push order; Close stops and drains it.
type OTLPForwarder struct {
	opts   ForwarderOptions
	conn   *grpc.ClientConn
	client collectorpb.MetricsServiceClient
	ctx    context.Context // cancelled when Close gives up draining
	cancel context.CancelFunc
	done   chan struct{} // closed when the sender returns

	mu     sync.RWMutex // guards closed and the send on queue against close(queue)
	closed bool
	queue  chan *collectorpb.ExportMetricsServiceRequest

	forwarded, dropped, failed prometheus.Counter
	lastLog                    time.Time // sender only
}

// NewOTLPForwarder starts a forwarder. It does not wait for the collector:
// until it answers, exports fail and are counted.
func NewOTLPForwarder(opts ForwarderOptions) (*OTLPForwarder, error) {
	if opts.Queue <= 0 {
		opts.Queue = DefaultForwardQueue
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultForwardTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(opts.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("clientmetrics: OTLP endpoint %q is not a URL", opts.Endpoint)
	}
	var creds credentials.TransportCredentials
	switch u.Scheme {
	case "http":
		creds = insecure.NewCredentials()
	case "https":
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	default:
		return nil, fmt.Errorf("clientmetrics: OTLP endpoint %q must be http:// or https://", opts.Endpoint)
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("clientmetrics: OTLP endpoint %q: %w", opts.Endpoint, err)
	}
	f := &OTLPForwarder{
		opts:   opts,
		conn:   conn,
		client: collectorpb.NewMetricsServiceClient(conn),
		done:   make(chan struct{}),
		queue:  make(chan *collectorpb.ExportMetricsServiceRequest, opts.Queue),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_client_metrics_forwarded_total",
			Help: "KIP-714 pushes forwarded to the OTLP collector."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_client_metrics_forward_dropped_total",
			Help: "KIP-714 pushes not forwarded because the forwarding queue was full or the broker was stopping."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_client_metrics_forward_errors_total",
			Help: "KIP-714 pushes the OTLP collector failed or partly rejected."}),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	go f.send() // owned by f: ends on Close
	return f, nil
}

// Forward queues md, its resources labelled with c, or drops and counts it
// when the queue is full or the forwarder closed. It never blocks.
func (f *OTLPForwarder) Forward(c Client, md *metricspb.MetricsData) {
	label(md, c)
	req := &collectorpb.ExportMetricsServiceRequest{ResourceMetrics: md.GetResourceMetrics()}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		f.dropped.Inc()
		return
	}
	select {
	case f.queue <- req:
	default:
		f.dropped.Inc()
	}
}

// clientAttributes are the resource attributes a forwarded push carries,
// KIP-714's broker-added labels; the client's own values for these keys
// are replaced.
func clientAttributes(c Client) []*commonpb.KeyValue {
	kv := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	attrs := []*commonpb.KeyValue{
		kv("client_instance_id", uuidString(c.InstanceID)),
		kv("client_id", c.ClientID),
		kv("client_software_name", c.SoftwareName),
		kv("client_software_version", c.SoftwareVersion),
		kv("principal", c.Principal),
	}
	if c.SourceAddress != "" {
		attrs = append(attrs, kv("client_source_address", c.SourceAddress), kv("client_source_port", c.SourcePort))
	}
	return attrs
}

// label sets the client attributes on every resource of md.
func label(md *metricspb.MetricsData, c Client) {
	add := clientAttributes(c)
	set := make(map[string]bool, len(add))
	for _, a := range add {
		set[a.Key] = true
	}
	for _, rm := range md.GetResourceMetrics() {
		if rm == nil {
			continue
		}
		if rm.Resource == nil {
			rm.Resource = &resourcepb.Resource{}
		}
		kept := rm.Resource.Attributes[:0]
		for _, a := range rm.Resource.Attributes {
			if !set[a.GetKey()] {
				kept = append(kept, a)
			}
		}
		rm.Resource.Attributes = append(kept, add...)
	}
}

// send exports the queued pushes one by one until the queue is closed and
// empty; once ctx is cancelled what is left is counted as dropped.
func (f *OTLPForwarder) send() {
	defer close(f.done)
	for req := range f.queue {
		if f.ctx.Err() != nil {
			f.dropped.Inc()
			continue
		}
		ctx, cancel := context.WithTimeout(f.ctx, f.opts.Timeout)
		resp, err := f.client.Export(ctx, req)
		cancel()
		if err == nil {
			if ps := resp.GetPartialSuccess(); ps.GetRejectedDataPoints() > 0 {
				err = fmt.Errorf("collector rejected %d data points: %s", ps.GetRejectedDataPoints(), ps.GetErrorMessage())
			}
		}
		if err != nil {
			f.failed.Inc()
			if now := time.Now(); now.Sub(f.lastLog) >= time.Minute {
				f.lastLog = now
				f.opts.Logger.Warn("forwarding client metrics", "endpoint", f.opts.Endpoint, "err", err)
			}
			continue
		}
		f.forwarded.Inc()
	}
}

// Close stops accepting pushes, sends those queued for at most timeout,
// drops the rest and closes the connection. It returns the connection's
// close error, or an error saying the queue was not drained in time.
func (f *OTLPForwarder) Close(timeout time.Duration) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.queue)
	f.mu.Unlock()
	var errs []error
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		f.cancel()
		<-f.done
		errs = append(errs, fmt.Errorf("clientmetrics: OTLP forwarding queue not drained within %s", timeout))
	}
	f.cancel()
	errs = append(errs, f.conn.Close())
	return errors.Join(errs...)
}

// Describe and Collect export the forwarder's counters.
func (f *OTLPForwarder) Describe(ch chan<- *prometheus.Desc) {
	f.forwarded.Describe(ch)
	f.dropped.Describe(ch)
	f.failed.Describe(ch)
}

// Collect implements prometheus.Collector.
func (f *OTLPForwarder) Collect(ch chan<- prometheus.Metric) {
	f.forwarded.Collect(ch)
	f.dropped.Collect(ch)
	f.failed.Collect(ch)
}

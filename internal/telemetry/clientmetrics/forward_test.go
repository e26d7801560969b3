package clientmetrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
)

// collector is an in-process OTLP/gRPC metrics collector. Each Export is
// handed to got; the call then waits for release (when set) or answers
// with fail.
type collector struct {
	collectorpb.UnimplementedMetricsServiceServer
	got     chan *collectorpb.ExportMetricsServiceRequest
	release chan struct{}
	fail    error
}

func (c *collector) Export(ctx context.Context, req *collectorpb.ExportMetricsServiceRequest) (*collectorpb.ExportMetricsServiceResponse, error) {
	c.got <- req
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.fail != nil {
		return nil, c.fail
	}
	return &collectorpb.ExportMetricsServiceResponse{}, nil
}

// startCollector serves c on a loopback port and returns its endpoint URL.
func startCollector(t *testing.T, c *collector) string {
	t.Helper()
	c.got = make(chan *collectorpb.ExportMetricsServiceRequest, 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectorpb.RegisterMetricsServiceServer(srv, c)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

func newForwarder(t *testing.T, opts ForwarderOptions) *OTLPForwarder {
	t.Helper()
	f, err := NewOTLPForwarder(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(time.Second) })
	return f
}

func receive(t *testing.T, c *collector) *collectorpb.ExportMetricsServiceRequest {
	t.Helper()
	select {
	case req := <-c.got:
		return req
	case <-time.After(10 * time.Second):
		t.Fatal("the collector received nothing")
		return nil
	}
}

func resourceAttrs(rm *metricspb.ResourceMetrics) map[string]string {
	out := map[string]string{}
	for _, a := range rm.GetResource().GetAttributes() {
		out[a.GetKey()] = a.GetValue().GetStringValue()
	}
	return out
}

// An accepted push reaches the collector with the client's resource
// attributes; a refused one does not.
func TestForwardAcceptedPushToCollector(t *testing.T) {
	col := &collector{}
	f := newForwarder(t, ForwarderOptions{Endpoint: startCollector(t, col)})
	c := newClock()
	m := New(Options{Now: c.now, Sink: f})
	m.SetSubscriptions([]Subscription{mustSub(t, "all", map[string]string{"metrics": "*", "interval.ms": "1000"})})
	cl := Client{ClientID: "app-1", SoftwareName: "kgo", SoftwareVersion: "1.19", SourceAddress: "127.0.0.1", SourcePort: "50000", Principal: "User:alice"}
	g, err := m.Subscribe(cl)
	if err != nil {
		t.Fatal(err)
	}
	cl.InstanceID = g.InstanceID
	if err := m.Push(cl, Push{SubscriptionID: g.SubscriptionID, Compression: CompressionZstd, Metrics: compressWith(t, CompressionZstd, payload(t, 5, 2))}); err != nil {
		t.Fatal(err)
	}
	req := receive(t, col)
	if len(req.GetResourceMetrics()) != 1 {
		t.Fatalf("forwarded %d resources, want 1", len(req.GetResourceMetrics()))
	}
	rm := req.GetResourceMetrics()[0]
	got := resourceAttrs(rm)
	want := map[string]string{
		"client_instance_id": uuidString(g.InstanceID), "client_id": "app-1", "client_software_name": "kgo",
		"client_software_version": "1.19", "principal": "User:alice", "client_source_address": "127.0.0.1", "client_source_port": "50000",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("resource attribute %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	var names []string
	for _, sm := range rm.GetScopeMetrics() {
		for _, mt := range sm.GetMetrics() {
			names = append(names, mt.GetName())
		}
	}
	if strings.Join(names, ",") != "org.apache.kafka.producer.record.send,org.apache.kafka.producer.node.request.latency.max,org.apache.kafka.consumer.fetch.total" {
		t.Fatalf("forwarded metrics %v", names)
	}

	// Too early: throttled, so nothing is forwarded.
	if err := m.Push(cl, Push{SubscriptionID: g.SubscriptionID, Metrics: payload(t, 6, 2)}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("early push: %v", err)
	}
	c.add(time.Second)
	if err := m.Push(cl, Push{SubscriptionID: g.SubscriptionID, Metrics: payload(t, 7, 2)}); err != nil {
		t.Fatal(err)
	}
	req = receive(t, col)
	if s := req.GetResourceMetrics()[0].GetScopeMetrics()[0].GetMetrics()[0].GetSum().GetDataPoints()[0].GetAsInt(); s != 6 {
		t.Fatalf("second forwarded push carries %d, want the third push's 6", s)
	}
	if err := f.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(f.forwarded); n != 2 {
		t.Fatalf("forwarded_total %v, want 2", n)
	}
}

// The client's own values for the broker's attributes are replaced, its
// other attributes kept.
func TestForwardLabelReplacesClientAttributes(t *testing.T) {
	md := &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{}, {}}}
	label(md, Client{ClientID: "a"})
	label(md, Client{ClientID: "b", Principal: "User:bob"})
	for _, rm := range md.ResourceMetrics {
		if got := resourceAttrs(rm); len(rm.GetResource().GetAttributes()) != 5 || got["client_id"] != "b" || got["principal"] != "User:bob" {
			t.Fatalf("attributes %v", rm.GetResource().GetAttributes())
		}
	}
}

// A full queue drops and counts instead of blocking the push.
func TestForwardFullQueueDrops(t *testing.T) {
	col := &collector{release: make(chan struct{})}
	f := newForwarder(t, ForwarderOptions{Endpoint: startCollector(t, col), Queue: 1})
	md := func() *metricspb.MetricsData {
		return &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{}}}
	}
	f.Forward(Client{ClientID: "first"}, md())
	receive(t, col) // the sender is now stuck in Export
	returned := make(chan struct{})
	go func() {
		f.Forward(Client{ClientID: "queued"}, md())
		f.Forward(Client{ClientID: "dropped"}, md())
		f.Forward(Client{ClientID: "dropped"}, md())
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Forward blocked on a full queue")
	}
	if n := testutil.ToFloat64(f.dropped); n != 2 {
		t.Fatalf("forward_dropped_total %v, want 2", n)
	}
	close(col.release)
	if req := receive(t, col); resourceAttrs(req.GetResourceMetrics()[0])["client_id"] != "queued" {
		t.Fatalf("second export %v, want the queued push", req)
	}
	if err := f.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(f.forwarded); n != 2 {
		t.Fatalf("forwarded_total %v, want 2", n)
	}
	f.Forward(Client{}, md()) // after Close: dropped, no panic
	if n := testutil.ToFloat64(f.dropped); n != 3 {
		t.Fatalf("forward_dropped_total %v after Close, want 3", n)
	}
}

// Failed exports are counted; Close gives up on a collector that does not
// answer within its timeout and counts what was left as dropped.
func TestForwardErrorsAndBoundedClose(t *testing.T) {
	col := &collector{fail: errors.New("collector down")}
	f := newForwarder(t, ForwarderOptions{Endpoint: startCollector(t, col)})
	f.Forward(Client{}, &metricspb.MetricsData{})
	receive(t, col)
	if err := f.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(f.failed); n != 1 {
		t.Fatalf("forward_errors_total %v, want 1", n)
	}

	stuck := &collector{release: make(chan struct{})} // never released
	f = newForwarder(t, ForwarderOptions{Endpoint: startCollector(t, stuck), Timeout: time.Minute})
	f.Forward(Client{}, &metricspb.MetricsData{})
	receive(t, stuck)
	f.Forward(Client{}, &metricspb.MetricsData{})
	start := time.Now()
	if err := f.Close(200 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "not drained") {
		t.Fatalf("Close = %v, want not drained", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %s", d)
	}
	if n := testutil.ToFloat64(f.dropped); n != 1 {
		t.Fatalf("forward_dropped_total %v, want 1 (the push still queued)", n)
	}
	if n := testutil.ToFloat64(f.failed); n != 1 {
		t.Fatalf("forward_errors_total %v, want 1 (the cancelled export)", n)
	}
}

package broker

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
)

// scrapeClientLines returns the /metrics lines of runnel_client_* series
// whose client_id is id.
func scrapeClientLines(t *testing.T, b *Broker, id string) []string {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "runnel_client_") && !strings.HasPrefix(l, "runnel_client_metrics_") && strings.Contains(l, `client_id="`+id+`"`) {
			out = append(out, l)
		}
	}
	return out
}

func describeClientMetrics(ctx context.Context, t *testing.T, cl kmsg.Requestor, name string) map[string]string {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, name
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("describe %s: %v %+v", name, err, resp)
	}
	out := map[string]string{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = *c.Value
	}
	return out
}

// TestClientMetricsTwoBrokers: a subscription made through one broker is
// durable in etcd and applies on the other within a second; franz-go's
// KIP-714 client pushes, its metrics appear on /metrics within two
// intervals and disappear once it stops; a push over the size cap gets
// TELEMETRY_TOO_LARGE and the broker keeps serving.
func TestClientMetricsTwoBrokers(t *testing.T) {
	shared := "file://" + t.TempDir()
	cfg1 := testConfig(t, t.TempDir())
	cfg1.BrokerID, cfg1.ObjectStore = 1, shared
	b1 := startBroker(t, &cfg1)
	cfg2 := testConfig(t, t.TempDir())
	cfg2.BrokerID, cfg2.ObjectStore = 2, shared
	cfg2.Etcd.Endpoints = []string{b1.EtcdClientURL()}
	b2 := startBroker(t, &cfg2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin1, err := kgo.NewClient(kgo.SeedBrokers(b1.KafkaAddr()), kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer admin1.Close()
	admin2, err := kgo.NewClient(kgo.SeedBrokers(b2.KafkaAddr()), kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer admin2.Close()

	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "apps"
	for _, kv := range [][2]string{{"metrics", "org.apache.kafka.producer."}, {"interval.ms", "1000"}, {"match", "client_id=kip714-.*"}} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kv[0], &kv[1]
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	if resp, err := req.RequestWith(ctx, admin1.Broker(1)); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("create subscription: %v %+v", err, resp)
	}
	made := time.Now()
	for describeClientMetrics(ctx, t, admin2.Broker(2), "apps")["interval.ms"] != "1000" {
		if time.Since(made) > time.Second {
			t.Fatal("broker 2 does not see the subscription within a second")
		}
		time.Sleep(20 * time.Millisecond)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(b1.KafkaAddr(), b2.KafkaAddr()), kgo.ClientID("kip714-app"),
		kgo.DefaultProduceTopic("kip714"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	start := time.Now()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lines := func() []string {
		return append(scrapeClientLines(t, b1, "kip714-app"), scrapeClientLines(t, b2, "kip714-app")...)
	}
	for len(lines()) == 0 {
		// Two intervals, plus the half interval of jitter the client
		// puts on its first push.
		if time.Since(start) > 2500*time.Millisecond {
			t.Fatal("no runnel_client_* series on /metrics within two intervals")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := lines()
	t.Logf("after %v: %s", time.Since(start), strings.Join(got, "\n"))
	for _, l := range got {
		if !strings.HasPrefix(l, "runnel_client_org_apache_kafka_producer_") || !strings.Contains(l, `client_software_name="kgo"`) || !strings.Contains(l, `principal="User:ANONYMOUS"`) {
			t.Fatalf("unexpected series %s", l)
		}
	}

	// Over the size cap (telemetry.max.bytes, 1 MiB): Kafka's error, and
	// the broker serves on.
	g, err := kmsg.NewPtrGetTelemetrySubscriptionsRequest().RequestWith(ctx, admin1.Broker(1))
	if err != nil || g.ErrorCode != 0 {
		t.Fatalf("get subscriptions: %v %+v", err, g)
	}
	push := kmsg.NewPtrPushTelemetryRequest()
	push.ClientInstanceID, push.SubscriptionID, push.Metrics = g.ClientInstanceID, g.SubscriptionID, make([]byte, g.TelemetryMaxBytes+1)
	if resp, err := push.RequestWith(ctx, admin1.Broker(1)); err != nil || resp.ErrorCode != kerr.TelemetryTooLarge.Code {
		t.Fatalf("oversized push: %v %+v", err, resp)
	}
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, admin1.Broker(1)); err != nil {
		t.Fatalf("broker after an oversized push: %v", err)
	}

	prod.Close() // its last push is a terminating one; then it is silent
	stopped := time.Now()
	for len(lines()) != 0 {
		if time.Since(stopped) > 4*time.Second { // 2 × interval + 1 s slack, plus a scrape
			t.Fatalf("series of a stopped client still exported: %v", lines())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Deleted through broker 2 (every config deleted): gone on broker 1
	// within a second.
	del := kmsg.NewPtrIncrementalAlterConfigsRequest()
	dr := kmsg.NewIncrementalAlterConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "apps"
	for _, n := range []string{"metrics", "interval.ms", "match"} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op = n, kmsg.IncrementalAlterConfigOpDelete
		dr.Configs = append(dr.Configs, c)
	}
	del.Resources = append(del.Resources, dr)
	if resp, err := del.RequestWith(ctx, admin2.Broker(2)); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("delete subscription: %v %+v", err, resp)
	}
	deleted := time.Now()
	for len(describeClientMetrics(ctx, t, admin1.Broker(1), "apps")) != 0 {
		if time.Since(deleted) > time.Second {
			t.Fatal("broker 1 still has the deleted subscription after a second")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// otlpCollector is an in-process OTLP/gRPC metrics collector handing every
// Export to got.
type otlpCollector struct {
	collectorpb.UnimplementedMetricsServiceServer
	got chan *collectorpb.ExportMetricsServiceRequest
}

func (c *otlpCollector) Export(_ context.Context, req *collectorpb.ExportMetricsServiceRequest) (*collectorpb.ExportMetricsServiceResponse, error) {
	select {
	case c.got <- req:
	default:
	}
	return &collectorpb.ExportMetricsServiceResponse{}, nil
}

// TestClientMetricsForwardedToOTLP: with telemetry.client-metrics-otlp-
// endpoint set, franz-go's pushes reach the collector labelled with the
// client; telemetry.client-metrics-max-bytes is what clients are granted.
func TestClientMetricsForwardedToOTLP(t *testing.T) {
	col := &otlpCollector{got: make(chan *collectorpb.ExportMetricsServiceRequest, 16)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectorpb.RegisterMetricsServiceServer(srv, col)
	go srv.Serve(ln)
	defer srv.Stop()

	cfg := testConfig(t, t.TempDir())
	cfg.Telemetry.ClientMetricsOTLPEndpoint = "http://" + ln.Addr().String()
	cfg.Telemetry.ClientMetricsMaxBytes = 64 << 10
	b := startBroker(t, &cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "fwd"
	for _, kv := range [][2]string{{"metrics", "org.apache.kafka.producer."}, {"interval.ms", "500"}} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kv[0], &kv[1]
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	if resp, err := req.RequestWith(ctx, admin); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("create subscription: %v %+v", err, resp)
	}
	g, err := kmsg.NewPtrGetTelemetrySubscriptionsRequest().RequestWith(ctx, admin)
	if err != nil || g.ErrorCode != 0 || g.TelemetryMaxBytes != 64<<10 {
		t.Fatalf("get subscriptions: %v %+v, want TelemetryMaxBytes %d", err, g, 64<<10)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ClientID("kip714-fwd"),
		kgo.DefaultProduceTopic("kip714fwd"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case got := <-col.got:
			attrs := map[string]string{}
			for _, rm := range got.GetResourceMetrics() {
				for _, a := range rm.GetResource().GetAttributes() {
					attrs[a.GetKey()] = a.GetValue().GetStringValue()
				}
			}
			if attrs["client_id"] != "kip714-fwd" {
				continue // the admin client's, or an earlier one's
			}
			if attrs["client_software_name"] != "kgo" || attrs["principal"] != "User:ANONYMOUS" || attrs["client_instance_id"] == "" {
				t.Fatalf("forwarded resource attributes %v", attrs)
			}
			return
		case <-ctx.Done():
			t.Fatal("no push forwarded to the OTLP collector")
		}
	}
}

// TestClientMetricsDeleteUnknown: deleting a subscription that does not
// exist (AlterConfigs with no configs for an unknown name) succeeds at once,
// even when etcd's revision has moved on through other keys: no watch event
// will ever show a delete that deleted nothing.
func TestClientMetricsDeleteUnknown(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	b := startBroker(t, &cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := b.cli.Put(ctx, "/runnel-test/elsewhere", "1"); err != nil {
		t.Fatal(err)
	}
	if err := b.clientMetrics.Store(ctx, "never-stored", nil); err != nil {
		t.Fatalf("deleting an unknown subscription: %v", err)
	}
}

package protocol

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics"
	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics/clientmetricstest"
)

func newMemClientMetrics(opts clientmetrics.Options) *clientmetricstest.Memory {
	return clientmetricstest.New(opts)
}

func startTelemetryServer(t *testing.T, opts clientmetrics.Options) (*testBroker, *clientmetricstest.Memory, *prometheus.Registry) {
	t.Helper()
	cm := newMemClientMetrics(opts)
	reg := prometheus.NewRegistry()
	reg.MustRegister(cm.Manager)
	return startServer(t, func(o *Options) { o.ClientMetrics = cm }), cm, reg
}

// clientSeries returns the runnel_client_* series names in reg with a
// client_id label equal to id.
func clientSeries(t *testing.T, reg *prometheus.Registry, id string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "runnel_client_metrics_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "client_id" && l.GetValue() == id {
					out = append(out, mf.GetName())
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func alterClientMetrics(t *testing.T, adm kmsg.Requestor, name string, ops ...kadm.AlterConfig) error {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, name
	for _, o := range ops {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value, c.Op = o.Name, o.Value, kmsg.IncrementalAlterConfigOp(o.Op)
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(context.Background(), adm)
	if err != nil {
		t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Resources[0].ErrorCode)
}

func strptr(s string) *string { return &s }

// TestClientMetricsFranzGo: franz-go's own KIP-714 client subscribes and
// pushes; its metrics appear within two intervals and disappear once it
// stops pushing.
func TestClientMetricsFranzGo(t *testing.T) {
	b, _, reg := startTelemetryServer(t, clientmetrics.Options{EvictSlack: 500 * time.Millisecond})
	ctx := testCtx(t)
	adm := newClient(t, b.addr, kgo.ClientID("admin"), kgo.DisableClientMetrics())
	if err := alterClientMetrics(t, adm, "producers",
		kadm.AlterConfig{Name: "metrics", Value: strptr("org.apache.kafka.producer.")},
		kadm.AlterConfig{Name: "interval.ms", Value: strptr("1000")},
		kadm.AlterConfig{Name: "match", Value: strptr("client_id=telemetry-.*,client_software_name=kgo")},
	); err != nil {
		t.Fatalf("create subscription: %v", err)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ClientID("telemetry-app"), kgo.DefaultProduceTopic("t"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	start := time.Now()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for got = clientSeries(t, reg, "telemetry-app"); len(got) == 0; got = clientSeries(t, reg, "telemetry-app") {
		if time.Since(start) > 2*time.Second+time.Second { // two intervals + the client's first-push jitter slack
			t.Fatal("no runnel_client_* series within two intervals")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(got[0], "runnel_client_org_apache_kafka_producer_") {
		t.Fatalf("series %v outside the subscription", got)
	}
	if admin := clientSeries(t, reg, "admin"); len(admin) != 0 {
		t.Fatalf("a client with metrics disabled has series %v", admin)
	}
	t.Logf("series after %v: %v", time.Since(start), got)

	prod.Close() // a terminating push, then silence
	stopped := time.Now()
	for len(clientSeries(t, reg, "telemetry-app")) != 0 {
		if time.Since(stopped) > 4*time.Second {
			t.Fatal("series of a client that stopped pushing are still exported")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPushTelemetryErrors drives the APIs with raw requests: Kafka's error
// for each bad push, and the broker keeps serving.
func TestPushTelemetryErrors(t *testing.T) {
	b, _, _ := startTelemetryServer(t, clientmetrics.Options{MaxBytes: 1024})
	ctx := testCtx(t)
	cl := newClient(t, b.addr, kgo.DisableClientMetrics(), kgo.ClientID("raw"))
	adm := kadm.NewClient(cl)
	if err := alterClientMetrics(t, cl, "all", kadm.AlterConfig{Name: "metrics", Value: strptr("*")}, kadm.AlterConfig{Name: "interval.ms", Value: strptr("60000")}); err != nil {
		t.Fatal(err)
	}
	get := kmsg.NewPtrGetTelemetrySubscriptionsRequest()
	g, err := get.RequestWith(ctx, cl)
	if err != nil || g.ErrorCode != 0 {
		t.Fatalf("get: %v %v", err, kerr.ErrorForCode(g.ErrorCode))
	}
	if g.ClientInstanceID == [16]byte{} || g.TelemetryMaxBytes != 1024 || g.PushIntervalMillis != 60000 || len(g.RequestedMetrics) != 1 || g.RequestedMetrics[0] != "" {
		t.Fatalf("grant %+v", g)
	}
	push := func(sub int32, metrics []byte, terminating bool) error {
		p := kmsg.NewPtrPushTelemetryRequest()
		p.ClientInstanceID, p.SubscriptionID, p.Metrics, p.Terminating = g.ClientInstanceID, sub, metrics, terminating
		r, err := p.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return kerr.ErrorForCode(r.ErrorCode)
	}
	for _, s := range []struct {
		name string
		err  func() error
		want error
	}{
		{"too large", func() error { return push(g.SubscriptionID, make([]byte, 1025), false) }, kerr.TelemetryTooLarge},
		{"early", func() error { return push(g.SubscriptionID, nil, false) }, kerr.ThrottlingQuotaExceeded},
		{"terminating accepted early", func() error { return push(g.SubscriptionID, nil, true) }, nil},
		{"after terminating", func() error { return push(g.SubscriptionID, nil, true) }, kerr.InvalidRequest},
	} {
		if err := s.err(); !errors.Is(err, s.want) && err != s.want {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
	}
	get2 := kmsg.NewPtrGetTelemetrySubscriptionsRequest()
	g2, _ := get2.RequestWith(ctx, cl)
	p := kmsg.NewPtrPushTelemetryRequest()
	p.ClientInstanceID, p.SubscriptionID, p.Metrics = g2.ClientInstanceID, g2.SubscriptionID+1, []byte{1}
	if r, err := p.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.UnknownSubscriptionID.Code {
		t.Fatalf("stale subscription id: %v %v", err, r)
	}
	p2 := kmsg.NewPtrPushTelemetryRequest()
	p2.ClientInstanceID, p2.SubscriptionID, p2.Metrics = g2.ClientInstanceID, g2.SubscriptionID, []byte{0xff, 0xff}
	get3 := kmsg.NewPtrGetTelemetrySubscriptionsRequest()
	get3.ClientInstanceID = g2.ClientInstanceID
	if r, _ := get3.RequestWith(ctx, cl); r.ErrorCode != 0 || r.SubscriptionID != g2.SubscriptionID {
		t.Fatalf("re-get after UNKNOWN_SUBSCRIPTION_ID: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r, err := p2.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("garbage payload: %v %v", err, r)
	}
	// Still serving.
	if _, err := adm.ListTopics(ctx); err != nil {
		t.Fatalf("broker after bad pushes: %v", err)
	}
}

// TestClientMetricsConfigResources: CLIENT_METRICS resources through
// IncrementalAlterConfigs, AlterConfigs, DescribeConfigs and
// ListConfigResources, with Kafka's validation errors.
func TestClientMetricsConfigResources(t *testing.T) {
	b, _, _ := startTelemetryServer(t, clientmetrics.Options{})
	ctx := testCtx(t)
	cl := newClient(t, b.addr, kgo.DisableClientMetrics())
	adm := cl
	for _, tc := range []struct {
		name, sub string
		ops       []kadm.AlterConfig
		want      error
	}{
		{"ok", "s1", []kadm.AlterConfig{{Name: "metrics", Value: strptr("org.apache.kafka.producer.")}, {Name: "interval.ms", Value: strptr("2000")}, {Name: "match", Value: strptr("client_id=a.*")}}, nil},
		{"append", "s1", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "metrics", Value: strptr("org.apache.kafka.consumer.")}}, nil},
		{"empty name", "", []kadm.AlterConfig{{Name: "metrics", Value: strptr("*")}}, kerr.InvalidRequest},
		{"unknown config", "s2", []kadm.AlterConfig{{Name: "metric", Value: strptr("*")}}, kerr.InvalidRequest},
		{"interval range", "s2", []kadm.AlterConfig{{Name: "interval.ms", Value: strptr("50")}}, kerr.InvalidRequest},
		{"bad match", "s2", []kadm.AlterConfig{{Name: "match", Value: strptr("client_rack=x")}}, kerr.InvalidConfig},
		{"bad regex", "s2", []kadm.AlterConfig{{Name: "match", Value: strptr("client_id=(")}}, kerr.InvalidConfig},
		{"append to an int", "s1", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "interval.ms", Value: strptr("1")}}, kerr.InvalidConfig},
	} {
		if err := alterClientMetrics(t, adm, tc.sub, tc.ops...); !errors.Is(err, tc.want) && err != tc.want {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// AlterConfigs replaces the whole set.
	areq := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "s3"
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	ac.Name, ac.Value = "metrics", strptr("*")
	ar.Configs = append(ar.Configs, ac)
	areq.Resources = append(areq.Resources, ar)
	if r, err := areq.RequestWith(ctx, cl); err != nil || r.Resources[0].ErrorCode != 0 {
		t.Fatalf("AlterConfigs: %v %+v", err, r)
	}

	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "s1"
	dreq.Resources = append(dreq.Resources, dr)
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil || dresp.Resources[0].ErrorCode != 0 {
		t.Fatalf("describe: %v %+v", err, dresp)
	}
	got := map[string]string{}
	for _, c := range dresp.Resources[0].Configs {
		got[c.Name] = *c.Value
		if c.Source != kmsg.ConfigSourceClientMetricsConfig {
			t.Fatalf("%s source %v", c.Name, c.Source)
		}
	}
	if got["metrics"] != "org.apache.kafka.producer.,org.apache.kafka.consumer." || got["interval.ms"] != "2000" || got["match"] != "client_id=a.*" {
		t.Fatalf("described %v", got)
	}

	list := func() []string {
		r, err := kmsg.NewPtrListConfigResourcesRequest().RequestWith(ctx, cl)
		if err != nil || r.ErrorCode != 0 {
			t.Fatalf("list: %v %+v", err, r)
		}
		var names []string
		for _, c := range r.ConfigResources {
			names = append(names, c.Name)
		}
		return names
	}
	if names := list(); strings.Join(names, ",") != "s1,s3" {
		t.Fatalf("listed %v", names)
	}
	// Deleting every config deletes the subscription.
	if err := alterClientMetrics(t, adm, "s1", kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "metrics"}, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "interval.ms"}, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "match"}); err != nil {
		t.Fatal(err)
	}
	if names := list(); strings.Join(names, ",") != "s3" {
		t.Fatalf("after delete: %v", names)
	}
}

// TestClientMetricsNotServedWithoutOption: without Options.ClientMetrics
// the APIs are not advertised and the resource type is unsupported.
func TestClientMetricsNotServedWithoutOption(t *testing.T) {
	b := startServer(t, nil)
	for _, k := range []int16{71, 72, 74} {
		if _, ok := b.srv.apis[k]; ok {
			t.Fatalf("api %d served without ClientMetrics", k)
		}
	}
	cl := newClient(t, b.addr)
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "s1"
	dreq.Resources = append(dreq.Resources, dr)
	if r, err := dreq.RequestWith(testCtx(t), cl); err != nil || r.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("describe: %v %+v", err, r)
	}
}

// TestClientMetricsAuthorization: the CLIENT_METRICS resources need
// DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster, as Kafka; the telemetry
// APIs need no ACL.
func TestClientMetricsAuthorization(t *testing.T) {
	acls := &memACLs{}
	b := startServer(t, func(o *Options) {
		o.ClientMetrics = newMemClientMetrics(clientmetrics.Options{})
		o.Authorizer = auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true, SuperUsers: []string{"User:admin"}}, acls)
	})
	describe := func() int16 {
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "s"
		req.Resources = append(req.Resources, r)
		return do[*kmsg.DescribeConfigsResponse](t, b.addr, req, 4).Resources[0].ErrorCode
	}
	alter := func() int16 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeClientMetrics, "s"
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "metrics", strptr("*")
		r.Configs = append(r.Configs, c)
		req.Resources = append(req.Resources, r)
		return do[*kmsg.IncrementalAlterConfigsResponse](t, b.addr, req, 1).Resources[0].ErrorCode
	}
	list := func() int16 {
		return do[*kmsg.ListConfigResourcesResponse](t, b.addr, kmsg.NewPtrListConfigResourcesRequest(), 0).ErrorCode
	}
	wantCode(t, "describe", describe(), kerr.ClusterAuthorizationFailed)
	wantCode(t, "alter", alter(), kerr.ClusterAuthorizationFailed)
	wantCode(t, "list", list(), kerr.ClusterAuthorizationFailed)
	wantCode(t, "get subscriptions", do[*kmsg.GetTelemetrySubscriptionsResponse](t, b.addr, kmsg.NewPtrGetTelemetrySubscriptionsRequest(), 0).ErrorCode, nil)

	acls.allow(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationDescribeConfigs)
	wantCode(t, "describe with DESCRIBE_CONFIGS", describe(), nil)
	wantCode(t, "list with DESCRIBE_CONFIGS", list(), nil)
	wantCode(t, "alter with DESCRIBE_CONFIGS only", alter(), kerr.ClusterAuthorizationFailed)
	acls.allow(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationAlterConfigs)
	wantCode(t, "alter with ALTER_CONFIGS", alter(), nil)
}

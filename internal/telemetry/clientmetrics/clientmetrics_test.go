package clientmetrics

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func mustSub(t *testing.T, name string, cfg map[string]string) Subscription {
	t.Helper()
	s, err := ParseSubscription(name, cfg)
	if err != nil {
		t.Fatalf("ParseSubscription(%q): %v", name, err)
	}
	return s
}

// payload is an OTLP MetricsData with a cumulative sum over two data
// points and a gauge.
func payload(t *testing.T, sum int64, gauge float64) []byte {
	t.Helper()
	md := &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
		{Name: "org.apache.kafka.producer.record.send", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true,
			DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsInt{AsInt: sum - 1}}, {Value: &metricspb.NumberDataPoint_AsInt{AsInt: 1}}},
		}}},
		{Name: "org.apache.kafka.producer.node.request.latency.max", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{
			DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: gauge}}, {Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: gauge / 2}}},
		}}},
		{Name: "org.apache.kafka.consumer.fetch.total", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsInt{AsInt: 7}}},
		}}},
	}}}}}}
	b, err := proto.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compressWith(t *testing.T, codec int8, src []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case CompressionNone:
		return src
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(src)
		w.Close()
	case CompressionSnappy:
		return snappy.Encode(nil, src)
	case CompressionLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(src)
		w.Close()
	case CompressionZstd:
		w, _ := zstd.NewWriter(&buf)
		w.Write(src)
		w.Close()
	}
	return buf.Bytes()
}

func TestParseSubscription(t *testing.T) {
	for _, tc := range []struct {
		name, sub string
		cfg       map[string]string
		want      error
	}{
		{"ok", "s", map[string]string{"metrics": "org.apache.kafka.producer., org.apache.kafka.consumer.", "interval.ms": "1000", "match": "client_id=app-.*,client_software_name=kgo"}, nil},
		{"empty name", "", nil, ErrInvalidRequest},
		{"unknown config", "s", map[string]string{"metric": "x"}, ErrInvalidRequest},
		{"interval too small", "s", map[string]string{"interval.ms": "99"}, ErrInvalidRequest},
		{"interval too large", "s", map[string]string{"interval.ms": "3600001"}, ErrInvalidRequest},
		{"interval not a number", "s", map[string]string{"interval.ms": "1s"}, ErrInvalidConfig},
		{"match unknown selector", "s", map[string]string{"match": "client_rack=a"}, ErrInvalidConfig},
		{"match without =", "s", map[string]string{"match": "client_id"}, ErrInvalidConfig},
		{"match bad regex", "s", map[string]string{"match": "client_id=("}, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSubscription(tc.sub, tc.cfg)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPlanMatching(t *testing.T) {
	subs := []Subscription{
		mustSub(t, "producers", map[string]string{"metrics": "org.apache.kafka.producer.", "interval.ms": "2000", "match": "client_id=app-.*"}),
		mustSub(t, "kgo", map[string]string{"metrics": "org.apache.kafka.consumer.", "interval.ms": "1000", "match": "client_software_name=kgo,client_software_version=1\\..*"}),
		mustSub(t, "everyone-slow", map[string]string{"metrics": "org.apache.kafka.client.", "interval.ms": "60000"}),
	}
	for _, tc := range []struct {
		name     string
		attrs    map[string]string
		metrics  []string
		interval time.Duration
	}{
		{"all three", map[string]string{MatchClientID: "app-1", MatchSoftwareName: "kgo", MatchSoftwareVersion: "1.22"},
			[]string{"org.apache.kafka.client.", "org.apache.kafka.consumer.", "org.apache.kafka.producer."}, time.Second},
		{"regex is anchored", map[string]string{MatchClientID: "my-app-1", MatchSoftwareName: "kgo", MatchSoftwareVersion: "2.0"},
			[]string{"org.apache.kafka.client."}, time.Minute},
		{"missing attribute does not match", map[string]string{MatchClientID: "app-1"},
			[]string{"org.apache.kafka.client.", "org.apache.kafka.producer."}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planFor(subs, tc.attrs)
			if strings.Join(p.metrics, " ") != strings.Join(tc.metrics, " ") || p.interval != tc.interval {
				t.Fatalf("plan %v %v, want %v %v", p.metrics, p.interval, tc.metrics, tc.interval)
			}
		})
	}
	all := planFor(append(subs, mustSub(t, "all", map[string]string{"metrics": "*"})), map[string]string{})
	if got := all.requested(); len(got) != 1 || got[0] != "" {
		t.Fatalf("requested %q, want [\"\"] for all metrics", got)
	}
	if none := planFor(nil, nil); none.interval != DefaultInterval || len(none.requested()) != 0 {
		t.Fatalf("no subscription: %+v", none)
	}
}

func TestSubscribeAssignsIDsAndSubscriptionIDChanges(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now})
	m.SetSubscriptions([]Subscription{mustSub(t, "a", map[string]string{"metrics": "org.apache.kafka.producer.", "interval.ms": "1000"})})
	g, err := m.Subscribe(Client{ClientID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if g.InstanceID == [16]byte{} || g.Interval != time.Second || g.MaxBytes != DefaultMaxBytes || len(g.Compression) != 4 {
		t.Fatalf("grant %+v", g)
	}
	g2, _ := m.Subscribe(Client{ClientID: "y"})
	if g2.InstanceID == g.InstanceID {
		t.Fatal("two zero-id clients got the same instance id")
	}
	// Same subscriptions again: same id. A change: a new id, and the old
	// one is refused.
	m.SetSubscriptions([]Subscription{mustSub(t, "a", map[string]string{"metrics": "org.apache.kafka.producer.", "interval.ms": "1000"})})
	c.add(time.Second)
	same, err := m.Subscribe(Client{InstanceID: g.InstanceID, ClientID: "x"})
	if err != nil || same.SubscriptionID != g.SubscriptionID {
		t.Fatalf("unchanged subscriptions: id %d→%d, err %v", g.SubscriptionID, same.SubscriptionID, err)
	}
	m.SetSubscriptions([]Subscription{mustSub(t, "a", map[string]string{"metrics": "org.apache.kafka.producer.,org.apache.kafka.consumer.", "interval.ms": "1000"})})
	err = m.Push(Client{InstanceID: g.InstanceID, ClientID: "x"}, Push{SubscriptionID: g.SubscriptionID, Metrics: payload(t, 3, 1)})
	if !errors.Is(err, ErrUnknownSubscription) {
		t.Fatalf("push with stale subscription id: %v", err)
	}
	// Right after UNKNOWN_SUBSCRIPTION_ID, a re-get is not throttled.
	fresh, err := m.Subscribe(Client{InstanceID: g.InstanceID, ClientID: "x"})
	if err != nil || fresh.SubscriptionID == g.SubscriptionID {
		t.Fatalf("re-get after a change: id %d (old %d), err %v", fresh.SubscriptionID, g.SubscriptionID, err)
	}
	if _, err := m.Subscribe(Client{InstanceID: g.InstanceID, ClientID: "x"}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("a second get within the interval: %v, want throttled", err)
	}
}

// TestSubscriptionChangeLiftsThrottle: once what a client is asked for
// changes, its next GetTelemetrySubscriptions is answered at once; an
// unrelated change keeps the throttle.
func TestSubscriptionChangeLiftsThrottle(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now})
	a := mustSub(t, "a", map[string]string{"metrics": "org.apache.kafka.producer.", "interval.ms": "60000", "match": "client_id=x"})
	m.SetSubscriptions([]Subscription{a})
	g, _ := m.Subscribe(Client{ClientID: "x"})
	cl := Client{InstanceID: g.InstanceID, ClientID: "x"}
	m.SetSubscriptions([]Subscription{a, mustSub(t, "other", map[string]string{"metrics": "*", "match": "client_id=y"})})
	if _, err := m.Subscribe(cl); !errors.Is(err, ErrThrottled) {
		t.Fatalf("get after an unrelated change: %v, want throttled", err)
	}
	m.SetSubscriptions([]Subscription{mustSub(t, "a", map[string]string{"metrics": "org.apache.kafka.", "interval.ms": "60000", "match": "client_id=x"})})
	g2, err := m.Subscribe(cl)
	if err != nil || g2.SubscriptionID == g.SubscriptionID {
		t.Fatalf("get after its subscription changed: %v (id %d, was %d)", err, g2.SubscriptionID, g.SubscriptionID)
	}
}

func TestPushValidation(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now, MaxBytes: 4096})
	m.SetSubscriptions([]Subscription{mustSub(t, "all", map[string]string{"metrics": "*", "interval.ms": "1000"})})
	g, _ := m.Subscribe(Client{ClientID: "x"})
	cl := Client{InstanceID: g.InstanceID, ClientID: "x"}
	ok := Push{SubscriptionID: g.SubscriptionID, Metrics: payload(t, 3, 1)}
	if err := m.Push(cl, ok); err != nil {
		t.Fatalf("first push: %v", err)
	}
	steps := []struct {
		name  string
		after time.Duration
		push  Push
		want  error
	}{
		{"early push throttled", 500 * time.Millisecond, ok, ErrThrottled},
		{"on time", 500 * time.Millisecond, ok, nil},
		{"too large", time.Second, Push{SubscriptionID: g.SubscriptionID, Metrics: make([]byte, 4097)}, ErrTooLarge},
		{"bad payload", time.Second, Push{SubscriptionID: g.SubscriptionID, Metrics: []byte{0xff, 0xff, 0xff}}, ErrInvalidRecord},
		{"bad compression id", time.Second, Push{SubscriptionID: g.SubscriptionID, Compression: 9, Metrics: ok.Metrics}, ErrUnsupportedCompression},
		{"corrupt gzip", time.Second, Push{SubscriptionID: g.SubscriptionID, Compression: CompressionGzip, Metrics: []byte("nope")}, ErrInvalidRecord},
		{"bomb", time.Second, Push{SubscriptionID: g.SubscriptionID, Compression: CompressionZstd, Metrics: compressWith(t, CompressionZstd, make([]byte, 4096*inflateFactor+1))}, ErrTooLarge},
		{"terminating push accepted early", 10 * time.Millisecond, Push{SubscriptionID: g.SubscriptionID, Terminating: true, Metrics: ok.Metrics}, nil},
		{"nothing after terminating", time.Second, ok, ErrInvalidRequest},
	}
	for _, s := range steps {
		c.add(s.after)
		err := m.Push(cl, s.push)
		if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.want)
		}
	}
	if err := m.Push(Client{}, ok); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("zero instance id: %v", err)
	}
}

func TestDecompressEachCodec(t *testing.T) {
	raw := payload(t, 5, 2)
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		got, err := decompress(codec, compressWith(t, codec, raw), len(raw))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("codec %d: err %v, equal %v", codec, err, bytes.Equal(got, raw))
		}
		if codec != CompressionNone {
			if _, err := decompress(codec, compressWith(t, codec, raw), len(raw)-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("codec %d past the cap: %v", codec, err)
			}
		}
	}
	// snappy-java framing, as the Java client writes it.
	framed := append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
	block := snappy.Encode(nil, raw)
	framed = append(framed, byte(len(block)>>24), byte(len(block)>>16), byte(len(block)>>8), byte(len(block)))
	framed = append(framed, block...)
	if got, err := decompress(CompressionSnappy, framed, len(raw)); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("xerial snappy: %v", err)
	}
}

func TestExportAndEviction(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now})
	m.SetSubscriptions([]Subscription{mustSub(t, "producer", map[string]string{"metrics": "org.apache.kafka.producer.", "interval.ms": "1000"})})
	g, _ := m.Subscribe(Client{ClientID: "app", SoftwareName: "kgo", SoftwareVersion: "1.22.2"})
	cl := Client{InstanceID: g.InstanceID, ClientID: "app", SoftwareName: "kgo", SoftwareVersion: "1.22.2", Principal: "User:alice"}
	if err := m.Push(cl, Push{SubscriptionID: g.SubscriptionID, Compression: CompressionLZ4, Metrics: compressWith(t, CompressionLZ4, payload(t, 10, 8))}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	want := `
# HELP runnel_client_org_apache_kafka_producer_node_request_latency_max KIP-714 client metric runnel_client_org_apache_kafka_producer_node_request_latency_max.
# TYPE runnel_client_org_apache_kafka_producer_node_request_latency_max gauge
runnel_client_org_apache_kafka_producer_node_request_latency_max{client_id="app",client_instance_id="` + uuidString(g.InstanceID) + `",client_software_name="kgo",client_software_version="1.22.2",principal="User:alice"} 8
# HELP runnel_client_org_apache_kafka_producer_record_send_total KIP-714 client metric runnel_client_org_apache_kafka_producer_record_send_total.
# TYPE runnel_client_org_apache_kafka_producer_record_send_total counter
runnel_client_org_apache_kafka_producer_record_send_total{client_id="app",client_instance_id="` + uuidString(g.InstanceID) + `",client_software_name="kgo",client_software_version="1.22.2",principal="User:alice"} 10
`
	names := []string{"runnel_client_org_apache_kafka_producer_node_request_latency_max", "runnel_client_org_apache_kafka_producer_record_send_total", "runnel_client_org_apache_kafka_consumer_fetch_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	c.add(2*time.Second + time.Second) // exactly 2 × interval + slack: still there
	if n, _ := testutil.GatherAndCount(reg, names...); n != 2 {
		t.Fatalf("%d series at the eviction boundary, want 2", n)
	}
	c.add(time.Millisecond)
	if n, _ := testutil.GatherAndCount(reg, names...); n != 0 {
		t.Fatalf("%d series after a missed interval, want 0", n)
	}
}

func TestSeriesCap(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now, MaxSeries: 3})
	m.SetSubscriptions([]Subscription{mustSub(t, "all", map[string]string{"metrics": "*", "interval.ms": "1000"})})
	push := func(id string) {
		t.Helper()
		g, err := m.Subscribe(Client{ClientID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Push(Client{InstanceID: g.InstanceID, ClientID: id}, Push{SubscriptionID: g.SubscriptionID, Metrics: payload(t, 3, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	push("a") // three series
	push("b") // none fit
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	if n, _ := testutil.GatherAndCount(reg, "runnel_client_org_apache_kafka_producer_record_send_total"); n != 1 {
		t.Fatalf("%d series, want 1 (the cap)", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP runnel_client_metrics_dropped_series_total Pushed metrics not re-exported because a series cap was reached.\n# TYPE runnel_client_metrics_dropped_series_total counter\nrunnel_client_metrics_dropped_series_total 3\n"), "runnel_client_metrics_dropped_series_total"); err != nil {
		t.Fatal(err)
	}
	c.add(3*time.Second + time.Millisecond) // a's series are evicted: room again
	reg.Gather()
	push("c")
	if n, _ := testutil.GatherAndCount(reg, "runnel_client_org_apache_kafka_producer_record_send_total"); n != 1 {
		t.Fatalf("%d series after eviction, want c's", n)
	}
}

func TestInstanceCap(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now, MaxInstances: 2})
	for i := range 2 {
		if _, err := m.Subscribe(Client{ClientID: "c"}); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	if _, err := m.Subscribe(Client{ClientID: "c"}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("third client: %v, want throttled", err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP runnel_client_metrics_dropped_instances_total Client instances refused because the instance table was full.\n# TYPE runnel_client_metrics_dropped_instances_total counter\nrunnel_client_metrics_dropped_instances_total 1\n"), "runnel_client_metrics_dropped_instances_total"); err != nil {
		t.Fatal(err)
	}
	c.add(DefaultInterval*3 + time.Second) // the silent instances expire
	if _, err := m.Subscribe(Client{ClientID: "c"}); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestNamespacedNames(t *testing.T) {
	for name, want := range map[string]bool{
		"org.apache.kafka.producer.record.send": true,
		"io.example.app.latency":                true,
		"connections":                           false,
		"metrics.instances":                     false,
		"metrics.dropped.instances":             false,
		"metrics_dropped.series.total":          false,
		"metrics-forward.dropped.total":         false,
		"Metrics_forwarded.x.y":                 true, // runnel_client_Metrics_… is not the broker's
		"metricsx.a.b":                          true,
		"org..kafka":                            false,
		"":                                      false,
	} {
		if got := namespaced(name); got != want {
			t.Errorf("namespaced(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestDeltaSumsAccumulate: franz-go sends one metric per node and only the
// deltas that changed; the counter is the sum of every delta pushed.
func TestDeltaSumsAccumulate(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now})
	m.SetSubscriptions([]Subscription{mustSub(t, "all", map[string]string{"metrics": "*", "interval.ms": "1000"})})
	g, _ := m.Subscribe(Client{ClientID: "app"})
	if !g.Delta {
		t.Fatal("grant does not ask for delta sums")
	}
	delta := func(vals ...int64) []byte {
		var ms []*metricspb.Metric
		for _, v := range vals {
			ms = append(ms, &metricspb.Metric{Name: "org.apache.kafka.producer.connection.creation", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, IsMonotonic: true,
				DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsInt{AsInt: v}}},
			}}})
		}
		b, _ := proto.Marshal(&metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: ms}}}}})
		return b
	}
	cl := Client{InstanceID: g.InstanceID, ClientID: "app"}
	for i, p := range [][]byte{delta(2, 3), delta(4)} {
		c.add(time.Second)
		if err := m.Push(cl, Push{SubscriptionID: g.SubscriptionID, Metrics: p}); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range got {
		if mf.GetName() == "runnel_client_org_apache_kafka_producer_connection_creation_total" {
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 9 {
				t.Fatalf("counter %v, want 9", v)
			}
			return
		}
	}
	t.Fatal("counter not exported")
}

// TestConflictingPushesKeepTheScrapeValid: what clients push can never make
// the registry's Gather fail (one type per name, no duplicate series).
func TestConflictingPushesKeepTheScrapeValid(t *testing.T) {
	c := newClock()
	m := New(Options{Now: c.now})
	m.SetSubscriptions([]Subscription{mustSub(t, "all", map[string]string{"metrics": "*", "interval.ms": "1000"})})
	metric := func(name string, sum bool) *metricspb.Metric {
		dp := []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsInt{AsInt: 1}}}
		if sum {
			return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{DataPoints: dp}}}
		}
		return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: dp}}}
	}
	for i, ms := range [][]*metricspb.Metric{
		{metric("org.example.x_total", false), metric("org.example.x-y", true), metric("org.example.x.y", true), metric("metrics.instances", false)},
		{metric("org.example.x", true)}, // runnel_client_org_example_x_total again, as a counter
		{metric("metrics_dropped.series.total", true), metric("metrics_pushes.total.x", false)}, // the broker's own families
	} {
		g, err := m.Subscribe(Client{ClientID: "c" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := proto.Marshal(&metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: ms}}}}})
		if err := m.Push(Client{InstanceID: g.InstanceID, ClientID: "c" + strconv.Itoa(i)}, Push{SubscriptionID: g.SubscriptionID, Metrics: b}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	for range 20 { // map order varies between collections
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("gather: %v", err)
		}
	}
}

package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// sample returns the value of the series of name whose labels include
// labels (a counter's or gauge's value, a histogram's count); ok false
// when there is none.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// waitSample waits until want holds for the series' value (or absence).
func waitSample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want func(v float64, ok bool) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok := sample(t, reg, name, labels)
		if want(v, ok) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present %v): not as expected", name, labels, v, ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTrafficAndConnectionMetrics produces and consumes through a client
// that announces its software and checks the per-topic counters, the
// request phases and the connection gauges, which drop when it goes.
func TestTrafficAndConnectionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startServer(t, func(o *Options) { o.Metrics = reg })
	ctx := testCtx(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.AllowAutoTopicCreation(),
		kgo.SoftwareNameAndVersion("metrics-test", "1.2.3"), kgo.DefaultProduceTopic("traffic"),
		kgo.ConsumeTopics("traffic"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.FetchMaxWait(200*time.Millisecond)) // a long poll in flight holds the connection open after Close
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var produced int
	for i := range 5 {
		r := &kgo.Record{Value: []byte(fmt.Sprintf("value-%d", i)), Partition: int32(i % 2)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		produced++
	}
	topic := map[string]string{"topic": "traffic"}
	if v, _ := sample(t, reg, "runnel_topic_records_in_total", topic); v != 5 {
		t.Fatalf("records in = %v, want 5", v)
	}
	if v, _ := sample(t, reg, "runnel_topic_bytes_in_total", topic); v < 5*61 {
		t.Fatalf("bytes in = %v, want at least five batch headers", v)
	}
	for got := 0; got < produced; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, produced, err)
		}
		got += fs.NumRecords()
	}
	waitSample(t, reg, "runnel_topic_records_out_total", topic, func(v float64, _ bool) bool { return v == 5 })
	if v, _ := sample(t, reg, "runnel_topic_bytes_out_total", topic); v < 5*61 {
		t.Fatalf("bytes out = %v, want at least five batch headers", v)
	}

	produce := map[string]string{"api_key": "0"}
	for _, ph := range phaseNames {
		produce["phase"] = ph
		// The respond phase is observed once the response has been written,
		// which may be after the client has read it.
		waitSample(t, reg, "runnel_kafka_request_phase_seconds", produce, func(n float64, _ bool) bool { return n >= 5 })
	}
	if _, ok := sample(t, reg, "runnel_kafka_request_phase_seconds", map[string]string{"api_key": "1", "phase": "flush_sequence"}); ok {
		t.Error("fetch has a flush_sequence phase series")
	}
	if n, _ := sample(t, reg, "runnel_kafka_request_phase_seconds", map[string]string{"api_key": "1", "phase": "respond"}); n < 1 {
		t.Error("fetch respond phase not observed")
	}

	listener := map[string]string{"listener": DefaultListener}
	software := map[string]string{"listener": DefaultListener, "name": "metrics-test", "version": "1.2.3"}
	if v, _ := sample(t, reg, "runnel_kafka_connections", listener); v < 1 {
		t.Fatalf("connections = %v", v)
	}
	if v, _ := sample(t, reg, "runnel_kafka_connections_total", listener); v < 1 {
		t.Fatalf("connections total = %v", v)
	}
	if v, _ := sample(t, reg, "runnel_kafka_client_software", software); v < 1 {
		t.Fatalf("client software = %v", v)
	}
	cl.Close()
	waitSample(t, reg, "runnel_kafka_connections", listener, func(v float64, _ bool) bool { return v == 0 })
	waitSample(t, reg, "runnel_kafka_client_software", software, func(_ float64, ok bool) bool { return !ok })

	// A deleted topic's series go.
	adm := kadm.NewClient(newClient(t, b.addr))
	if res, err := adm.DeleteTopics(ctx, "traffic"); err != nil || res.Error() != nil {
		t.Fatal(err, res.Error())
	}
	if _, ok := sample(t, reg, "runnel_topic_records_in_total", topic); ok {
		t.Error("a deleted topic keeps its series")
	}
}

// throttleAll throttles every produce by 40ms.
type throttleAll struct{ Quotas }

func (throttleAll) Record(key auth.QuotaKey, _, _ string, _ float64) time.Duration {
	if key == auth.ProducerByteRate {
		return 40 * time.Millisecond
	}
	return 0
}

func (throttleAll) MaxInWindow(auth.QuotaKey, string, string) (float64, bool) { return 0, false }

func TestThrottleMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startServer(t, func(o *Options) { o.Metrics, o.Quotas = reg, throttleAll{} })
	ctx := testCtx(t)
	cl := newClient(t, b.addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("throttled"))
	for range 2 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := sample(t, reg, "runnel_kafka_throttle_seconds_total", map[string]string{"api_key": "0"})
	if v < 0.079 || v > 0.081 {
		t.Fatalf("produce throttle = %vs, want 0.08", v)
	}
}

func TestClientSoftwareCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	var keys []softwareKey
	for i := range maxSoftware + 5 {
		keys = append(keys, m.clientSoftware(softwareKey{}, softwareKey{"L", "client", fmt.Sprint(i)}))
	}
	series := func() int {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "runnel_kafka_client_software" {
				return len(mf.GetMetric())
			}
		}
		return 0
	}
	if n := series(); n != maxSoftware+1 {
		t.Fatalf("%d series, want %d and other", n, maxSoftware)
	}
	if v, _ := sample(t, reg, "runnel_kafka_client_software", map[string]string{"name": softwareOther, "version": softwareOther}); v != 5 {
		t.Fatalf("other = %v, want 5", v)
	}
	// Re-announcing the same software changes nothing; leaving frees a
	// pair for a newcomer.
	keys[0] = m.clientSoftware(keys[0], keys[0])
	m.clientSoftware(keys[0], softwareKey{})
	if k := m.clientSoftware(softwareKey{}, softwareKey{"L", "newcomer", "1"}); k.name != "newcomer" {
		t.Fatalf("newcomer counted as %+v", k)
	}
	for _, k := range keys[1:] {
		m.clientSoftware(k, softwareKey{})
	}
	if n := series(); n != 1 {
		t.Fatalf("%d series left, want the newcomer's", n)
	}
}

func TestBatchRecords(t *testing.T) {
	batch := func(n int32, attrs int16) []byte {
		b := kmsg.NewRecordBatch()
		b.Magic, b.NumRecords, b.Attributes = 2, n, attrs
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
		b.Records = make([]byte, n) // not decoded
		b.Length = int32(len(b.AppendTo(nil)) - 12)
		return b.AppendTo(nil)
	}
	three, two, control := batch(3, 0), batch(2, 1), batch(1, attrControl)
	for _, tc := range []struct {
		name string
		data []byte
		want int
	}{
		{"empty", nil, 0},
		{"one", three, 3},
		{"several", append(append(append([]byte{}, three...), control...), two...), 5},
		{"truncated last", append(append([]byte{}, three...), two[:len(two)-1]...), 3},
		{"short header", three[:40], 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := batchRecords(tc.data); got != tc.want {
				t.Fatalf("batchRecords = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRequestMetricsDoNotAllocate: once an api key's collectors are
// resolved, recording a request costs no allocation.
func TestRequestMetricsDoNotAllocate(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	start := time.Now()
	m.observe(apiKeyProduce, start, false) // resolves the collectors
	if n := testing.AllocsPerRun(100, func() {
		m.observe(apiKeyProduce, start, false)
		m.phase(apiKeyProduce, phaseQueue, start, start)
		m.phase(apiKeyProduce, phaseFlushSequence, start, start)
		m.phase(1, phaseFlushSequence, start, start) // not a fetch phase: ignored
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// TestUnknownApiKeysShareSeries: requests with api keys past the served
// range count under one "unknown" label, whatever keys a client invents.
func TestUnknownApiKeysShareSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	for _, key := range []int16{30000, -5, 200, 30000} {
		m.observe(key, time.Now(), true)
	}
	if v, _ := sample(t, reg, "runnel_kafka_request_errors_total", map[string]string{"api_key": "unknown"}); v != 4 {
		t.Fatalf("unknown api key errors = %v, want 4", v)
	}
	if _, ok := sample(t, reg, "runnel_kafka_requests_total", map[string]string{"api_key": "30000"}); ok {
		t.Fatal("an invented api key has its own series")
	}
}

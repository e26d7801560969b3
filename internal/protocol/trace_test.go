package protocol

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-dev/runnel/internal/telemetry/tracing"
)

// tracedServer starts a server whose spans, sampled at ratio, land in the
// returned exporter.
func tracedServer(t *testing.T, ratio float64) (*testBroker, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	p := tracing.NewWithExporter(tracing.Config{SampleRatio: ratio}, exp)
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	b := startServer(t, func(o *Options) { o.Tracer = p.Tracer() })
	return b, exp
}

func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

const (
	traceA = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceB = "0af7651916cd43dd8448eb211c80319c"
)

func TestTraceProduceLinksRecordTraceparents(t *testing.T) {
	b, exp := tracedServer(t, 1)
	ctx := testCtx(t)
	prod := newClient(t, b.addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("traced"),
		kgo.ClientID("tracer-test"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(50*time.Millisecond))
	tp := func(trace string) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: "other", Value: []byte("x")}, {Key: "traceparent", Value: []byte("00-" + trace + "-00f067aa0ba902b7-01")}}
	}
	// Create the topic first so the three records go in one request.
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	exp.Reset()
	recs := []*kgo.Record{
		{Value: []byte("a1"), Headers: tp(traceA)},
		{Value: []byte("b"), Headers: tp(traceB)},
		{Value: []byte("a2"), Headers: tp(traceA)}, // same context: one link
		{Value: []byte("bad"), Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("garbage")}}},
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	spans := spansNamed(exp, "kafka.produce")
	if len(spans) != 1 {
		t.Fatalf("%d produce spans, want 1 (all: %d)", len(spans), len(exp.GetSpans()))
	}
	s := spans[0]
	if s.SpanKind != trace.SpanKindServer {
		t.Errorf("kind %v", s.SpanKind)
	}
	var linked []string
	for _, l := range s.Links {
		linked = append(linked, l.SpanContext.TraceID().String())
	}
	if len(linked) != 2 || linked[0] != traceA || linked[1] != traceB {
		t.Fatalf("links to traces %v, want [%s %s]", linked, traceA, traceB)
	}
	for key, want := range map[string]string{
		"messaging.client.id": "tracer-test", "runnel.principal": "User:ANONYMOUS", "runnel.listener": DefaultListener,
	} {
		if v, _ := attr(s, key); v.AsString() != want {
			t.Errorf("%s = %q, want %q", key, v.AsString(), want)
		}
	}
	for key, want := range map[string]int64{"runnel.topics": 1, "runnel.partitions": 1, "runnel.acks": -1} {
		if v, _ := attr(s, key); v.AsInt64() != want {
			t.Errorf("%s = %d, want %d", key, v.AsInt64(), want)
		}
	}
	if v, _ := attr(s, "runnel.bytes"); v.AsInt64() <= 0 {
		t.Errorf("runnel.bytes = %d", v.AsInt64())
	}
	if _, ok := attr(s, "runnel.error_codes"); ok {
		t.Errorf("error codes on a successful produce")
	}
	for _, phase := range []string{"enqueue", "sequence"} {
		ph := spansNamed(exp, phase)
		if len(ph) != 1 || ph[0].Parent.SpanID() != s.SpanContext.SpanID() {
			t.Errorf("phase %s: %d spans, want one child of the produce span", phase, len(ph))
		}
	}
}

func TestTraceProduceCompressedBatchLinked(t *testing.T) {
	for _, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		b, exp := tracedServer(t, 1)
		ctx := testCtx(t)
		prod := newClient(t, b.addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("compressed"),
			kgo.ProducerBatchCompression(codec))
		r := &kgo.Record{Value: bytes.Repeat([]byte("compressible "), 400), Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceA + "-00f067aa0ba902b7-01")}}}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		spans := spansNamed(exp, "kafka.produce")
		s := spans[len(spans)-1]
		if len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != traceA {
			t.Errorf("%v: links %v, want one to %s", codec, s.Links, traceA)
		}
		if _, ok := attr(s, "runnel.trace.unscanned_batches"); ok {
			t.Errorf("%v: a batch left unscanned", codec)
		}
	}
}

func TestTraceProduceErrorCodes(t *testing.T) {
	b, exp := tracedServer(t, 1)
	ctx := testCtx(t)
	cl := newClient(t, b.addr)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "missing"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneBatch()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	spans := spansNamed(exp, "kafka.produce")
	if len(spans) != 1 {
		t.Fatalf("%d produce spans", len(spans))
	}
	v, _ := attr(spans[0], "runnel.error_codes")
	if got := v.AsInt64Slice(); len(got) != 1 || got[0] != 3 { // UNKNOWN_TOPIC_OR_PARTITION
		t.Errorf("error codes %v, want [3]", got)
	}
	if spans[0].Status.Code.String() != "Error" {
		t.Errorf("status %v", spans[0].Status)
	}
}

func TestTraceSampleRatioZeroRecordsNothing(t *testing.T) {
	b, exp := tracedServer(t, 0)
	ctx := testCtx(t)
	prod := newClient(t, b.addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("unsampled"))
	r := &kgo.Record{Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceA + "-00f067aa0ba902b7-01")}}}
	if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := newClient(t, b.addr, kgo.ConsumeTopics("unsampled"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if fs := cons.PollFetches(ctx); fs.NumRecords() != 1 {
		t.Fatalf("fetched %d records", fs.NumRecords())
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans at sample ratio 0", n)
	}
}

func TestTraceFetchSpan(t *testing.T) {
	b, exp := tracedServer(t, 1)
	ctx := testCtx(t)
	cl := newClient(t, b.addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("fetched"), kgo.ClientID("fetcher"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello"), Partition: 0}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 100, 1<<20, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	ti, _ := b.log.Topic("fetched")
	rt.Topic, rt.TopicID = "fetched", ti.ID // the client picks the version
	for p := int32(0); p < 2; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	exp.Reset()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			size += len(p.RecordBatches)
		}
	}
	spans := spansNamed(exp, "kafka.fetch")
	if len(spans) != 1 {
		t.Fatalf("%d fetch spans", len(spans))
	}
	s := spans[0]
	for key, want := range map[string]int64{
		"runnel.topics": 1, "runnel.partitions": 2, "runnel.bytes": int64(size),
		"runnel.fetch.max_wait_ms": 100, "runnel.fetch.min_bytes": 1 << 20,
	} {
		if v, _ := attr(s, key); v.AsInt64() != want {
			t.Errorf("%s = %d, want %d", key, v.AsInt64(), want)
		}
	}
	if size == 0 {
		t.Errorf("fetched nothing: %+v", resp)
	}
	// MinBytes was not reached: the long poll waited MaxWaitMillis.
	if v, _ := attr(s, "runnel.fetch.wait_ms"); v.AsFloat64() < 90 {
		t.Errorf("wait_ms = %v, want about 100", v.AsFloat64())
	}
	if v, _ := attr(s, "messaging.client.id"); v.AsString() != "fetcher" {
		t.Errorf("client id %q", v.AsString())
	}
}

// stubLog answers Produce without allocating.
type stubLog struct {
	Log
	wait func() []ProduceResult
}

func (l *stubLog) Produce(context.Context, []ProduceBatch) func() []ProduceResult { return l.wait }

// TestTraceHooksAllocate measures the handlers' hooks: nothing with tracing
// off, and (showing the measure sees allocations) something with a tracer
// that samples nothing.
func TestTraceHooksAllocate(t *testing.T) {
	preq := kmsg.NewPtrProduceRequest()
	rt := kmsg.NewProduceRequestTopic()
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneBatch()
	rt.Partitions = append(rt.Partitions, rp)
	preq.Topics = append(preq.Topics, rt)
	presp := preq.ResponseKind().(*kmsg.ProduceResponse)
	freq := kmsg.NewPtrFetchRequest()
	fresp := freq.ResponseKind().(*kmsg.FetchResponse)
	log := &stubLog{wait: func() []ProduceResult { return nil }}
	batches := []ProduceBatch{{Topic: "t"}}
	rc := &reqCtx{sess: &session{}}
	ctx := context.Background()
	hooks := func(s *Server) func() {
		return func() {
			pctx, tr := s.traceProduce(ctx, rc, preq)
			tr.produce(pctx, log, batches)()
			tr.endProduce(presp)
			_, ft := s.traceFetch(ctx, rc, freq)
			ft.waitStart()
			ft.waitEnd()
			ft.endFetch(fresp)
		}
	}
	off := &Server{}
	if n := testing.AllocsPerRun(100, hooks(off)); n != 0 {
		t.Errorf("tracing off: %v allocations per request, want 0", n)
	}
	never := &Server{opts: Options{Tracer: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer("t")}}
	if n := testing.AllocsPerRun(100, hooks(never)); n == 0 {
		t.Errorf("an unsampled tracer allocates nothing: the measure cannot see allocations")
	}
}

// BenchmarkTraceProduceHooks measures a Produce request's hooks with
// tracing off, on but not sampled, and sampled (spans dropped).
func BenchmarkTraceProduceHooks(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	rt := kmsg.NewProduceRequestTopic()
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneBatch()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	log := &stubLog{wait: func() []ProduceResult { return nil }}
	batches := []ProduceBatch{{Topic: "t"}}
	rc := &reqCtx{sess: &session{}}
	for _, bc := range []struct {
		name   string
		tracer trace.Tracer
	}{
		{"off", nil},
		{"unsampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer("b")},
		{"sampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())).Tracer("b")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := &Server{opts: Options{Tracer: bc.tracer}}
			b.ReportAllocs()
			b.SetBytes(int64(len(rp.Records)))
			for b.Loop() {
				ctx, tr := s.traceProduce(context.Background(), rc, req)
				tr.produce(ctx, log, batches)()
				tr.endProduce(resp)
			}
		})
	}
}

package protocol

// OpenTelemetry spans of Produce and Fetch (Options.Tracer). With no
// tracer, or when the sampler declines a request, the handlers' hooks are
// nil-receiver calls that do nothing and allocate nothing.
//
// A Produce span ("kafka.produce", server kind) has two children: enqueue
// (the Log.Produce call: validation and the intake buffer) and sequence
// (the wait for the flush and the sequencer's ack). It links to the trace
// of every distinct W3C traceparent record header found in the request's
// batches (internal/telemetry/tracing bounds the search), only
// once sampling chose the request: a producer's sampled flag does not force
// a broker span, so following one record needs a high enough ratio. A
// Fetch span ("kafka.fetch") records what was read and how long the long
// poll waited; consumers continue traces from the records' headers
// themselves.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-dev/runnel/internal/telemetry/tracing"
)

// Span attribute keys beyond OpenTelemetry's messaging conventions.
const (
	attrPrincipal    = attribute.Key("runnel.principal")
	attrListener     = attribute.Key("runnel.listener")
	attrTopics       = attribute.Key("runnel.topics")
	attrPartitions   = attribute.Key("runnel.partitions")
	attrBytes        = attribute.Key("runnel.bytes")
	attrAcks         = attribute.Key("runnel.acks")
	attrErrorCodes   = attribute.Key("runnel.error_codes")
	attrUnscanned    = attribute.Key("runnel.trace.unscanned_batches")
	attrLinksDropped = attribute.Key("runnel.trace.links_dropped")
	attrWait         = attribute.Key("runnel.fetch.wait_ms")
	attrMaxWait      = attribute.Key("runnel.fetch.max_wait_ms")
	attrMinBytes     = attribute.Key("runnel.fetch.min_bytes")
	attrIsolation    = attribute.Key("runnel.fetch.isolation_level")
	attrSession      = attribute.Key("runnel.fetch.session_id")
)

// reqTrace is the span of one sampled request; nil when not traced.
type reqTrace struct {
	tracer trace.Tracer
	span   trace.Span
	waitAt time.Time // fetch: the long poll's start
}

// startSpan starts a server span for rc's request; it returns ctx and nil
// when tracing is off or the request is not sampled.
func (s *Server) startSpan(ctx context.Context, rc *reqCtx, name, op string) (context.Context, *reqTrace) {
	if s.opts.Tracer == nil {
		return ctx, nil
	}
	sctx, span := s.opts.Tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return ctx, nil
	}
	span.SetAttributes(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.name", op),
		attribute.String("messaging.client.id", rc.hdr.ClientIDString()),
		attrPrincipal.String(rc.sess.principal.String()),
		attrListener.String(rc.sess.listener.Name),
	)
	return sctx, &reqTrace{tracer: s.opts.Tracer, span: span}
}

// traceProduce starts the span of a Produce request and links it to the
// traces named by its records' traceparent headers.
func (s *Server) traceProduce(ctx context.Context, rc *reqCtx, req *kmsg.ProduceRequest) (context.Context, *reqTrace) {
	ctx, tr := s.startSpan(ctx, rc, "kafka.produce", "produce")
	if tr == nil {
		return ctx, nil
	}
	var links tracing.Links
	parts, size := 0, 0
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts++
			size += len(p.Records)
			links.AddBatches(p.Records)
		}
	}
	for _, l := range links.Links() {
		tr.span.AddLink(l)
	}
	tr.span.SetAttributes(attrTopics.Int(len(req.Topics)), attrPartitions.Int(parts),
		attrBytes.Int(size), attrAcks.Int(int(req.Acks)))
	if links.Unscanned > 0 {
		tr.span.SetAttributes(attrUnscanned.Int(links.Unscanned))
	}
	if links.Dropped > 0 {
		tr.span.SetAttributes(attrLinksDropped.Int(links.Dropped))
	}
	return ctx, tr
}

// produce hands batches to log under an enqueue span and returns the wait
// for their results under a sequence span.
func (tr *reqTrace) produce(ctx context.Context, log Log, batches []ProduceBatch) (wait func() []ProduceResult) {
	if tr == nil {
		return log.Produce(ctx, batches)
	}
	ectx, enqueue := tr.tracer.Start(ctx, "enqueue")
	queued := log.Produce(ectx, batches)
	enqueue.End()
	_, seq := tr.tracer.Start(ctx, "sequence")
	return func() []ProduceResult {
		defer seq.End()
		return queued()
	}
}

// endProduce ends a Produce span with the partitions' error codes.
func (tr *reqTrace) endProduce(resp *kmsg.ProduceResponse) {
	if tr == nil {
		return
	}
	var errs []int64
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			errs = addCode(errs, p.ErrorCode)
		}
	}
	tr.end(errs)
}

// traceFetch starts the span of a Fetch request.
func (s *Server) traceFetch(ctx context.Context, rc *reqCtx, req *kmsg.FetchRequest) (context.Context, *reqTrace) {
	ctx, tr := s.startSpan(ctx, rc, "kafka.fetch", "fetch")
	if tr == nil {
		return ctx, nil
	}
	tr.span.SetAttributes(attrMaxWait.Int(int(req.MaxWaitMillis)), attrMinBytes.Int(int(req.MinBytes)),
		attrIsolation.Int(int(req.IsolationLevel)))
	return ctx, tr
}

// waitStart marks the start of a fetch's long poll.
func (tr *reqTrace) waitStart() {
	if tr != nil {
		tr.waitAt = time.Now()
	}
}

// waitEnd records how long the long poll took.
func (tr *reqTrace) waitEnd() {
	if tr != nil && !tr.waitAt.IsZero() {
		tr.span.SetAttributes(attrWait.Float64(float64(time.Since(tr.waitAt)) / float64(time.Millisecond)))
	}
}

// endFetch ends a Fetch span with what the response carries.
func (tr *reqTrace) endFetch(resp *kmsg.FetchResponse) {
	if tr == nil {
		return
	}
	errs := addCode(nil, resp.ErrorCode)
	parts, size := 0, 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			parts++
			size += len(p.RecordBatches)
			errs = addCode(errs, p.ErrorCode)
		}
	}
	tr.span.SetAttributes(attrTopics.Int(len(resp.Topics)), attrPartitions.Int(parts),
		attrBytes.Int(size), attrSession.Int(int(resp.SessionID)))
	tr.end(errs)
}

// end ends the span; any error code makes its status Error.
func (tr *reqTrace) end(errs []int64) {
	if len(errs) > 0 {
		slices.Sort(errs)
		tr.span.SetAttributes(attrErrorCodes.Int64Slice(errs))
		msg := "kafka error"
		if e := kerr.ErrorForCode(int16(errs[0])); e != nil {
			msg = e.Error()
		}
		tr.span.SetStatus(codes.Error, msg)
	}
	tr.span.End()
}

// addCode adds a non-zero error code to codes once.
func addCode(codes []int64, code int16) []int64 {
	if code == 0 || slices.Contains(codes, int64(code)) {
		return codes
	}
	return append(codes, int64(code))
}

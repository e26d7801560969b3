// Package tracing owns Runnel's OpenTelemetry tracing: the tracer provider
// with its sampler (parent-based, a trace id ratio for roots) and its OTLP
// exporter, and the reading of W3C Trace Context (`traceparent`) record
// headers out of produced record batches so that a produce span can link
// to the traces of the producers whose records it carried.
//
// Spans themselves are started by their callers (the Kafka front end
// starts one per Produce and Fetch request) through the OpenTelemetry API;
// with tracing off no tracer exists and callers start nothing.
//
// At most MaxScanBytes of records are read per request, and at most
// MaxLinks distinct trace contexts kept. Compressed batches (gzip, snappy,
// lz4, zstd) are decompressed only as far as that budget, so a batch that
// inflates without bound costs no more (a raw snappy block, which cannot be
// decoded in part, is decoded whole up to 8 MiB). A traceparent past the
// byte budget, past the link cap or in a malformed batch is not seen. The consumer side is
// the client's business: a consumer continues a trace from the record's
// traceparent header itself; the broker's fetch span cannot, since one
// fetch carries the records of many traces.
//
// It must never import the Kafka front end, the broker or the CLI, and
// never parse a batch it was not asked to (callers ask only for sampled
// requests).
package tracing

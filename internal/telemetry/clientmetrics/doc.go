// Package clientmetrics implements KIP-714 client metrics on the broker
// side: client metrics subscriptions (the CLIENT_METRICS config resources),
// the per-client-instance state behind GetTelemetrySubscriptions and
// PushTelemetry (instance ids, subscription ids, push intervals, throttling,
// size and decompression caps), the re-export of pushed OTLP metrics as
// Prometheus series named runnel_client_<otlp name> and, optionally, the
// forwarding of every accepted push to an OTLP/gRPC collector (forward.go).
//
// It owns the subscription rules and the in-memory instance table; it does
// not own where subscriptions are stored (the broker keeps them in etcd and
// calls SetSubscriptions with every change) and it never imports the Kafka
// front end, the broker or the CLI: the front end translates requests into
// Client, Push and Grant values and the errors below into Kafka codes.
//
// Choices that differ from Kafka's ClientMetricsManager, and why:
//   - Grants ask for delta sums, as Kafka does; they are accumulated into
//     the re-exported counter, so a client that sends one data point per
//     node only when it changed still adds up. Cumulative sums replace the
//     counter with the push's total.
//   - A GetTelemetrySubscriptions that comes early is not throttled when the
//     instance's last push failed with UNKNOWN_SUBSCRIPTION_ID or
//     UNSUPPORTED_COMPRESSION_TYPE (what Kafka intends; its check is always
//     true).
//   - Re-exported series carry only the bounded client labels; data point
//     attributes (node ids, topics) are folded: sums are added, gauges keep
//     the largest value. Histograms and summaries are not re-exported.
//   - The instance table is capped; a client beyond the cap is throttled
//     and counted in runnel_client_metrics_dropped_instances_total. The
//     series are capped too (per instance and in all), metrics past the
//     cap counted in runnel_client_metrics_dropped_series_total.
//   - Kafka hands each push to a ClientTelemetryReceiver plugin; here the
//     forwarder sends the push's MetricsData as pushed, its resources
//     labelled with KIP-714's broker-added labels, through a bounded queue
//     that drops (and counts) rather than slow PushTelemetry down.
package clientmetrics

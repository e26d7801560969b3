package config

import (
	"fmt"
	"time"
)

// Bounds and default of telemetry.client-metrics-max-bytes.
const (
	minClientMetricsBytes     = kib
	maxClientMetricsBytes     = 16 * mib
	defaultClientMetricsBytes = mib
)

// TelemetryConfig configures what the broker measures of its clients.
type TelemetryConfig struct {
	// Metrics, when false, turns the broker's metrics off: /metrics
	// answers 404, requests, topics and connections are not measured,
	// consumer lag is not evaluated and KIP-714 client metrics are not
	// served (there is nothing to re-export them on). Default true.
	Metrics *bool `yaml:"metrics"`
	// LagPartitionMetrics adds per-partition consumer lag series
	// (runnel_group_partition_*) to the per group and topic ones; off by
	// default to keep the series count bounded by groups × topics.
	LagPartitionMetrics bool `yaml:"lag-partition-metrics"`
	// LagInterval is the time between consumer lag evaluations; a group's
	// status is judged over the last 10. 0 means 5 s.
	LagInterval time.Duration `yaml:"lag-interval"`
	// ClientMetricsMaxBytes bounds a KIP-714 push's payload (Kafka's
	// telemetry.max.bytes; decompressed it may be 16 times that), 1 KiB
	// to 16 MiB. 0 means 1 MiB.
	ClientMetricsMaxBytes int32 `yaml:"client-metrics-max-bytes"`
	// ClientMetricsOTLPEndpoint, when set, is an OTLP/gRPC collector
	// (http://host:port in plain text, https://host:port over TLS) every
	// accepted KIP-714 push is forwarded to.
	ClientMetricsOTLPEndpoint string `yaml:"client-metrics-otlp-endpoint"`
}

// MetricsOn reports whether the broker keeps and serves metrics.
func (t TelemetryConfig) MetricsOn() bool { return t.Metrics == nil || *t.Metrics }

// ClientMetricsBytes is the KIP-714 push size cap in effect:
// ClientMetricsMaxBytes, or 1 MiB when that is 0.
func (t TelemetryConfig) ClientMetricsBytes() int32 {
	if t.ClientMetricsMaxBytes == 0 {
		return defaultClientMetricsBytes
	}
	return t.ClientMetricsMaxBytes
}

// Validate checks the telemetry keys.
func (t TelemetryConfig) Validate() error {
	if t.LagInterval < 0 {
		return fmt.Errorf("config: telemetry.lag-interval must be >= 0, got %s", t.LagInterval)
	}
	if n := t.ClientMetricsMaxBytes; n != 0 && (n < minClientMetricsBytes || n > maxClientMetricsBytes) {
		return fmt.Errorf("config: telemetry.client-metrics-max-bytes must be between %d (1 KiB) and %d (16 MiB), got %d",
			minClientMetricsBytes, maxClientMetricsBytes, n)
	}
	if t.ClientMetricsOTLPEndpoint != "" {
		if err := validOTLPEndpoint(t.ClientMetricsOTLPEndpoint); err != nil {
			return fmt.Errorf("config: telemetry.client-metrics-otlp-endpoint %q %w", t.ClientMetricsOTLPEndpoint, err)
		}
	}
	return nil
}

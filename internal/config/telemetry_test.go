package config

import (
	"strings"
	"testing"
	"time"
)

func TestTelemetryKeys(t *testing.T) {
	c, err := Parse([]byte("telemetry:\n  lag-interval: 250ms\n  lag-partition-metrics: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Telemetry.LagInterval != 250*time.Millisecond || !c.Telemetry.LagPartitionMetrics || c.Telemetry.Validate() != nil {
		t.Fatalf("telemetry = %+v", c.Telemetry)
	}
	if _, err := Parse([]byte("telemetry:\n  lag-intervall: 1s\n")); err == nil || !strings.Contains(err.Error(), "lag-intervall") {
		t.Fatalf("unknown key: %v", err)
	}
	if err := (TelemetryConfig{LagInterval: -time.Second}).Validate(); err == nil || !strings.Contains(err.Error(), "telemetry.lag-interval") {
		t.Fatalf("negative interval: %v", err)
	}
	for doc, want := range map[string]bool{"": true, "telemetry:\n  metrics: true\n": true, "telemetry:\n  metrics: false\n": false} {
		c, err := Parse([]byte(doc))
		if err != nil || c.Telemetry.MetricsOn() != want {
			t.Fatalf("%q: metrics on = %v (%v), want %v", doc, c.Telemetry.MetricsOn(), err, want)
		}
	}
}

func TestTelemetryClientMetricsKeys(t *testing.T) {
	c, err := Parse([]byte("telemetry:\n  client-metrics-max-bytes: 2097152\n  client-metrics-otlp-endpoint: http://127.0.0.1:4317\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Telemetry.ClientMetricsMaxBytes != 2<<20 || c.Telemetry.ClientMetricsOTLPEndpoint != "http://127.0.0.1:4317" {
		t.Fatalf("telemetry = %+v", c.Telemetry)
	}
	tests := []struct {
		name   string
		mutate func(*TelemetryConfig)
		want   string // "" means valid
	}{
		{"defaults", func(*TelemetryConfig) {}, ""},
		{"max bytes 1 KiB", func(t *TelemetryConfig) { t.ClientMetricsMaxBytes = 1 << 10 }, ""},
		{"max bytes 16 MiB", func(t *TelemetryConfig) { t.ClientMetricsMaxBytes = 16 << 20 }, ""},
		{"max bytes below 1 KiB", func(t *TelemetryConfig) { t.ClientMetricsMaxBytes = 1023 }, "telemetry.client-metrics-max-bytes"},
		{"max bytes above 16 MiB", func(t *TelemetryConfig) { t.ClientMetricsMaxBytes = 16<<20 + 1 }, "telemetry.client-metrics-max-bytes"},
		{"max bytes negative", func(t *TelemetryConfig) { t.ClientMetricsMaxBytes = -1 }, "telemetry.client-metrics-max-bytes"},
		{"endpoint http", func(t *TelemetryConfig) { t.ClientMetricsOTLPEndpoint = "http://127.0.0.1:4317" }, ""},
		{"endpoint https", func(t *TelemetryConfig) { t.ClientMetricsOTLPEndpoint = "https://collector:4317" }, ""},
		{"endpoint scheme", func(t *TelemetryConfig) { t.ClientMetricsOTLPEndpoint = "grpc://c:4317" }, "telemetry.client-metrics-otlp-endpoint"},
		{"endpoint bare host", func(t *TelemetryConfig) { t.ClientMetricsOTLPEndpoint = "collector:4317" }, "telemetry.client-metrics-otlp-endpoint"},
		{"endpoint port", func(t *TelemetryConfig) { t.ClientMetricsOTLPEndpoint = "http://collector" }, "must name a port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c.Telemetry)
			err := c.Validate() // the whole config: the section's errors reach it
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

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
}

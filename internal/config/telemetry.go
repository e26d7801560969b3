package config

import (
	"fmt"
	"time"
)

// TelemetryConfig configures what the broker measures of its clients.
type TelemetryConfig struct {
	// LagPartitionMetrics adds per-partition consumer lag series
	// (runnel_group_partition_*) to the per group and topic ones; off by
	// default to keep the series count bounded by groups × topics.
	LagPartitionMetrics bool `yaml:"lag-partition-metrics"`
	// LagInterval is the time between consumer lag evaluations; a group's
	// status is judged over the last 10. 0 means 5 s.
	LagInterval time.Duration `yaml:"lag-interval"`
}

// Validate checks the telemetry keys.
func (t TelemetryConfig) Validate() error {
	if t.LagInterval < 0 {
		return fmt.Errorf("config: telemetry.lag-interval must be >= 0, got %s", t.LagInterval)
	}
	return nil
}

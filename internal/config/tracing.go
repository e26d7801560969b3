package config

import (
	"errors"
	"math"
	"net"
	"net/url"
	"strings"
)

// TracingConfig configures OpenTelemetry tracing of Produce and Fetch
// requests, exported over OTLP/gRPC.
type TracingConfig struct {
	// Enabled turns tracing on; off, no span is ever started.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/gRPC collector: http://host:port (plain text)
	// or https://host:port (TLS), e.g. http://127.0.0.1:4317.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the fraction of requests traced, 0 to 1.
	SampleRatio float64 `yaml:"sample-ratio"`
	// ServiceName is the service.name the spans are reported under.
	ServiceName string `yaml:"service-name"`
}

// DefaultTracing is tracing's default: off, 1% of requests once on.
func DefaultTracing() TracingConfig {
	return TracingConfig{SampleRatio: 0.01, ServiceName: "runnel"}
}

// validateTracing checks the tracing section; the endpoint and service
// name are required only when tracing is enabled.
func (c Config) validateTracing(bad func(format string, args ...any)) {
	t := c.Tracing
	if math.IsNaN(t.SampleRatio) || t.SampleRatio < 0 || t.SampleRatio > 1 {
		bad("tracing.sample-ratio must be between 0 and 1, got %v", t.SampleRatio)
	}
	if !t.Enabled {
		return
	}
	if strings.TrimSpace(t.ServiceName) == "" {
		bad("tracing.service-name must not be empty")
	}
	if t.Endpoint == "" {
		bad("tracing.endpoint is required when tracing.enabled is true (e.g. http://127.0.0.1:4317)")
		return
	}
	if err := validOTLPEndpoint(t.Endpoint); err != nil {
		bad("tracing.endpoint %q %v", t.Endpoint, err)
	}
}

// validOTLPEndpoint checks an OTLP/gRPC collector URL; its error reads
// after the key and value.
func validOTLPEndpoint(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http:// or https:// URL of an OTLP/gRPC collector")
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return errors.New("must name a port (OTLP/gRPC listens on 4317)")
	}
	return nil
}

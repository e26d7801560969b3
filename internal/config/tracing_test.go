package config

import (
	"math"
	"strings"
	"testing"
)

func TestTracingDefaultsAndLoad(t *testing.T) {
	d := Default().Tracing
	if d.Enabled || d.SampleRatio != 0.01 || d.ServiceName != "runnel" || d.Endpoint != "" {
		t.Fatalf("default tracing = %+v", d)
	}
	c, err := Parse([]byte("tracing:\n  enabled: true\n  endpoint: http://127.0.0.1:4317\n  sample-ratio: 0.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := TracingConfig{Enabled: true, Endpoint: "http://127.0.0.1:4317", SampleRatio: 0.5, ServiceName: "runnel"}
	if c.Tracing != want {
		t.Fatalf("tracing = %+v, want %+v", c.Tracing, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte("tracing:\n  ratio: 1\n")); err == nil || !strings.Contains(err.Error(), "tracing.ratio") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestTracingValidate(t *testing.T) {
	on := func(c *Config) { c.Tracing.Enabled, c.Tracing.Endpoint = true, "https://collector:4317" }
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" means valid
	}{
		{"off needs no endpoint", func(c *Config) {}, ""},
		{"on", on, ""},
		{"ratio 0", func(c *Config) { on(c); c.Tracing.SampleRatio = 0 }, ""},
		{"ratio 1", func(c *Config) { on(c); c.Tracing.SampleRatio = 1 }, ""},
		{"ratio above 1", func(c *Config) { c.Tracing.SampleRatio = 1.5 }, "tracing.sample-ratio"},
		{"ratio negative", func(c *Config) { c.Tracing.SampleRatio = -0.1 }, "tracing.sample-ratio"},
		{"ratio NaN", func(c *Config) { c.Tracing.SampleRatio = math.NaN() }, "tracing.sample-ratio"},
		{"no endpoint", func(c *Config) { on(c); c.Tracing.Endpoint = "" }, "tracing.endpoint is required"},
		{"endpoint scheme", func(c *Config) { on(c); c.Tracing.Endpoint = "grpc://c:4317" }, "tracing.endpoint"},
		{"endpoint bare host", func(c *Config) { on(c); c.Tracing.Endpoint = "collector:4317" }, "tracing.endpoint"},
		{"endpoint port", func(c *Config) { on(c); c.Tracing.Endpoint = "http://collector" }, "must name a port"},
		{"service-name", func(c *Config) { on(c); c.Tracing.ServiceName = " " }, "tracing.service-name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

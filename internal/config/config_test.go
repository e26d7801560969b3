package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if got := c.Advertised(); got != c.KafkaAddr {
		t.Errorf("Advertised() = %q, want %q", got, c.KafkaAddr)
	}
	if got := c.ObjectStoreURL(); !strings.HasPrefix(got, "file:///") || !strings.HasSuffix(got, "/runnel-data/objects") {
		t.Errorf("ObjectStoreURL() = %q", got)
	}
	c.ObjectStore = "mem://"
	if got := c.ObjectStoreURL(); got != "mem://" {
		t.Errorf("ObjectStoreURL() = %q, want mem://", got)
	}
	c.AdvertisedAddr = "broker1:9092"
	if got := c.Advertised(); got != "broker1:9092" {
		t.Errorf("Advertised() = %q", got)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "runnel.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	p := writeFile(t, `
broker-id: 3
data-dir: /var/lib/runnel
kafka-addr: 0.0.0.0:19092
advertised-addr: broker3:19092
object-store: s3://bucket?region=us-east-1
etcd:
  endpoints: [a:2379, b:2379]
  dial-timeout: 3s
  lease-ttl: 4s
flush:
  bytes: 8MiB
  linger: 5ms
cache:
  memory-bytes: 1073741824
archive:
  min-bytes: 16 MB
  grace: 5m
auto-create-topics: false
topic-defaults:
  retention.ms: "3600000"
  cleanup.policy: compact
log:
  level: debug
  format: json
clock-offset: -5m
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"broker-id", c.BrokerID, int32(3)},
		{"etcd.endpoints", strings.Join(c.Etcd.Endpoints, ","), "a:2379,b:2379"},
		{"etcd.dial-timeout", c.Etcd.DialTimeout, 3 * time.Second},
		{"etcd.lease-ttl", c.Etcd.LeaseTTL, 4 * time.Second},
		{"etcd.client-addr default kept", c.Etcd.ClientAddr, "127.0.0.1:2379"},
		{"flush.bytes", c.Flush.Bytes, int64(8 << 20)},
		{"flush.linger", c.Flush.Linger, 5 * time.Millisecond},
		{"cache.memory-bytes", c.Cache.MemoryBytes, int64(1 << 30)},
		{"archive.min-bytes", c.Archive.MinBytes, int64(16e6)},
		{"archive.grace", c.Archive.Grace, 5 * time.Minute},
		{"archive.interval default kept", c.Archive.Interval, time.Second},
		{"auto-create-topics", c.AutoCreateTopics, false},
		{"topic-defaults", c.TopicDefaults["retention.ms"], "3600000"},
		{"log.level", c.Log.Level, "debug"},
		{"advertised", c.Advertised(), "broker3:19092"},
		{"clock-offset", c.ClockOffset, -5 * time.Minute},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestLoadEmptyFileGivesDefaults(t *testing.T) {
	c, err := Load(writeFile(t, "# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Flush.Bytes != Default().Flush.Bytes || c.TopicDefaults == nil {
		t.Fatalf("empty file changed defaults: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown top-level key", "brokerid: 1\n", "unknown key brokerid"},
		{"unknown nested key", "flush:\n  bytez: 1\n", "unknown key flush.bytez"},
		{"bad duration", "flush:\n  linger: fast\n", "key flush.linger"},
		{"bad clock offset", "clock-offset: 5\n", "key clock-offset"},
		{"bad int", "broker-id: one\n", "key broker-id"},
		{"bad size", "flush:\n  bytes: 4XB\n", "key flush.bytes"},
		{"bad bool", "auto-create-topics: maybe\n", "key auto-create-topics"},
		{"section not a mapping", "etcd: 5\n", "key etcd must be a mapping"},
		{"duplicate key", "broker-id: 1\nbroker-id: 2\n", "broker-id"},
		{"not yaml", "a: [\n", "yaml"},
		{"top level list", "- a\n", "top level must be a mapping"},
		{"nested topic default", "topic-defaults:\n  retention.ms: [1]\n", "key topic-defaults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.body))
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tt.want)
			}
			if !errors.Is(err, ErrConfigFile) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want ErrConfigFile containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"broker-id", func(c *Config) { c.BrokerID = -1 }, "broker-id"},
		{"data-dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"kafka-addr", func(c *Config) { c.KafkaAddr = "nope" }, "kafka-addr"},
		{"kafka-addr port", func(c *Config) { c.KafkaAddr = "h:99999" }, "kafka-addr"},
		{"advertised wildcard", func(c *Config) { c.AdvertisedAddr = "0.0.0.0:9092" }, "advertised-addr"},
		{"http-addr", func(c *Config) { c.HTTPAddr = "" }, "http-addr"},
		{"object-store scheme", func(c *Config) { c.ObjectStore = "ftp://x" }, "object-store"},
		{"object-store bucket", func(c *Config) { c.ObjectStore = "s3://" }, "object-store"},
		{"object-store fault inner scheme", func(c *Config) { c.ObjectStore = "fault+ftp://x" }, "object-store"},
		{"groups.consumer-heartbeat-interval", func(c *Config) { c.Groups.ConsumerHeartbeatInterval = 0 }, "groups.consumer-heartbeat-interval"},
		{"groups.consumer-session-timeout", func(c *Config) { c.Groups.ConsumerSessionTimeout = time.Second }, "groups.consumer-session-timeout"},
		{"cluster-id", func(c *Config) { c.ClusterID = " " }, "cluster-id"},
		{"etcd.client-addr", func(c *Config) { c.Etcd.ClientAddr = "x" }, "etcd.client-addr"},
		{"etcd same addrs", func(c *Config) { c.Etcd.PeerAddr = c.Etcd.ClientAddr }, "etcd.peer-addr"},
		{"etcd.name", func(c *Config) { c.Etcd.Name = "" }, "etcd.name"},
		{"etcd.endpoints", func(c *Config) { c.Etcd.Endpoints = []string{""} }, "etcd.endpoints[0]"},
		{"etcd.dial-timeout", func(c *Config) { c.Etcd.DialTimeout = 0 }, "etcd.dial-timeout"},
		{"etcd.lease-ttl zero", func(c *Config) { c.Etcd.LeaseTTL = 0 }, "etcd.lease-ttl"},
		{"etcd.lease-ttl fraction", func(c *Config) { c.Etcd.LeaseTTL = 1500 * time.Millisecond }, "etcd.lease-ttl"},
		{"flush.bytes", func(c *Config) { c.Flush.Bytes = 0 }, "config: flush.bytes must be > 0"},
		{"flush.linger", func(c *Config) { c.Flush.Linger = -1 }, "flush.linger"},
		{"cache.memory-bytes", func(c *Config) { c.Cache.MemoryBytes = -1 }, "cache.memory-bytes"},
		{"checkpoint.interval", func(c *Config) { c.Checkpoint.Interval = 0 }, "checkpoint.interval"},
		{"checkpoint.entries", func(c *Config) { c.Checkpoint.Entries = 0 }, "checkpoint.entries"},
		{"archive.interval", func(c *Config) { c.Archive.Interval = 0 }, "archive.interval"},
		{"archive.min-bytes", func(c *Config) { c.Archive.MinBytes = 0 }, "archive.min-bytes"},
		{"archive.max-age", func(c *Config) { c.Archive.MaxAge = 0 }, "archive.max-age"},
		{"archive.grace", func(c *Config) { c.Archive.Grace = -time.Second }, "archive.grace"},
		{"archive.max-unarchived-bytes", func(c *Config) { c.Archive.MaxUnarchivedBytes = c.Archive.MinBytes - 1 }, "archive.max-unarchived-bytes"},
		{"default-partitions", func(c *Config) { c.DefaultPartitions = 0 }, "default-partitions"},
		{"max-request-bytes", func(c *Config) { c.MaxRequestBytes = 0 }, "max-request-bytes"},
		{"topic-defaults unknown", func(c *Config) { c.TopicDefaults["retention.mss"] = "1" }, "topic-defaults.retention.mss"},
		{"topic-defaults bad", func(c *Config) { c.TopicDefaults["retention.ms"] = "-5" }, "topic-defaults.retention.ms"},
		{"log.level", func(c *Config) { c.Log.Level = "trace" }, "log.level"},
		{"log.format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"clock-offset ahead", func(c *Config) { c.ClockOffset = MaxClockOffset + time.Second }, "clock-offset"},
		{"clock-offset behind", func(c *Config) { c.ClockOffset = -MaxClockOffset - time.Second }, "clock-offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
	t.Run("external etcd skips member addrs", func(t *testing.T) {
		c := Default()
		c.Etcd.Endpoints = []string{"10.0.0.1:2379"}
		c.Etcd.ClientAddr, c.Etcd.Name = "", ""
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("clock-offset within bounds", func(t *testing.T) {
		for _, d := range []time.Duration{-MaxClockOffset, -5 * time.Minute, 0, 5 * time.Minute, MaxClockOffset} {
			c := Default()
			c.ClockOffset = d
			if err := c.Validate(); err != nil {
				t.Errorf("clock-offset %s: %v", d, err)
			}
		}
	})
	t.Run("plain object store path", func(t *testing.T) {
		c := Default()
		c.ObjectStore = "/srv/objects"
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"4194304", 4 << 20, false},
		{"4MiB", 4 << 20, false},
		{"4mib", 4 << 20, false},
		{"4 MiB", 4 << 20, false},
		{"4M", 4 << 20, false},
		{"4MB", 4e6, false},
		{"1GiB", 1 << 30, false},
		{"2KiB", 2048, false},
		{"10B", 10, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"-1MiB", 0, true},
		{"1.5MiB", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestValidateAcceptsFaultStoreURLs(t *testing.T) {
	for _, u := range []string{"fault+file:///tmp/objects?put_error_rate=0.1", "fault+/tmp/objects?get_error_rate=0.5", "fault+mem://"} {
		c := Default()
		c.ObjectStore = u
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestRuntimeMemoryLimitMakesRoomForTheCache: the runtime's soft limit is
// memory-limit on top of the read cache. With the limit alone, a cache
// raised to 1 GiB sat above a 400 MiB limit, and the collector ran without
// pause trying to reach it.
func TestRuntimeMemoryLimitMakesRoomForTheCache(t *testing.T) {
	c := Default()
	if got, want := c.RuntimeMemoryLimit(), int64(400<<20); got != want {
		t.Errorf("default runtime limit %d, want %d (272 MiB and the 128 MiB cache)", got, want)
	}
	c.Cache.MemoryBytes = 1 << 30
	if got, want := c.RuntimeMemoryLimit(), int64(1<<30+272<<20); got != want {
		t.Errorf("runtime limit with a 1 GiB cache %d, want %d", got, want)
	}
	c.Cache.MemoryBytes = 0
	if got := c.CacheBytes(); got != 128<<20 {
		t.Errorf("cache.memory-bytes 0 gives a %d-byte cache, want the default 128 MiB", got)
	}
	c.MemoryLimit = 0
	if got := c.RuntimeMemoryLimit(); got != 0 {
		t.Errorf("memory-limit 0 gives runtime limit %d, want none", got)
	}
}

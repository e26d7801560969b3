package config

import (
	"errors"
	"sort"
	"strings"
	"testing"
)

func TestTopicDefsTable(t *testing.T) {
	defs := TopicDefs()
	if !sort.SliceIsSorted(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name }) {
		t.Fatal("TopicDefs not sorted")
	}
	for _, d := range defs {
		if d.Doc == "" || d.Type == "" {
			t.Errorf("%s: missing doc or type", d.Name)
		}
		if err := d.Check(d.Default); err != nil {
			t.Errorf("%s: default %q does not validate: %v", d.Name, d.Default, err)
		}
	}
	for _, name := range []string{"cleanup.policy", "compression.type", "delete.retention.ms", "file.delete.delay.ms",
		"flush.messages", "flush.ms", "index.interval.bytes", "max.compaction.lag.ms", "max.message.bytes",
		"message.timestamp.type", "message.timestamp.before.max.ms", "message.timestamp.after.max.ms",
		"message.timestamp.difference.max.ms", "min.cleanable.dirty.ratio", "min.compaction.lag.ms",
		"min.insync.replicas", "preallocate", "retention.bytes", "retention.ms", "segment.bytes",
		"segment.index.bytes", "segment.jitter.ms", "segment.ms", "unclean.leader.election.enable",
		"message.downconversion.enable", "local.retention.ms", "local.retention.bytes", "remote.storage.enable"} {
		if _, ok := LookupTopic(name); !ok {
			t.Errorf("LookupTopic(%q) missing", name)
		}
	}
	want := map[string]string{"max.message.bytes": "1048588", "retention.bytes": "-1", "retention.ms": "604800000", "cleanup.policy": "delete"}
	for name, def := range want {
		if d, _ := LookupTopic(name); d.Default != def {
			t.Errorf("%s default = %q, want %q", name, d.Default, def)
		}
	}
	// The returned slice is a copy.
	defs[0].Default = "mutated"
	if TopicDefs()[0].Default == "mutated" {
		t.Fatal("TopicDefs exposes the table")
	}
}

func TestValidateTopicConfig(t *testing.T) {
	tests := []struct {
		name, key, value string
		ok               bool
	}{
		{"policy delete", "cleanup.policy", "delete", true},
		{"policy both", "cleanup.policy", "compact, delete", true},
		{"policy bad", "cleanup.policy", "keep", false},
		{"policy empty", "cleanup.policy", "", false},
		{"policy one bad", "cleanup.policy", "compact,keep", false},
		{"compression zstd", "compression.type", "zstd", true},
		{"compression bad", "compression.type", "brotli", false},
		{"gzip level default", "compression.gzip.level", "-1", true},
		{"gzip level 9", "compression.gzip.level", "9", true},
		{"gzip level 0", "compression.gzip.level", "0", false},
		{"lz4 level 18", "compression.lz4.level", "18", false},
		{"zstd level -5", "compression.zstd.level", "-5", true},
		{"zstd level 23", "compression.zstd.level", "23", false},
		{"delete.retention 0", "delete.retention.ms", "0", true},
		{"delete.retention neg", "delete.retention.ms", "-1", false},
		{"flush.messages 0", "flush.messages", "0", false},
		{"max.compaction.lag 0", "max.compaction.lag.ms", "0", false},
		{"max.message.bytes", "max.message.bytes", "2097152", true},
		{"max.message.bytes overflow int", "max.message.bytes", "3000000000", false},
		{"max.message.bytes neg", "max.message.bytes", "-1", false},
		{"max.message.bytes text", "max.message.bytes", "big", false},
		{"ts type log append", "message.timestamp.type", "LogAppendTime", true},
		{"ts type case", "message.timestamp.type", "logappendtime", false},
		{"ts after", "message.timestamp.after.max.ms", "0", true},
		{"ts before neg", "message.timestamp.before.max.ms", "-1", false},
		{"ratio 0.9", "min.cleanable.dirty.ratio", "0.9", true},
		{"ratio 1.5", "min.cleanable.dirty.ratio", "1.5", false},
		{"ratio NaN", "min.cleanable.dirty.ratio", "NaN", false},
		{"min isr 0", "min.insync.replicas", "0", false},
		{"preallocate True", "preallocate", "True", true},
		{"preallocate yes", "preallocate", "yes", false},
		{"retention.bytes -1", "retention.bytes", "-1", true},
		{"retention.bytes -2", "retention.bytes", "-2", false},
		{"retention.ms -1", "retention.ms", "-1", true},
		{"retention.ms long", "retention.ms", "9223372036854775807", true},
		{"retention.ms overflow", "retention.ms", "9223372036854775808", false},
		{"segment.bytes small", "segment.bytes", "1000", false},
		{"segment.bytes 1MiB", "segment.bytes", "1048576", true},
		{"segment.index.bytes 3", "segment.index.bytes", "3", false},
		{"segment.ms 0", "segment.ms", "0", false},
		{"local.retention.ms -2", "local.retention.ms", "-2", true},
		{"local.retention.bytes -3", "local.retention.bytes", "-3", false},
		{"throttled star", "leader.replication.throttled.replicas", "*", true},
		{"throttled pairs", "follower.replication.throttled.replicas", "0:1,1:2", true},
		{"throttled bad", "follower.replication.throttled.replicas", "0-1", false},
		{"table.enabled", "table.enabled", "true", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTopicConfig(tt.key, tt.value)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateTopicConfig(%q, %q) = %v", tt.key, tt.value, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("ValidateTopicConfig(%q, %q) = %v, want ErrInvalidConfig", tt.key, tt.value, err)
			}
			if !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.value) {
				t.Fatalf("error %q does not name key %q and value %q", err, tt.key, tt.value)
			}
		})
	}
	if err := ValidateTopicConfig("retention.mins", "1"); !errors.Is(err, ErrUnknownConfig) || !strings.Contains(err.Error(), "retention.mins") {
		t.Fatalf("unknown config error = %v", err)
	}
	if err := ValidateTopicConfigs(map[string]string{"retention.ms": "1", "segment.ms": "0"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("ValidateTopicConfigs = %v", err)
	}
}

func TestResolveTopic(t *testing.T) {
	got, err := ResolveTopic(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CleanupDelete || got.CleanupCompact || got.RetentionMs != 604800000 || got.RetentionBytes != -1 ||
		got.MaxMessageBytes != 1048588 || got.TimestampType != "CreateTime" || got.CompressionType != "producer" ||
		got.MinCleanableDirtyRatio != 0.5 || got.TimestampAfterMaxMs != 3600000 || got.MinInsyncReplicas != 1 {
		t.Fatalf("defaults resolved wrong: %+v", got)
	}

	defaults := map[string]string{"retention.ms": "1000", "compression.type": "zstd", "cleanup.policy": "compact"}
	overrides := map[string]string{"retention.ms": "2000", "compression.zstd.level": "7", "message.timestamp.difference.max.ms": "500"}
	got, err = ResolveTopic(overrides, defaults)
	if err != nil {
		t.Fatal(err)
	}
	if got.RetentionMs != 2000 {
		t.Errorf("override lost: retention.ms = %d", got.RetentionMs)
	}
	if got.CompressionType != "zstd" || got.CompressionLevel != 7 {
		t.Errorf("compression = %s/%d, want zstd/7", got.CompressionType, got.CompressionLevel)
	}
	if got.CleanupDelete || !got.CleanupCompact {
		t.Errorf("cleanup from defaults lost: %+v", got)
	}
	if got.TimestampBeforeMaxMs != 500 || got.TimestampAfterMaxMs != 500 {
		t.Errorf("difference.max.ms not applied: %d/%d", got.TimestampBeforeMaxMs, got.TimestampAfterMaxMs)
	}

	bad := []struct {
		name                string
		overrides, defaults map[string]string
		want                error
	}{
		{"bad override", map[string]string{"retention.ms": "x"}, nil, ErrInvalidConfig},
		{"bad default", nil, map[string]string{"segment.ms": "0"}, ErrInvalidConfig},
		{"unknown override", map[string]string{"nope": "1"}, nil, ErrUnknownConfig},
		{"lag order", map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, nil, ErrInvalidConfig},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ResolveTopic(tt.overrides, tt.defaults); !errors.Is(err, tt.want) {
				t.Fatalf("ResolveTopic = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBrokerDefs(t *testing.T) {
	c := Default()
	c.BrokerID = 7
	c.AutoCreateTopics = false
	c.DefaultPartitions = 3
	c.TopicDefaults = map[string]string{"retention.ms": "1234"}
	defs := BrokerDefs(c)
	if !sort.SliceIsSorted(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name }) {
		t.Fatal("BrokerDefs not sorted")
	}
	want := map[string]string{
		"broker.id":                 "7",
		"auto.create.topics.enable": "false",
		"num.partitions":            "3",
		"log.retention.ms":          "1234",
		"message.max.bytes":         "1048588",
		"advertised.listeners":      "PLAINTEXT://127.0.0.1:9092",
		"log.cleanup.policy":        "delete",
		"socket.request.max.bytes":  "104857600",
		"telemetry.max.bytes":       "1048576",
	}
	for name, v := range want {
		d, ok := LookupBroker(c, name)
		if !ok {
			t.Errorf("broker config %s missing", name)
			continue
		}
		if d.Default != v {
			t.Errorf("%s = %q, want %q", name, d.Default, v)
		}
		if !d.ReadOnly {
			t.Errorf("%s not read-only", name)
		}
	}
	c.Telemetry.ClientMetricsMaxBytes = 4096
	if d, _ := LookupBroker(c, "telemetry.max.bytes"); d.Default != "4096" {
		t.Errorf("telemetry.max.bytes = %q with client-metrics-max-bytes 4096", d.Default)
	}
	seen := map[string]bool{}
	for _, d := range defs {
		if seen[d.Name] {
			t.Errorf("duplicate broker config %s", d.Name)
		}
		seen[d.Name] = true
	}
}

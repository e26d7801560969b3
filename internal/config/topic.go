package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Topic is a topic's configuration resolved and typed for the storage
// engine. Configs that only exist for client compatibility are not here.
type Topic struct {
	CleanupDelete  bool
	CleanupCompact bool
	// RetentionMs and RetentionBytes are -1 when unlimited.
	RetentionMs    int64
	RetentionBytes int64
	// MaxMessageBytes caps one record batch.
	MaxMessageBytes int32
	// TimestampType is "CreateTime" or "LogAppendTime".
	TimestampType string
	// CompressionType is producer, uncompressed, gzip, snappy, lz4 or zstd.
	CompressionType string
	// CompressionLevel is the level for CompressionType's codec (gzip -1
	// means the codec default).
	CompressionLevel       int32
	SegmentBytes           int64
	SegmentMs              int64
	DeleteRetentionMs      int64
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
	MinCleanableDirtyRatio float64
	// TimestampBeforeMaxMs and TimestampAfterMaxMs bound how far a CreateTime
	// timestamp may be behind or ahead of the broker's clock. The deprecated
	// message.timestamp.difference.max.ms tightens both when set lower.
	TimestampBeforeMaxMs int64
	TimestampAfterMaxMs  int64
	MinInsyncReplicas    int32
	// TableEnabled materialises the topic as an Iceberg table; Table is the
	// rest of its table.* configs.
	TableEnabled bool
	Table        Table
	// KeySchemaValidation and ValueSchemaValidation enforce the schema
	// registry's data contract on produce; the strategies name the
	// subjects (TopicNameStrategy, RecordNameStrategy or
	// TopicRecordNameStrategy, short names).
	KeySchemaValidation   bool
	ValueSchemaValidation bool
	KeySubjectStrategy    string
	ValueSubjectStrategy  string
	// SchemaFailureDLQ routes records failing schema validation to
	// SchemaDLQTopic ("" means <topic>-dlq) instead of failing the batch.
	SchemaFailureDLQ bool
	SchemaDLQTopic   string
}

// ResolveTopic resolves a topic's typed configuration. For every config the
// value comes from overrides (the topic's own configs), else defaults (the
// server's topic-defaults), else the table's default. Every used value is
// validated; unknown names in either map are rejected.
func ResolveTopic(overrides, defaults map[string]string) (Topic, error) {
	for _, m := range []map[string]string{defaults, overrides} {
		if err := ValidateTopicConfigs(m); err != nil {
			return Topic{}, err
		}
	}
	get := func(name string) string {
		if v, ok := overrides[name]; ok {
			return strings.TrimSpace(v)
		}
		if v, ok := defaults[name]; ok {
			return strings.TrimSpace(v)
		}
		d, ok := LookupTopic(name)
		if !ok {
			// The names below are all in the table; a miss is a programming error.
			panic("config: ResolveTopic reads unknown config " + name)
		}
		return d.Default
	}
	i64 := func(name string) int64 {
		n, _ := strconv.ParseInt(get(name), 10, 64) // validated above
		return n
	}
	var t Topic
	policy := SplitList(get("cleanup.policy"))
	t.CleanupDelete = slices.Contains(policy, "delete")
	t.CleanupCompact = slices.Contains(policy, "compact")
	t.RetentionMs = i64("retention.ms")
	t.RetentionBytes = i64("retention.bytes")
	t.MaxMessageBytes = int32(i64("max.message.bytes"))
	t.TimestampType = get("message.timestamp.type")
	t.CompressionType = get("compression.type")
	switch t.CompressionType {
	case "gzip":
		t.CompressionLevel = int32(i64("compression.gzip.level"))
	case "lz4":
		t.CompressionLevel = int32(i64("compression.lz4.level"))
	case "zstd":
		t.CompressionLevel = int32(i64("compression.zstd.level"))
	}
	t.SegmentBytes = i64("segment.bytes")
	t.SegmentMs = i64("segment.ms")
	t.DeleteRetentionMs = i64("delete.retention.ms")
	t.MinCompactionLagMs = i64("min.compaction.lag.ms")
	t.MaxCompactionLagMs = i64("max.compaction.lag.ms")
	t.MinCleanableDirtyRatio, _ = strconv.ParseFloat(get("min.cleanable.dirty.ratio"), 64)
	t.TimestampBeforeMaxMs = i64("message.timestamp.before.max.ms")
	t.TimestampAfterMaxMs = i64("message.timestamp.after.max.ms")
	if diff := i64("message.timestamp.difference.max.ms"); diff < t.TimestampBeforeMaxMs {
		t.TimestampBeforeMaxMs = diff
	}
	if diff := i64("message.timestamp.difference.max.ms"); diff < t.TimestampAfterMaxMs {
		t.TimestampAfterMaxMs = diff
	}
	t.MinInsyncReplicas = int32(i64("min.insync.replicas"))
	t.TableEnabled = strings.EqualFold(get("table.enabled"), "true")
	t.Table = Table{
		Enabled:            t.TableEnabled,
		Mode:               get("table.mode"),
		CommitIntervalMs:   i64("table.commit.interval.ms"),
		Namespace:          get("table.namespace"),
		Name:               get("table.name"),
		ErrorMode:          get("table.error.mode"),
		ErrorDLQTopic:      get("table.error.dlq.topic"),
		RetentionSnapshots: int(i64("table.retention.snapshots")),
		Source:             get("table.source"),
	}
	t.Table.PartitionBy, _ = ParsePartitionBy(get("table.partition.by")) // validated above
	t.KeySchemaValidation = strings.EqualFold(get("confluent.key.schema.validation"), "true")
	t.ValueSchemaValidation = strings.EqualFold(get("confluent.value.schema.validation"), "true")
	t.KeySubjectStrategy = strings.TrimPrefix(get("confluent.key.subject.name.strategy"), strategyClassPrefix)
	t.ValueSubjectStrategy = strings.TrimPrefix(get("confluent.value.subject.name.strategy"), strategyClassPrefix)
	t.SchemaFailureDLQ = get("schema.validation.failure.action") == "DLQ"
	t.SchemaDLQTopic = get("schema.validation.dlq.topic")
	if t.MinCompactionLagMs > t.MaxCompactionLagMs {
		return Topic{}, fmt.Errorf("%w: min.compaction.lag.ms=%d must not exceed max.compaction.lag.ms=%d",
			ErrInvalidConfig, t.MinCompactionLagMs, t.MaxCompactionLagMs)
	}
	return t, nil
}

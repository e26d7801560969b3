package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Type is a Kafka config type, as reported by DescribeConfigs (KIP-569).
type Type string

// The Kafka config types.
const (
	TypeString   Type = "string"
	TypeInt      Type = "int"
	TypeLong     Type = "long"
	TypeDouble   Type = "double"
	TypeBoolean  Type = "boolean"
	TypeList     Type = "list"
	TypePassword Type = "password"
	TypeClass    Type = "class"
)

// Def is one row of a config table.
type Def struct {
	// Name is the Kafka config name, e.g. "retention.ms".
	Name string
	// Type is the Kafka config type; every value is type-checked against it.
	Type Type
	// Default is the value used when nothing overrides it.
	Default string
	// Doc is the one-line documentation reported to clients.
	Doc string
	// Validate checks a value that has already passed the type check; nil
	// means only the type check applies.
	Validate func(v string) error
	// ReadOnly configs cannot be altered through AlterConfigs.
	ReadOnly bool
	// Sensitive configs have their values hidden in DescribeConfigs.
	Sensitive bool
	// Synonym is the broker config that supplies a topic config's default
	// (e.g. log.retention.ms for retention.ms); empty if none.
	Synonym string
}

// ErrInvalidConfig is wrapped by every config validation error.
var ErrInvalidConfig = errors.New("config: invalid value")

// ErrUnknownConfig is wrapped when a config name is not in the table.
var ErrUnknownConfig = errors.New("config: unknown config")

// Check type-checks and validates v for this config. The error wraps
// ErrInvalidConfig and names the key and the value.
func (d Def) Check(v string) error {
	if err := checkType(d.Type, v); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, d.Name, v, err)
	}
	if d.Validate != nil {
		if err := d.Validate(v); err != nil {
			return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, d.Name, v, err)
		}
	}
	return nil
}

func checkType(t Type, v string) error {
	switch t {
	case TypeInt:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err != nil {
			return fmt.Errorf("not a 32-bit integer")
		}
	case TypeLong:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return fmt.Errorf("not a 64-bit integer")
		}
	case TypeDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a number")
		}
	case TypeBoolean:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "false":
		default:
			return fmt.Errorf("not a boolean (true or false)")
		}
	}
	return nil
}

// Validators used by the tables.

func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if n < min {
			return fmt.Errorf("must be >= %d", min)
		}
		return nil
	}
}

func between(min, max int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if n < min || n > max {
			return fmt.Errorf("must be between %d and %d", min, max)
		}
		return nil
	}
}

// levelOrDefault accepts def (the "codec default" sentinel) or [min, max].
func levelOrDefault(def, min, max int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if n != def && (n < min || n > max) {
			return fmt.Errorf("must be %d or between %d and %d", def, min, max)
		}
		return nil
	}
}

func ratio(v string) error {
	f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if f < 0 || f > 1 {
		return fmt.Errorf("must be between 0 and 1")
	}
	return nil
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(allowed, strings.TrimSpace(v)) {
			return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
		}
		return nil
	}
}

// listOf accepts a non-empty comma-separated list of allowed values.
func listOf(allowed ...string) func(string) error {
	return func(v string) error {
		items := SplitList(v)
		if len(items) == 0 {
			return fmt.Errorf("must list at least one of %s", strings.Join(allowed, ", "))
		}
		for _, it := range items {
			if !slices.Contains(allowed, it) {
				return fmt.Errorf("%q is not one of %s", it, strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}

// replicaList accepts "", "*" or a list of partition:broker pairs, the syntax
// of the replication throttle configs.
func replicaList(v string) error {
	items := SplitList(v)
	if len(items) == 1 && items[0] == "*" {
		return nil
	}
	for _, it := range items {
		p, b, ok := strings.Cut(it, ":")
		if !ok {
			return fmt.Errorf("%q is not partition:broker", it)
		}
		if _, err := strconv.ParseInt(p, 10, 32); err != nil {
			return fmt.Errorf("%q is not partition:broker", it)
		}
		if _, err := strconv.ParseInt(b, 10, 32); err != nil {
			return fmt.Errorf("%q is not partition:broker", it)
		}
	}
	return nil
}

// SplitList splits a Kafka list value on commas, trimming spaces and
// dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, it := range strings.Split(v, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

const longMax = "9223372036854775807"

// Subject name strategies for schema validation. Confluent's fully
// qualified class names (io.confluent.kafka.serializers.subject.X) are
// accepted as well.
const (
	TopicNameStrategy       = "TopicNameStrategy"
	RecordNameStrategy      = "RecordNameStrategy"
	TopicRecordNameStrategy = "TopicRecordNameStrategy"
	strategyClassPrefix     = "io.confluent.kafka.serializers.subject."
)

// SubjectNameStrategies lists every accepted strategy value.
var SubjectNameStrategies = []string{
	TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy,
	strategyClassPrefix + TopicNameStrategy, strategyClassPrefix + RecordNameStrategy, strategyClassPrefix + TopicRecordNameStrategy,
}

// TopicDeliveryDelay names the topic config of delayed topics: a batch is
// served by Fetch only once its max timestamp + the delay is at or before
// the broker's clock.
const TopicDeliveryDelay = "delivery.delay.ms"

// DeliveryDelay returns a topic's delivery delay from its own overrides (0
// when unset or invalid). It is a per-topic setting: topic-defaults may not
// set it, so the overrides alone decide.
func DeliveryDelay(overrides map[string]string) time.Duration {
	v, ok := overrides[TopicDeliveryDelay]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Millisecond
}

// topicDefs is the topic config table, with Kafka 4.x defaults and validators.
var topicDefs = []Def{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", Synonym: "log.cleanup.policy",
		Validate: listOf("delete", "compact"),
		Doc:      "Retention policy for old log segments: delete, compact, or both."},
	{Name: "compression.gzip.level", Type: TypeInt, Default: "-1", Synonym: "compression.gzip.level",
		Validate: levelOrDefault(-1, 1, 9),
		Doc:      "Compression level when compression.type is gzip."},
	{Name: "compression.lz4.level", Type: TypeInt, Default: "9", Synonym: "compression.lz4.level",
		Validate: between(1, 17),
		Doc:      "Compression level when compression.type is lz4."},
	{Name: "compression.type", Type: TypeString, Default: "producer", Synonym: "compression.type",
		Validate: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		Doc:      "Final compression of the topic's data; producer keeps the producer's codec."},
	{Name: "compression.zstd.level", Type: TypeInt, Default: "3", Synonym: "compression.zstd.level",
		Validate: between(-131072, 22),
		Doc:      "Compression level when compression.type is zstd."},
	{Name: TopicDeliveryDelay, Type: TypeLong, Default: "0",
		Validate: atLeast(0),
		Doc:      "Runnel: a fetch returns a record batch only once its max timestamp plus this many milliseconds has passed on the broker's clock (delayed topics; retry topics use it with LogAppendTime). Set per topic only; 0 disables it."},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", Synonym: "log.cleaner.delete.retention.ms",
		Validate: atLeast(0),
		Doc:      "How long delete tombstones are kept on compacted topics."},
	{Name: "errors.deadletterqueue.group.enable", Type: TypeBoolean, Default: "false",
		Doc: "Whether share groups may write their dead letters to this topic (KIP-1191); topics created as dead-letter topics have it set."},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", Synonym: "log.segment.delete.delay.ms",
		Validate: atLeast(0),
		Doc:      "Time to wait before deleting a file from storage."},
	{Name: "flush.messages", Type: TypeLong, Default: longMax, Synonym: "log.flush.interval.messages",
		Validate: atLeast(1),
		Doc:      "Accepted for compatibility; every flush is durable in Runnel."},
	{Name: "flush.ms", Type: TypeLong, Default: longMax, Synonym: "log.flush.interval.ms",
		Validate: atLeast(0),
		Doc:      "Accepted for compatibility; every flush is durable in Runnel."},
	{Name: "follower.replication.throttled.replicas", Type: TypeList, Default: "", Synonym: "follower.replication.throttled.replicas",
		Validate: replicaList,
		Doc:      "Accepted for compatibility; Runnel does not replicate between brokers."},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", Synonym: "log.index.interval.bytes",
		Validate: atLeast(0),
		Doc:      "How often an entry is added to a segment's offset index."},
	{Name: "leader.replication.throttled.replicas", Type: TypeList, Default: "", Synonym: "leader.replication.throttled.replicas",
		Validate: replicaList,
		Doc:      "Accepted for compatibility; Runnel does not replicate between brokers."},
	{Name: "local.retention.bytes", Type: TypeLong, Default: "-2", Synonym: "log.local.retention.bytes",
		Validate: atLeast(-2),
		Doc:      "Local retention size for tiered storage; -2 means retention.bytes."},
	{Name: "local.retention.ms", Type: TypeLong, Default: "-2", Synonym: "log.local.retention.ms",
		Validate: atLeast(-2),
		Doc:      "Local retention time for tiered storage; -2 means retention.ms."},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: longMax, Synonym: "log.cleaner.max.compaction.lag.ms",
		Validate: atLeast(1),
		Doc:      "Maximum time a message stays ineligible for compaction."},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", Synonym: "message.max.bytes",
		Validate: atLeast(0),
		Doc:      "Largest record batch size allowed."},
	{Name: "message.downconversion.enable", Type: TypeBoolean, Default: "true", Synonym: "log.message.downconversion.enable",
		Doc: "Accepted for compatibility; only message format v2 is served."},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: "3600000", Synonym: "log.message.timestamp.after.max.ms",
		Validate: atLeast(0),
		Doc:      "Largest allowed amount a CreateTime timestamp may be ahead of the broker's clock."},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: longMax, Synonym: "log.message.timestamp.before.max.ms",
		Validate: atLeast(0),
		Doc:      "Largest allowed amount a CreateTime timestamp may be behind the broker's clock."},
	{Name: "message.timestamp.difference.max.ms", Type: TypeLong, Default: longMax, Synonym: "log.message.timestamp.difference.max.ms",
		Validate: atLeast(0),
		Doc:      "Deprecated: use message.timestamp.before.max.ms and message.timestamp.after.max.ms."},
	{Name: "message.timestamp.type", Type: TypeString, Default: "CreateTime", Synonym: "log.message.timestamp.type",
		Validate: oneOf("CreateTime", "LogAppendTime"),
		Doc:      "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", Synonym: "log.cleaner.min.cleanable.ratio",
		Validate: ratio,
		Doc:      "Ratio of uncompacted log to total log that triggers compaction."},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", Synonym: "log.cleaner.min.compaction.lag.ms",
		Validate: atLeast(0),
		Doc:      "Minimum time a message stays uncompacted."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", Synonym: "min.insync.replicas",
		Validate: atLeast(1),
		Doc:      "Accepted for compatibility; an acknowledged write is in the object store."},
	{Name: "preallocate", Type: TypeBoolean, Default: "false", Synonym: "log.preallocate",
		Doc: "Accepted for compatibility; segments live in the object store."},
	{Name: "remote.log.copy.disable", Type: TypeBoolean, Default: "false",
		Doc: "Accepted for compatibility; all data is in the object store."},
	{Name: "remote.log.delete.on.disable", Type: TypeBoolean, Default: "false",
		Doc: "Accepted for compatibility; all data is in the object store."},
	{Name: "remote.storage.enable", Type: TypeBoolean, Default: "false",
		Doc: "Accepted for compatibility; all data is in the object store."},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1", Synonym: "log.retention.bytes",
		Validate: atLeast(-1),
		Doc:      "Maximum partition size before old segments are deleted; -1 means unlimited."},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000", Synonym: "log.retention.ms",
		Validate: atLeast(-1),
		Doc:      "Maximum age of a segment before it is deleted; -1 means unlimited."},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", Synonym: "log.segment.bytes",
		Validate: atLeast(1 << 20),
		Doc:      "Target size of an archived segment object."},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", Synonym: "log.index.size.max.bytes",
		Validate: atLeast(4),
		Doc:      "Maximum size of a segment's offset index."},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0", Synonym: "log.roll.jitter.ms",
		Validate: atLeast(0),
		Doc:      "Maximum random jitter subtracted from segment.ms."},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000", Synonym: "log.roll.ms",
		Validate: atLeast(1),
		Doc:      "Time after which a segment is closed even if not full."},
	{Name: "confluent.key.schema.validation", Type: TypeBoolean, Default: "false",
		Doc: "Check that every record key carries the id of a schema registered for the topic's key subject, decodes against it and passes its data contract rules."},
	{Name: "confluent.value.schema.validation", Type: TypeBoolean, Default: "false",
		Doc: "Check that every record value carries the id of a schema registered for the topic's value subject, decodes against it and passes its data contract rules. Null values (tombstones) pass."},
	{Name: "confluent.key.subject.name.strategy", Type: TypeString, Default: TopicNameStrategy,
		Validate: oneOf(SubjectNameStrategies...),
		Doc:      "How the key subject is named: TopicNameStrategy (<topic>-key), RecordNameStrategy (<record name>) or TopicRecordNameStrategy (<topic>-<record name>); Confluent's class names are accepted too."},
	{Name: "confluent.value.subject.name.strategy", Type: TypeString, Default: TopicNameStrategy,
		Validate: oneOf(SubjectNameStrategies...),
		Doc:      "How the value subject is named; see confluent.key.subject.name.strategy."},
	{Name: "schema.validation.failure.action", Type: TypeString, Default: "ERROR",
		Validate: oneOf("ERROR", "DLQ"),
		Doc:      "What happens to a record that fails schema validation (wire format, schema id, subject, payload): ERROR fails its batch with INVALID_RECORD; DLQ writes it, unchanged, to the dead-letter topic and stores the rest of the batch. Data contract rules choose their own action (onFailure)."},
	{Name: "schema.validation.dlq.topic", Type: TypeString, Default: "",
		Doc: "The dead-letter topic of records routed by the DLQ action (a rule's dlq.topic param overrides it); empty means <topic>-dlq. It must exist."},
	{Name: "table.enabled", Type: TypeBoolean, Default: "false",
		Doc: "Materialise the topic continuously as an Apache Iceberg table (Tableflow). Turning it off stops materialising and keeps the table."},
	{Name: "table.mode", Type: TypeString, Default: "append", Validate: oneOf("append", "upsert"),
		Doc: "append: every record is a row. upsert: the record key is the row's identity; a newer value replaces the row and a tombstone (null value) deletes it."},
	{Name: "table.commit.interval.ms", Type: TypeLong, Default: "60000", Validate: between(1000, 86400000),
		Doc: "How often the table gets a new snapshot (its freshness), 1 s to 1 day."},
	{Name: "table.partition.by", Type: TypeString, Default: DefaultTablePartitionBy, Validate: validPartitionBy,
		Doc: "The table's partition spec: a comma-separated list of year(c), month(c), day(c), hour(c), identity(c), bucket(N, c), truncate(W, c), or none. Columns are the table's (_timestamp is the record timestamp)."},
	{Name: "table.namespace", Type: TypeString, Default: "", Validate: validTableIdent,
		Doc: "The table's Iceberg namespace; empty means " + DefaultTableNamespace + "."},
	{Name: "table.name", Type: TypeString, Default: "", Validate: validTableIdent,
		Doc: "The table's name in its namespace; empty means the topic name with dots turned into underscores."},
	{Name: "table.error.mode", Type: TypeString, Default: "suspend", Validate: oneOf("suspend", "skip", "dlq"),
		Doc: "What happens to a record that cannot be converted to a row: suspend stops materialising the table until the record is dealt with (the status says why); skip counts and leaves it out; dlq writes it to table.error.dlq.topic and leaves it out."},
	{Name: "table.error.dlq.topic", Type: TypeString, Default: "",
		Doc: "Dead-letter topic of table.error.mode=dlq; empty means <topic>-table-dlq. It must exist."},
	{Name: "table.retention.snapshots", Type: TypeInt, Default: "100", Validate: between(1, 100000),
		Doc: "Snapshots the table keeps; older ones are expired by maintenance (the current one always stays)."},
	{Name: "table.source", Type: TypeString, Default: "",
		Doc: "Stream an Iceberg table into this topic: <namespace>.<table> of the broker's own catalog, or the location of a table's metadata file. Rows of new append snapshots are produced exactly once."},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", Synonym: "unclean.leader.election.enable",
		Doc: "Accepted for compatibility; Runnel has no replicas to elect from."},
}

var topicIndex = func() map[string]int {
	sort.Slice(topicDefs, func(i, j int) bool { return topicDefs[i].Name < topicDefs[j].Name })
	m := make(map[string]int, len(topicDefs))
	for i, d := range topicDefs {
		m[d.Name] = i
	}
	return m
}()

// TopicDefs returns the topic config table sorted by name. The slice is a
// copy; callers may modify it.
func TopicDefs() []Def {
	return slices.Clone(topicDefs)
}

// LookupTopic returns the topic config definition named name.
func LookupTopic(name string) (Def, bool) {
	i, ok := topicIndex[name]
	if !ok {
		return Def{}, false
	}
	return topicDefs[i], true
}

// ValidateTopicConfig checks one topic config. An unknown name wraps
// ErrUnknownConfig; a bad value wraps ErrInvalidConfig. Both name the key.
func ValidateTopicConfig(name, value string) error {
	d, ok := LookupTopic(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownConfig, name)
	}
	return d.Check(value)
}

// ValidateTopicConfigs checks every entry of m, in key order, and returns the
// first error.
func ValidateTopicConfigs(m map[string]string) error {
	for _, k := range sortedKeys(m) {
		if err := ValidateTopicConfig(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

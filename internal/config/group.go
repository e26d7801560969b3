package config

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Group configs are Kafka's GROUP config resource (DescribeConfigs and
// IncrementalAlterConfigs with resource type 32, KIP-848 and KIP-932): per
// group overrides of the consumer and share group settings, plus the share
// group dead-letter settings of KIP-1191. A group's configs may be set
// before the group exists.

// Names of the group configs.
const (
	GroupConsumerSessionTimeout    = "consumer.session.timeout.ms"
	GroupConsumerHeartbeatInterval = "consumer.heartbeat.interval.ms"
	GroupShareSessionTimeout       = "share.session.timeout.ms"
	GroupShareHeartbeatInterval    = "share.heartbeat.interval.ms"
	GroupShareRecordLockDuration   = "share.record.lock.duration.ms"
	GroupShareDeliveryCountLimit   = "share.delivery.count.limit"
	GroupSharePartitionMaxLocks    = "share.partition.max.record.locks"
	GroupShareAutoOffsetReset      = "share.auto.offset.reset"
	GroupShareIsolationLevel       = "share.isolation.level"
	GroupShareRenewAckEnable       = "share.renew.acknowledge.enable"
	GroupShareAcquireMode          = "share.acquire.mode"
	GroupDLQTopicName              = "errors.deadletterqueue.topic.name"
	GroupDLQCopyRecord             = "errors.deadletterqueue.copy.record.enable"
	GroupRetryDelays               = "errors.retry.delays.ms"
	GroupRetryOrdered              = "errors.retry.ordered"
)

// MaxRetryLevels bounds the delays of errors.retry.delays.ms.
const MaxRetryLevels = 10

// maxRetryDelayMs bounds one retry delay (7 days).
const maxRetryDelayMs = 7 * 24 * 3600 * 1000

var groupDefs = []Def{
	{Name: GroupConsumerSessionTimeout, Type: TypeInt, Default: "45000", Validate: between(45000, 60000),
		Synonym: "group.consumer.session.timeout.ms",
		Doc:     "How long a KIP-848 consumer may go without a heartbeat before it is removed from the group."},
	{Name: GroupConsumerHeartbeatInterval, Type: TypeInt, Default: "5000", Validate: between(5000, 15000),
		Synonym: "group.consumer.heartbeat.interval.ms",
		Doc:     "The heartbeat interval given to KIP-848 consumers."},
	{Name: GroupShareSessionTimeout, Type: TypeInt, Default: "45000", Validate: between(45000, 60000),
		Synonym: "group.share.session.timeout.ms",
		Doc:     "How long a share consumer may go without a heartbeat before it is removed from the group."},
	{Name: GroupShareHeartbeatInterval, Type: TypeInt, Default: "5000", Validate: between(5000, 15000),
		Synonym: "group.share.heartbeat.interval.ms",
		Doc:     "The heartbeat interval given to share consumers."},
	{Name: GroupShareRecordLockDuration, Type: TypeInt, Default: "30000", Validate: between(1000, 3600000),
		Synonym: "group.share.record.lock.duration.ms",
		Doc:     "How long a share consumer holds the records it acquired before they become available again."},
	{Name: GroupShareDeliveryCountLimit, Type: TypeInt, Default: "5", Validate: between(2, 10),
		Synonym: "group.share.delivery.count.limit",
		Doc:     "How many times a record is delivered before it is archived (or sent to the dead-letter topic)."},
	{Name: GroupSharePartitionMaxLocks, Type: TypeInt, Default: "2000", Validate: between(100, 10000),
		Synonym: "group.share.partition.max.record.locks",
		Doc:     "The most records of one share partition that may be in flight (acquired or awaiting redelivery) at once."},
	{Name: GroupShareAutoOffsetReset, Type: TypeString, Default: "latest", Validate: autoOffsetReset,
		Doc: "Where a share partition starts when the group first reads it: latest, earliest, or by_duration:<ISO-8601 duration>."},
	{Name: GroupShareIsolationLevel, Type: TypeString, Default: "read_uncommitted", Validate: oneOf("read_uncommitted", "read_committed"),
		Doc: "read_committed delivers only committed transactional records; read_uncommitted delivers every record."},
	{Name: GroupShareRenewAckEnable, Type: TypeBoolean, Default: "true",
		Doc: "Whether share consumers may renew their acquisition locks (KIP-1222)."},
	{Name: GroupShareAcquireMode, Type: TypeString, Default: "batch_optimized", Validate: oneOf("batch_optimized", "record_limit"),
		Doc: "batch_optimized acquires whole batches (may exceed max.poll.records); record_limit never acquires more records than asked (KIP-1206)."},
	{Name: GroupDLQTopicName, Type: TypeString, Default: "", Validate: dlqTopicName,
		Doc: "The dead-letter topic of a share group: rejected records and records past the delivery limit are written there (KIP-1191). Empty disables it."},
	{Name: GroupRetryDelays, Type: TypeList, Default: "", Validate: retryDelays,
		Doc: "Runnel: the retry policy of a group, one delay in milliseconds per retry level (e.g. 1000,10000,60000). Consumer group: each level is a topic retry.<group>.<n> whose records are delivered that long after they were written, and a record failing at the last level goes to the dead-letter topic. Share group: a record released or timed out after its n-th delivery is delivered again only after the n-th delay (the last one for later deliveries), up to share.delivery.count.limit. Empty: no policy."},
	{Name: GroupRetryOrdered, Type: TypeBoolean, Default: "false",
		Doc: "Runnel: keep the order of each key across retries of a consumer group: once a record of a key is parked in a retry topic, later records of that key are parked behind it until it succeeds or is discarded (retry.<group>.parked lists the parked keys). Share groups have no per-key order and ignore it."},
	{Name: GroupDLQCopyRecord, Type: TypeBoolean, Default: "false",
		Doc: "Whether a dead-letter record carries the original key and value, or only headers naming the original (KIP-1191)."},
}

var groupIndex = func() map[string]int {
	sort.Slice(groupDefs, func(i, j int) bool { return groupDefs[i].Name < groupDefs[j].Name })
	m := make(map[string]int, len(groupDefs))
	for i, d := range groupDefs {
		m[d.Name] = i
	}
	return m
}()

// GroupDefs returns the group config table sorted by name (a copy).
func GroupDefs() []Def {
	return slices.Clone(groupDefs)
}

// LookupGroup returns the group config definition named name.
func LookupGroup(name string) (Def, bool) {
	i, ok := groupIndex[name]
	if !ok {
		return Def{}, false
	}
	return groupDefs[i], true
}

// ValidateGroupConfig checks one group config. An unknown name wraps
// ErrUnknownConfig; a bad value wraps ErrInvalidConfig. Both name the key.
func ValidateGroupConfig(name, value string) error {
	d, ok := LookupGroup(name)
	if !ok {
		return fmt.Errorf("%w: unknown group config name: %s", ErrUnknownConfig, name)
	}
	return d.Check(value)
}

// ValidateGroupConfigs checks every entry of m, in key order, and returns
// the first error.
func ValidateGroupConfigs(m map[string]string) error {
	for _, k := range sortedKeys(m) {
		if err := ValidateGroupConfig(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// ShareGroup is a share group's resolved configuration: its overrides over
// the table's defaults.
type ShareGroup struct {
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	// LockDuration is share.record.lock.duration.ms.
	LockDuration time.Duration
	// DeliveryCountLimit is share.delivery.count.limit.
	DeliveryCountLimit int
	// MaxRecordLocks is share.partition.max.record.locks.
	MaxRecordLocks int
	// AutoOffsetReset is share.auto.offset.reset: "latest", "earliest" or
	// "by_duration"; ResetDuration is the duration of by_duration.
	AutoOffsetReset string
	ResetDuration   time.Duration
	// ReadCommitted is share.isolation.level=read_committed.
	ReadCommitted bool
	// RenewEnabled is share.renew.acknowledge.enable.
	RenewEnabled bool
	// RecordLimit is share.acquire.mode=record_limit.
	RecordLimit bool
	// DLQTopic is errors.deadletterqueue.topic.name ("" = no dead-letter
	// topic); DLQCopyRecord is errors.deadletterqueue.copy.record.enable.
	DLQTopic      string
	DLQCopyRecord bool
	// RetryDelays is errors.retry.delays.ms: a record a consumer releases,
	// or whose lock times out, after its n-th delivery is delivered again
	// only RetryDelays[min(n, len)-1] later (nil: at once).
	RetryDelays []time.Duration
}

// ResolveShareGroup resolves a share group's configuration from its
// overrides. Values are validated when stored; one that no longer passes
// (a table change) falls back to the default, as Kafka does.
func ResolveShareGroup(overrides map[string]string) ShareGroup {
	get := func(name string) string {
		d, _ := LookupGroup(name)
		if v, ok := overrides[name]; ok && d.Check(v) == nil {
			return strings.TrimSpace(v)
		}
		return d.Default
	}
	ms := func(name string) time.Duration {
		n, _ := strconv.ParseInt(get(name), 10, 64)
		return time.Duration(n) * time.Millisecond
	}
	num := func(name string) int {
		n, _ := strconv.Atoi(get(name))
		return n
	}
	g := ShareGroup{
		SessionTimeout:     ms(GroupShareSessionTimeout),
		HeartbeatInterval:  ms(GroupShareHeartbeatInterval),
		LockDuration:       ms(GroupShareRecordLockDuration),
		DeliveryCountLimit: num(GroupShareDeliveryCountLimit),
		MaxRecordLocks:     num(GroupSharePartitionMaxLocks),
		ReadCommitted:      get(GroupShareIsolationLevel) == "read_committed",
		RenewEnabled:       get(GroupShareRenewAckEnable) == "true",
		RecordLimit:        get(GroupShareAcquireMode) == "record_limit",
		DLQTopic:           get(GroupDLQTopicName),
		DLQCopyRecord:      get(GroupDLQCopyRecord) == "true",
		RetryDelays:        RetryDelays(overrides),
	}
	reset := get(GroupShareAutoOffsetReset)
	if d, ok := strings.CutPrefix(reset, "by_duration:"); ok {
		g.AutoOffsetReset = "by_duration"
		g.ResetDuration, _ = ParseISODuration(d)
	} else {
		g.AutoOffsetReset = reset
	}
	return g
}

func autoOffsetReset(v string) error {
	v = strings.TrimSpace(v)
	switch v {
	case "latest", "earliest":
		return nil
	}
	if d, ok := strings.CutPrefix(v, "by_duration:"); ok {
		if _, err := ParseISODuration(d); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("must be latest, earliest or by_duration:<ISO-8601 duration>")
}

// retryDelays accepts "" or up to MaxRetryLevels positive delays in
// milliseconds.
func retryDelays(v string) error {
	items := SplitList(v)
	if len(items) > MaxRetryLevels {
		return fmt.Errorf("at most %d retry levels", MaxRetryLevels)
	}
	for _, it := range items {
		n, err := strconv.ParseInt(it, 10, 64)
		if err != nil || n < 1 || n > maxRetryDelayMs {
			return fmt.Errorf("%q is not a delay in milliseconds between 1 and %d", it, maxRetryDelayMs)
		}
	}
	return nil
}

// RetryDelays returns the delays of errors.retry.delays.ms in overrides
// (nil: no retry policy, or a value that no longer validates).
func RetryDelays(overrides map[string]string) []time.Duration {
	v := overrides[GroupRetryDelays]
	if retryDelays(v) != nil {
		return nil
	}
	var out []time.Duration
	for _, it := range SplitList(v) {
		n, _ := strconv.ParseInt(it, 10, 64)
		out = append(out, time.Duration(n)*time.Millisecond)
	}
	return out
}

// dlqTopicName accepts "" or a legal topic name.
func dlqTopicName(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 249 || v == "." || v == ".." {
		return fmt.Errorf("%q is not a legal topic name", v)
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q is not a legal topic name", v)
		}
	}
	return nil
}

// ParseISODuration parses the ISO-8601 durations Kafka's by_duration takes
// (PnDTnHnMn.nS; no years, months or weeks, as java.time.Duration). A
// negative duration is refused.
func ParseISODuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an ISO-8601 duration (PnDTnHnMn.nS)", s)
	rest, ok := strings.CutPrefix(strings.ToUpper(strings.TrimSpace(s)), "P")
	if !ok || rest == "" || strings.HasPrefix(rest, "-") {
		return 0, bad
	}
	var total time.Duration
	inTime := false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, bad
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, bad
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, bad
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, bad
		}
		var unit time.Duration
		switch u := rest[i]; {
		case u == 'D' && !inTime:
			unit = 24 * time.Hour
		case u == 'H' && inTime:
			unit = time.Hour
		case u == 'M' && inTime:
			unit = time.Minute
		case u == 'S' && inTime:
			unit = time.Second
		default:
			return 0, bad
		}
		if unit != time.Second && strings.Contains(rest[:i], ".") {
			return 0, bad
		}
		total += time.Duration(n * float64(unit))
		rest = rest[i+1:]
	}
	return total, nil
}

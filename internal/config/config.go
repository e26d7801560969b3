package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the server configuration of one Runnel broker. Field names in
// YAML are kebab-case (see the yaml tags).
type Config struct {
	// BrokerID is this broker's Kafka node id.
	BrokerID int32 `yaml:"broker-id"`
	// DataDir holds the embedded etcd member, the default object store and caches.
	DataDir string `yaml:"data-dir"`
	// KafkaAddr is the host:port the Kafka listener binds.
	KafkaAddr string `yaml:"kafka-addr"`
	// AdvertisedAddr is the host:port given to clients in Metadata; "" means KafkaAddr.
	AdvertisedAddr string `yaml:"advertised-addr"`
	// HTTPAddr is the host:port of the HTTP server (metrics, REST APIs).
	HTTPAddr string `yaml:"http-addr"`
	// RegistryAddr is the host:port of the schema registry's REST API
	// (Confluent-compatible).
	RegistryAddr string `yaml:"registry-addr"`
	// ObjectStore is the object store URL; "" means file://<data-dir>/objects.
	ObjectStore string `yaml:"object-store"`
	// ClusterID is the Kafka cluster id reported to clients.
	ClusterID string `yaml:"cluster-id"`
	// Rack is this broker's rack (availability zone), reported in Metadata.
	Rack string `yaml:"rack"`
	// Etcd configures the metadata store.
	Etcd EtcdConfig `yaml:"etcd"`
	// Flush configures the intake buffer.
	Flush FlushConfig `yaml:"flush"`
	// Cache configures the in-memory read cache.
	Cache CacheConfig `yaml:"cache"`
	// Checkpoint configures sequencer checkpoints.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	// Archive configures the archiver and object garbage collection.
	Archive ArchiveConfig `yaml:"archive"`
	// Groups configures the group coordinator.
	Groups GroupsConfig `yaml:"groups"`
	// Telemetry configures consumer lag monitoring and KIP-714 client
	// metrics (telemetry.go).
	Telemetry TelemetryConfig `yaml:"telemetry"`
	// DeadLetters are the rules for share groups' dead-letter topics
	// (deadletters.go).
	DeadLetters DeadLetterConfig `yaml:"dead-letters"`
	// AutoCreateTopics creates unknown topics on Metadata/Produce requests.
	AutoCreateTopics bool `yaml:"auto-create-topics"`
	// DefaultPartitions is the partition count of auto-created topics.
	DefaultPartitions int32 `yaml:"default-partitions"`
	// MaxRequestBytes caps the size of one Kafka request frame.
	MaxRequestBytes int32 `yaml:"max-request-bytes"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes for the
	// broker's memory apart from the read cache and its buffer free lists:
	// garbage collection works harder as the heap approaches it. The
	// runtime's limit is this plus the cache's size (RuntimeMemoryLimit)
	// plus the free lists' bounds (the broker adds those), so neither a
	// larger cache nor full free lists leave the collector without room.
	// 0 leaves the runtime default (or the GOMEMLIMIT environment
	// variable) alone.
	MemoryLimit int64 `yaml:"memory-limit"`
	// TopicDefaults overrides the defaults of topic configs (e.g. retention.ms).
	TopicDefaults map[string]string `yaml:"topic-defaults"`
	// Log configures structured logging.
	Log LogConfig `yaml:"log"`
	// Listeners are the Kafka listeners; empty means one PLAINTEXT
	// listener on KafkaAddr (advertised as AdvertisedAddr). When set,
	// KafkaAddr and AdvertisedAddr are not used.
	Listeners []ListenerConfig `yaml:"listeners"`
	// TLS is the broker certificate for SSL listeners and HTTPS.
	TLS TLSConfig `yaml:"tls"`
	// SASL configures SASL authentication.
	SASL SASLConfig `yaml:"sasl"`
	// Authorization configures ACLs.
	Authorization AuthorizationConfig `yaml:"authorization"`
	// Encryption configures encryption of objects at rest.
	Encryption EncryptionConfig `yaml:"encryption"`
	// ClockOffset is added to this broker's wall clock wherever the broker
	// reads time for the log (entry times, entry keys, timestamps it
	// assigns, the maintainer's time-driven passes). It is fault injection
	// for tests of clock skew between brokers, never a production setting:
	// clocks are kept in step with NTP, not with this.
	ClockOffset time.Duration `yaml:"clock-offset"`
	// Tracing configures OpenTelemetry tracing (tracing.go).
	Tracing TracingConfig `yaml:"tracing"`
	// Governance configures lineage, access requests and the portal
	// (governance.go).
	Governance GovernanceConfig `yaml:"governance"`
}

// MaxClockOffset bounds ClockOffset either way.
const MaxClockOffset = 24 * time.Hour

// EtcdConfig configures the metadata store.
type EtcdConfig struct {
	// Endpoints of an external etcd cluster; empty means run an embedded member.
	Endpoints []string `yaml:"endpoints"`
	// ClientAddr is the embedded member's client host:port.
	ClientAddr string `yaml:"client-addr"`
	// PeerAddr is the embedded member's peer host:port.
	PeerAddr string `yaml:"peer-addr"`
	// Name is the embedded member's name.
	Name string `yaml:"name"`
	// DialTimeout bounds connecting to etcd.
	DialTimeout time.Duration `yaml:"dial-timeout"`
	// LeaseTTL is the broker's membership lease: a broker etcd has not
	// heard from for this long leaves the live set, and a broker that has
	// not reached etcd for this long stops serving (whole seconds, >= 1s).
	LeaseTTL time.Duration `yaml:"lease-ttl"`
}

// FlushConfig configures when the intake buffer is written as an object.
type FlushConfig struct {
	// Bytes flushes the buffer once it holds this many bytes.
	Bytes int64 `yaml:"bytes"`
	// Linger flushes the buffer this long after its first batch arrived.
	Linger time.Duration `yaml:"linger"`
}

// GroupsConfig configures KIP-848 consumer groups.
type GroupsConfig struct {
	// ConsumerHeartbeatInterval is group.consumer.heartbeat.interval.ms:
	// how often members heartbeat.
	ConsumerHeartbeatInterval time.Duration `yaml:"consumer-heartbeat-interval"`
	// ConsumerSessionTimeout is group.consumer.session.timeout.ms: a member
	// silent this long leaves the group.
	ConsumerSessionTimeout time.Duration `yaml:"consumer-session-timeout"`
}

// CacheConfig configures the read cache.
type CacheConfig struct {
	// MemoryBytes caps the memory used for recently flushed and read
	// objects; 0 means the default, 128 MiB.
	MemoryBytes int64 `yaml:"memory-bytes"`
}

// CheckpointConfig configures sequencer checkpoints; whichever limit is
// reached first triggers one.
type CheckpointConfig struct {
	// Interval between checkpoints.
	Interval time.Duration `yaml:"interval"`
	// Entries is the number of intake entries after which a checkpoint is taken.
	Entries int `yaml:"entries"`
}

// ArchiveConfig configures the archiver.
type ArchiveConfig struct {
	// Interval between archiver runs.
	Interval time.Duration `yaml:"interval"`
	// MinBytes of unarchived data in a partition before it is archived.
	MinBytes int64 `yaml:"min-bytes"`
	// MaxAge of unarchived data after which it is archived regardless of size.
	MaxAge time.Duration `yaml:"max-age"`
	// Grace is how long an unreferenced object is kept before deletion.
	Grace time.Duration `yaml:"grace"`
	// MaxUnarchivedBytes caps the data of all partitions not yet archived
	// into segments; past it produce is refused with a retriable error
	// (NOT_ENOUGH_REPLICAS) until archival catches up.
	MaxUnarchivedBytes int64 `yaml:"max-unarchived-bytes"`
}

// LogConfig configures the slog logger.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		BrokerID:     0,
		DataDir:      "./runnel-data",
		KafkaAddr:    "127.0.0.1:9092",
		HTTPAddr:     "127.0.0.1:8080",
		RegistryAddr: "127.0.0.1:8081",
		ClusterID:    "runnel",
		Etcd: EtcdConfig{
			ClientAddr:  "127.0.0.1:2379",
			PeerAddr:    "127.0.0.1:2380",
			Name:        "runnel-0",
			DialTimeout: 5 * time.Second,
			LeaseTTL:    10 * time.Second,
		},
		Flush:             FlushConfig{Bytes: 4 * mib, Linger: 2 * time.Millisecond},
		Groups:            GroupsConfig{ConsumerHeartbeatInterval: 5 * time.Second, ConsumerSessionTimeout: 45 * time.Second},
		Cache:             CacheConfig{MemoryBytes: defaultCacheBytes},
		Checkpoint:        CheckpointConfig{Interval: 30 * time.Second, Entries: 10000},
		Archive:           ArchiveConfig{Interval: time.Second, MinBytes: 2 * mib, MaxAge: 60 * time.Second, Grace: 2 * time.Minute, MaxUnarchivedBytes: 16 << 30},
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		MaxRequestBytes:   100 * mib,
		MemoryLimit:       272 * mib,
		TopicDefaults:     map[string]string{},
		Log:               LogConfig{Level: "info", Format: "text"},
		Tracing:           DefaultTracing(),
		DeadLetters:       DefaultDeadLetters(),
		SASL: SASLConfig{
			FailureDelay:    100 * time.Millisecond,
			SCRAMIterations: 8192,
			OAuthBearer:     OAuthBearerConfig{PrincipalClaim: "sub", JWKSRefresh: time.Hour, ClockSkew: 30 * time.Second},
		},
	}
}

// ErrConfigFile is wrapped by every error Load returns for a bad file.
var ErrConfigFile = errors.New("config: bad configuration file")

// Load returns Default() overlaid with the YAML file at path. Decoding is
// strict: an unknown key or a value of the wrong type is an error naming the
// key. Load does not call Validate.
func Load(path string) (Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: read %s: %w", path, err)
	}
	if err := c.unmarshal(data); err != nil {
		return Default(), fmt.Errorf("%w: %s: %w", ErrConfigFile, path, err)
	}
	return c, nil
}

// Parse is Load for YAML already in memory.
func Parse(data []byte) (Config, error) {
	c := Default()
	if err := c.unmarshal(data); err != nil {
		return Default(), fmt.Errorf("%w: %w", ErrConfigFile, err)
	}
	return c, nil
}

func (c *Config) unmarshal(data []byte) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return err
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil // empty file: all defaults
	}
	doc := root.Content[0]
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil
	}
	if err := checkNode(doc, reflect.TypeOf(*c), ""); err != nil {
		return err
	}
	// Decode the checked node, whose sizes checkNode normalised to integers.
	if err := doc.Decode(c); err != nil {
		return err
	}
	if c.TopicDefaults == nil {
		c.TopicDefaults = map[string]string{}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// checkNode walks a YAML mapping against the struct type t, rejecting
// unknown keys and values that do not decode into their field, and rewriting
// human-readable sizes ("4MiB") of integer fields named *bytes into integers.
func checkNode(n *yaml.Node, t reflect.Type, prefix string) error {
	where := strings.TrimSuffix(prefix, ".")
	if n.Kind != yaml.MappingNode {
		if where == "" {
			return fmt.Errorf("top level must be a mapping (line %d)", n.Line)
		}
		return fmt.Errorf("key %s must be a mapping (line %d)", where, n.Line)
	}
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = f
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		f, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("unknown key %s (line %d)", key, k.Line)
		}
		if seen[k.Value] {
			return fmt.Errorf("duplicate key %s (line %d)", key, k.Line)
		}
		seen[k.Value] = true
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft != durationType {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if err := checkNode(v, ft, key+"."); err != nil {
				return err
			}
			continue
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && v.Kind == yaml.SequenceNode {
			for j, item := range v.Content {
				if err := checkNode(item, ft.Elem(), fmt.Sprintf("%s[%d].", key, j)); err != nil {
					return err
				}
			}
			continue
		}
		if strings.HasSuffix(k.Value, "bytes") && v.Kind == yaml.ScalarNode && isInt(ft.Kind()) {
			if _, err := strconv.ParseInt(v.Value, 10, 64); err != nil {
				size, err := ParseSize(v.Value)
				if err != nil {
					return fmt.Errorf("key %s: %w (line %d)", key, err, v.Line)
				}
				v.Value, v.Tag, v.Style = strconv.FormatInt(size, 10), "!!int", 0
			}
		}
		probe := reflect.New(ft)
		if err := v.Decode(probe.Interface()); err != nil {
			return fmt.Errorf("key %s: cannot use %q as %s (line %d)", key, v.Value, typeName(ft), v.Line)
		}
		if ft.Kind() == reflect.Map {
			for j := 0; j+1 < len(v.Content); j += 2 {
				if v.Content[j+1].Kind != yaml.ScalarNode {
					return fmt.Errorf("key %s.%s must be a scalar (line %d)", key, v.Content[j].Value, v.Content[j].Line)
				}
			}
		}
	}
	return nil
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration (e.g. 5ms, 2m)"
	case isInt(t.Kind()):
		return "an integer"
	case t.Kind() == reflect.Bool:
		return "a boolean"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map:
		return "a mapping"
	}
	return "a " + t.Kind().String()
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "MiB" is not read as "B".
	{"kib", kib}, {"mib", mib}, {"gib", gib}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", kib}, {"m", mib}, {"g", gib}, {"b", 1},
}

// ParseSize parses a byte size: a plain integer, or an integer followed by
// B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB, K, M, G (powers
// of 1024). Units are case-insensitive; spaces between number and unit are
// allowed.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("invalid size %q", s)
			}
			if n > (1<<63-1)/u.mult {
				return 0, fmt.Errorf("size %q overflows", s)
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. 4194304 or 4MiB)", s)
	}
	return n, nil
}

// defaultCacheBytes is the read cache's size when cache.memory-bytes is 0.
const defaultCacheBytes = 128 * mib

// CacheBytes returns the read cache's size with the default resolved.
func (c Config) CacheBytes() int64 {
	if c.Cache.MemoryBytes > 0 {
		return c.Cache.MemoryBytes
	}
	return defaultCacheBytes
}

// RuntimeMemoryLimit returns the Go runtime's soft memory limit the
// configuration asks for, the read cache included; 0 means none.
func (c Config) RuntimeMemoryLimit() int64 {
	if c.MemoryLimit == 0 {
		return 0
	}
	return c.MemoryLimit + c.CacheBytes()
}

// ObjectStoreURL returns the object store URL with the default resolved.
func (c Config) ObjectStoreURL() string {
	if c.ObjectStore != "" {
		return c.ObjectStore
	}
	dir := c.DataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return "file://" + filepath.ToSlash(filepath.Join(dir, "objects"))
}

// Advertised returns the address clients are told to connect to.
func (c Config) Advertised() string {
	if c.AdvertisedAddr != "" {
		return c.AdvertisedAddr
	}
	return c.KafkaAddr
}

// Validate checks every setting; the error names the first bad key.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: "+format, args...))
	}
	if c.BrokerID < 0 {
		bad("broker-id must be >= 0, got %d", c.BrokerID)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data-dir must not be empty")
	}
	checkAddr := func(key, v string, emptyOK bool) {
		if v == "" && emptyOK {
			return
		}
		if err := validHostPort(v); err != nil {
			bad("%s %q: %v", key, v, err)
		}
	}
	checkAddr("kafka-addr", c.KafkaAddr, false)
	checkAddr("advertised-addr", c.AdvertisedAddr, true)
	if c.AdvertisedAddr != "" {
		if host, _, err := net.SplitHostPort(c.AdvertisedAddr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			bad("advertised-addr %q must name a reachable host, not a wildcard", c.AdvertisedAddr)
		}
	}
	checkAddr("http-addr", c.HTTPAddr, false)
	checkAddr("registry-addr", c.RegistryAddr, false)
	if c.RegistryAddr == c.HTTPAddr {
		bad("registry-addr %q must differ from http-addr", c.RegistryAddr)
	}
	if c.ObjectStore != "" {
		if err := validObjectStore(c.ObjectStore); err != nil {
			bad("object-store %q: %v", c.ObjectStore, err)
		}
	}
	if strings.TrimSpace(c.ClusterID) == "" {
		bad("cluster-id must not be empty")
	}
	for i, ep := range c.Etcd.Endpoints {
		if strings.TrimSpace(ep) == "" {
			bad("etcd.endpoints[%d] must not be empty", i)
		}
	}
	if len(c.Etcd.Endpoints) == 0 {
		checkAddr("etcd.client-addr", c.Etcd.ClientAddr, false)
		checkAddr("etcd.peer-addr", c.Etcd.PeerAddr, false)
		if c.Etcd.ClientAddr != "" && c.Etcd.ClientAddr == c.Etcd.PeerAddr {
			bad("etcd.client-addr and etcd.peer-addr must differ, both are %q", c.Etcd.ClientAddr)
		}
		if strings.TrimSpace(c.Etcd.Name) == "" {
			bad("etcd.name must not be empty")
		}
	}
	if c.Etcd.LeaseTTL < time.Second || c.Etcd.LeaseTTL%time.Second != 0 {
		bad("etcd.lease-ttl must be a whole number of seconds >= 1s, got %s", c.Etcd.LeaseTTL)
	}
	if c.Etcd.DialTimeout <= 0 {
		bad("etcd.dial-timeout must be > 0, got %s", c.Etcd.DialTimeout)
	}
	if c.Flush.Bytes <= 0 {
		bad("flush.bytes must be > 0, got %d", c.Flush.Bytes)
	}
	if c.Groups.ConsumerHeartbeatInterval <= 0 {
		bad("groups.consumer-heartbeat-interval must be > 0, got %s", c.Groups.ConsumerHeartbeatInterval)
	}
	if c.Groups.ConsumerSessionTimeout <= c.Groups.ConsumerHeartbeatInterval {
		bad("groups.consumer-session-timeout must be longer than groups.consumer-heartbeat-interval, got %s", c.Groups.ConsumerSessionTimeout)
	}
	if c.Flush.Linger < 0 {
		bad("flush.linger must be >= 0, got %s", c.Flush.Linger)
	}
	if c.Cache.MemoryBytes < 0 {
		bad("cache.memory-bytes must be >= 0, got %d", c.Cache.MemoryBytes)
	}
	if c.Checkpoint.Interval <= 0 {
		bad("checkpoint.interval must be > 0, got %s", c.Checkpoint.Interval)
	}
	if c.Checkpoint.Entries <= 0 {
		bad("checkpoint.entries must be > 0, got %d", c.Checkpoint.Entries)
	}
	if c.Archive.Interval <= 0 {
		bad("archive.interval must be > 0, got %s", c.Archive.Interval)
	}
	if c.Archive.MinBytes <= 0 {
		bad("archive.min-bytes must be > 0, got %d", c.Archive.MinBytes)
	}
	if c.Archive.MaxAge <= 0 {
		bad("archive.max-age must be > 0, got %s", c.Archive.MaxAge)
	}
	if c.Archive.Grace < 0 {
		bad("archive.grace must be >= 0, got %s", c.Archive.Grace)
	}
	if c.Archive.MaxUnarchivedBytes < c.Archive.MinBytes {
		bad("archive.max-unarchived-bytes must be >= archive.min-bytes (%d), got %d", c.Archive.MinBytes, c.Archive.MaxUnarchivedBytes)
	}
	if c.DefaultPartitions < 1 {
		bad("default-partitions must be >= 1, got %d", c.DefaultPartitions)
	}
	if c.MemoryLimit < 0 {
		bad("memory-limit must be >= 0, got %d", c.MemoryLimit)
	}
	if c.MaxRequestBytes <= 0 {
		bad("max-request-bytes must be > 0, got %d", c.MaxRequestBytes)
	}
	for _, k := range sortedKeys(c.TopicDefaults) {
		if err := ValidateTopicConfig(k, c.TopicDefaults[k]); err != nil {
			errs = append(errs, fmt.Errorf("config: topic-defaults.%s: %w", k, err))
		}
	}
	if _, ok := c.TopicDefaults[TopicDeliveryDelay]; ok {
		bad("topic-defaults.%s: a delivery delay is set per topic, never for every topic", TopicDeliveryDelay)
	}
	if c.ClockOffset > MaxClockOffset || c.ClockOffset < -MaxClockOffset {
		bad("clock-offset must be between -%s and %s, got %s", MaxClockOffset, MaxClockOffset, c.ClockOffset)
	}
	c.validateSecurity(bad)
	c.validateTracing(bad)
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.DeadLetters.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Governance.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level must be one of debug, info, warn, error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format must be text or json, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

func validHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port")
	}
	_ = host // empty host means all interfaces, which is valid for a bind address
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be 0..65535")
	}
	return nil
}

// objectStoreSchemes are the URL schemes internal/objstore opens.
var objectStoreSchemes = map[string]bool{"file": true, "mem": true, "s3": true, "gs": true, "azblob": true}

func validObjectStore(v string) error {
	// "fault+<url>" wraps a store with injected errors (a testing and
	// chaos aid); objstore.Open checks its parameters.
	v = strings.TrimPrefix(v, "fault+")
	if !strings.Contains(v, "://") {
		return nil // a plain directory path
	}
	u, err := url.Parse(v)
	if err != nil {
		return err
	}
	if !objectStoreSchemes[u.Scheme] {
		return fmt.Errorf("unsupported scheme %q (want file, mem, s3, gs or azblob)", u.Scheme)
	}
	switch u.Scheme {
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return fmt.Errorf("missing bucket name")
		}
	case "file":
		if u.Path == "" {
			return fmt.Errorf("missing directory")
		}
	}
	return nil
}

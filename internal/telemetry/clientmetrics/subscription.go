package clientmetrics

import (
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The CLIENT_METRICS config names (Kafka's ClientMetricsConfigs).
const (
	ConfigMetrics  = "metrics"
	ConfigInterval = "interval.ms"
	ConfigMatch    = "match"
)

// Match selector names a subscription's match config may use.
const (
	MatchInstanceID      = "client_instance_id"
	MatchClientID        = "client_id"
	MatchSoftwareName    = "client_software_name"
	MatchSoftwareVersion = "client_software_version"
	MatchSourceAddress   = "client_source_address"
	MatchSourcePort      = "client_source_port"
)

// AllMetrics subscribes to every metric.
const AllMetrics = "*"

// Interval bounds and default (Kafka's).
const (
	DefaultInterval = 5 * time.Minute
	MinInterval     = 100 * time.Millisecond
	MaxInterval     = time.Hour
)

// Errors. The front end maps them to Kafka error codes.
var (
	// ErrInvalidRequest: an empty subscription name, an unknown config or
	// an interval out of range (INVALID_REQUEST, as Kafka).
	ErrInvalidRequest = errors.New("clientmetrics: invalid request")
	// ErrInvalidConfig: a malformed config value (INVALID_CONFIG).
	ErrInvalidConfig = errors.New("clientmetrics: invalid config")
	// ErrThrottled: a request before the push interval elapsed, or no room
	// for another client instance (THROTTLING_QUOTA_EXCEEDED).
	ErrThrottled = errors.New("clientmetrics: request before the push interval")
	// ErrUnknownSubscription: the push names a stale subscription id
	// (UNKNOWN_SUBSCRIPTION_ID).
	ErrUnknownSubscription = errors.New("clientmetrics: unknown subscription id")
	// ErrUnsupportedCompression (UNSUPPORTED_COMPRESSION_TYPE).
	ErrUnsupportedCompression = errors.New("clientmetrics: unsupported compression type")
	// ErrTooLarge: the payload, compressed or not, exceeds the max bytes
	// (TELEMETRY_TOO_LARGE).
	ErrTooLarge = errors.New("clientmetrics: telemetry too large")
	// ErrInvalidRecord: the payload does not decompress or decode as OTLP
	// metrics (INVALID_RECORD).
	ErrInvalidRecord = errors.New("clientmetrics: invalid metrics payload")
)

var matchNames = []string{MatchInstanceID, MatchClientID, MatchSoftwareName, MatchSoftwareVersion, MatchSourceAddress, MatchSourcePort}

// Subscription is one CLIENT_METRICS resource.
type Subscription struct {
	Name     string
	Metrics  []string // prefixes; AllMetrics matches every metric
	Interval time.Duration
	// Match holds full-string regexes by selector name; a client matches
	// when every selector matches (an empty Match matches all clients).
	Match map[string]*regexp.Regexp
	// Configs are the resource's configs as set (what DescribeConfigs shows).
	Configs map[string]string
}

// ConfigNames lists the CLIENT_METRICS configs in order.
func ConfigNames() []string { return []string{ConfigInterval, ConfigMatch, ConfigMetrics} }

// DefaultConfig is the value a config takes when unset.
func DefaultConfig(name string) string {
	if name == ConfigInterval {
		return strconv.Itoa(int(DefaultInterval / time.Millisecond))
	}
	return ""
}

// IsListConfig reports whether a config is a comma-separated list.
func IsListConfig(name string) bool { return name == ConfigMetrics || name == ConfigMatch }

// SplitList splits a list config value as Kafka does (commas, trimmed,
// empty entries dropped).
func SplitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// ParseSubscription validates a subscription's configs the way Kafka does.
func ParseSubscription(name string, configs map[string]string) (Subscription, error) {
	if name == "" {
		return Subscription{}, fmt.Errorf("%w: subscription name can't be empty", ErrInvalidRequest)
	}
	s := Subscription{Name: name, Interval: DefaultInterval, Configs: make(map[string]string, len(configs)), Match: map[string]*regexp.Regexp{}}
	for k, v := range configs {
		if !slices.Contains(ConfigNames(), k) {
			return Subscription{}, fmt.Errorf("%w: unknown client metrics configuration: %s", ErrInvalidRequest, k)
		}
		s.Configs[k] = v
	}
	if v, ok := configs[ConfigInterval]; ok {
		ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return Subscription{}, fmt.Errorf("%w: invalid value %q for %s: not an int", ErrInvalidConfig, v, ConfigInterval)
		}
		d := time.Duration(ms) * time.Millisecond
		if d < MinInterval || d > MaxInterval {
			return Subscription{}, fmt.Errorf("%w: invalid value %d for %s, interval must be between 100 and 3600000 (1 hour)", ErrInvalidRequest, ms, ConfigInterval)
		}
		s.Interval = d
	}
	s.Metrics = SplitList(configs[ConfigMetrics])
	for _, p := range SplitList(configs[ConfigMatch]) {
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || strings.Contains(v, "=") || v == "" || !slices.Contains(matchNames, k) {
			return Subscription{}, fmt.Errorf("%w: illegal client matching pattern: %s", ErrInvalidConfig, p)
		}
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil {
			return Subscription{}, fmt.Errorf("%w: illegal client matching pattern: %s", ErrInvalidConfig, p)
		}
		s.Match[k] = re
	}
	return s, nil
}

// matches reports whether every selector of s matches the client.
func (s Subscription) matches(attrs map[string]string) bool {
	for k, re := range s.Match {
		v, ok := attrs[k]
		if !ok || !re.MatchString(v) {
			return false
		}
	}
	return true
}

// plan is what the subscriptions ask of one client.
type plan struct {
	metrics  []string // sorted, deduplicated; [AllMetrics] for all
	interval time.Duration
}

// planFor combines the subscriptions matching a client: the union of their
// metrics and the shortest interval (Kafka's rules).
func planFor(subs []Subscription, attrs map[string]string) plan {
	p := plan{interval: DefaultInterval}
	set := map[string]bool{}
	for _, s := range subs {
		if !s.matches(attrs) {
			continue
		}
		for _, m := range s.Metrics {
			set[m] = true
		}
		p.interval = min(p.interval, s.Interval)
	}
	if set[AllMetrics] {
		p.metrics = []string{AllMetrics}
	} else {
		for m := range set {
			p.metrics = append(p.metrics, m)
		}
		sort.Strings(p.metrics)
	}
	return p
}

// subscriptionID identifies a plan for one instance: a CRC32C of the
// metrics and interval XORed with a hash of the instance id, so it changes
// whenever what the client is asked for changes.
func subscriptionID(p plan, instance [16]byte) int32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	fmt.Fprintf(h, "%v%d", p.metrics, p.interval.Milliseconds())
	return int32(h.Sum32() ^ crc32.ChecksumIEEE(instance[:]))
}

// requested is the RequestedMetrics list of a grant: KIP-714 spells "all"
// as a single empty string.
func (p plan) requested() []string {
	if len(p.metrics) == 1 && p.metrics[0] == AllMetrics {
		return []string{""}
	}
	return slices.Clone(p.metrics)
}

// wants reports whether the plan subscribes to an OTLP metric name.
func (p plan) wants(name string) bool {
	for _, m := range p.metrics {
		if m == AllMetrics || strings.HasPrefix(name, m) {
			return true
		}
	}
	return false
}

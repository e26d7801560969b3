package clientmetrics

import (
	"crypto/rand"
	"fmt"
	"sort"
	"sync"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// Compression type ids (Kafka's CompressionType).
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

// acceptedCompression is what grants offer, in Kafka's order of preference.
var acceptedCompression = []int8{CompressionZstd, CompressionLZ4, CompressionGzip, CompressionSnappy}

// DefaultMaxBytes is telemetry.max.bytes's default.
const DefaultMaxBytes = 1 << 20

// DefaultMaxInstances bounds the instance table.
const DefaultMaxInstances = 10000

// DefaultMaxSeries bounds the re-exported series.
const DefaultMaxSeries = 100000

// Options configure a Manager.
type Options struct {
	// MaxBytes bounds a push's payload; decompressed it may be 16 times
	// that (DefaultMaxBytes when <= 0).
	MaxBytes int32
	// MaxInstances bounds the client instances tracked
	// (DefaultMaxInstances when <= 0).
	MaxInstances int
	// MaxSeries bounds the series re-exported over all instances
	// (DefaultMaxSeries when <= 0).
	MaxSeries int
	// EvictSlack is added to twice the push interval before a silent
	// client's series are dropped (one second when <= 0).
	EvictSlack time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Sink, when set, receives the metrics of every accepted push.
	Sink Sink
}

// Sink receives the decoded metrics of every accepted push, with the
// client that pushed them. Forward is called outside the Manager's lock,
// must not block (PushTelemetry waits for it) and owns md from then on.
type Sink interface {
	Forward(c Client, md *metricspb.MetricsData)
}

// Client is who sends a telemetry request.
type Client struct {
	InstanceID      [16]byte
	ClientID        string
	SoftwareName    string
	SoftwareVersion string
	SourceAddress   string
	SourcePort      string
	Principal       string
}

// Grant answers GetTelemetrySubscriptions.
type Grant struct {
	InstanceID     [16]byte
	SubscriptionID int32
	Compression    []int8
	Interval       time.Duration
	MaxBytes       int32
	Delta          bool
	Requested      []string
}

// Push is one PushTelemetry request.
type Push struct {
	SubscriptionID int32
	Terminating    bool
	Compression    int8
	Metrics        []byte
}

// instance is one client instance's state.
type instance struct {
	meta      Client
	version   uint64 // subscription version its plan was computed at
	plan      plan
	subID     int32
	lastGet   time.Time
	lastPush  time.Time
	seen      time.Time // last request of any kind
	lastErr   error
	terminate bool
	series    map[seriesKey]*point
}

// Manager is the broker's KIP-714 state. It is safe for concurrent use.
type Manager struct {
	opts Options

	mu      sync.Mutex
	subs    []Subscription // sorted by name
	version uint64         // bumped by SetSubscriptions
	inst    map[[16]byte]*instance
	nseries int // series held by all instances
	stats   stats
}

// New builds a Manager.
func New(opts Options) *Manager {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxInstances <= 0 {
		opts.MaxInstances = DefaultMaxInstances
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	if opts.EvictSlack <= 0 {
		opts.EvictSlack = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{opts: opts, inst: make(map[[16]byte]*instance)}
}

// SetSubscriptions replaces the subscriptions; instances recompute their
// plan on their next request.
func (m *Manager) SetSubscriptions(subs []Subscription) {
	subs = append([]Subscription(nil), subs...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	m.mu.Lock()
	m.subs = subs
	m.version++
	m.mu.Unlock()
}

// Subscriptions returns the current subscriptions sorted by name.
func (m *Manager) Subscriptions() []Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Subscription(nil), m.subs...)
}

func attrsOf(c Client) map[string]string {
	return map[string]string{
		MatchInstanceID:      uuidString(c.InstanceID),
		MatchClientID:        c.ClientID,
		MatchSoftwareName:    c.SoftwareName,
		MatchSoftwareVersion: c.SoftwareVersion,
		MatchSourceAddress:   c.SourceAddress,
		MatchSourcePort:      c.SourcePort,
	}
}

// uuidString spells an instance id as Kafka's Uuid.toString does
// (URL-safe base64 without padding).
func uuidString(id [16]byte) string { return base64URL.EncodeToString(id[:]) }

// lookup returns the instance for c (c.InstanceID must be set), creating
// it or recomputing its plan after a subscription change. Callers hold mu.
func (m *Manager) lookup(c Client, now time.Time) (*instance, error) {
	in, ok := m.inst[c.InstanceID]
	if !ok {
		if len(m.inst) >= m.opts.MaxInstances {
			m.expire(now)
		}
		if len(m.inst) >= m.opts.MaxInstances {
			m.stats.dropped++
			return nil, fmt.Errorf("%w: tracking the maximum of %d client instances", ErrThrottled, m.opts.MaxInstances)
		}
		in = &instance{meta: c, series: map[seriesKey]*point{}}
		in.version = m.version - 1 // forces the plan below
		m.inst[c.InstanceID] = in
	}
	if in.version != m.version || !ok {
		in.plan = planFor(m.subs, attrsOf(in.meta))
		id := subscriptionID(in.plan, c.InstanceID)
		if ok && id != in.subID {
			// What the client is asked for changed: it may ask again
			// at once (as Kafka, which makes a new instance then).
			in.lastGet, in.lastPush = time.Time{}, time.Time{}
		}
		in.subID, in.version = id, m.version
	}
	in.seen = now
	return in, nil
}

// expire forgets instances silent for max(60s, 3 × interval) (Kafka's
// cache expiry). Callers hold mu.
func (m *Manager) expire(now time.Time) {
	for id, in := range m.inst {
		if now.Sub(in.seen) > max(time.Minute, 3*in.plan.interval) {
			m.nseries -= len(in.series)
			delete(m.inst, id)
		}
	}
}

// Subscribe answers GetTelemetrySubscriptions. A zero instance id gets a
// new one.
func (m *Manager) Subscribe(c Client) (Grant, error) {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	fresh := c.InstanceID == [16]byte{}
	for c.InstanceID == [16]byte{} || fresh && m.inst[c.InstanceID] != nil {
		_, _ = rand.Read(c.InstanceID[:])
	}
	in, err := m.lookup(c, now)
	if err != nil {
		return Grant{}, err
	}
	last := in.lastGet
	if in.lastPush.After(last) {
		last = in.lastPush
	}
	early := !last.IsZero() && now.Sub(last) < in.plan.interval
	if early && !errorsIs(in.lastErr, ErrUnknownSubscription, ErrUnsupportedCompression) {
		return Grant{}, fmt.Errorf("%w: GetTelemetrySubscriptions from %s before the push interval", ErrThrottled, uuidString(c.InstanceID))
	}
	in.lastGet, in.lastErr = now, nil
	return Grant{
		InstanceID:     c.InstanceID,
		SubscriptionID: in.subID,
		Compression:    append([]int8(nil), acceptedCompression...),
		Interval:       in.plan.interval,
		MaxBytes:       m.opts.MaxBytes,
		Delta:          true,
		Requested:      in.plan.requested(),
	}, nil
}

// Push answers PushTelemetry: it validates the push in Kafka's order,
// decodes the payload and records its metrics.
func (m *Manager) Push(c Client, p Push) error {
	if c.InstanceID == [16]byte{} {
		return fmt.Errorf("%w: invalid client instance id", ErrInvalidRequest)
	}
	now := m.opts.Now()
	m.mu.Lock()
	in, err := m.lookup(c, now)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	err = m.admit(in, p, now)
	in.terminate = in.terminate || p.Terminating
	if err != nil {
		in.lastErr = err
		m.stats.count(err)
		m.mu.Unlock()
		return err
	}
	pl := in.plan
	m.mu.Unlock()

	// Decode outside the lock: it is the expensive part.
	var (
		pts []sample
		md  *metricspb.MetricsData
	)
	if len(p.Metrics) > 0 {
		pts, md, err = decode(p.Compression, p.Metrics, int(m.opts.MaxBytes), pl)
	}
	m.mu.Lock()
	in.lastErr = err
	m.stats.count(err)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	in.meta.Principal = c.Principal
	if m.inst[c.InstanceID] == in { // not expired while decoding
		m.record(in, pts)
	}
	m.mu.Unlock()
	if md != nil && m.opts.Sink != nil {
		m.opts.Sink.Forward(c, md)
	}
	return nil
}

// admit checks a push against the instance (Kafka's order). Callers hold mu.
func (m *Manager) admit(in *instance, p Push, now time.Time) error {
	id := uuidString(in.meta.InstanceID)
	if in.terminate {
		return fmt.Errorf("%w: client %s already sent a terminating push", ErrInvalidRequest, id)
	}
	// The first push after a GetTelemetrySubscriptions is always on time:
	// clients jitter it between 0.5 and 1.5 intervals.
	onTime := in.lastGet.After(in.lastPush) || now.Sub(in.lastPush) >= in.plan.interval
	if !onTime && !p.Terminating {
		return fmt.Errorf("%w: push from %s before the push interval", ErrThrottled, id)
	}
	in.lastPush = now
	if p.SubscriptionID != in.subID {
		return fmt.Errorf("%w: for client %s", ErrUnknownSubscription, id)
	}
	if p.Compression < CompressionNone || p.Compression > CompressionZstd {
		return fmt.Errorf("%w: %d from %s", ErrUnsupportedCompression, p.Compression, id)
	}
	if len(p.Metrics) > int(m.opts.MaxBytes) {
		return fmt.Errorf("%w: %d bytes from %s, the maximum is %d", ErrTooLarge, len(p.Metrics), id, m.opts.MaxBytes)
	}
	return nil
}

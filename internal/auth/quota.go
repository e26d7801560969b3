package auth

// Client quotas, as Kafka defines them (KIP-13, KIP-55, KIP-124, KIP-219,
// KIP-546, KIP-599).
//
// An entity is a user, a client id, or both, each part a name or the
// default (<default>). A client (user u, client id c) is held to the first
// of these that sets the quota, per quota key (Kafka's precedence):
//
//	1. /config/users/u/clients/c
//	2. /config/users/u/clients/<default>
//	3. /config/users/u
//	4. /config/users/<default>/clients/c
//	5. /config/users/<default>/clients/<default>
//	6. /config/users/<default>
//	7. /config/clients/c
//	8. /config/clients/<default>
//
// The level that matched decides what is measured together: a quota on
// user u alone (levels 3 and 6) is shared by all of u's client ids, one on
// a client id alone (7, 8) by every user of that client id, and the others
// are per (user, client id). Defaults give each user or client its own
// allowance; they are not one shared pool.
//
// Rates are Kafka's: a sampled rate over Samples windows of Window (11 ×
// 1 s by default), the elapsed time padded to Samples-1 windows while the
// sensor is young, so a new client may burst up to about quota ×
// (Samples-1) × Window before it is throttled, as in Kafka. A request that
// takes the rate over the quota earns a throttle of
// (observed − quota) / quota × window, the time without traffic that brings
// the rate back to the quota; it is capped at one Window for
// request_percentage, as Kafka caps it, and left unbounded for the byte
// rates, as Kafka leaves it (how long the front end mutes a connection is
// its own bound). A fetch is bounded by MaxInWindow, so one response
// cannot run far past the quota.
// controller_mutation_rate is a token bucket (KIP-599) of burst
// quota × Samples × Window partitions; the throttle is the time to refill
// it to zero.
//
// Across brokers: a client usually talks to several brokers, and Kafka
// enforces quotas per broker. Runnel enforces them for the whole cluster:
// once a PublishInterval (1 s) every broker writes the current rate of each
// of its active entities (those with a quota and traffic in the window) to
// one lease-bound key of its own, "<prefix>/security/quota-usage/<broker>",
// and every broker throttles on its own rate plus the last rate each other
// broker published. The error is the publication lag: a rate change on
// another broker is seen about one PublishInterval (plus the watch's
// latency) late, so a client that suddenly spreads load over n brokers can
// exceed its quota by at most about quota × PublishInterval per other broker
// before every broker sees it; in a steady state the cluster-wide rate stays
// within a few percent of the quota. A broker that stops publishing for
// three intervals is ignored. etcd traffic is bounded: at most one put per
// broker per interval, only while it has active entities, of at most 4096
// of them (those nearest their quota), and one delete when it has none
// left. controller_mutation_rate is enforced per broker:
// admin clients send topic mutations to the controller.

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// QuotaKey names a client quota, as Kafka's configs do.
type QuotaKey string

// The client quota keys.
const (
	// ProducerByteRate is the produce request bytes per second.
	ProducerByteRate QuotaKey = "producer_byte_rate"
	// ConsumerByteRate is the fetch response bytes per second.
	ConsumerByteRate QuotaKey = "consumer_byte_rate"
	// RequestPercentage is the request handling time, in percent of one
	// thread (200 is two threads' worth).
	RequestPercentage QuotaKey = "request_percentage"
	// ControllerMutationRate is the partitions created or deleted per
	// second (CreateTopics, CreatePartitions, DeleteTopics).
	ControllerMutationRate QuotaKey = "controller_mutation_rate"
)

// QuotaKeys lists the quota keys in a stable order.
var QuotaKeys = []QuotaKey{ProducerByteRate, ConsumerByteRate, RequestPercentage, ControllerMutationRate}

// integral reports whether a quota key takes whole numbers (Kafka's LONG
// configs); the others are doubles.
func (k QuotaKey) integral() bool { return k == ProducerByteRate || k == ConsumerByteRate }

func (k QuotaKey) valid() bool {
	for _, q := range QuotaKeys {
		if k == q {
			return true
		}
	}
	return false
}

// The entity types on the wire.
const (
	QuotaEntityUser     = "user"
	QuotaEntityClientID = "client-id"
	// QuotaEntityIP is Kafka's per-address connection quota entity; Runnel
	// does not serve connection_creation_rate, so no ip quota can be set.
	QuotaEntityIP = "ip"
)

// ErrInvalidQuota means a quota entity, filter, key or value is not valid
// (Kafka answers INVALID_REQUEST).
var ErrInvalidQuota = errors.New("auth: invalid quota")

// ErrUnsupportedQuotaEntity means a describe filter names an entity type
// Kafka does not know (Kafka answers UNSUPPORTED_VERSION).
var ErrUnsupportedQuotaEntity = errors.New("auth: unsupported quota entity type")

// QuotaEntity is what a quota applies to: a user, a client id, or both.
// A part is present when its name is set or its Default flag is.
type QuotaEntity struct {
	User            string
	UserDefault     bool
	ClientID        string
	ClientIDDefault bool
}

// HasUser reports whether the entity has a user part.
func (e QuotaEntity) HasUser() bool { return e.User != "" || e.UserDefault }

// HasClientID reports whether the entity has a client-id part.
func (e QuotaEntity) HasClientID() bool { return e.ClientID != "" || e.ClientIDDefault }

// QuotaComponent is one part of an entity as Kafka's APIs carry it; a nil
// Name is the default.
type QuotaComponent struct {
	Type string
	Name *string
}

// Components returns the entity's parts, user first.
func (e QuotaEntity) Components() []QuotaComponent {
	var out []QuotaComponent
	if e.HasUser() {
		out = append(out, QuotaComponent{Type: QuotaEntityUser, Name: namePtr(e.User, e.UserDefault)})
	}
	if e.HasClientID() {
		out = append(out, QuotaComponent{Type: QuotaEntityClientID, Name: namePtr(e.ClientID, e.ClientIDDefault)})
	}
	return out
}

func namePtr(name string, def bool) *string {
	if def {
		return nil
	}
	return &name
}

// String is the entity in kafka-configs' notation, "user=alice,
// client-id=<default>".
func (e QuotaEntity) String() string {
	var parts []string
	for _, c := range e.Components() {
		n := "<default>"
		if c.Name != nil {
			n = *c.Name
		}
		parts = append(parts, c.Type+"="+n)
	}
	return strings.Join(parts, ", ")
}

// ParseQuotaEntity checks an entity as a client sent it, with Kafka's
// messages: not empty, no type twice, known types, no empty names, ip never
// with user or client-id. Errors wrap ErrInvalidQuota.
func ParseQuotaEntity(cs []QuotaComponent) (QuotaEntity, error) {
	var e QuotaEntity
	if len(cs) == 0 {
		return e, fmt.Errorf("%w: Invalid empty client quota entity", ErrInvalidQuota)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.Type] {
			return e, fmt.Errorf("%w: Invalid client quota entity, duplicate entity entry %s", ErrInvalidQuota, c.Type)
		}
		seen[c.Type] = true
		if c.Name != nil && *c.Name == "" {
			return e, fmt.Errorf("%w: Empty %s not supported", ErrInvalidQuota, c.Type)
		}
		switch c.Type {
		case QuotaEntityUser:
			if c.Name == nil {
				e.UserDefault = true
			} else {
				e.User = *c.Name
			}
		case QuotaEntityClientID:
			if c.Name == nil {
				e.ClientIDDefault = true
			} else {
				e.ClientID = *c.Name
			}
		case QuotaEntityIP:
		default:
			return e, fmt.Errorf("%w: Unhandled client quota entity type: %s", ErrInvalidQuota, c.Type)
		}
	}
	if seen[QuotaEntityIP] {
		if e.HasUser() || e.HasClientID() {
			return e, fmt.Errorf("%w: Invalid quota entity combination, IP entity should not be combined with User or ClientId", ErrInvalidQuota)
		}
		return e, fmt.Errorf("%w: ip quotas (connection_creation_rate) are not supported", ErrInvalidQuota)
	}
	return e, nil
}

// ValidateQuotaValue checks a value to set, with Kafka's messages: a known
// key, greater than zero, whole for the byte rates. Errors wrap
// ErrInvalidQuota.
func ValidateQuotaValue(key string, v float64) error {
	k := QuotaKey(key)
	if !k.valid() {
		return fmt.Errorf("%w: Invalid configuration key %s", ErrInvalidQuota, key)
	}
	if math.IsNaN(v) || v <= 0 {
		return fmt.Errorf("%w: Quota %s must be greater than 0", ErrInvalidQuota, key)
	}
	if k.integral() {
		if v > math.MaxInt64 || math.IsInf(v, 1) {
			return fmt.Errorf("%w: Proposed value for %s is too large for a LONG.", ErrInvalidQuota, key)
		}
		if math.Abs(math.Mod(v, 1)) > 1e-6 {
			return fmt.Errorf("%w: %s cannot be a fractional value.", ErrInvalidQuota, key)
		}
	} else if math.IsInf(v, 1) {
		return fmt.Errorf("%w: Quota %s must be finite", ErrInvalidQuota, key)
	}
	return nil
}

// QuotaMatch is how a describe filter component matches an entity part
// (Kafka's match types).
type QuotaMatch int8

// The match types.
const (
	QuotaMatchExact   QuotaMatch = 0 // the part has this name
	QuotaMatchDefault QuotaMatch = 1 // the part is the default
	QuotaMatchAny     QuotaMatch = 2 // the part is present, named or default
)

// QuotaFilterComponent is one component of a describe filter.
type QuotaFilterComponent struct {
	Type  string
	Match QuotaMatch
	Name  *string // for QuotaMatchExact; nil matches the default
}

// QuotaFilter selects entities to describe. Without Strict an entity may
// have parts the filter does not name; with Strict it may not.
type QuotaFilter struct {
	Components []QuotaFilterComponent
	Strict     bool
}

type partFilter struct {
	any     bool
	def     bool
	name    string
	present bool // the filter names this type
}

// compile checks the filter as Kafka does and returns a matcher.
func (f QuotaFilter) compile() (func(QuotaEntity) bool, error) {
	var user, client partFilter
	ip := false
	seen := map[string]bool{}
	for _, c := range f.Components {
		if c.Type == "" {
			return nil, fmt.Errorf("%w: Invalid empty entity type.", ErrInvalidQuota)
		}
		if seen[c.Type] {
			return nil, fmt.Errorf("%w: Entity type %s cannot appear more than once in the filter.", ErrInvalidQuota, c.Type)
		}
		seen[c.Type] = true
		var p partFilter
		switch c.Match {
		case QuotaMatchExact:
			if c.Name == nil {
				p.def = true
			} else {
				p.name = *c.Name
			}
		case QuotaMatchDefault:
			p.def = true
		case QuotaMatchAny:
			p.any = true
		default:
			return nil, fmt.Errorf("%w: Unexpected match type: %d", ErrInvalidQuota, c.Match)
		}
		p.present = true
		switch c.Type {
		case QuotaEntityUser:
			user = p
		case QuotaEntityClientID:
			client = p
		case QuotaEntityIP:
			ip = true
		default:
			return nil, fmt.Errorf("%w: Unsupported entity type %s", ErrUnsupportedQuotaEntity, c.Type)
		}
	}
	if ip && (user.present || client.present) {
		return nil, fmt.Errorf("%w: Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.", ErrInvalidQuota)
	}
	if ip {
		return func(QuotaEntity) bool { return false }, nil // no ip quotas exist
	}
	part := func(p partFilter, has bool, name string, def bool) bool {
		switch {
		case !p.present:
			return !f.Strict || !has
		case !has:
			return false
		case p.any:
			return true
		case p.def:
			return def
		default:
			return !def && name == p.name
		}
	}
	return func(e QuotaEntity) bool {
		return part(user, e.HasUser(), e.User, e.UserDefault) && part(client, e.HasClientID(), e.ClientID, e.ClientIDDefault)
	}, nil
}

// QuotaEntry is an entity with its quotas.
type QuotaEntry struct {
	Entity QuotaEntity
	Values map[QuotaKey]float64
}

// QuotaOp sets (or with Remove, removes) one quota of an entity.
type QuotaOp struct {
	Key    string
	Value  float64
	Remove bool
}

// QuotaAlteration is the changes to one entity's quotas.
type QuotaAlteration struct {
	Entity []QuotaComponent
	Ops    []QuotaOp
}

// apply checks ops and returns the entity's quotas after them.
func applyOps(cur map[QuotaKey]float64, ops []QuotaOp) (map[QuotaKey]float64, error) {
	next := make(map[QuotaKey]float64, len(cur)+len(ops))
	for k, v := range cur {
		next[k] = v
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Key] {
			return nil, fmt.Errorf("%w: Duplicate quota key %s", ErrInvalidQuota, op.Key)
		}
		seen[op.Key] = true
		if op.Remove {
			delete(next, QuotaKey(op.Key)) // removing an unset or unknown key is accepted, as in Kafka
			continue
		}
		if err := ValidateQuotaValue(op.Key, op.Value); err != nil {
			return nil, err
		}
		next[QuotaKey(op.Key)] = op.Value
	}
	return next, nil
}

// quotaConfigs is one immutable snapshot of every entity's quotas.
type quotaConfigs map[QuotaEntity]map[QuotaKey]float64

// usageKey names a rate measured together: the quota key and the tags of
// the precedence level that matched (see the package comment).
type usageKey struct {
	Key      QuotaKey `json:"k"`
	User     string   `json:"u,omitempty"`
	ClientID string   `json:"c,omitempty"`
}

// resolve finds the quota of key for (user, clientID) in Kafka's precedence
// order and the usage key its rate is measured under.
func (qc quotaConfigs) resolve(key QuotaKey, user, clientID string) (float64, usageKey, bool) {
	if len(qc) == 0 { // no quotas at all: every request's fast path
		return 0, usageKey{}, false
	}
	named, hasClient := user != "", clientID != ""
	levels := [...]struct {
		ok                 bool // the level can exist for this client
		e                  QuotaEntity
		tagUser, tagClient bool
	}{
		{named && hasClient, QuotaEntity{User: user, ClientID: clientID}, true, true},
		{named, QuotaEntity{User: user, ClientIDDefault: true}, true, true},
		{named, QuotaEntity{User: user}, true, false},
		{hasClient, QuotaEntity{UserDefault: true, ClientID: clientID}, true, true},
		{true, QuotaEntity{UserDefault: true, ClientIDDefault: true}, true, true},
		{true, QuotaEntity{UserDefault: true}, true, false},
		{hasClient, QuotaEntity{ClientID: clientID}, false, true},
		{true, QuotaEntity{ClientIDDefault: true}, false, true},
	}
	for _, l := range levels {
		if !l.ok {
			continue
		}
		if v, ok := qc[l.e][key]; ok {
			u := usageKey{Key: key}
			if l.tagUser {
				u.User = user
			}
			if l.tagClient {
				u.ClientID = clientID
			}
			return v, u, true
		}
	}
	return 0, usageKey{}, false
}

// matching returns the entries a filter selects, sorted by entity.
func (qc quotaConfigs) matching(match func(QuotaEntity) bool) []QuotaEntry {
	var out []QuotaEntry
	for e, vs := range qc {
		if !match(e) {
			continue
		}
		cp := make(map[QuotaKey]float64, len(vs))
		for k, v := range vs {
			cp[k] = v
		}
		out = append(out, QuotaEntry{Entity: e, Values: cp})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Entity.String() < out[j].Entity.String() })
	return out
}

// sampledRate is Kafka's Rate over a SampledStat: samples windows, each
// started by the first record after the previous one ended, expiring
// samples × window after they started.
type sampledRate struct {
	samples []rateSample
	cur     int
}

type rateSample struct {
	start time.Time
	value float64
}

func (r *sampledRate) record(v float64, now time.Time, window time.Duration, n int) {
	r.purge(now, window, n)
	switch {
	case len(r.samples) == 0:
		r.samples = append(r.samples, rateSample{start: now})
		r.cur = 0
	case now.Sub(r.samples[r.cur].start) >= window:
		r.cur = (r.cur + 1) % n
		if r.cur >= len(r.samples) {
			r.samples = append(r.samples, rateSample{start: now})
		} else {
			r.samples[r.cur] = rateSample{start: now}
		}
	}
	r.samples[r.cur].value += v
}

// purge resets samples older than the whole window, as Kafka does.
func (r *sampledRate) purge(now time.Time, window time.Duration, n int) {
	expire := window * time.Duration(n)
	for i := range r.samples {
		if now.Sub(r.samples[i].start) >= expire {
			r.samples[i] = rateSample{start: now}
		}
	}
}

// measure returns the rate per second and the window it was measured over
// (the elapsed time since the oldest sample, padded to n-1 windows).
func (r *sampledRate) measure(now time.Time, window time.Duration, n int) (float64, time.Duration) {
	r.purge(now, window, n)
	if len(r.samples) == 0 {
		return 0, window * time.Duration(n-1)
	}
	total := 0.0
	oldest := r.samples[0].start
	for _, s := range r.samples {
		total += s.value
		if s.start.Before(oldest) {
			oldest = s.start
		}
	}
	elapsed := now.Sub(oldest)
	if full := int(elapsed / window); full < n-1 {
		elapsed += time.Duration(n-1-full) * window
	}
	return total / elapsed.Seconds(), elapsed
}

// throttleFor is Kafka's throttle time: the time without traffic that
// brings the observed rate back to the quota over the measured window,
// capped at limit.
func throttleFor(observed, quota float64, window, limit time.Duration) time.Duration {
	if observed <= quota || quota <= 0 {
		return 0
	}
	t := time.Duration((observed - quota) / quota * float64(window))
	t = t.Round(time.Millisecond)
	if t > limit {
		t = limit
	}
	return t
}

// tokenBucket is Kafka's TokenBucket (KIP-599): it starts full at burst,
// refills at rate per second, and records take tokens, possibly below
// zero.
type tokenBucket struct {
	tokens      float64
	last        time.Time
	rate, burst float64 // of the last refill
}

// full reports whether the bucket has refilled to its burst by now, so
// forgetting it loses nothing.
func (b *tokenBucket) full(now time.Time) bool {
	return b.tokens+b.rate*now.Sub(b.last).Seconds() >= b.burst
}

func (b *tokenBucket) refill(now time.Time, rate, burst float64) {
	b.rate, b.burst = rate, burst
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(burst, b.tokens+rate*d.Seconds())
	}
	b.last = now
}

// throttle is the time until the bucket is back to zero tokens.
func (b *tokenBucket) throttle(rate float64) time.Duration {
	if b.tokens >= 0 || rate <= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second)).Round(time.Millisecond)
}

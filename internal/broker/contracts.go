package broker

// Broker-side enforcement of data contracts (schema registry validation),
// for topics with confluent.key.schema.validation or
// confluent.value.schema.validation set, as Confluent Server does.
//
// For each record, the key and/or value must:
//   - be in the registry's wire format: magic byte 0, then a 4-byte schema
//     id (big endian), then the payload;
//   - carry an id registered (and not deleted) under the subject the topic's
//     subject name strategy gives: <topic>-key / <topic>-value
//     (TopicNameStrategy), the record's name (RecordNameStrategy) or
//     <topic>-<record name> (TopicRecordNameStrategy);
//   - decode fully against that schema;
//   - pass the domain rules of the schema's data contract (CEL and
//     CEL_FIELD, mode WRITE or WRITEREAD), evaluated with
//     internal/registry/rules. TRANSFORM rules are evaluated for their
//     errors only; records are stored as sent.
//
// What happens to a failing record: for a schema failure, the topic's
// schema.validation.failure.action; for a rule, the rule's onFailure
// (NONE lets the record through). ERROR makes the batch fail with
// INVALID_RECORD and one KIP-467 record error per failing record, and
// nothing of the batch is written. DLQ sends the record, unchanged and with
// headers saying why, to the dead-letter topic (the rule's dlq.topic
// param, else schema.validation.dlq.topic, else <topic>-dlq) and stores the
// rest of the batch (internal/stream/dlq.go says what the producer sees).
// If any record of a batch fails with ERROR, the whole batch fails.
//
// A null value (a tombstone) passes value validation: it carries no schema.
// A null key fails key validation.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/rules"
	"github.com/runnel-dev/runnel/internal/stream"
)

// contractCacheTTL bounds how long a schema id's subject usages are
// trusted: a version deleted from a subject stops validating within it.
// Schemas themselves never change under an id.
const contractCacheTTL = 5 * time.Second

// registryLookupTimeout bounds the registry reads and rule evaluations of
// one produced batch.
const registryLookupTimeout = 5 * time.Second

// contracts implements stream.ContractChecker on the schema registry.
type contracts struct {
	reg   *registry.Registry
	rules *rules.Engine
	now   func() time.Time
	// lookupTimeout bounds one batch's registry reads and rule
	// evaluations (registryLookupTimeout; tests shorten it).
	lookupTimeout time.Duration

	mu    sync.Mutex
	cache map[int]cachedSchema
}

type cachedSchema struct {
	schema  registry.Schema
	info    registry.SchemaInfo
	err     error
	fetched time.Time
}

func newContracts(reg *registry.Registry, eng *rules.Engine) *contracts {
	return &contracts{reg: reg, rules: eng, now: time.Now, lookupTimeout: registryLookupTimeout, cache: map[int]cachedSchema{}}
}

var _ stream.ContractChecker = (*contracts)(nil)

// CheckRecords validates the keys and/or values of a batch's records. ctx
// is the produce request's; the lookups end with it.
func (c *contracts) CheckRecords(ctx context.Context, topic string, tc config.Topic, recs []stream.ContractRecord) []stream.ContractVerdict {
	dlq := tc.SchemaDLQTopic
	if dlq == "" {
		dlq = topic + "-dlq"
	}
	// One deadline bounds the registry reads and rule evaluations of the
	// whole batch, and the request's own deadline or cancellation ends
	// them sooner. Only the request's end stops the loop (the engine then
	// answers the batch ErrTimeout); past the batch's own deadline the
	// remaining records still get verdicts, failed lookups, so none is
	// accepted unchecked.
	request := ctx
	ctx, cancel := context.WithTimeout(ctx, c.lookupTimeout)
	defer cancel()
	var out []stream.ContractVerdict
	for i, r := range recs {
		if request.Err() != nil {
			break
		}
		var vd *stream.ContractVerdict
		if tc.KeySchemaValidation {
			vd = c.check(ctx, topic, "key", tc.KeySubjectStrategy, r.Key, r.NullKey)
		}
		if vd == nil && tc.ValueSchemaValidation && !r.NullValue {
			vd = c.check(ctx, topic, "value", tc.ValueSubjectStrategy, r.Value, false)
		}
		if vd == nil {
			continue
		}
		vd.Index = int32(i)
		switch {
		case vd.Rule == "" && tc.SchemaFailureDLQ:
			vd.DLQTopic = dlq
		case vd.DLQTopic == topicDefaultDLQ:
			vd.DLQTopic = dlq
		}
		out = append(out, *vd)
	}
	return out
}

// topicDefaultDLQ stands, in a verdict, for the topic's own dead-letter
// topic (a name no topic can have).
const topicDefaultDLQ = "\x00topic-default"

// check validates one key or value and returns why it fails, or nil. A
// rule failure with the DLQ action names its dead-letter topic
// (topicDefaultDLQ when the rule names none).
func (c *contracts) check(ctx context.Context, topic, part, strategy string, b []byte, null bool) *stream.ContractVerdict {
	fail := func(format string, args ...any) *stream.ContractVerdict {
		return &stream.ContractVerdict{Message: fmt.Sprintf(format, args...)}
	}
	if null {
		return fail("the %s is null but topic %q requires %s schema validation", part, topic, part)
	}
	if len(b) < 5 || b[0] != 0 {
		return fail("the %s is not in the schema registry wire format (magic byte 0 and a 4-byte schema id)", part)
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	payload := b[5:]
	s, info, err := c.lookup(ctx, id)
	if errors.Is(err, registry.ErrSchemaNotFound) {
		return fail("the %s's schema id %d is not registered", part, id)
	}
	if err != nil {
		return fail("the %s's schema id %d could not be looked up: %v", part, id, err)
	}
	subject, err := subjectFor(topic, part, strategy, s, payload)
	if err != nil {
		return fail("the %s's subject cannot be named (%s): %v", part, strategy, err)
	}
	version := 0
	for _, u := range info.Usages {
		if u.Subject == subject && !u.Deleted {
			version = u.Version
		}
	}
	if version == 0 {
		return fail("the %s's schema id %d is not registered under subject %q", part, id, subject)
	}
	value, err := s.Decode(payload)
	if err != nil {
		vd := fail("the %s does not match schema id %d (%s version %d): %v", part, id, subject, version, err)
		vd.Subject = subject
		return vd
	}
	if info.RuleSet == nil || len(info.RuleSet.DomainRules) == 0 {
		return nil
	}
	res, err := c.rules.Check(ctx, info.RuleSet, info.Metadata, rules.ModeWrite, value, nil)
	if err != nil {
		vd := fail("the %s's data contract (%s version %d) could not be evaluated: %v", part, subject, version, err)
		vd.Subject = subject
		return vd
	}
	o, failed := res.Failure()
	if !failed {
		return nil
	}
	where := ""
	if o.Field != "" {
		where = " on field " + o.Field
	}
	vd := fail("the %s failed rule %q of %s version %d%s: %s", part, o.Rule, subject, version, where, o.Message)
	vd.Rule, vd.Subject = o.Rule, subject
	if o.Action == rules.ActionDLQ {
		vd.DLQTopic = topicDefaultDLQ
		if t, ok := o.Param("dlq.topic"); ok && t != "" {
			vd.DLQTopic = t
		}
	}
	return vd
}

// lookup returns a schema by id, from the cache while it is fresh.
func (c *contracts) lookup(ctx context.Context, id int) (registry.Schema, registry.SchemaInfo, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.cache[id]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < contractCacheTTL {
		return e.schema, e.info, e.err
	}
	s, info, err := c.reg.SchemaByID(ctx, id)
	if err != nil && !errors.Is(err, registry.ErrSchemaNotFound) {
		return nil, registry.SchemaInfo{}, err // not cached: a transient failure
	}
	c.mu.Lock()
	c.cache[id] = cachedSchema{schema: s, info: info, err: err, fetched: now}
	c.mu.Unlock()
	return s, info, err
}

// subjectFor names the subject a key or value must be registered under.
func subjectFor(topic, part, strategy string, s registry.Schema, payload []byte) (string, error) {
	switch strategy {
	case "", config.TopicNameStrategy:
		return topic + "-" + part, nil
	case config.RecordNameStrategy, config.TopicRecordNameStrategy:
		n, ok := s.(registry.RecordNamer)
		if !ok {
			return "", fmt.Errorf("the schema's format does not name records")
		}
		name, err := n.RecordName(payload)
		if err != nil {
			return "", err
		}
		if strategy == config.RecordNameStrategy {
			return name, nil
		}
		return topic + "-" + name, nil
	}
	return "", fmt.Errorf("unknown strategy %q (want one of %v)", strategy, config.SubjectNameStrategies[:3])
}

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
//     internal/registry/rules. A failing rule whose action is ERROR fails
//     the record; NONE lets it through. DLQ routing is not available yet:
//     a record a rule would send to a dead-letter topic is rejected like
//     ERROR, saying so, so nothing is dropped silently. TRANSFORM rules are
//     evaluated for their errors only; records are stored as sent.
//
// A record that fails makes the batch fail with INVALID_RECORD, with one
// KIP-467 record error per failing record saying why; nothing of the batch
// is written. A null value (a tombstone) passes value validation: it carries
// no schema. A null key fails key validation.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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

// registryLookupTimeout bounds one registry read on the produce path.
const registryLookupTimeout = 5 * time.Second

// contracts implements stream.ContractChecker on the schema registry.
type contracts struct {
	reg   *registry.Registry
	rules *rules.Engine
	now   func() time.Time

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
	return &contracts{reg: reg, rules: eng, now: time.Now, cache: map[int]cachedSchema{}}
}

var _ stream.ContractChecker = (*contracts)(nil)

// CheckRecords validates the keys and/or values of a batch's records.
func (c *contracts) CheckRecords(topic string, tc config.Topic, recs []stream.ContractRecord) []stream.RecordError {
	var errs []stream.RecordError
	for i, r := range recs {
		msg := ""
		if tc.KeySchemaValidation {
			msg = c.check(topic, "key", tc.KeySubjectStrategy, r.Key, r.NullKey)
		}
		if msg == "" && tc.ValueSchemaValidation && !r.NullValue {
			msg = c.check(topic, "value", tc.ValueSubjectStrategy, r.Value, false)
		}
		if msg != "" {
			errs = append(errs, stream.RecordError{Index: int32(i), Message: msg})
		}
	}
	return errs
}

// check validates one key or value and returns why it fails, or "".
func (c *contracts) check(topic, part, strategy string, b []byte, null bool) string {
	if null {
		return fmt.Sprintf("the %s is null but topic %q requires %s schema validation", part, topic, part)
	}
	if len(b) < 5 || b[0] != 0 {
		return fmt.Sprintf("the %s is not in the schema registry wire format (magic byte 0 and a 4-byte schema id)", part)
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	payload := b[5:]
	s, info, err := c.lookup(id)
	if errors.Is(err, registry.ErrSchemaNotFound) {
		return fmt.Sprintf("the %s's schema id %d is not registered", part, id)
	}
	if err != nil {
		return fmt.Sprintf("the %s's schema id %d could not be looked up: %v", part, id, err)
	}
	subject, err := subjectFor(topic, part, strategy, s, payload)
	if err != nil {
		return fmt.Sprintf("the %s's subject cannot be named (%s): %v", part, strategy, err)
	}
	version := 0
	for _, u := range info.Usages {
		if u.Subject == subject && !u.Deleted {
			version = u.Version
		}
	}
	if version == 0 {
		return fmt.Sprintf("the %s's schema id %d is not registered under subject %q", part, id, subject)
	}
	value, err := s.Decode(payload)
	if err != nil {
		return fmt.Sprintf("the %s does not match schema id %d (%s version %d): %v", part, id, subject, version, err)
	}
	if info.RuleSet == nil || len(info.RuleSet.DomainRules) == 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryLookupTimeout)
	defer cancel()
	res, err := c.rules.Check(ctx, info.RuleSet, info.Metadata, rules.ModeWrite, value, nil)
	if err != nil {
		return fmt.Sprintf("the %s's data contract (%s version %d) could not be evaluated: %v", part, subject, version, err)
	}
	o, failed := res.Failure()
	if !failed {
		return ""
	}
	where := ""
	if o.Field != "" {
		where = " on field " + o.Field
	}
	msg := fmt.Sprintf("the %s failed rule %q of %s version %d%s: %s", part, o.Rule, subject, version, where, o.Message)
	if o.Action == rules.ActionDLQ {
		msg += " (the rule asks for a dead-letter topic, which this broker does not route to yet; the record is rejected)"
	}
	return msg
}

// lookup returns a schema by id, from the cache while it is fresh.
func (c *contracts) lookup(id int) (registry.Schema, registry.SchemaInfo, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.cache[id]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < contractCacheTTL {
		return e.schema, e.info, e.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryLookupTimeout)
	defer cancel()
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
	return "", fmt.Errorf("unknown strategy %q (want one of %v)", strategy, slices.Clip(config.SubjectNameStrategies[:3]))
}

package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// wire frames a payload in the schema registry wire format.
func wire(id int, payload []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, payload...)
}

// TestSchemaValidationOnProduce enables value schema validation on topics
// and produces valid and invalid records with franz-go: invalid ones fail
// the batch with INVALID_RECORD and a per-record reason, and nothing of a
// failed batch is written.
func TestSchemaValidationOnProduce(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1)
	ctx := env.ctx
	reg, err := sr.NewClient(sr.URLs("http://" + env.b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	const orderSchema = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"sku","type":"string"}]}`
	ss, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Type: sr.TypeAvro, Schema: orderSchema})
	if err != nil {
		t.Fatal(err)
	}
	other, err := reg.CreateSchema(ctx, "other-value", sr.Schema{Type: sr.TypeAvro, Schema: `"string"`})
	if err != nil {
		t.Fatal(err)
	}
	byName, err := reg.CreateSchema(ctx, "shop.Order", sr.Schema{Type: sr.TypeAvro, Schema: orderSchema})
	if err != nil {
		t.Fatal(err)
	}
	validated := map[string]*string{"confluent.value.schema.validation": kmsg.StringPtr("true")}
	if _, err := env.admin.CreateTopic(ctx, 1, -1, validated, "orders"); err != nil {
		t.Fatal(err)
	}
	byRecord := map[string]*string{"confluent.value.schema.validation": kmsg.StringPtr("true"),
		"confluent.value.subject.name.strategy": kmsg.StringPtr("io.confluent.kafka.serializers.subject.RecordNameStrategy")}
	if _, err := env.admin.CreateTopic(ctx, 1, -1, byRecord, "orders-by-record"); err != nil {
		t.Fatal(err)
	}
	avroSchema := hamba.MustParse(orderSchema)
	good, err := hamba.Marshal(avroSchema, map[string]any{"id": int64(7), "sku": "A-1"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(topic string, value []byte) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: value}).FirstErr()
	}
	if err := produce("orders", wire(ss.ID, good)); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	if err := produce("orders", nil); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	if err := produce("orders-by-record", wire(byName.ID, good)); err != nil {
		t.Fatalf("valid record under RecordNameStrategy: %v", err)
	}
	bad := map[string][]byte{
		"unknown id":            wire(99999, good),
		"id of another subject": wire(other.ID, good),
		"truncated payload":     wire(ss.ID, good[:len(good)-2]),
		"trailing bytes":        wire(ss.ID, append(append([]byte(nil), good...), 1, 2)),
		"not the wire format":   []byte(`{"id":7,"sku":"A-1"}`),
		"record name strategy":  nil, // filled below
	}
	bad["record name strategy"] = wire(other.ID, []byte{2, 'x'}) // a string schema names no record
	for name, v := range bad {
		topic := "orders"
		if name == "record name strategy" {
			topic = "orders-by-record"
		}
		if err := produce(topic, v); !errors.Is(err, kerr.InvalidRecord) {
			t.Errorf("%s: produce error %v, want INVALID_RECORD", name, err)
		}
	}

	// One bad record fails its whole batch, with a KIP-467 reason naming it.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recordBatch(t, [][]byte{wire(ss.ID, good), wire(other.ID, good)})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != 1 ||
		p.ErrorRecords[0].ErrorMessage == nil || !strings.Contains(*p.ErrorRecords[0].ErrorMessage, `not registered under subject "orders-value"`) {
		t.Fatalf("mixed batch: %+v", p)
	}
	end, err := env.admin.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("orders", 0); o.Offset != 2 {
		t.Fatalf("orders end offset %d, want 2 (the valid record and the tombstone only)", o.Offset)
	}
}

// recordBatch builds an uncompressed magic-2 batch of values.
func recordBatch(t *testing.T, values [][]byte) []byte {
	t.Helper()
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: v}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: recs}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	b.CRC = int32(crc32c(raw[21:]))
	return b.AppendTo(nil)
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// TestDataContractRulesOnProduce registers a schema whose data contract
// has CEL and CEL_FIELD conditions; records that break them are rejected
// with INVALID_RECORD naming the rule, the others are accepted.
func TestDataContractRulesOnProduce(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1)
	ctx := env.ctx
	reg, err := sr.NewClient(sr.URLs("http://" + env.b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	const schema = `{"type":"record","name":"Payment","fields":[{"name":"id","type":"long"},{"name":"amount","type":"double"},{"name":"email","type":"string"}]}`
	ss, err := reg.CreateSchema(ctx, "payments-value", sr.Schema{Type: sr.TypeAvro, Schema: schema,
		SchemaMetadata: &sr.SchemaMetadata{Tags: map[string][]string{"email": {"PII"}}},
		SchemaRuleSet: &sr.SchemaRuleSet{DomainRules: []sr.SchemaRule{
			{Name: "positiveAmount", Kind: sr.SchemaRuleKindCondition, Mode: sr.SchemaRuleModeWrite, Type: "CEL",
				Expr: "message.amount > 0", OnFailure: "ERROR"},
			{Name: "validEmail", Kind: sr.SchemaRuleKindCondition, Mode: sr.SchemaRuleModeWrite, Type: "CEL_FIELD",
				Tags: []string{"PII"}, Expr: "value.contains('@')", OnFailure: "ERROR"},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	topic := map[string]*string{"confluent.value.schema.validation": kmsg.StringPtr("true")}
	if _, err := env.admin.CreateTopic(ctx, 1, -1, topic, "payments"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	avroSchema := hamba.MustParse(schema)
	send := func(amount float64, email string) *kmsg.ProduceResponseTopicPartition {
		t.Helper()
		payload, err := hamba.Marshal(avroSchema, map[string]any{"id": int64(1), "amount": amount, "email": email})
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "payments"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = recordBatch(t, [][]byte{wire(ss.ID, payload)})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return &resp.Topics[0].Partitions[0]
	}
	if p := send(12.5, "a@b.c"); p.ErrorCode != 0 {
		t.Fatalf("a valid payment: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	for _, tc := range []struct {
		name, email, rule string
		amount            float64
	}{
		{"negative amount", "a@b.c", "positiveAmount", -1},
		{"bad email", "nobody", "validEmail", 3},
	} {
		p := send(tc.amount, tc.email)
		if p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 1 || p.ErrorRecords[0].ErrorMessage == nil ||
			!strings.Contains(*p.ErrorRecords[0].ErrorMessage, `rule "`+tc.rule+`"`) {
			t.Errorf("%s: %v %+v", tc.name, kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
		}
	}
}

// TestRuleSetCompiledAtRegistration refuses a schema whose CEL rule does
// not compile (422, error code 42201), and stores rules of other types
// verbatim.
func TestRuleSetCompiledAtRegistration(t *testing.T) {
	env := newTestEnv(t, 30*time.Second, nil, 1)
	reg, err := sr.NewClient(sr.URLs("http://" + env.b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	schema := func(rule sr.SchemaRule) sr.Schema {
		return sr.Schema{Type: sr.TypeAvro, Schema: `"string"`, SchemaRuleSet: &sr.SchemaRuleSet{DomainRules: []sr.SchemaRule{rule}}}
	}
	_, err = reg.CreateSchema(env.ctx, "broken-value", schema(sr.SchemaRule{Name: "broken", Kind: sr.SchemaRuleKindCondition,
		Mode: sr.SchemaRuleModeWrite, Type: "CEL", Expr: "message.(("}))
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != 42201 {
		t.Fatalf("a rule that does not compile: %v, want error code 42201", err)
	}
	if _, err := reg.CreateSchema(env.ctx, "other-value", schema(sr.SchemaRule{Name: "encrypt", Kind: sr.SchemaRuleKindTransform,
		Mode: sr.SchemaRuleModeWriteRead, Type: "ENCRYPT", Tags: []string{"PII"}})); err != nil {
		t.Fatalf("a rule of a type clients run: %v", err)
	}
}

// TestDeadLetterRouting routes records that fail a DLQ rule, or schema
// validation on a topic whose failure action is DLQ, to the dead-letter
// topic: the producer's batch succeeds, the routed records leave gaps in
// the topic, and their unchanged copies in the dead-letter topic carry
// headers saying why.
func TestDeadLetterRouting(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1)
	ctx := env.ctx
	reg, err := sr.NewClient(sr.URLs("http://" + env.b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	const schema = `{"type":"record","name":"Payment","fields":[{"name":"amount","type":"double"}]}`
	ss, err := reg.CreateSchema(ctx, "payments-value", sr.Schema{Type: sr.TypeAvro, Schema: schema,
		SchemaRuleSet: &sr.SchemaRuleSet{DomainRules: []sr.SchemaRule{{Name: "positiveAmount", Kind: sr.SchemaRuleKindCondition,
			Mode: sr.SchemaRuleModeWrite, Type: "CEL", Expr: "message.amount > 0", OnFailure: "DLQ"}}}})
	if err != nil {
		t.Fatal(err)
	}
	validated := map[string]*string{"confluent.value.schema.validation": kmsg.StringPtr("true")}
	if _, err := env.admin.CreateTopic(ctx, 1, -1, validated, "payments"); err != nil {
		t.Fatal(err)
	}
	toDLQ := map[string]*string{"confluent.value.schema.validation": kmsg.StringPtr("true"),
		"schema.validation.failure.action": kmsg.StringPtr("DLQ"), "schema.validation.dlq.topic": kmsg.StringPtr("events-dead")}
	if _, err := env.admin.CreateTopic(ctx, 1, -1, toDLQ, "events"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.admin.CreateTopics(ctx, 1, -1, nil, "payments-dlq", "events-dead"); err != nil {
		t.Fatal(err)
	}
	avroSchema := hamba.MustParse(schema)
	payment := func(amount float64) []byte {
		b, err := hamba.Marshal(avroSchema, map[string]any{"amount": amount})
		if err != nil {
			t.Fatal(err)
		}
		return wire(ss.ID, b)
	}
	produce := func(topic string, values ...[]byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = recordBatch(t, values)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, env.cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	// The producer is told the batch succeeded and which records went to
	// the dead-letter topic: a KIP-467 record error each, under error code
	// NONE; their offsets (base offset + index) stay gaps.
	if p := produce("payments", payment(5), payment(-2), payment(7)); p.ErrorCode != 0 || p.BaseOffset != 0 ||
		len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != 1 ||
		!strings.Contains(*p.ErrorRecords[0].ErrorMessage, `routed to the dead-letter topic "payments-dlq"`) ||
		!strings.Contains(*p.ErrorRecords[0].ErrorMessage, "positiveAmount") {
		t.Fatalf("a batch with a record for the DLQ: %v, base offset %d, record errors %+v", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, p.ErrorRecords)
	}
	if p := produce("events", []byte("not in the wire format")); p.ErrorCode != 0 ||
		len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != 0 ||
		!strings.Contains(*p.ErrorRecords[0].ErrorMessage, `"events-dead"`) {
		t.Fatalf("a record for the DLQ by the topic's failure action: %v %+v", kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}
	if p := produce("payments", payment(3)); p.ErrorCode != 0 || len(p.ErrorRecords) != 0 || p.ErrorMessage != nil {
		t.Fatalf("a valid batch: %v %+v %v", kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords, p.ErrorMessage)
	}

	read := func(topic string, want int) []*kgo.Record {
		t.Helper()
		return readAll(t, ctx, env.b.KafkaAddr(), topic, kgo.ReadUncommitted(), want)
	}
	kept := read("payments", 3)
	if len(kept) != 3 || kept[0].Offset != 0 || kept[1].Offset != 2 || kept[2].Offset != 3 {
		t.Fatalf("payments holds %d records (want offsets 0, 2 and 3, with a gap at 1): %+v", len(kept), kept)
	}
	if end, _ := env.admin.ListEndOffsets(ctx, "payments"); end["payments"][0].Offset != 4 {
		t.Fatalf("payments end offset %d, want 4", end["payments"][0].Offset)
	}
	header := func(r *kgo.Record, key string) string {
		for _, h := range r.Headers {
			if h.Key == key {
				return string(h.Value)
			}
		}
		return ""
	}
	dead := read("payments-dlq", 1)
	if len(dead) != 1 || string(dead[0].Value) != string(payment(-2)) || header(dead[0], "__runnel.dlq.rule") != "positiveAmount" ||
		header(dead[0], "__runnel.dlq.topic") != "payments" || header(dead[0], "__runnel.dlq.partition") != "0" ||
		header(dead[0], "__runnel.dlq.subject") != "payments-value" || !strings.Contains(header(dead[0], "__runnel.dlq.reason"), "positiveAmount") {
		t.Fatalf("payments-dlq: %+v", dead)
	}
	dead = read("events-dead", 1)
	if len(dead) != 1 || string(dead[0].Value) != "not in the wire format" || !strings.Contains(header(dead[0], "__runnel.dlq.reason"), "wire format") {
		t.Fatalf("events-dead: %+v", dead)
	}
	// Without its dead-letter topic, the batch fails and nothing is written.
	if _, err := env.admin.DeleteTopics(ctx, "payments-dlq"); err != nil {
		t.Fatal(err)
	}
	if p := produce("payments", payment(1), payment(-1)); p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) == 0 ||
		!strings.Contains(*p.ErrorRecords[0].ErrorMessage, "does not exist") {
		t.Fatalf("a missing dead-letter topic: %v %+v", kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}
	if end, _ := env.admin.ListEndOffsets(ctx, "payments"); end["payments"][0].Offset != 4 {
		t.Fatalf("payments end offset %d after the failed batch, want 4", end["payments"][0].Offset)
	}
	// A topic cannot be its own dead-letter topic.
	loop := map[string]*string{"confluent.value.schema.validation": kmsg.StringPtr("true"),
		"schema.validation.failure.action": kmsg.StringPtr("DLQ"), "schema.validation.dlq.topic": kmsg.StringPtr("loop")}
	if _, err := env.admin.CreateTopic(ctx, 1, -1, loop, "loop"); err != nil {
		t.Fatal(err)
	}
	if p := produce("loop", []byte("not in the wire format")); p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) == 0 ||
		!strings.Contains(*p.ErrorRecords[0].ErrorMessage, "its own dead-letter topic") {
		t.Fatalf("a topic routing to itself: %v %+v", kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}
}

// TestContractCheckPastItsDeadline: once a batch's own lookup deadline has
// passed while the request is still alive, every remaining record still
// gets a verdict; none is left unchecked (and so accepted).
func TestContractCheckPastItsDeadline(t *testing.T) {
	c := newContracts(nil, nil)
	c.lookupTimeout = time.Nanosecond
	tc := config.Topic{KeySchemaValidation: true}
	recs := []stream.ContractRecord{{NullKey: true}, {NullKey: true}, {NullKey: true}}
	time.Sleep(time.Millisecond)
	got := c.CheckRecords(context.Background(), "t", tc, recs)
	if len(got) != len(recs) {
		t.Fatalf("%d verdicts for %d failing records", len(got), len(recs))
	}
	// The request's own end stops the check: the engine answers ErrTimeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := c.CheckRecords(ctx, "t", tc, recs); len(got) != 0 {
		t.Fatalf("%d verdicts after the request ended", len(got))
	}
}

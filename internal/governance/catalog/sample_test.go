package catalog

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

const customerAvro = `{"type":"record","name":"Customer","namespace":"crm","fields":[
	{"name":"id","type":"long"},
	{"name":"email","type":"string","confluent:tags":["PII"]},
	{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"street","type":"string"}]}},
	{"name":"notes","type":{"type":"map","values":{"type":"record","name":"Note","fields":[{"name":"secret","type":"string"},{"name":"text","type":"string"}]}}},
	{"name":"cards","type":{"type":"array","items":"string"}}]}`

// TestSampleMasking: a sample decodes the newest records through the
// registry, newest first across partitions, and masks the fields tagged
// PII (in the schema or on the product) or with a masking tag, listing
// them; values without a schema come as base64 and text; a value that
// cannot be decoded on a topic with masked fields is masked whole.
func TestSampleMasking(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "customers", Partitions: 2}, Topic{Name: "raw", Partitions: 1})
	id := e.register("customers-value", "AVRO", customerAvro, nil, nil)
	keyID := e.register("customers-key", "JSON", `{"type":"object","properties":{"tenant":{"type":"string"},"user":{"type":"string"}}}`, nil, nil)
	sc := hamba.MustParse(customerAvro)
	enc := func(i int64, email string) []byte {
		b, err := hamba.Marshal(sc, map[string]any{"id": i, "email": email,
			"address": map[string]any{"city": "Berlin", "street": "Unter den Linden 1"},
			"notes":   map[string]any{"n1": map[string]any{"secret": "s3cr3t", "text": "hello"}},
			"cards":   []any{"4111-1111"}})
		if err != nil {
			t.Fatal(err)
		}
		return wire(id, b)
	}
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	e.log.append("customers",
		Record{Partition: 0, Offset: 0, Timestamp: base, Key: wire(keyID, []byte(`{"tenant":"t1","user":"u1"}`)), Value: enc(1, "a@example.com")},
		Record{Partition: 1, Offset: 0, Timestamp: base.Add(time.Second), Value: enc(2, "b@example.com")},
		Record{Partition: 0, Offset: 1, Timestamp: base.Add(2 * time.Second), Value: []byte("not avro")},
		Record{Partition: 1, Offset: 1, Timestamp: base.Add(3 * time.Second), Value: nil})
	e.log.append("raw", Record{Partition: 0, Offset: 7, Timestamp: base, Key: []byte("k"), Value: []byte{0xff, 0x00}},
		Record{Partition: 0, Offset: 8, Timestamp: base.Add(time.Second), Value: []byte("plain text")})

	admin := e.actor("admin")
	if _, err := e.cat.PutProduct(e.ctx, admin, "customers", ProductUpdate{FieldTags: map[string][]string{"address.street": {"PII"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.PutTag(e.ctx, admin, "SECRET", TagUpdate{Mask: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	p, _ := e.cat.Product(e.ctx, "customers")
	if _, err := e.cat.PutProduct(e.ctx, admin, "customers", ProductUpdate{Version: p.Version,
		FieldTags: map[string][]string{"address.street": {"PII"}, "notes.secret": {"SECRET"}, "cards": {"PCI"}}}); err != nil {
		t.Fatal(err)
	}

	var s Sample
	if status, body := e.call("alice", "GET", "/api/v1/products/customers/sample?limit=3", nil, &s); status != 200 {
		t.Fatalf("sample: %d %s", status, body)
	}
	if len(s.Items) != 3 {
		t.Fatalf("sample: %+v", s)
	}
	// Newest first: the tombstone, the undecodable value, then record 2.
	if s.Items[0].Partition != 1 || s.Items[0].Offset != 1 || s.Items[0].Value != nil || len(s.Items[0].Masked) != 0 {
		t.Fatalf("tombstone: %+v", s.Items[0])
	}
	if s.Items[1].Value != Masked || !slices.Equal(s.Items[1].Masked, []string{"(value)"}) {
		t.Fatalf("undecodable value on a topic with masked fields: %+v", s.Items[1])
	}
	v, _ := json.Marshal(s.Items[2].Value)
	for _, want := range []string{`"email":"****"`, `"street":"****"`, `"city":"Berlin"`, `"secret":"****"`, `"text":"hello"`, `"cards":["4111-1111"]`, `"id":2`} {
		if !strings.Contains(string(v), want) {
			t.Fatalf("value %s lacks %s", v, want)
		}
	}
	if !slices.Equal(s.Items[2].Masked, []string{"address.street", "email", "notes.secret"}) {
		t.Fatalf("masked: %v", s.Items[2].Masked)
	}
	if strings.Contains(string(v), "b@example.com") || strings.Contains(string(v), "s3cr3t") {
		t.Fatalf("PII in the sample: %s", v)
	}

	// The key decodes through its JSON Schema; the oldest record shows it.
	var all Sample
	e.call("alice", "GET", "/api/v1/products/customers/sample?limit=100", nil, &all)
	last := all.Items[len(all.Items)-1]
	k, _ := json.Marshal(last.Key)
	if string(k) != `{"tenant":"t1","user":"u1"}` {
		t.Fatalf("key: %s", k)
	}

	// PII defined as not masking is shown.
	if _, err := e.cat.PutTag(e.ctx, admin, "PII", TagUpdate{Mask: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	e.call("alice", "GET", "/api/v1/products/customers/sample?limit=4", nil, &all)
	v, _ = json.Marshal(all.Items[2].Value)
	if !strings.Contains(string(v), "b@example.com") || !strings.Contains(string(v), `"secret":"****"`) {
		t.Fatalf("PII unmasked by its definition, SECRET still masked: %s", v)
	}

	// Without a schema: base64, and text when UTF-8.
	var raw Sample
	e.call("alice", "GET", "/api/v1/products/raw/sample", nil, &raw)
	r, _ := json.Marshal(raw.Items)
	if !strings.Contains(string(r), `"value":{"base64":"cGxhaW4gdGV4dA==","text":"plain text"}`) ||
		!strings.Contains(string(r), `"value":{"base64":"/wA="}`) || !strings.Contains(string(r), `"key":{"base64":"aw==","text":"k"}`) {
		t.Fatalf("raw sample: %s", r)
	}
	// A value too large to show is left out, its size given.
	e.log.append("raw", Record{Partition: 0, Offset: 9, Timestamp: base.Add(2 * time.Second), Value: make([]byte, maxSampleValue+1)})
	e.call("alice", "GET", "/api/v1/products/raw/sample?limit=1", nil, &raw)
	if r, _ := json.Marshal(raw.Items[0].Value); string(r) != `{"base64":"","size":262145,"truncated":true}` {
		t.Fatalf("large value: %s", r)
	}
	// A product with a masking tag has its undecodable values masked whole.
	if _, err := e.cat.PutProduct(e.ctx, admin, "raw", ProductUpdate{Tags: []string{"SECRET"}}); err != nil {
		t.Fatal(err)
	}
	e.call("alice", "GET", "/api/v1/products/raw/sample", nil, &raw)
	r, _ = json.Marshal(raw.Items)
	if strings.Contains(string(r), "plain text") || strings.Count(string(r), `"value":"****"`) != 3 || !strings.Contains(string(r), `"text":"k"`) {
		t.Fatalf("raw sample of a SECRET product: %s", r)
	}
	for _, qs := range []string{"limit=0", "limit=101", "limit=x"} {
		if status, _ := e.call("alice", "GET", "/api/v1/products/raw/sample?"+qs, nil, nil); status != 400 {
			t.Errorf("sample %s: %d, want 400", qs, status)
		}
	}
	if status, _ := e.call("alice", "GET", "/api/v1/products/nosuch/sample", nil, nil); status != 404 {
		t.Errorf("sample of an unknown topic: %d, want 404", status)
	}
}

func ptr[T any](v T) *T { return &v }

// TestSampleProtobufAndJSON: Protobuf values (message indexes, then the
// message) are rendered through protojson with the proto field names, and
// JSON Schema values as their JSON, each with its tagged fields masked.
func TestSampleProtobufAndJSON(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "payments", Partitions: 1}, Topic{Name: "orders", Partitions: 1})
	pid := e.register("payments-value", "PROTOBUF", `syntax = "proto3";
package shop;
message Other { string x = 1; }
message Payment {
  string payment_id = 1;
  Payer payer = 2;
  int64 cents = 3;
}
message Payer { string email = 1; string display_name = 2; }`,
		&registry.Metadata{Tags: map[string][]string{"**.email": {"PII"}}}, nil)
	s, _, err := e.reg.SchemaByID(e.ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	file := s.(*protobuf.Schema).File()
	pay := dynamicpb.NewMessage(file.Messages().ByName("Payment"))
	payer := dynamicpb.NewMessage(file.Messages().ByName("Payer"))
	payer.Set(payer.Descriptor().Fields().ByName("email"), protoreflect.ValueOfString("p@example.com"))
	payer.Set(payer.Descriptor().Fields().ByName("display_name"), protoreflect.ValueOfString("Pat"))
	pay.Set(pay.Descriptor().Fields().ByName("payment_id"), protoreflect.ValueOfString("pay-1"))
	pay.Set(pay.Descriptor().Fields().ByName("payer"), protoreflect.ValueOfMessage(payer))
	pay.Set(pay.Descriptor().Fields().ByName("cents"), protoreflect.ValueOfInt64(1250))
	b, err := proto.Marshal(pay)
	if err != nil {
		t.Fatal(err)
	}
	// Message indexes: one index, 1 (the file's second message), zig-zag.
	e.log.append("payments", Record{Partition: 0, Offset: 0, Timestamp: time.Unix(100, 0), Value: wire(pid, append([]byte{2, 2}, b...))})

	jid := e.register("orders-value", "JSON", `{"type":"object","properties":{"id":{"type":"integer"},"buyer":{"type":"object","properties":{"email":{"type":"string","confluent:tags":["PII"]}}}}}`, nil, nil)
	e.log.append("orders", Record{Partition: 0, Offset: 0, Timestamp: time.Unix(100, 0), Value: wire(jid, []byte(`{"id":7,"buyer":{"email":"o@example.com"}}`))})

	var got Sample
	if status, body := e.call("alice", "GET", "/api/v1/products/payments/sample", nil, &got); status != 200 || len(got.Items) != 1 {
		t.Fatalf("protobuf sample: %d %s", status, body)
	}
	v, _ := json.Marshal(got.Items[0].Value)
	if string(v) != `{"cents":"1250","payer":{"display_name":"Pat","email":"****"},"payment_id":"pay-1"}` || !slices.Equal(got.Items[0].Masked, []string{"payer.email"}) {
		t.Fatalf("protobuf value %s masked %v", v, got.Items[0].Masked)
	}
	if status, body := e.call("alice", "GET", "/api/v1/products/orders/sample", nil, &got); status != 200 || len(got.Items) != 1 {
		t.Fatalf("json sample: %d %s", status, body)
	}
	v, _ = json.Marshal(got.Items[0].Value)
	if string(v) != `{"buyer":{"email":"****"},"id":7}` || !slices.Equal(got.Items[0].Masked, []string{"buyer.email"}) {
		t.Fatalf("json value %s masked %v", v, got.Items[0].Masked)
	}
}

// TestSampleMasksByTheWriterSchema: a record written with an older
// version masks the fields that version tags, though the latest version
// no longer has them.
func TestSampleMasksByTheWriterSchema(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "people", Partitions: 1})
	const v1 = `{"type":"record","name":"Person","fields":[{"name":"name","type":"string"},{"name":"ssn","type":"string","confluent:tags":["PII"]}]}`
	id1 := e.register("people-value", "AVRO", v1, nil, nil)
	e.register("people-value", "AVRO", `{"type":"record","name":"Person","fields":[{"name":"name","type":"string"}]}`, nil, nil)
	b, err := hamba.Marshal(hamba.MustParse(v1), map[string]any{"name": "Kim", "ssn": "123-45-6789"})
	if err != nil {
		t.Fatal(err)
	}
	e.log.append("people", Record{Partition: 0, Offset: 0, Timestamp: time.Unix(100, 0), Value: wire(id1, b)})
	var got Sample
	if status, body := e.call("alice", "GET", "/api/v1/products/people/sample", nil, &got); status != 200 || len(got.Items) != 1 {
		t.Fatalf("sample: %d %s", status, body)
	}
	v, _ := json.Marshal(got.Items[0].Value)
	if string(v) != `{"name":"Kim","ssn":"****"}` || !slices.Equal(got.Items[0].Masked, []string{"ssn"}) {
		t.Fatalf("value %s masked %v", v, got.Items[0].Masked)
	}
}

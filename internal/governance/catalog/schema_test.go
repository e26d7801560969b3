package catalog

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/registry"
)

// TestWildcard: Confluent's tag path patterns.
func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"eve", "eve", true},
		{"eve*", "eve", true},
		{"a*.bob.eve", "alice.bob.eve", true},
		{"a*.bob.e*", "alice.bob.eve", true},
		{"a*", "alice.bob.eve", false},
		{"a**", "alice.bob.eve", true},
		{"alice.bob*", "alice.bob.eve", false},
		{"alice.bob**", "alice.bob.eve", true},
		{"**.ssn", "crm.Customer.ssn", true},
		{"**.ssn", "ssn", false},
		{"**.ssn", "crm.Customer.ssnx", false},
		{"customer.?mail", "customer.email", true},
		{"customer.?mail", "customer.mail", false},
		{"*.email", "a.b.email", false},
	} {
		if got := wildcard(c.pattern, c.s); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
	// "**.ssn" names a top-level field by its record's full name.
	if !matchesAny("**.ssn", "ssn", "crm.Customer.ssn") || matchesAny("**.ssn", "name", "crm.Customer.name") {
		t.Fatal("matchesAny by full name")
	}
}

func fieldsOf(s *Schema) map[string]Field {
	out := map[string]Field{}
	if s != nil {
		for _, f := range s.Fields {
			out[f.Path] = f
		}
	}
	return out
}

func wantField(t *testing.T, fs map[string]Field, path, typ string, tags ...string) {
	t.Helper()
	f, ok := fs[path]
	if !ok {
		t.Fatalf("no field %s in %v", path, fs)
	}
	if tags == nil {
		tags = []string{}
	}
	if f.Type != typ || !slices.Equal(f.Tags, tags) {
		t.Fatalf("field %s: %s %v, want %s %v", path, f.Type, f.Tags, typ, tags)
	}
}

// TestFieldTags: a product's schema fields with their tags, from Avro
// (confluent:tags and metadata.tags), JSON Schema (the confluent:tags
// keyword, nested objects and $refs, metadata.tags) and Protobuf
// (metadata.tags over the descriptors' fields; the registry compiles
// without source info, so no docs), plus the product's own
// field tags; the product carries every field tag.
func TestFieldTags(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "avro", Partitions: 1}, Topic{Name: "json", Partitions: 1}, Topic{Name: "proto", Partitions: 1})
	e.register("avro-value", "AVRO", `{"type":"record","name":"Customer","namespace":"crm","fields":[
		{"name":"id","type":"long","doc":"the customer number"},
		{"name":"ssn","type":"string"},
		{"name":"contact","type":["null",{"type":"record","name":"Contact","fields":[
			{"name":"email","type":"string","confluent:tags":["PII","contact"]},
			{"name":"phones","type":{"type":"array","items":{"type":"record","name":"Phone","fields":[{"name":"number","type":"string"}]}}}]}],"default":null},
		{"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}}]}`,
		&registry.Metadata{Tags: map[string][]string{"**.ssn": {"PII", "GDPR"}, "crm.Phone.number": {"PII"}}}, nil)
	e.register("avro-key", "AVRO", `"string"`, nil, nil)
	e.register("json-value", "JSON", `{"title":"Order","type":"object","properties":{
		"id":{"type":"integer"},
		"buyer":{"$ref":"#/definitions/Person"},
		"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","description":"stock unit"}}}}},
		"definitions":{"Person":{"type":"object","properties":{"name":{"type":"string","confluent:tags":["PII"]},"iban":{"type":"string"}}}}}`,
		&registry.Metadata{Tags: map[string][]string{"buyer.iban": {"FINANCIAL"}}}, nil)
	e.register("proto-value", "PROTOBUF", `syntax = "proto3";
package shop;
message Payment {
  string id = 1;
  // who paid
  Payer payer = 2;
  map<string, Payer> others = 3;
  repeated int64 cents = 4;
}
message Payer { string email = 1; string name = 2; }`,
		&registry.Metadata{Tags: map[string][]string{"**.email": {"PII"}}}, nil)

	p, err := e.cat.Product(e.ctx, "avro")
	if err != nil {
		t.Fatal(err)
	}
	fs := fieldsOf(p.Schema)
	wantField(t, fs, "id", "long")
	if fs["id"].Doc != "the customer number" {
		t.Fatalf("doc: %+v", fs["id"])
	}
	wantField(t, fs, "ssn", "string", "GDPR", "PII")
	wantField(t, fs, "contact", "null|crm.Contact")
	wantField(t, fs, "contact.email", "string", "PII", "contact")
	wantField(t, fs, "contact.phones", "array<crm.Phone>")
	wantField(t, fs, "contact.phones.number", "string", "PII")
	wantField(t, fs, "created", "timestamp-millis")
	if p.Schema.Subject != "avro-value" || p.Schema.Version != 1 || p.Schema.Type != "AVRO" || p.KeySchema == nil || p.KeySchema.Subject != "avro-key" {
		t.Fatalf("schemas: %+v %+v", p.Schema, p.KeySchema)
	}
	if !slices.Equal(p.Tags, []string{"GDPR", "PII", "contact"}) {
		t.Fatalf("product tags: %v", p.Tags)
	}

	p, err = e.cat.Product(e.ctx, "json")
	if err != nil {
		t.Fatal(err)
	}
	fs = fieldsOf(p.Schema)
	wantField(t, fs, "id", "integer")
	wantField(t, fs, "buyer", "object")
	wantField(t, fs, "buyer.name", "string", "PII")
	wantField(t, fs, "buyer.iban", "string", "FINANCIAL")
	wantField(t, fs, "lines", "array<object>")
	wantField(t, fs, "lines.sku", "string")
	if fs["lines.sku"].Doc != "stock unit" || p.Schema.Type != "JSON" {
		t.Fatalf("json: %+v", p.Schema)
	}

	// The product's own field tags join the schema's.
	admin := e.actor("admin")
	if _, err := e.cat.PutProduct(e.ctx, admin, "proto", ProductUpdate{FieldTags: map[string][]string{"cents": {"FINANCIAL"}, "nosuch.field": {"X"}}}); err != nil {
		t.Fatal(err)
	}
	p, err = e.cat.Product(e.ctx, "proto")
	if err != nil {
		t.Fatal(err)
	}
	fs = fieldsOf(p.Schema)
	wantField(t, fs, "id", "string")
	wantField(t, fs, "payer", "shop.Payer")
	wantField(t, fs, "payer.email", "string", "PII")
	wantField(t, fs, "payer.name", "string")
	wantField(t, fs, "others", "map<string,shop.Payer>")
	wantField(t, fs, "others.email", "string", "PII")
	wantField(t, fs, "cents", "repeated int64", "FINANCIAL")
	if p.Schema.Type != "PROTOBUF" {
		t.Fatalf("proto: %+v", p.Schema)
	}
	if !slices.Equal(p.Tags, []string{"FINANCIAL", "PII", "X"}) {
		t.Fatalf("product tags: %v", p.Tags)
	}
}

// TestSchemaDiffAndContract: the diff of two value schema versions, and
// the subject's rule set summarised as the product's contract.
func TestSchemaDiffAndContract(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 1})
	e.register("orders-value", "AVRO", `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""},{"name":"email","type":"string"}]}`, nil, nil)
	e.register("orders-value", "AVRO", `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"email","type":"string","confluent:tags":["PII"]},{"name":"total","type":"double","default":0}]}`,
		nil, &registry.RuleSet{DomainRules: []registry.Rule{{Name: "positive", Kind: "CONDITION", Mode: "WRITE", Type: "CEL", Expr: "message.total >= 0.0", OnFailure: "DLQ"}}})
	var d SchemaDiff
	if status, body := e.call("alice", "GET", "/api/v1/products/orders/schema/diff?from=1&to=2", nil, &d); status != 200 {
		t.Fatalf("diff: %d %s", status, body)
	}
	if len(d.Added) != 1 || d.Added[0].Path != "total" || len(d.Removed) != 1 || d.Removed[0].Path != "note" ||
		len(d.Changed) != 1 || d.Changed[0].Path != "email" || !slices.Equal(d.Changed[0].To.Tags, []string{"PII"}) {
		t.Fatalf("diff: %+v", d)
	}
	for _, qs := range []string{"from=1&to=9", "from=x&to=2", "from=0&to=1"} {
		status, body := e.call("alice", "GET", "/api/v1/products/orders/schema/diff?"+qs, nil, nil)
		if (strings.Contains(qs, "9") && status != 404) || (!strings.Contains(qs, "9") && status != 400) {
			t.Errorf("diff %s: %d %s", qs, status, body)
		}
	}
	var p Product
	e.call("alice", "GET", "/api/v1/products/orders", nil, &p)
	if p.Contract == nil || len(p.Contract.Rules) != 1 || p.Contract.Rules[0].Expr != "message.total >= 0.0" || p.Contract.Rules[0].OnFailure != "DLQ" {
		t.Fatalf("contract: %+v", p.Contract)
	}
}

// countingRegistry counts schema lookups by id.
type countingRegistry struct {
	*registry.Registry
	mu   sync.Mutex
	byID int
}

func (r *countingRegistry) SchemaByID(ctx context.Context, id int) (registry.Schema, registry.SchemaInfo, error) {
	r.mu.Lock()
	r.byID++
	r.mu.Unlock()
	return r.Registry.SchemaByID(ctx, id)
}

func (r *countingRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID
}

// TestSchemaViewsKeptWhileCurrent: a product's schema is read and parsed
// again only when its subject moved on, not when the view cache dropped
// it (it holds fewer views than a large cluster has subjects).
func TestSchemaViewsKeptWhileCurrent(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 1})
	e.register("orders-value", "AVRO", `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}`, nil, nil)
	reg := &countingRegistry{Registry: e.reg}
	c, err := New(e.ctx, Options{Client: e.etcd.Client(), Log: e.log, Registry: reg, TopicsEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p, err := c.Product(e.ctx, "orders"); err != nil || p.Schema == nil {
		t.Fatalf("product: %+v %v", p, err)
	}
	before := reg.count()
	for range 3 {
		c.views.mu.Lock()
		clear(c.views.m)
		c.views.mu.Unlock()
		if p, err := c.Product(e.ctx, "orders"); err != nil || p.Schema == nil || p.Schema.Version != 1 {
			t.Fatalf("product: %+v %v", p, err)
		}
	}
	if n := reg.count(); n != before {
		t.Fatalf("%d schema lookups for an unchanged subject", n-before)
	}
	e.register("orders-value", "AVRO", `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}`, nil, nil)
	if p, err := c.Product(e.ctx, "orders"); err != nil || p.Schema.Version != 2 || reg.count() == before {
		t.Fatalf("a new version: %+v %v", p.Schema, err)
	}
}

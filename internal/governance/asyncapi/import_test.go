package asyncapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

var admin = governance.Actor{Principal: auth.User("admin"), Admin: true}

// emptyCluster is a cluster with nothing in it.
func emptyCluster() *cluster {
	return &cluster{topics: newFakeTopics(), schemas: newFakeSchemas(), catalog: newFakeCatalog(), lineage: fakeLineage{}}
}

func exportDoc(t *testing.T, s *Service, format string) []byte {
	t.Helper()
	d, err := s.Export(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := encodeDocument(d, format)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func actions[T any](steps []T, name, action func(T) string) map[string]string {
	out := map[string]string{}
	for _, s := range steps {
		out[name(s)] = action(s)
	}
	return out
}

func topicActions(r *Result) map[string]string {
	return actions(r.Topics, func(s TopicStep) string { return s.Name }, func(s TopicStep) string { return s.Action })
}

func subjectActions(r *Result) map[string]string {
	return actions(r.Subjects, func(s SubjectStep) string { return s.Subject }, func(s SubjectStep) string { return s.Action })
}

func productActions(r *Result) map[string]string {
	return actions(r.Products, func(s ProductStep) string { return s.Topic }, func(s ProductStep) string { return s.Action })
}

// TestImportRoundTrip: a cluster's exported document (YAML and JSON)
// imported into an empty cluster plans creates, applies them (topics
// with their partitions and configs, subjects with the same schemas,
// products with the same metadata), and a second import finds
// everything there.
func TestImportRoundTrip(t *testing.T) {
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx := context.Background()
			src := newCluster()
			src.schemas.add("payments.v1-key", Schema{Type: TypeJSON, Text: `{"type":"string","maxLength":10}`})
			src.schemas.add("sensors-key", Schema{Type: TypeProtobuf, Text: "syntax = \"proto3\";\nmessage K { string id = 1; }\n"})
			doc := exportDoc(t, src.service(t), format)
			dst := emptyCluster()
			s := dst.service(t)

			plan, err := s.Import(ctx, admin, doc, true)
			if err != nil {
				t.Fatal(err)
			}
			wantTopics := map[string]string{"orders": "create", "payments.v1": "create", "sensors": "create", "clicks": "create"}
			wantSubjects := map[string]string{"orders-key": "register", "orders-value": "register", "payments.v1-key": "register",
				"payments.v1-value": "register", "sensors-key": "register", "sensors-value": "register"}
			if got := topicActions(plan); !reflect.DeepEqual(got, wantTopics) {
				t.Errorf("dry run topics %v, want %v", got, wantTopics)
			}
			if got := subjectActions(plan); !reflect.DeepEqual(got, wantSubjects) {
				t.Errorf("dry run subjects %v, want %v", got, wantSubjects)
			}
			if got := productActions(plan); !reflect.DeepEqual(got, map[string]string{"orders": "create"}) {
				t.Errorf("dry run products %v, want orders: create", got)
			}
			if len(dst.topics.topics) != 0 || len(dst.schemas.subjects) != 0 || len(dst.catalog.products) != 0 {
				t.Fatal("a dry run changed the cluster")
			}

			res, err := s.Import(ctx, admin, doc, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range res.Topics {
				if !st.Applied {
					t.Errorf("topic %s not applied: %+v", st.Name, st)
				}
			}
			for name, want := range src.topics.topics {
				got, ok := dst.topics.topics[name]
				if !ok {
					t.Errorf("topic %s not created", name)
					continue
				}
				if got.Partitions != want.Partitions {
					t.Errorf("topic %s: %d partitions, want %d", name, got.Partitions, want.Partitions)
				}
				for k, v := range want.Overrides {
					if normalConfig(k, got.Effective[k]) != normalConfig(k, v) {
						t.Errorf("topic %s: %s=%q, want %q", name, k, got.Effective[k], v)
					}
				}
			}
			for subject, vs := range src.schemas.subjects {
				got, ok, _ := dst.schemas.Latest(ctx, subject)
				want := vs[len(vs)-1]
				if !ok || got.Type != want.Type || !sameSchemaText(got.Text, want.Text) {
					t.Errorf("subject %s: %+v, want %+v", subject, got, want)
				}
			}
			want := src.catalog.products["orders"]
			want.Tags = sortedSet(want.Tags)
			if got := dst.catalog.products["orders"]; !reflect.DeepEqual(got, want) {
				t.Errorf("product orders %+v, want %+v", got, want)
			}
			if !reflect.DeepEqual(dst.catalog.setBy, []string{"User:admin orders"}) {
				t.Errorf("products set %v", dst.catalog.setBy)
			}

			again, err := s.Import(ctx, admin, doc, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []map[string]string{topicActions(again), subjectActions(again), productActions(again)} {
				for name, a := range m {
					if a != ActionExists && a != ActionUnchanged {
						t.Errorf("second import: %s is %s", name, a)
					}
				}
			}
		})
	}
}

// sameSchemaText compares schema texts, JSON ones as JSON.
func sameSchemaText(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil {
		return reflect.DeepEqual(x, y)
	}
	return a == b
}

const planDoc = `asyncapi: 3.0.0
info: {title: t, version: "1"}
channels:
  orders:
    address: orders
    description: Orders.
    tags: [{name: PII}]
    x-runnel-owner: User:bob
    messages:
      m: {$ref: '#/components/messages/order'}
    bindings:
      kafka:
        partitions: 3
        topicConfiguration:
          cleanup.policy: [delete]
          retention.ms: 86400000
  events:
    address: events
    x-runnel-configs: {compression.type: lz4}
    messages:
      m:
        payload: {type: string}
components:
  messages:
    order:
      payload:
        schemaFormat: application/vnd.apache.avro;version=1.9.0
        schema: {type: record, name: Order, fields: [{name: id, type: string}]}
`

const planAvro = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`

// TestImportPlan: each step compared with what the cluster has.
func TestImportPlan(t *testing.T) {
	for _, c := range []struct {
		name                    string
		setup                   func(c *cluster)
		topics, subjects, prods map[string]string
		reason                  string // in some step's reason
	}{
		{
			name:     "empty cluster",
			setup:    func(*cluster) {},
			topics:   map[string]string{"orders": "create", "events": "create"},
			subjects: map[string]string{"orders-value": "register"},
			prods:    map[string]string{"orders": "create"},
		},
		{
			name: "all there",
			setup: func(c *cluster) {
				c.topics.add("orders", 3, map[string]string{"retention.ms": "86400000"})
				c.topics.add("events", 1, map[string]string{"compression.type": "lz4"})
				c.schemas.add("orders-value", Schema{Type: TypeAvro, Text: planAvro})
				c.catalog.products["orders"] = Product{Description: "Orders.", Tags: []string{"PII"}, Owner: "User:bob"}
			},
			topics:   map[string]string{"orders": "exists", "events": "exists"},
			subjects: map[string]string{"orders-value": "exists"},
			prods:    map[string]string{"orders": "unchanged"},
		},
		{
			name: "other partitions",
			setup: func(c *cluster) {
				c.topics.add("orders", 6, map[string]string{"retention.ms": "86400000"})
			},
			topics:   map[string]string{"orders": "conflict", "events": "create"},
			subjects: map[string]string{"orders-value": "register"},
			prods:    map[string]string{"orders": "create"},
			reason:   "partitions: 6 on the cluster, 3 in the document",
		},
		{
			name: "other configs",
			setup: func(c *cluster) {
				c.topics.add("orders", 3, map[string]string{"cleanup.policy": "compact"})
			},
			topics:   map[string]string{"orders": "conflict", "events": "create"},
			subjects: map[string]string{"orders-value": "register"},
			prods:    map[string]string{"orders": "create"},
			reason:   `cleanup.policy: "compact" on the cluster, "delete" in the document; retention.ms: "604800000" on the cluster, "86400000" in the document`,
		},
		{
			name: "incompatible schema",
			setup: func(c *cluster) {
				c.schemas.add("orders-value", Schema{Type: TypeAvro, Text: `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}`})
				c.schemas.incompatible["orders-value"] = []string{"reader field id: string cannot read long"}
			},
			topics:   map[string]string{"orders": "create", "events": "create"},
			subjects: map[string]string{"orders-value": "incompatible"},
			prods:    map[string]string{"orders": "create"},
			reason:   "reader field id: string cannot read long",
		},
		{
			name: "product updated",
			setup: func(c *cluster) {
				c.catalog.products["orders"] = Product{Description: "Old.", Owner: "User:bob", Domain: "sales"}
			},
			topics:   map[string]string{"orders": "create", "events": "create"},
			subjects: map[string]string{"orders-value": "register"},
			prods:    map[string]string{"orders": "update"},
			reason:   "changes description, tags",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := emptyCluster()
			c.setup(cl)
			res, err := cl.service(t).Import(context.Background(), admin, []byte(planDoc), true)
			if err != nil {
				t.Fatal(err)
			}
			if !res.DryRun {
				t.Error("dryRun false in a dry run's result")
			}
			if got := topicActions(res); !reflect.DeepEqual(got, c.topics) {
				t.Errorf("topics %v, want %v", got, c.topics)
			}
			if got := subjectActions(res); !reflect.DeepEqual(got, c.subjects) {
				t.Errorf("subjects %v, want %v", got, c.subjects)
			}
			if got := productActions(res); !reflect.DeepEqual(got, c.prods) {
				t.Errorf("products %v, want %v", got, c.prods)
			}
			if c.reason != "" {
				b, _ := json.Marshal(res)
				if !strings.Contains(string(b), jsonString(c.reason)) {
					t.Errorf("no step says %q: %s", c.reason, b)
				}
			}
			if len(cl.topics.created) != 0 || cl.catalog.setBy != nil {
				t.Error("a dry run changed the cluster")
			}
		})
	}
}

// jsonString is s as it appears inside a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// TestImportPlanDetails: the steps carry what will be done.
func TestImportPlanDetails(t *testing.T) {
	cl := emptyCluster()
	res, err := cl.service(t).Import(context.Background(), admin, []byte(planDoc), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []TopicStep{
		{Name: "orders", Action: "create", Partitions: 3, Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "86400000"}},
		{Name: "events", Action: "create", Partitions: 1, Configs: map[string]string{"compression.type": "lz4"}},
	}
	if !reflect.DeepEqual(res.Topics, want) {
		t.Errorf("topics %+v, want %+v", res.Topics, want)
	}
	if s := res.Subjects[0]; s.Topic != "orders" || s.Type != TypeAvro || s.schema.Text != planAvro {
		t.Errorf("subject step %+v (schema %q)", s, s.schema.Text)
	}
	if p := res.Products[0].product; p.Owner != "User:bob" || p.Description != "Orders." || !reflect.DeepEqual(p.Tags, []string{"PII"}) {
		t.Errorf("product %+v", p)
	}
}

// TestImportApplyRefusedOnConflict: a plan with a conflict or an
// incompatible schema is not applied at all.
func TestImportApplyRefusedOnConflict(t *testing.T) {
	cl := emptyCluster()
	cl.topics.add("orders", 6, nil)
	res, err := cl.service(t).Import(context.Background(), admin, []byte(planDoc), false)
	var e *governance.Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict {
		t.Fatalf("apply with a conflict: %v, want 409", err)
	}
	if !strings.Contains(e.Message, "nothing was applied: topic orders: the topic exists with other settings: partitions: 6 on the cluster, 3 in the document") {
		t.Errorf("message %q", e.Message)
	}
	if res == nil || res.Message != e.Message || res.ErrorCode != 40901 {
		t.Errorf("result %+v does not carry the error", res)
	}
	if len(cl.topics.created) != 0 || len(cl.schemas.subjects) != 0 || cl.catalog.setBy != nil {
		t.Errorf("a refused apply changed the cluster: topics %v, subjects %v, products %v", cl.topics.created, cl.schemas.subjects, cl.catalog.setBy)
	}
}

// TestImportApplyStopsMidway: a step that fails stops the apply; the
// result says what was applied before.
func TestImportApplyStopsMidway(t *testing.T) {
	cl := emptyCluster()
	cl.schemas.failRegister = errors.New("etcd is unreachable")
	res, err := cl.service(t).Import(context.Background(), admin, []byte(planDoc), false)
	var e *governance.Error
	if !errors.As(err, &e) || e.Status != http.StatusInternalServerError || !strings.Contains(e.Message, "registering orders-value: etcd is unreachable") {
		t.Fatalf("apply with a failing registry: %v", err)
	}
	if !res.Topics[0].Applied || !res.Topics[1].Applied || res.Subjects[0].Applied || res.Products[0].Applied {
		t.Errorf("applied marks %+v", res)
	}
	if res.Message != e.Message {
		t.Errorf("result message %q", res.Message)
	}
	if len(cl.topics.created) != 2 || cl.catalog.setBy != nil {
		t.Errorf("created %v, products set %v", cl.topics.created, cl.catalog.setBy)
	}
}

// TestImportWithoutCatalog: without a catalog products are neither
// planned nor set.
func TestImportWithoutCatalog(t *testing.T) {
	cl := emptyCluster()
	s := newService(t, Options{Topics: cl.topics, Schemas: cl.schemas})
	res, err := s.Import(context.Background(), admin, []byte(planDoc), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Products) != 0 || len(cl.topics.created) != 2 {
		t.Fatalf("result %+v", res)
	}
}

// TestImportRejects: a document the import cannot honour is a 400 that
// says what is wrong, and nothing changes.
func TestImportRejects(t *testing.T) {
	const head = "asyncapi: 3.0.0\ninfo: {title: t, version: '1'}\n"
	for _, c := range []struct {
		name, doc, want string
		status          int
	}{
		{"empty", "  \n", "the document is empty", 400},
		{"not YAML", "asyncapi: [3.0.0\n", "the document is not valid YAML", 400},
		{"not JSON", `{"asyncapi": "3.0.0",}`, "the document is not valid JSON", 400},
		{"JSON with trailing data", `{"asyncapi": "3.0.0"} {}`, "data after the top-level object", 400},
		{"a list", "- a\n- b\n", "its top level is not an object", 400},
		{"no version", "info: {}\nchannels: {a: {}}\n", "it has no asyncapi version field", 400},
		{"AsyncAPI 2", "asyncapi: 2.6.0\nchannels: {a: {}}\n", `asyncapi "2.6.0": Runnel imports AsyncAPI 3.x documents`, 400},
		{"no channels", head, "the document has no channels", 400},
		{"empty channels", head + "channels: {}\n", "the document has no channels", 400},
		{"duplicate key", head + "channels:\n  a: {address: a}\n  a: {address: b}\n", `"a" already defined`, 400},
		{"no topic", head + "channels:\n  a: {}\n", `channel "a" has neither an address nor a Kafka binding topic`, 400},
		{"parameters", head + "channels:\n  a: {address: 'users.{id}'}\n", "has parameters", 400},
		{"bad topic name", head + "channels:\n  a: {address: 'a b'}\n", `topic name "a b"`, 400},
		{"two channels one topic", head + "channels:\n  a: {address: x}\n  b: {address: x}\n", `channels "a" and "b" are both topic "x"`, 400},
		{"bad partitions", head + "channels:\n  a: {address: a, bindings: {kafka: {partitions: 0}}}\n", `partitions "0": want a positive integer`, 400},
		{"unknown config", head + "channels:\n  a: {address: a, bindings: {kafka: {topicConfiguration: {retention.days: 7}}}}\n",
			`topicConfiguration key "retention.days" is not a topic config Runnel knows`, 400},
		{"bad config value", head + "channels:\n  a: {address: a, bindings: {kafka: {topicConfiguration: {cleanup.policy: [forever]}}}}\n",
			"cleanup.policy", 400},
		{"unknown extension config", head + "channels:\n  a: {address: a, x-runnel-configs: {segment.gigabytes: 1}}\n",
			`x-runnel-configs key "segment.gigabytes" is not a topic config Runnel knows`, 400},
		{"configs disagree", head + "channels:\n  a: {address: a, x-runnel-configs: {retention.ms: 5}, bindings: {kafka: {topicConfiguration: {retention.ms: 6}}}}\n",
			`x-runnel-configs says retention.ms="5"`, 400},
		{"external reference", head + "channels:\n  a: {address: a, messages: {m: {$ref: 'other.yaml#/m'}}}\n",
			"points outside the document", 400},
		{"dangling reference", head + "channels:\n  a: {address: a, messages: {m: {$ref: '#/components/messages/nope'}}}\n",
			"points at nothing in the document", 400},
		{"reference loop", head + "channels:\n  a: {$ref: '#/channels/a'}\n", "too many references", 400},
		{"RAML payload", head + "channels:\n  a: {address: a, messages: {m: {payload: {schemaFormat: application/raml+yaml;version=1.0, schema: {type: string}}}}}\n",
			"Runnel's registry holds Avro, JSON Schema and Protobuf schemas", 400},
		{"Protobuf not a string", head + "channels:\n  a: {address: a, messages: {m: {payload: {schemaFormat: application/vnd.google.protobuf;version=3, schema: {a: 1}}}}}\n",
			"the .proto source as a string", 400},
		{"two value schemas", head + "channels:\n  a:\n    address: a\n    messages:\n      m: {payload: {type: object, properties: {a: {type: string}}}}\n      n: {payload: {type: object, properties: {b: {type: string}}}}\n",
			"its messages have different value schemas", 400},
		{"bad owner", head + "channels:\n  a: {address: a, x-runnel-owner: bob}\n", `x-runnel-owner "bob": want User:<name>, Team:<name> or empty`, 400},
		{"tag without name", head + "channels:\n  a: {address: a, tags: [{description: x}]}\n", "a tag without a name", 400},
		{"config the engine refuses", head + "channels:\n  a: {address: a, x-runnel-configs: {min.compaction.lag.ms: '-5'}}\n", "min.compaction.lag.ms", 400},
		{"too large", head + strings.Repeat("#", MaxImportBytes), "larger than", 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := emptyCluster()
			_, err := cl.service(t).Import(context.Background(), admin, []byte(c.doc), false)
			var e *governance.Error
			if !errors.As(err, &e) || e.Status != c.status || !strings.Contains(e.Message, c.want) {
				t.Fatalf("import: %v, want %d with %q", err, c.status, c.want)
			}
			if len(cl.topics.created) != 0 || len(cl.schemas.subjects) != 0 {
				t.Fatal("a refused document changed the cluster")
			}
		})
	}
}

// TestReadDocumentForms: what the reader accepts beyond Runnel's own
// export: JSON with tabs, YAML anchors, a topic named by the binding, an
// AsyncAPI-schema payload of an object as JSON Schema, Avro through a
// component schema.
func TestReadDocumentForms(t *testing.T) {
	specs, err := readDocument([]byte("{\n\t\"asyncapi\": \"3.0.0\",\n\t\"channels\": {\"c\": {\"address\": \"a\", \"bindings\": {\"kafka\": {\"topic\": \"real\"}}}}\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if specs[0].topic != "real" {
		t.Errorf("topic %q, want the binding's", specs[0].topic)
	}
	doc := `asyncapi: 3.1.0
channels:
  a:
    address: a
    bindings: {kafka: &k {partitions: 2}}
    messages:
      m:
        payload: {type: object, properties: {id: {type: string}}}
        bindings: {kafka: {key: {$ref: '#/components/schemas/k'}}}
  b:
    address: b
    bindings: {kafka: *k}
components:
  schemas:
    k: {schemaFormat: 'application/vnd.apache.avro+yaml;version=1.9.0', schema: {type: enum, name: K, symbols: [X, Y]}}
`
	specs, err = readDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if specs[0].partitions != 2 || specs[1].partitions != 2 {
		t.Errorf("partitions %d, %d through an anchor", specs[0].partitions, specs[1].partitions)
	}
	if v := specs[0].value; v == nil || v.Type != TypeJSON || v.Text != `{"type":"object","properties":{"id":{"type":"string"}}}` {
		t.Errorf("value %+v", v)
	}
	if k := specs[0].key; k == nil || k.Type != TypeAvro || k.Text != `{"type":"enum","name":"K","symbols":["X","Y"]}` {
		t.Errorf("key %+v", k)
	}
	if specs[1].value != nil || specs[1].key != nil || specs[1].product != nil {
		t.Errorf("channel b %+v", specs[1])
	}
}

// TestNormalConfig: values that mean the same compare equal, so a topic
// whose configs are spelled otherwise is no conflict.
func TestNormalConfig(t *testing.T) {
	for _, c := range []struct {
		name, a, b string
		same       bool
	}{
		{"cleanup.policy", "delete, compact", "compact,delete", true},
		{"cleanup.policy", "compact,compact", "compact", true},
		{"cleanup.policy", "compact", "compact,delete", false},
		{"retention.ms", "+0100", "100", true},
		{"retention.ms", "100", "1000", false},
		{"confluent.value.schema.validation", "TRUE", "true", true},
		{"min.cleanable.dirty.ratio", "0.50", "0.5", true},
		{"compression.type", " zstd ", "zstd", true},
		{"compression.type", "zstd", "lz4", false},
	} {
		if got := normalConfig(c.name, c.a) == normalConfig(c.name, c.b); got != c.same {
			t.Errorf("%s: %q and %q the same: %v, want %v", c.name, c.a, c.b, got, c.same)
		}
	}
}

// TestImportAudited: an apply records what it is about to do before it
// does it; an import that cannot be audited changes nothing; a dry run
// records nothing.
func TestImportAudited(t *testing.T) {
	cl := emptyCluster()
	aud := &fakeAuditor{}
	s := newService(t, Options{Topics: cl.topics, Schemas: cl.schemas, Catalog: cl.catalog, Auditor: aud})
	if _, err := s.Import(context.Background(), admin, []byte(planDoc), true); err != nil || len(aud.events) != 0 {
		t.Fatalf("dry run: %v, events %+v", err, aud.events)
	}
	if _, err := s.Import(context.Background(), admin, []byte(planDoc), false); err != nil {
		t.Fatal(err)
	}
	if len(aud.events) != 1 {
		t.Fatalf("events %+v", aud.events)
	}
	e := aud.events[0]
	want := `{"createTopics":["orders","events"],"registerSubjects":["orders-value"],"setProducts":["orders"]}`
	if e.Action != "asyncapi.import" || e.Actor != "User:admin" || e.Resource != "asyncapi:import" || string(e.After) != want {
		t.Errorf("event %+v (after %s)", e, e.After)
	}

	cl = emptyCluster()
	s = newService(t, Options{Topics: cl.topics, Schemas: cl.schemas, Catalog: cl.catalog, Auditor: &fakeAuditor{err: errors.New("etcd is unreachable")}})
	res, err := s.Import(context.Background(), admin, []byte(planDoc), false)
	var ge *governance.Error
	if !errors.As(err, &ge) || ge.Status != 500 || !strings.Contains(ge.Message, "nothing was applied: the import could not be audited: etcd is unreachable") {
		t.Fatalf("import with the audit log down: %v", err)
	}
	if res.Message != ge.Message || len(cl.topics.created) != 0 || len(cl.schemas.subjects) != 0 || cl.catalog.setBy != nil {
		t.Fatalf("an unaudited import changed the cluster: %+v", res)
	}
}

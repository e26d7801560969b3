package asyncapi

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/runnel-dev/runnel/internal/governance"
)

const (
	ordersAvro = `{"type": "record", "name": "Order", "namespace": "shop",
  "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "long"},
             {"name": "email", "type": "string", "confluent:tags": ["PII"]}]}`
	ordersKeyAvro = `"string"`
	paymentsJSON  = `{"$schema": "http://json-schema.org/draft-07/schema#", "title": "Payment", "type": "object",
  "properties": {"id": {"type": "string"}, "cents": {"type": "integer"}}, "required": ["id"]}`
	sensorsProto = `syntax = "proto3";
package iot;

message Reading {
  string sensor = 1;
  double value = 2;
}
`
)

// cluster is a source cluster with four topics: orders (Avro value and
// key, configs, catalog metadata, observed clients), payments.v1 (JSON
// Schema), sensors (Protobuf) and clicks (no schema).
type cluster struct {
	topics  *fakeTopics
	schemas *fakeSchemas
	catalog *fakeCatalog
	lineage fakeLineage
}

func newCluster() *cluster {
	c := &cluster{topics: newFakeTopics(), schemas: newFakeSchemas(), catalog: newFakeCatalog(), lineage: fakeLineage{}}
	c.topics.add("orders", 3, map[string]string{"retention.ms": "86400000", "cleanup.policy": "delete,compact",
		"confluent.value.schema.validation": "true", "compression.type": "zstd"})
	c.topics.add("payments.v1", 6, nil)
	c.topics.add("sensors", 1, map[string]string{"max.message.bytes": "2097152"})
	c.topics.add("clicks", 2, nil)
	c.schemas.add("orders-value", Schema{Type: TypeAvro, Text: ordersAvro})
	c.schemas.add("orders-key", Schema{Type: TypeAvro, Text: ordersKeyAvro})
	c.schemas.add("payments.v1-value", Schema{Type: TypeJSON, Text: paymentsJSON})
	c.schemas.add("sensors-value", Schema{Type: TypeProtobuf, Text: sensorsProto})
	c.catalog.products["orders"] = Product{Description: "Orders as placed in the shop.", Owner: "Team:sales",
		Domain: "sales", Tags: []string{"tier-1", "PII"}, Links: []Link{{Title: "Runbook", URL: "https://wiki.example/orders"}}}
	c.lineage["orders"] = Clients{
		Producers: []Producer{{ClientID: "shop-1", Principal: "User:alice", Software: "apache-kafka-java/3.9.0"}},
		Consumers: []Consumer{{Group: "billing", ClientID: "billing-1", Principal: "User:bob"}},
	}
	return c
}

func (c *cluster) service(t *testing.T) *Service {
	return newService(t, Options{
		ClusterID: "c-42",
		Listeners: func() []Listener {
			return []Listener{
				{Name: "PLAINTEXT", Host: "127.0.0.1:9092"},
				{Name: "SASL_SSL", Host: "kafka.example:9093", TLS: true, SASL: []string{"SCRAM-SHA-512", "OAUTHBEARER"}, ClientCert: true},
			}
		},
		RegistryURL: func() string { return "http://127.0.0.1:8081" },
		Topics:      c.topics, Schemas: c.schemas, Catalog: c.catalog, Lineage: c.lineage,
	})
}

// exported renders a document as JSON and reads it back as plain values.
func exported(t *testing.T, s *Service, topics ...string) map[string]any {
	t.Helper()
	d, err := s.Export(context.Background(), topics)
	if err != nil {
		t.Fatal(err)
	}
	js, _, err := encodeDocument(d, "json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	return m
}

// at walks a path of keys (and list indexes as ints) into a value.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %v", path, path[:i])
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("%v: no %q at %v (keys %v)", path, k, path[:i], keysOf(m))
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d at %v", path, k, path[:i])
			}
			v = l[k]
		}
	}
	return v
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestExportShape(t *testing.T) {
	doc := exported(t, newCluster().service(t))
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"asyncapi"}, "3.0.0"},
		{[]any{"id"}, "urn:runnel:cluster:c-42"},
		{[]any{"info", "title"}, "Runnel cluster c-42"},
		{[]any{"info", "version"}, "1.0.0"},
		{[]any{"info", "x-runnel-cluster-id"}, "c-42"},
		// Servers: one per listener, security as the listener has it.
		{[]any{"servers", "PLAINTEXT", "host"}, "127.0.0.1:9092"},
		{[]any{"servers", "PLAINTEXT", "protocol"}, "kafka"},
		{[]any{"servers", "PLAINTEXT", "bindings", "kafka", "schemaRegistryUrl"}, "http://127.0.0.1:8081"},
		{[]any{"servers", "PLAINTEXT", "bindings", "kafka", "schemaRegistryVendor"}, "confluent"},
		{[]any{"servers", "SASL_SSL", "host"}, "kafka.example:9093"},
		{[]any{"servers", "SASL_SSL", "protocol"}, "kafka-secure"},
		{[]any{"servers", "SASL_SSL", "security", 0, "$ref"}, "#/components/securitySchemes/saslScramSha512"},
		{[]any{"servers", "SASL_SSL", "security", 1, "$ref"}, "#/components/securitySchemes/saslOauthbearer"},
		{[]any{"servers", "SASL_SSL", "security", 2, "$ref"}, "#/components/securitySchemes/mutualTLS"},
		{[]any{"components", "securitySchemes", "saslScramSha512", "type"}, "scramSha512"},
		{[]any{"components", "securitySchemes", "saslOauthbearer", "type"}, "oauth2"},
		{[]any{"components", "securitySchemes", "mutualTLS", "type"}, "X509"},
		// Channels: the topic, its binding and its configuration.
		{[]any{"channels", "orders", "address"}, "orders"},
		{[]any{"channels", "orders", "bindings", "kafka", "topic"}, "orders"},
		{[]any{"channels", "orders", "bindings", "kafka", "partitions"}, 3.0},
		{[]any{"channels", "orders", "bindings", "kafka", "bindingVersion"}, "0.5.0"},
		{[]any{"channels", "orders", "bindings", "kafka", "topicConfiguration", "cleanup.policy"}, []any{"compact", "delete"}},
		{[]any{"channels", "orders", "bindings", "kafka", "topicConfiguration", "retention.ms"}, 86400000.0},
		{[]any{"channels", "orders", "bindings", "kafka", "topicConfiguration", "retention.bytes"}, -1.0},
		{[]any{"channels", "orders", "bindings", "kafka", "topicConfiguration", "delete.retention.ms"}, 86400000.0},
		{[]any{"channels", "orders", "bindings", "kafka", "topicConfiguration", "max.message.bytes"}, 1048588.0},
		{[]any{"channels", "orders", "x-runnel-configs"}, map[string]any{"compression.type": "zstd", "confluent.value.schema.validation": "true"}},
		{[]any{"channels", "orders", "messages", "orders", "$ref"}, "#/components/messages/orders"},
		// The catalog's metadata.
		{[]any{"channels", "orders", "description"}, "Orders as placed in the shop."},
		{[]any{"channels", "orders", "tags"}, []any{map[string]any{"name": "PII"}, map[string]any{"name": "tier-1"}}},
		{[]any{"channels", "orders", "x-runnel-owner"}, "Team:sales"},
		{[]any{"channels", "orders", "x-runnel-domain"}, "sales"},
		{[]any{"channels", "orders", "x-runnel-links", 0, "url"}, "https://wiki.example/orders"},
		{[]any{"channels", "orders", "externalDocs", "url"}, "https://wiki.example/orders"},
		// A topic name with a dot keys its channel without it.
		{[]any{"channels", "payments_v1", "address"}, "payments.v1"},
		{[]any{"channels", "payments_v1", "bindings", "kafka", "partitions"}, 6.0},
		// Messages: payloads from the registry.
		{[]any{"components", "messages", "orders", "payload", "schemaFormat"}, "application/vnd.apache.avro;version=1.9.0"},
		{[]any{"components", "messages", "orders", "payload", "schema", "name"}, "Order"},
		{[]any{"components", "messages", "orders", "payload", "schema", "fields", 2, "confluent:tags"}, []any{"PII"}},
		{[]any{"components", "messages", "orders", "contentType"}, "application/vnd.apache.avro+binary"},
		{[]any{"components", "messages", "orders", "x-runnel-schema", "subject"}, "orders-value"},
		{[]any{"components", "messages", "orders", "x-runnel-schema", "version"}, 1.0},
		{[]any{"components", "messages", "orders", "bindings", "kafka", "schemaIdLocation"}, "payload"},
		{[]any{"components", "messages", "orders", "bindings", "kafka", "key", "$ref"}, "#/components/schemas/orders-key"},
		{[]any{"components", "schemas", "orders-key"}, map[string]any{"schemaFormat": "application/vnd.apache.avro;version=1.9.0", "schema": "string"}},
		{[]any{"components", "messages", "payments_v1", "payload", "schemaFormat"}, "application/schema+json;version=draft-07"},
		{[]any{"components", "messages", "payments_v1", "payload", "schema", "title"}, "Payment"},
		{[]any{"components", "messages", "payments_v1", "bindings", "kafka", "key"}, map[string]any{"type": "string"}},
		{[]any{"components", "messages", "sensors", "payload", "schemaFormat"}, "application/vnd.google.protobuf;version=3"},
		{[]any{"components", "messages", "sensors", "payload", "schema"}, sensorsProto},
		{[]any{"components", "messages", "clicks", "payload"}, map[string]any{"type": "string", "format": "binary"}},
		// Operations from lineage.
		{[]any{"operations", "send_orders_shop-1", "action"}, "send"},
		{[]any{"operations", "send_orders_shop-1", "channel", "$ref"}, "#/channels/orders"},
		{[]any{"operations", "send_orders_shop-1", "messages", 0, "$ref"}, "#/channels/orders/messages/orders"},
		{[]any{"operations", "send_orders_shop-1", "bindings", "kafka", "clientId", "enum"}, []any{"shop-1"}},
		{[]any{"operations", "send_orders_shop-1", "x-runnel-principal"}, "User:alice"},
		{[]any{"operations", "receive_orders_billing", "action"}, "receive"},
		{[]any{"operations", "receive_orders_billing", "bindings", "kafka", "groupId", "enum"}, []any{"billing"}},
	} {
		if got := at(t, doc, c.path...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v = %#v, want %#v", c.path, got, c.want)
		}
	}
	tc := at(t, doc, "channels", "orders", "bindings", "kafka", "topicConfiguration").(map[string]any)
	for k := range tc {
		if strings.HasPrefix(k, "confluent.") {
			t.Errorf("topicConfiguration has %s; vendor configs go to x-runnel-configs", k)
		}
	}
	if got := len(at(t, doc, "channels").(map[string]any)); got != 4 {
		t.Errorf("%d channels, want 4", got)
	}
	msg := at(t, doc, "components", "messages", "clicks", "bindings", "kafka").(map[string]any)
	if _, ok := msg["schemaIdLocation"]; ok {
		t.Errorf("clicks has no schema but its binding says schemaIdLocation: %v", msg)
	}
}

func TestExportSelectedTopics(t *testing.T) {
	s := newCluster().service(t)
	doc := exported(t, s, "sensors", "clicks", "sensors")
	chans := at(t, doc, "channels").(map[string]any)
	if len(chans) != 2 || chans["sensors"] == nil || chans["clicks"] == nil {
		t.Fatalf("channels %v, want clicks and sensors", keysOf(chans))
	}
	if ops, ok := doc["operations"]; ok {
		t.Fatalf("operations %v for topics no client was observed on", ops)
	}
	if _, err := s.Export(context.Background(), []string{"orders", "nope"}); !errors.Is(err, governance.ErrNotFound) {
		t.Fatalf("exporting an unknown topic: %v, want ErrNotFound", err)
	}
}

// TestExportWithoutCatalogOrLineage: the catalog and lineage are
// optional; without them channels carry no metadata and there are no
// operations.
func TestExportWithoutCatalogOrLineage(t *testing.T) {
	c := newCluster()
	s := newService(t, Options{ClusterID: "c", Topics: c.topics, Schemas: c.schemas})
	doc := exported(t, s)
	orders := at(t, doc, "channels", "orders").(map[string]any)
	for _, k := range []string{"x-runnel-owner", "tags", "description"} {
		if _, ok := orders[k]; ok {
			t.Errorf("channel orders has %s without a catalog", k)
		}
	}
	if _, ok := doc["operations"]; ok {
		t.Error("operations without lineage")
	}
	if _, ok := doc["servers"]; ok {
		t.Error("servers without listeners")
	}
	// A failing part fails the export rather than silently dropping it.
	s = newService(t, Options{ClusterID: "c", Topics: c.topics, Schemas: c.schemas, Lineage: failingLineage{}})
	if _, err := s.Export(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "lineage is down") {
		t.Fatalf("export with lineage failing: %v", err)
	}
}

// TestExportYAMLMatchesJSON: the YAML rendering is the same document,
// the Protobuf source a literal block.
func TestExportYAMLMatchesJSON(t *testing.T) {
	s := newCluster().service(t)
	d, err := s.Export(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	js, ct, err := encodeDocument(d, "json")
	if err != nil || ct != "application/json" {
		t.Fatal(ct, err)
	}
	ys, ct, err := encodeDocument(d, "yaml")
	if err != nil || ct != "application/yaml" {
		t.Fatal(ct, err)
	}
	var fromJSON, fromYAML any
	if err := json.Unmarshal(js, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ys, &fromYAML); err != nil {
		t.Fatal(err)
	}
	// Through JSON, so numbers compare as float64 on both sides.
	b, _ := json.Marshal(fromYAML)
	var yamlAsJSON any
	json.Unmarshal(b, &yamlAsJSON)
	if !reflect.DeepEqual(fromJSON, yamlAsJSON) {
		t.Fatalf("YAML and JSON differ:\n%s\n---\n%s", js, ys)
	}
	if !strings.Contains(string(ys), "schema: |") || strings.Contains(string(ys), `message Reading {\n`) {
		t.Errorf("the Protobuf source is not a literal block:\n%s", ys)
	}
	if !strings.HasPrefix(string(ys), "asyncapi: 3.0.0\n") {
		t.Errorf("YAML does not start with the version:\n%.200s", ys)
	}
}

func TestIDs(t *testing.T) {
	k := ids{}
	for _, c := range []struct{ in, want string }{
		{"orders", "orders"},
		{"orders.v1", "orders_v1"},
		{"orders_v1", "orders_v1-2"},
		{"orders.v1", "orders_v1-3"},
		{"", "_"},
	} {
		if got := k.key(c.in); got != c.want {
			t.Errorf("key(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestProtoSyntax(t *testing.T) {
	for src, want := range map[string]int{
		"syntax = \"proto3\";\nmessage A {}":              3,
		"// c\n\nsyntax='proto3';":                        3,
		"syntax = \"proto2\";\nmessage A {}":              2,
		"package a;\nmessage A { optional int32 x = 1; }": 2,
	} {
		if got := protoSyntax(src); got != want {
			t.Errorf("protoSyntax(%q) = %d, want %d", src, got, want)
		}
	}
}

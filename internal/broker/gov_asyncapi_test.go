package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/registry"
)

// TestGovAsyncAPI: the AsyncAPI endpoints of a broker with SCRAM users
// and ACLs: every user may export the cluster (its listeners, topics
// and schemas as they are), only an administrator may import, and an
// import creates the topics and registers the subjects it plans.
func TestGovAsyncAPI(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("admin:pw\nalice:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	cfg.Listeners = []config.ListenerConfig{
		{Name: "INTERNAL", Addr: freeAddr(t), SecurityProtocol: config.ProtocolPlaintext},
		{Name: "EXTERNAL", Addr: freeAddr(t), SecurityProtocol: config.ProtocolSASLPlaintext},
	}
	cfg.SASL.Mechanisms = []string{config.MechanismSCRAMSHA512}
	cfg.SASL.BootstrapUsersFile = users
	cfg.SASL.SCRAMIterations = 4096
	cfg.Authorization.Enabled = true
	cfg.Authorization.SuperUsers = []string{"User:admin"}
	b := startBroker(t, &cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := b.engine.CreateTopic(ctx, "orders", 3, map[string]string{"retention.ms": "3600000"}, false); err != nil {
		t.Fatal(err)
	}
	avro := `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`
	if _, err := b.schemas.Register(ctx, registry.RegisterRequest{Subject: "orders-value", Schema: avro, Type: "AVRO"}); err != nil {
		t.Fatal(err)
	}
	api := "http://" + b.HTTPAddr() + "/api/v1/asyncapi"
	cl := &http.Client{Timeout: 10 * time.Second}

	status, body := get(t, cl, "GET", api+"?format=json", "", "")
	if status != 401 {
		t.Fatalf("export without credentials = %d %s", status, body)
	}
	status, doc := get(t, cl, "GET", api+"?format=json", "alice", "")
	if status != 200 {
		t.Fatalf("export as alice = %d %s", status, doc)
	}
	var d struct {
		Servers map[string]struct {
			Host     string
			Protocol string
			Security []map[string]string
			Bindings struct {
				Kafka struct{ SchemaRegistryURL string }
			}
		}
		Channels map[string]struct {
			Address  string
			Bindings struct {
				Kafka struct {
					Partitions         int
					TopicConfiguration map[string]any
				}
			}
		}
		Components struct {
			Messages map[string]struct {
				Payload struct{ SchemaFormat string }
			}
			SecuritySchemes map[string]struct{ Type string }
		}
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	in, ext := d.Servers["INTERNAL"], d.Servers["EXTERNAL"]
	if in.Host != b.ListenerAddr("INTERNAL") || in.Protocol != "kafka" || len(in.Security) != 0 {
		t.Errorf("server INTERNAL %+v", in)
	}
	if ext.Host != b.ListenerAddr("EXTERNAL") || len(ext.Security) != 1 || ext.Security[0]["$ref"] != "#/components/securitySchemes/saslScramSha512" {
		t.Errorf("server EXTERNAL %+v", ext)
	}
	if got := d.Components.SecuritySchemes["saslScramSha512"].Type; got != "scramSha512" {
		t.Errorf("scheme type %q", got)
	}
	if got := in.Bindings.Kafka.SchemaRegistryURL; got != "http://"+b.RegistryAddr() {
		t.Errorf("schema registry %q, want http://%s", got, b.RegistryAddr())
	}
	ch := d.Channels["orders"]
	if ch.Address != "orders" || ch.Bindings.Kafka.Partitions != 3 || ch.Bindings.Kafka.TopicConfiguration["retention.ms"] != 3600000.0 {
		t.Errorf("channel orders %+v", ch)
	}
	if len(d.Channels) != 1 {
		t.Errorf("channels %v: Kafka's internal topics are no products", d.Channels)
	}
	if f := d.Components.Messages["orders"].Payload.SchemaFormat; f != "application/vnd.apache.avro;version=1.9.0" {
		t.Errorf("payload format %q", f)
	}

	// Importing the cluster's own document finds everything there.
	if status, body := get(t, cl, "POST", api+"/import", "alice", doc); status != 403 {
		t.Fatalf("import as alice = %d %s", status, body)
	}
	status, body = get(t, cl, "POST", api+"/import", "admin", doc)
	if status != 200 || !strings.Contains(body, `"action":"exists"`) || strings.Contains(body, `"create"`) || strings.Contains(body, `"register"`) {
		t.Fatalf("import of the cluster's own document = %d %s", status, body)
	}

	fresh := `asyncapi: 3.0.0
info: {title: t, version: "1"}
channels:
  fresh:
    address: fresh
    bindings: {kafka: {partitions: 2, topicConfiguration: {cleanup.policy: [compact]}}}
    messages:
      m:
        payload:
          schemaFormat: application/schema+json;version=draft-07
          schema: {type: object, properties: {n: {type: integer}}}
`
	status, body = get(t, cl, "POST", api+"/import", "admin", fresh)
	if status != 200 || !strings.Contains(body, `"name":"fresh","action":"create","partitions":2`) || !strings.Contains(body, `"subject":"fresh-value","topic":"fresh","type":"JSON","action":"register"`) {
		t.Fatalf("dry run = %d %s", status, body)
	}
	if _, ok := b.engine.Topic("fresh"); ok {
		t.Fatal("a dry run created the topic")
	}
	status, body = get(t, cl, "POST", api+"/import?dryRun=false", "admin", fresh)
	if status != 200 {
		t.Fatalf("apply = %d %s", status, body)
	}
	ti, ok := b.engine.Topic("fresh")
	if !ok || ti.Partitions != 2 || ti.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("topic fresh after the import: %+v %v", ti, ok)
	}
	ss, err := b.schemas.Version(ctx, "fresh-value", -1, false)
	if err != nil || ss.Type != "JSON" || ss.Schema != `{"type":"object","properties":{"n":{"type":"integer"}}}` {
		t.Fatalf("subject fresh-value: %+v %v", ss, err)
	}
	status, body = get(t, cl, "POST", api+"/import?dryRun=false", "admin", "asyncapi: 2.6.0\nchannels: {a: {}}\n")
	if status != 400 || !strings.Contains(body, "Runnel imports AsyncAPI 3.x documents") {
		t.Fatalf("an AsyncAPI 2 document = %d %s", status, body)
	}

	// What the engine and the registry answer reaches the plan.
	avroDoc := func(partitions int, schema string) string {
		return "asyncapi: 3.0.0\nchannels:\n  orders:\n    address: orders\n" +
			"    bindings: {kafka: {partitions: " + fmt.Sprint(partitions) + "}}\n" +
			"    messages: {m: {payload: {schemaFormat: application/vnd.apache.avro;version=1.9.0, schema: " + schema + "}}}\n"
	}
	for _, c := range []struct {
		name, doc string
		dryRun    bool
		status    int
		want      []string
		unchanged bool
	}{
		{"other partitions", avroDoc(6, `{type: record, name: Order, fields: [{name: id, type: string}]}`), true, 200,
			[]string{`"action":"conflict"`, "partitions: 3 on the cluster, 6 in the document"}, true},
		{"incompatible schema", avroDoc(3, `{type: record, name: Order, fields: [{name: id, type: string}, {name: qty, type: int}]}`), true, 200,
			[]string{`"subject":"orders-value","topic":"orders","type":"AVRO","action":"incompatible"`, "qty"}, true},
		{"invalid schema", avroDoc(3, `{type: record, name: Order, fields: [{name: id, type: strang}]}`), true, 200,
			[]string{`"action":"incompatible","reason":"Invalid schema`}, true},
		{"compatible new version", avroDoc(3, `{type: record, name: Order, fields: [{name: id, type: string}, {name: note, type: ['null', string], default: null}]}`), false, 200,
			[]string{`"action":"register"`, `"version":2`, `"applied":true`}, false},
		{"apply refused", avroDoc(6, `{type: record, name: Order, fields: [{name: id, type: string}]}`), false, 409,
			[]string{`"error_code":40901`, "nothing was applied: topic orders"}, true},
		{"engine refuses configs", "asyncapi: 3.0.0\nchannels:\n  t:\n    address: t\n    x-runnel-configs: {min.compaction.lag.ms: 10, max.compaction.lag.ms: 5}\n", true, 400,
			[]string{`"error_code":40001`, "topic t: stream: invalid config", "min.compaction.lag.ms=10 must not exceed max.compaction.lag.ms=5"}, true},
	} {
		before, _ := b.schemas.Versions(ctx, "orders-value", registry.ListOptions{})
		status, body := get(t, cl, "POST", api+"/import?dryRun="+fmt.Sprint(c.dryRun), "admin", c.doc)
		if status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.status)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: the answer lacks %q: %s", c.name, w, body)
			}
		}
		after, _ := b.schemas.Versions(ctx, "orders-value", registry.ListOptions{})
		if ti, _ := b.engine.Topic("orders"); c.unchanged && (len(after) != len(before) || ti.Partitions != 3) {
			t.Errorf("%s changed the cluster: versions %v → %v, %d partitions", c.name, before, after, ti.Partitions)
		}
	}
}

// TestGovAsyncAPIWithCatalogAndLineage: the export's operations are the
// clients lineage observed (a producer and a consumer group), and an
// import sets the catalog metadata of the topic it creates.
func TestGovAsyncAPIWithCatalogAndLineage(t *testing.T) {
	env := newTestEnv(t, 40*time.Second, nil, 1, "in")
	api := "http://" + env.b.HTTPAddr() + "/api/v1/asyncapi"
	prod, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.DefaultProduceTopic("in"), kgo.ClientID("orders-app"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(env.ctx, &kgo.Record{Value: []byte("r")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.ClientID("reader-1"), kgo.ConsumerGroup("readers"),
		kgo.ConsumeTopics("in"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for n := 0; n == 0; {
		fs := cons.PollFetches(env.ctx)
		if env.ctx.Err() != nil {
			t.Fatal(env.ctx.Err())
		}
		n = fs.NumRecords()
	}

	type op struct {
		Action   string
		Channel  map[string]string
		Bindings struct {
			Kafka struct {
				ClientID *struct{ Enum []string }
				GroupID  *struct{ Enum []string }
			}
		}
		Principal string `json:"x-runnel-principal"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var d struct{ Operations map[string]op }
		code := getJSON(t, api+"?topics=in", &d)
		send, recv := d.Operations["send_in_orders-app"], d.Operations["receive_in_readers"]
		if code == 200 && send.Action == "send" && recv.Action == "receive" {
			if send.Channel["$ref"] != "#/channels/in" || send.Bindings.Kafka.ClientID == nil || send.Bindings.Kafka.ClientID.Enum[0] != "orders-app" ||
				send.Principal != "User:ANONYMOUS" || recv.Bindings.Kafka.GroupID == nil || recv.Bindings.Kafka.GroupID.Enum[0] != "readers" {
				t.Fatalf("operations %+v", d.Operations)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the export never showed the observed clients: %d %+v", code, d.Operations)
		}
	}

	doc := `asyncapi: 3.0.0
channels:
  out:
    address: out
    description: What the readers write.
    tags: [{name: tier-2}]
    x-runnel-owner: Team:readers
    x-runnel-domain: ops
    externalDocs: {url: "https://wiki.example/out", description: Runbook}
`
	cl := &http.Client{Timeout: 10 * time.Second}
	status, body := get(t, cl, "POST", api+"/import?dryRun=false", "", doc)
	if status != 200 || !strings.Contains(body, `"products":[{"topic":"out","action":"create","applied":true}]`) {
		t.Fatalf("import = %d %s", status, body)
	}
	p, err := env.b.gov.catalog.cat.Product(env.ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	if p.Owner != "Team:readers" || p.Description != "What the readers write." || p.Domain != "ops" ||
		!reflect.DeepEqual(p.OwnTags, []string{"tier-2"}) || len(p.Links) != 1 || p.Links[0].URL != "https://wiki.example/out" || p.Version == 0 {
		t.Fatalf("product out %+v", p.ProductCore)
	}
	status, body = get(t, cl, "POST", api+"/import?dryRun=false", "", doc)
	if status != 200 || !strings.Contains(body, `"products":[{"topic":"out","action":"unchanged"}]`) {
		t.Fatalf("second import = %d %s", status, body)
	}
	// Both applies are in the audit log with what they were to do.
	var audit struct{ Items []governance.Event }
	if code := getJSON(t, "http://"+env.b.HTTPAddr()+"/api/v1/audit?action=asyncapi.import", &audit); code != 200 || len(audit.Items) != 2 {
		t.Fatalf("audit = %d %+v", code, audit)
	}
	if got := string(audit.Items[1].After); got != `{"createTopics":["out"],"registerSubjects":[],"setProducts":["out"]}` || audit.Items[1].Actor != "User:ANONYMOUS" {
		t.Errorf("the first import's event %+v (after %s)", audit.Items[1], got)
	}
}

package broker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance/catalog"
)

// TestCatalogProducts: the products API end to end on a broker. A topic
// whose Avro value schema tags a field PII is found by searching the
// field's name, shows the field's tags, takes metadata, and its sample
// (records produced by franz-go, one in a transaction that aborts) shows
// the newest committed records decoded, the PII field masked.
func TestCatalogProducts(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 2, "customers", "clicks")
	ctx := env.ctx
	reg, err := sr.NewClient(sr.URLs("http://" + env.b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	const schema = `{"type":"record","name":"Customer","namespace":"crm","fields":[
		{"name":"id","type":"long"},
		{"name":"emailAddress","type":"string","confluent:tags":["PII"]},
		{"name":"city","type":"string"}]}`
	ss, err := reg.CreateSchema(ctx, "customers-value", sr.Schema{Type: sr.TypeAvro, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	avroSchema := hamba.MustParse(schema)
	value := func(id int64, email string) []byte {
		b, err := hamba.Marshal(avroSchema, map[string]any{"id": id, "emailAddress": email, "city": "Lyon"})
		if err != nil {
			t.Fatal(err)
		}
		return wire(ss.ID, b)
	}
	for i := int64(1); i <= 3; i++ {
		if err := env.cl.ProduceSync(ctx, &kgo.Record{Topic: "customers", Key: []byte{byte(i)}, Value: value(i, "c@example.com")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txn, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.TransactionalID("catalog-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: "customers", Partition: 0, Value: value(99, "aborted@example.com")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if err := env.cl.ProduceSync(ctx, &kgo.Record{Topic: "clicks", Value: []byte("plain")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	api := "http://" + env.b.HTTPAddr() + "/api/v1"
	call := func(method, path, body string, out any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, api+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
		return resp.StatusCode
	}

	// Found by a field's name, once the registry's change reached the index.
	var res catalog.SearchResult
	waitUntil(t, "the schema's fields in the search index", 10*time.Second, func() bool {
		return call("GET", "/products?q=email", "", &res) == 200 && len(res.Items) == 1 && res.Items[0].Topic == "customers"
	})
	if !slices.Equal(res.Items[0].MatchedFields, []string{"emailAddress"}) || !slices.Contains(res.Items[0].Tags, "PII") {
		t.Fatalf("search by field name: %+v", res.Items[0])
	}
	var p catalog.Product
	if status := call("GET", "/products/customers", "", &p); status != 200 || p.Schema == nil || p.Partitions != 2 {
		t.Fatalf("product: %d %+v", status, p)
	}
	if f := p.Schema.Fields[1]; f.Path != "emailAddress" || !slices.Equal(f.Tags, []string{"PII"}) {
		t.Fatalf("field: %+v", f)
	}
	if status := call("PUT", "/products/customers", `{"owner":"Team:crm","description":"Customer master data","tags":["tier-1"]}`, &p); status != 200 || p.Version != 1 {
		t.Fatalf("put: %d %+v", status, p)
	}
	if call("GET", "/products?q=master+data&tag=PII&tag=tier-1", "", &res) != 200 || res.Total != 1 || res.Facets["owners"]["Team:crm"] != 1 {
		t.Fatalf("search by description and tags: %+v", res)
	}
	if status := call("PUT", "/products/customers", `{"description":"stale"}`, nil); status != 409 {
		t.Fatalf("stale put: %d, want 409", status)
	}

	var s catalog.Sample
	if status := call("GET", "/products/customers/sample?limit=10", "", &s); status != 200 || len(s.Items) != 3 {
		t.Fatalf("sample: %d %+v", status, s)
	}
	for _, it := range s.Items {
		v, _ := it.Value.(map[string]any)
		if v["emailAddress"] != catalog.Masked || v["city"] != "Lyon" || !slices.Equal(it.Masked, []string{"emailAddress"}) {
			t.Fatalf("sample record: %+v", it)
		}
		if v["id"] == float64(99) {
			t.Fatalf("an aborted record in the sample: %+v", it)
		}
	}
	if status := call("GET", "/products/clicks/sample", "", &s); status != 200 || len(s.Items) != 1 {
		t.Fatalf("raw sample: %d %+v", status, s)
	}
	if raw, _ := s.Items[0].Value.(map[string]any); raw["text"] != "plain" {
		t.Fatalf("raw value: %+v", s.Items[0])
	}

	// Deleting the topic drops the product from the listings.
	if _, err := env.admin.DeleteTopics(ctx, "clicks"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted topic to leave the catalog", 10*time.Second, func() bool {
		return call("GET", "/products?q=clicks", "", &res) == 200 && res.Total == 0
	})
	if status := call("GET", "/products/clicks", "", nil); status != 404 {
		t.Fatalf("deleted topic without metadata: %d, want 404", status)
	}
}

// TestCatalogSecured: with SASL users and ACLs, the products API answers
// only authenticated callers (HTTP Basic against the SCRAM users), lets
// every one of them discover products, lets only a principal with READ
// on the topic read its sample, and only an administrator (or ALTER on
// the topic) create its metadata.
func TestCatalogSecured(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("admin:admin-pw\nalice:alice-pw\nbob:bob-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(dir, "data"))
	cfg.Listeners = []config.ListenerConfig{
		{Name: "INTERNAL", Addr: cfg.KafkaAddr, SecurityProtocol: config.ProtocolPlaintext},
		{Name: "SASL", Addr: freeAddr(t), SecurityProtocol: config.ProtocolSASLPlaintext},
	}
	cfg.SASL.Mechanisms = []string{config.MechanismSCRAMSHA512}
	cfg.SASL.BootstrapUsersFile = users
	cfg.Authorization = config.AuthorizationConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
	b := startBroker(t, &cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.listeners[1].ln.Addr().String()),
		kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	acl := kadm.NewACLs().Allow("User:bob").Topics("orders").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := adm.CreateACLs(ctx, acl); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("an order")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	api := "http://" + b.HTTPAddr() + "/api/v1"
	call := func(user, method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, api+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if user != "" {
			req.SetBasicAuth(user, user+"-pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	waitUntil(t, "the topic in the catalog", 10*time.Second, func() bool {
		status, body := call("alice", "GET", "/products?q=orders", "")
		return status == 200 && strings.Contains(body, `"topic":"orders"`)
	})
	for _, c := range []struct {
		user, method, path, body string
		status                   int
		contains                 string
	}{
		{"", "GET", "/products", "", 401, "40101"},
		{"alice", "GET", "/products/orders", "", 200, `"topic":"orders"`},
		{"alice", "GET", "/products/orders/sample", "", 403, "READ"},
		{"bob", "GET", "/products/orders/sample", "", 200, `"text":"an order"`},
		{"alice", "PUT", "/products/orders", `{"owner":"User:alice"}`, 403, "ALTER"},
		{"admin", "PUT", "/products/orders", `{"owner":"User:bob"}`, 200, `"owner":"User:bob"`},
		{"bob", "PUT", "/products/orders", `{"owner":"User:bob","description":"by its owner","version":1}`, 200, `"version":2`},
		{"alice", "PUT", "/tags/PII", `{"mask":true}`, 403, "administrator"},
	} {
		if status, body := call(c.user, c.method, c.path, c.body); status != c.status || !strings.Contains(body, c.contains) {
			t.Fatalf("%s %s %s: %d %s, want %d with %q", c.user, c.method, c.path, status, body, c.status, c.contains)
		}
	}
}

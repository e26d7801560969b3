package asyncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/test/harness"
)

// cmdTimeout bounds one run of a program.
const cmdTimeout = 90 * time.Second

func jsDir() string { return filepath.Join(harness.RepoRoot(), "test", "asyncapi", "js") }

// requireParser skips (or, with RUNNEL_REQUIRE_CLIENTS set, fails) when
// node or the parser packages are missing.
func requireParser(t *testing.T) {
	t.Helper()
	var why error
	if _, err := exec.LookPath("node"); err != nil {
		why = err
	}
	for _, p := range []string{"@asyncapi/parser", "@asyncapi/avro-schema-parser", "@asyncapi/protobuf-schema-parser"} {
		if _, err := os.Stat(filepath.Join(jsDir(), "node_modules", p)); err != nil && why == nil {
			why = fmt.Errorf("test/asyncapi/js/node_modules/%s missing: run npm ci in test/asyncapi/js", p)
		}
	}
	if why == nil {
		return
	}
	if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
		t.Fatalf("@asyncapi/parser is required (RUNNEL_REQUIRE_CLIENTS is set) but unusable: %v", why)
	}
	t.Skipf("@asyncapi/parser not available (%v); run scripts/test to install it", why)
}

// topic is one topic of the source cluster.
type topic struct {
	name       string
	partitions int32
	configs    map[string]*string
	schemaType string // "" for none
	schema     string
}

func ptr(s string) *string { return &s }

var topics = []topic{
	{"orders", 3, map[string]*string{"retention.ms": ptr("86400000"), "cleanup.policy": ptr("compact,delete"), "compression.type": ptr("zstd")},
		"AVRO", `{"type": "record", "name": "Order", "namespace": "shop", "fields": [
			{"name": "id", "type": "string"},
			{"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
			{"name": "email", "type": "string", "doc": "the buyer's address", "confluent:tags": ["PII"]},
			{"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}},
			{"name": "note", "type": ["null", "string"], "default": null}]}`},
	{"payments.v1", 2, map[string]*string{"max.message.bytes": ptr("2097152"), "retention.bytes": ptr("1073741824")},
		"JSON", `{"$schema": "http://json-schema.org/draft-07/schema#", "title": "Payment", "type": "object",
			"properties": {"id": {"type": "string"}, "cents": {"type": "integer", "minimum": 0},
			"tags": {"type": "array", "items": {"type": "string"}}}, "required": ["id", "cents"]}`},
	{"sensors", 1, map[string]*string{"confluent.value.schema.validation": ptr("true"), "delete.retention.ms": ptr("3600000")},
		"PROTOBUF", "syntax = \"proto3\";\npackage iot;\n\nmessage Reading {\n  string sensor = 1;\n  double value = 2;\n  int64 at = 3;\n}\n"},
	{"raw-events", 4, nil, "", ""},
}

// product is the catalog metadata set on orders.
const product = `{"owner":"Team:sales","description":"Orders as placed in the shop.","domain":"sales","tags":["tier-1"],` +
	`"links":[{"title":"Runbook","url":"https://wiki.example/orders"}]}`

// TestExportValidatesAndImportRecreates: the exported document parses
// without errors in @asyncapi/parser, and importing it into an empty
// broker recreates the topics, subjects and catalog entries.
func TestExportValidatesAndImportRecreates(t *testing.T) {
	requireParser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("admin:admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secured := "sasl:\n  mechanisms: [SCRAM-SHA-256, SCRAM-SHA-512, PLAIN]\n  bootstrap-users-file: " + users + "\n"
	listeners := []harness.Listener{{Name: "PLAINTEXT", SecurityProtocol: "PLAINTEXT"}, {Name: "CLIENTS", SecurityProtocol: "SASL_PLAINTEXT"}}
	src := harness.Start(t, harness.Options{BrokerID: 1, Config: secured, Listeners: listeners})
	dst := harness.Start(t, harness.Options{BrokerID: 1})

	createTopics(ctx, t, src.Kafka)
	for _, tp := range topics {
		if tp.schemaType != "" {
			registerSchema(t, src.Registry, tp.name+"-value", tp.schemaType, tp.schema)
		}
	}
	registerSchema(t, src.Registry, "orders-key", "AVRO", `"string"`)
	// The catalog sees a new topic within a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, body := call(t, "PUT", src.HTTP, "/api/v1/products/orders", "application/json", product)
		if status == http.StatusOK {
			break
		}
		if status != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("PUT /api/v1/products/orders = %d %s", status, body)
		}
	}

	// Export with the CLI, as YAML, and validate it.
	docPath := filepath.Join(t.TempDir(), "cluster.yaml")
	runnel(ctx, t, nil, "asyncapi", "export", "--http", "http://"+src.HTTP, "-o", docPath)
	v := validate(ctx, t, docPath)
	for _, d := range v.Diagnostics {
		if d.Severity == 0 {
			t.Errorf("@asyncapi/parser error: %s at %v", d.Message, d.Path)
		}
	}
	if !v.Valid {
		t.Fatalf("@asyncapi/parser produced no document: %+v", v.Diagnostics)
	}
	wantChannels := []string{"orders", "payments.v1", "raw-events", "sensors"}
	if !slices.Equal(v.Channels, wantChannels) {
		t.Errorf("parsed channels %v, want %v", v.Channels, wantChannels)
	}
	wantFormats := map[string]string{
		"orders":      "application/vnd.apache.avro;version=1.9.0",
		"payments.v1": "application/schema+json;version=draft-07",
		"sensors":     "application/vnd.google.protobuf;version=3",
	}
	for ch, f := range wantFormats {
		if v.Formats[ch] != f {
			t.Errorf("channel %s: payload format %q, want %q", ch, v.Formats[ch], f)
		}
	}
	if len(v.Servers) != 2 || !slices.Contains(v.Security, "scramSha512") || !slices.Contains(v.Security, "plain") {
		t.Errorf("servers %v with security %v", v.Servers, v.Security)
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}

	// Import into the empty broker: the dry run plans creates and changes
	// nothing.
	out := runnel(ctx, t, nil, "asyncapi", "import", docPath, "--http", "http://"+dst.HTTP)
	for _, want := range []string{"Dry run", "orders", "create", "sensors-value", "register"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	plan := importDoc(t, dst.HTTP, doc, true, http.StatusOK)
	for _, s := range plan.Topics {
		if s.Action != "create" {
			t.Errorf("dry run: topic %s is %s", s.Name, s.Action)
		}
	}
	if len(plan.Topics) != len(topics) || len(plan.Subjects) != 4 {
		t.Errorf("dry run plans %d topics and %d subjects: %+v", len(plan.Topics), len(plan.Subjects), plan)
	}
	if len(plan.Products) != 1 || plan.Products[0].Action != "create" {
		t.Errorf("dry run products %+v", plan.Products)
	}
	srcAdmin, dstAdmin := admin(t, src.Kafka), admin(t, dst.Kafka)
	if names := topicNames(ctx, t, dstAdmin); len(names) != 0 {
		t.Fatalf("the dry run created %v", names)
	}

	// Apply.
	out = runnel(ctx, t, nil, "asyncapi", "import", docPath, "--apply", "--http", "http://"+dst.HTTP)
	if strings.Contains(out, "Dry run") || !strings.Contains(out, "done") {
		t.Errorf("apply output:\n%s", out)
	}
	compareTopics(ctx, t, srcAdmin, dstAdmin)
	for _, subject := range []string{"orders-value", "orders-key", "payments.v1-value", "sensors-value"} {
		a, b := latestSchema(t, src.Registry, subject), latestSchema(t, dst.Registry, subject)
		if a.SchemaType != b.SchemaType || !sameSchema(a.Schema, b.Schema) {
			t.Errorf("subject %s: %s %q on the source, %s %q imported", subject, a.SchemaType, a.Schema, b.SchemaType, b.Schema)
		}
	}
	// The product's own tags are recreated; PII comes from the schema's
	// field on both.
	a, b := getProduct(t, src.HTTP), getProduct(t, dst.HTTP)
	for _, k := range []string{"owner", "description", "domain", "links", "tags", "ownTags"} {
		if !reflect.DeepEqual(a[k], b[k]) {
			t.Errorf("product orders %s: %v on the source, %v imported", k, a[k], b[k])
		}
	}
	if !reflect.DeepEqual(b["tags"], []any{"PII", "tier-1"}) {
		t.Errorf("product orders tags %v, want PII (its email field's) and tier-1", b["tags"])
	}

	// A second import finds everything there.
	again := importDoc(t, dst.HTTP, doc, false, http.StatusOK)
	for _, s := range again.Topics {
		if s.Action != "exists" || s.Applied {
			t.Errorf("second import: topic %s %s", s.Name, s.Action)
		}
	}
	for _, s := range again.Subjects {
		if s.Action != "exists" || s.Applied {
			t.Errorf("second import: subject %s %s", s.Subject, s.Action)
		}
	}
	for _, s := range again.Products {
		if s.Action != "unchanged" || s.Applied {
			t.Errorf("second import: product %s %s", s.Topic, s.Action)
		}
	}

	// A bad document is refused with a reason.
	status, body := call(t, "POST", dst.HTTP, "/api/v1/asyncapi/import?dryRun=false", "application/yaml",
		"asyncapi: 3.0.0\nchannels:\n  x:\n    address: x\n    bindings: {kafka: {topicConfiguration: {retention.days: 7}}}\n")
	if status != http.StatusBadRequest || !strings.Contains(body, `topicConfiguration key \"retention.days\" is not a topic config Runnel knows`) {
		t.Errorf("bad document = %d %s", status, body)
	}
	status, body = call(t, "POST", dst.HTTP, "/api/v1/asyncapi/import", "application/yaml", "openapi: 3.1.0\n")
	if status != http.StatusBadRequest || !strings.Contains(body, "no asyncapi version field") {
		t.Errorf("an OpenAPI document = %d %s", status, body)
	}
}

func admin(t *testing.T, bootstrap string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopics(ctx context.Context, t *testing.T, bootstrap string) {
	t.Helper()
	adm := admin(t, bootstrap)
	for _, tp := range topics {
		resp, err := adm.CreateTopic(ctx, tp.partitions, -1, tp.configs, tp.name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("creating %s: %v", tp.name, err)
		}
	}
}

func topicNames(ctx context.Context, t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return td.Names()
}

// compareTopics checks every topic of the source exists on the target
// with its partitions and the configs it set.
func compareTopics(ctx context.Context, t *testing.T, src, dst *kadm.Client) {
	t.Helper()
	names := make([]string, len(topics))
	for i, tp := range topics {
		names[i] = tp.name
	}
	details, err := dst.ListTopics(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := dst.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		d, ok := details[tp.name]
		if !ok || d.Err != nil {
			t.Errorf("topic %s not on the target: %v", tp.name, d.Err)
			continue
		}
		if got := int32(len(d.Partitions)); got != tp.partitions {
			t.Errorf("topic %s: %d partitions, want %d", tp.name, got, tp.partitions)
		}
		rc, err := configs.On(tp.name, nil)
		if err != nil {
			t.Errorf("configs of %s: %v", tp.name, err)
			continue
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for k, v := range tp.configs {
			want := *v
			if k == "cleanup.policy" {
				want = "compact,delete" // the document lists it sorted
			}
			if got[k] != want {
				t.Errorf("topic %s: %s=%q, want %q", tp.name, k, got[k], want)
			}
		}
	}
}

// call sends a request to a broker's HTTP server.
func call(t *testing.T, method, host, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func registerSchema(t *testing.T, registry, subject, typ, schema string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"schemaType": typ, "schema": schema})
	status, resp := call(t, "POST", registry, "/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", string(body))
	if status != http.StatusOK {
		t.Fatalf("registering %s: %d %s", subject, status, resp)
	}
}

type registered struct {
	SchemaType string `json:"schemaType"`
	Schema     string `json:"schema"`
}

func latestSchema(t *testing.T, registry, subject string) registered {
	t.Helper()
	status, body := call(t, "GET", registry, "/subjects/"+subject+"/versions/latest", "", "")
	if status != http.StatusOK {
		t.Fatalf("subject %s on %s: %d %s", subject, registry, status, body)
	}
	var r registered
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.SchemaType == "" {
		r.SchemaType = "AVRO"
	}
	return r
}

// sameSchema compares schema texts, JSON ones (Avro, JSON Schema) as
// JSON values.
func sameSchema(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil {
		return reflect.DeepEqual(x, y)
	}
	return a == b
}

func getProduct(t *testing.T, host string) map[string]any {
	t.Helper()
	status, body := call(t, "GET", host, "/api/v1/products/orders", "", "")
	if status != http.StatusOK {
		t.Fatalf("product orders on %s: %d %s", host, status, body)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// importResult is the import's answer.
type importResult struct {
	DryRun bool `json:"dryRun"`
	Topics []struct {
		Name    string `json:"name"`
		Action  string `json:"action"`
		Applied bool   `json:"applied"`
	} `json:"topics"`
	Subjects []struct {
		Subject string `json:"subject"`
		Action  string `json:"action"`
		Applied bool   `json:"applied"`
	} `json:"subjects"`
	Products []struct {
		Topic   string `json:"topic"`
		Action  string `json:"action"`
		Applied bool   `json:"applied"`
	} `json:"products"`
	Message string `json:"message"`
}

func importDoc(t *testing.T, host string, doc []byte, dryRun bool, wantStatus int) importResult {
	t.Helper()
	status, body := call(t, "POST", host, fmt.Sprintf("/api/v1/asyncapi/import?dryRun=%t", dryRun), "application/yaml", string(doc))
	if status != wantStatus {
		t.Fatalf("import (dryRun=%t) = %d %s", dryRun, status, body)
	}
	var r importResult
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("import answer %s: %v", body, err)
	}
	return r
}

// runnel runs the CLI and returns its standard output.
func runnel(ctx context.Context, t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Binary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("runnel %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// validation is what js/validate.mjs prints.
type validation struct {
	Valid       bool `json:"valid"`
	Diagnostics []struct {
		Severity int    `json:"severity"`
		Code     any    `json:"code"`
		Message  string `json:"message"`
		Path     []any  `json:"path"`
	} `json:"diagnostics"`
	Channels []string          `json:"channels"`
	Formats  map[string]string `json:"formats"`
	Servers  []string          `json:"servers"`
	Security []string          `json:"security"`
}

func validate(ctx context.Context, t *testing.T, path string) validation {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "validate.mjs", path)
	cmd.Dir = jsDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("validate.mjs: %v: %s", err, stderr.String())
	}
	var v validation
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatalf("validate.mjs printed %q: %v", stdout.String(), err)
	}
	return v
}

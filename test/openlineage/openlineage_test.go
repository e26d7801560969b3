package openlineage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

func dir(parts ...string) string {
	return filepath.Join(append([]string{harness.RepoRoot(), "test", "openlineage"}, parts...)...)
}

// requireAjv skips (or, with RUNNEL_REQUIRE_CLIENTS set, fails) without
// node and js/node_modules (npm ci in test/openlineage/js).
func requireAjv(t *testing.T) {
	t.Helper()
	err := func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		for _, p := range []string{"ajv", "ajv-formats"} {
			if _, err := os.Stat(dir("js", "node_modules", p)); err != nil {
				return fmt.Errorf("test/openlineage/js/node_modules/%s missing: run npm ci in test/openlineage/js", p)
			}
		}
		return nil
	}()
	if err == nil {
		return
	}
	if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
		t.Fatalf("ajv is required (RUNNEL_REQUIRE_CLIENTS is set) but unusable: %v", err)
	}
	t.Skipf("ajv not available (%v); run scripts/test to install it", err)
}

// event is the part of an OpenLineage run event the test reads.
type event struct {
	EventType string `json:"eventType"`
	Run       struct {
		RunID string `json:"runId"`
	} `json:"run"`
	Job struct {
		Namespace, Name string
	} `json:"job"`
	Inputs, Outputs []struct {
		Namespace, Name string
		Facets          map[string]json.RawMessage
	}
}

// collector is the OpenLineage endpoint: it keeps every event as sent.
type collector struct {
	mu  sync.Mutex
	raw []json.RawMessage
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || !json.Valid(b) {
		http.Error(w, "want a JSON event", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.raw = append(c.raw, b)
	c.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (c *collector) events(t *testing.T) ([]json.RawMessage, []event) {
	t.Helper()
	c.mu.Lock()
	raw := slices.Clone(c.raw)
	c.mu.Unlock()
	evs := make([]event, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &evs[i]); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, r)
		}
	}
	return raw, evs
}

func names(ds []struct {
	Namespace, Name string
	Facets          map[string]json.RawMessage
}) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

// validate runs the ajv validator on events; it returns its report and
// whether every event was valid.
func validate(t *testing.T, events []json.RawMessage) (string, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.json")
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", dir("js", "validate.mjs"), dir("testdata"), path)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("validator: %v: %s", err, stderr.String())
	}
	if stderr.Len() > 0 && err == nil {
		t.Logf("validator stderr: %s", stderr.String())
	}
	return out.String(), err == nil
}

// TestTransactionalPipelineLineage: two brokers, a transactional pipeline
// in → out; the elected exporter's events validate against the
// OpenLineage schema and show producer → in → group job → out, and both
// brokers' /api/v1/lineage show the chain.
func TestTransactionalPipelineLineage(t *testing.T) {
	requireAjv(t)
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	cfg := fmt.Sprintf("governance:\n  lineage:\n    openlineage:\n      url: %s/api/v1/lineage\n      namespace: runnel-e2e\n      interval: 1s\ntelemetry:\n  lag-interval: 500ms\n", srv.URL)
	objects := "file://" + t.TempDir()
	b1 := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: objects, Config: cfg})
	b2 := harness.Start(t, harness.Options{BrokerID: 2, ObjectStore: objects, EtcdEndpoints: b1.EtcdURL, Config: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The value schema of "in", for the schema facet.
	avro := `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"customer","type":"string","doc":"who ordered"}]}`
	body, _ := json.Marshal(map[string]string{"schema": avro})
	resp, err := http.Post("http://"+b1.Registry+"/subjects/in-value/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registering the schema: %s", resp.Status)
	}

	admin, err := kgo.NewClient(kgo.SeedBrokers(b1.Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopics(ctx, 1, -1, nil, "in", "out"); err != nil {
		t.Fatal(err)
	}

	const n = 50
	prod, err := kgo.NewClient(kgo.SeedBrokers(b1.Kafka), kgo.ClientID("orders-app"), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range n {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("order-%02d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b2.Kafka), kgo.ClientID("etl"), kgo.TransactionalID("etl-tx"),
		kgo.ConsumerGroup("etl"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("out"), kgo.TransactionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for handled := 0; handled < n; {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := sess.PollRecords(pctx, 100)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("pipeline handled %d of %d: %v", handled, n, ctx.Err())
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, nil) })
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatal(err)
		}
		if committed {
			handled += fs.NumRecords()
		}
	}

	// The chain in the events: the group job reads in and writes out in
	// transactions, the producer job writes in.
	var raw []json.RawMessage
	deadline := time.Now().Add(45 * time.Second)
	for {
		var evs []event
		raw, evs = col.events(t)
		var group, producer *event
		for i := range evs {
			e := &evs[i]
			switch {
			case e.Job.Name == "group:etl" && slices.Equal(names(e.Inputs), []string{"in"}) && slices.Equal(names(e.Outputs), []string{"out"}):
				group = e
			case e.Job.Name == "producer:orders-app" && slices.Equal(names(e.Outputs), []string{"in"}):
				producer = e
			}
		}
		if group != nil && producer != nil {
			if group.Job.Namespace != "runnel-e2e" || !strings.HasPrefix(group.Inputs[0].Namespace, "kafka://127.0.0.1:") ||
				group.Inputs[0].Namespace != producer.Outputs[0].Namespace {
				t.Fatalf("namespaces: job %q, datasets %q and %q", group.Job.Namespace, group.Inputs[0].Namespace, producer.Outputs[0].Namespace)
			}
			if _, ok := group.Inputs[0].Facets["schema"]; !ok {
				t.Fatalf("the input has no schema facet: %s", group.Inputs[0].Facets)
			}
			if evs[0].EventType != "START" {
				t.Errorf("the first event is %s, want START", evs[0].EventType)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no producer → in → group:etl → out chain in %d events:\n%s", len(raw), raw)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The validator must refuse a planted invalid event (no runId, an
	// unknown event type, a schema facet without _producer) before its
	// verdict on the real events counts.
	bad := json.RawMessage(`{"eventType":"HALFWAY","eventTime":"2026-12-07T10:00:00Z","producer":"https://github.com/runnel-dev/runnel",` +
		`"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent","run":{},"job":{"namespace":"n","name":"j"},` +
		`"inputs":[{"namespace":"kafka://x:1","name":"in","facets":{"schema":{"_schemaURL":"https://x/y","fields":[{"type":"long"}]}}}]}`)
	if report, ok := validate(t, []json.RawMessage{bad}); ok {
		t.Fatalf("the validator accepted a planted invalid event: %s", report)
	}
	if report, ok := validate(t, raw); !ok {
		t.Fatalf("invalid OpenLineage events: %s", report)
	} else {
		t.Logf("ajv: %s", strings.TrimSpace(report))
	}

	// Both brokers answer the whole chain from the merged graph.
	for _, b := range []*harness.Proc{b1, b2} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, g := chainOn(t, b)
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker %s: /api/v1/lineage never showed the chain: %s", b.HTTP, g)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// chainOn reports whether b's /api/v1/lineage?topic=in&depth=all has the
// producer → in → group → out edges with the pipeline's records.
func chainOn(t *testing.T, b *harness.Proc) (bool, string) {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTP + "/api/v1/lineage?topic=in&depth=all")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var g struct {
		Edges []struct {
			From, To, Kind, TransactionalID string
			Records                         int64
		}
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &g) != nil {
		return false, string(raw)
	}
	want := map[[3]string]bool{
		{"producer:orders-app", "topic:in", "produces"}: false,
		{"topic:in", "group:etl", "consumes"}:           false,
		{"group:etl", "topic:out", "produces"}:          false,
	}
	for _, e := range g.Edges {
		k := [3]string{e.From, e.To, e.Kind}
		if _, ok := want[k]; ok && e.Records >= 50 {
			want[k] = true
		}
	}
	for _, seen := range want {
		if !seen {
			return false, string(raw)
		}
	}
	return true, string(raw)
}

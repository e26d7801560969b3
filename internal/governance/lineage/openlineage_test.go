package lineage

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/governance"
)

// collector is an OpenLineage endpoint that refuses its first fail posts.
type collector struct {
	mu     sync.Mutex
	fail   int
	posts  int
	events []RunEvent
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts++
	if c.posts <= c.fail {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	var ev RunEvent
	if r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &ev) != nil {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	c.events = append(c.events, ev)
}

func (c *collector) snapshot() []RunEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// owners is a catalog stand-in.
type owners map[string]string

func (o owners) Owner(_ context.Context, topic string) (string, bool, error) {
	v, ok := o[topic]
	return v, ok, nil
}

func (o owners) Owns(context.Context, string, auth.Principal) (bool, error) { return false, nil }

func startExporter(t *testing.T, e *clustertest.Etcd, id int32, url string) *Exporter {
	t.Helper()
	now := newClock().now()
	x := StartExporter(ExporterOptions{
		Client: e.Client(), BrokerID: id, URL: url, Namespace: "prod", Interval: 50 * time.Millisecond,
		Graph:     func() Graph { return Build(pipeline(now), nil, nil, now) },
		Bootstrap: func() string { return "127.0.0.1:9092" },
		Schema: func(_ context.Context, topic string) ([]SchemaField, bool, error) {
			if topic != "in" {
				return nil, false, nil
			}
			return []SchemaField{{Name: "id", Type: "long"}, {Name: "customer", Type: "struct", Fields: []SchemaField{{Name: "email", Type: "string"}}}}, true, nil
		},
		Owners:  func() governance.Owners { return owners{"out": "Team:payments"} },
		Backoff: 10 * time.Millisecond,
	})
	t.Cleanup(func() { x.Close() })
	return x
}

func eventsOf(evs []RunEvent, job string) []RunEvent {
	var out []RunEvent
	for _, e := range evs {
		if e.Job.Name == job {
			out = append(out, e)
		}
	}
	return out
}

// TestExporter: the elected exporter sends START then RUNNING for each
// job, the group job with its inputs and transactional outputs and the
// datasets' schema and ownership facets, retrying refused posts; a second
// broker's exporter sends nothing until the first stops, then goes on with
// the same run ids.
func TestExporter(t *testing.T) {
	e := clustertest.Start(t)
	col := &collector{fail: 2}
	srv := httptest.NewServer(col)
	defer srv.Close()
	one := startExporter(t, e, 1, srv.URL)

	deadline := time.Now().Add(15 * time.Second)
	var group []RunEvent
	for {
		group = eventsOf(col.snapshot(), "group:etl-group")
		if len(group) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events: %+v", col.snapshot())
		}
		time.Sleep(20 * time.Millisecond)
	}
	two := startExporter(t, e, 2, srv.URL) // campaigns while the first is elected
	if group[0].EventType != "START" || group[1].EventType != "RUNNING" || group[0].Run.RunID != group[1].Run.RunID ||
		group[0].Run.RunID != RunID("prod", "group:etl-group") {
		t.Fatalf("group job events %+v", group[:2])
	}
	ev := group[0]
	if ev.Job.Namespace != "prod" || ev.Producer == "" || ev.SchemaURL == "" || ev.EventTime == "" {
		t.Fatalf("event %+v", ev)
	}
	if len(ev.Inputs) != 1 || ev.Inputs[0].Name != "in" || ev.Inputs[0].Namespace != "kafka://127.0.0.1:9092" ||
		len(ev.Outputs) != 1 || ev.Outputs[0].Name != "out" {
		t.Fatalf("group job datasets: in %+v out %+v", ev.Inputs, ev.Outputs)
	}
	schema, _ := ev.Inputs[0].Facets["schema"].(map[string]any)
	if fields, _ := schema["fields"].([]any); len(fields) != 2 || schema["_schemaURL"] == nil || schema["_producer"] == nil {
		t.Fatalf("schema facet %+v", ev.Inputs[0].Facets)
	}
	own, _ := ev.Outputs[0].Facets["ownership"].(map[string]any)
	if list, _ := own["owners"].([]any); len(list) != 1 || list[0].(map[string]any)["name"] != "team:payments" {
		t.Fatalf("ownership facet %+v", ev.Outputs[0].Facets)
	}
	if p := eventsOf(col.snapshot(), "producer:orders-app"); len(p) == 0 || len(p[0].Inputs) != 0 || p[0].Outputs[0].Name != "in" {
		t.Fatalf("producer job events %+v", p)
	}
	time.Sleep(300 * time.Millisecond) // six intervals
	if sent, _ := two.Stats(); sent != 0 {
		t.Fatalf("the second broker's exporter sent %d events while the first was elected", sent)
	}

	one.Close()
	before := len(col.snapshot())
	deadline = time.Now().Add(15 * time.Second)
	var later []RunEvent
	for len(later) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second exporter never took over")
		}
		time.Sleep(20 * time.Millisecond)
		later = eventsOf(col.snapshot()[before:], "group:etl-group")
	}
	if sent, _ := two.Stats(); sent == 0 || later[0].Run.RunID != ev.Run.RunID || later[0].EventType != "START" {
		t.Fatalf("after the handover (%d sent): %+v", sent, later[0])
	}
}

// TestExporterQueueBounded: a full queue drops its oldest event.
func TestExporterQueueBounded(t *testing.T) {
	x := &Exporter{o: ExporterOptions{QueueSize: 2}, wake: make(chan struct{}, 1)}
	for _, s := range []string{"a", "b", "c"} {
		x.enqueue([]byte(s))
	}
	if _, dropped := x.Stats(); dropped != 1 || len(x.queue) != 2 || string(x.queue[0]) != "b" {
		t.Fatalf("dropped %d, queue %q", dropped, x.queue)
	}
}

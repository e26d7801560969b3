package lineage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/governance"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openService(t *testing.T, e *clustertest.Etcd, id int32, mod func(*Options)) *Service {
	t.Helper()
	o := Options{Client: e.Client(), BrokerID: id, DrainInterval: 20 * time.Millisecond, PersistInterval: 50 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitGraph polls s's graph until ok accepts it.
func waitGraph(t *testing.T, s *Service, what string, ok func(Graph) bool) Graph {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := s.Graph()
		if ok(g) {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: graph %+v", what, g)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServiceMergesBrokers: a producer on one broker and a consumer on
// the other, on one etcd: both brokers answer both edges, and an edge seen
// on both is summed.
func TestServiceMergesBrokers(t *testing.T) {
	e := clustertest.Start(t)
	one := openService(t, e, 1, nil)
	two := openService(t, e, 2, nil)

	p := one.Recorder().Open()
	p.Observe(alice, produce("orders", 100, 4))
	c := two.Recorder().Open()
	bob := Client{Principal: "User:bob", ClientID: "billing"}
	c.Observe(bob, Fact{Kind: Fetch, Topic: "orders", Bytes: 100, Records: 4, ProducerID: -1})
	c.Observe(bob, Fact{Kind: Commit, Topic: "orders", Group: "billing-group", ProducerID: -1})
	q := two.Recorder().Open() // the same producer also on broker 2
	q.Observe(alice, produce("orders", 50, 2))

	both := func(g Graph) bool {
		pe := findEdge(g, "producer:orders-app", "topic:orders", EdgeProduces)
		ce := findEdge(g, "topic:orders", "group:billing-group", EdgeConsumes)
		return pe != nil && pe.Records == 6 && pe.Bytes == 150 && ce != nil && ce.Records == 4
	}
	waitGraph(t, one, "broker 1", both)
	waitGraph(t, two, "broker 2", both)
}

// TestServiceKeepsLineageAcrossRestart: a broker's persisted aggregate is
// loaded when it opens again.
func TestServiceKeepsLineageAcrossRestart(t *testing.T) {
	e := clustertest.Start(t)
	s, err := Open(testCtx(t), Options{Client: e.Client(), BrokerID: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Recorder().Open()
	c.Observe(alice, produce("orders", 10, 1))
	if err := s.Close(); err != nil { // persists on close
		t.Fatal(err)
	}
	again := openService(t, e, 3, nil)
	edges, _ := again.agg.Snapshot()
	if len(edges) != 1 || edges[0].Records != 1 || edges[0].Topic != "orders" {
		t.Fatalf("after restart: %+v", edges)
	}
}

// TestServiceBoundsValue: an aggregate larger than MaxValueBytes is
// persisted without its least recently seen edges, and still decodes.
func TestServiceBoundsValue(t *testing.T) {
	var edges []Edge
	for i := range 2000 {
		sum := sha256.Sum256([]byte(strconv.Itoa(i))) // incompressible names
		edges = append(edges, Edge{Key: Key{Kind: Produce, ClientID: hex.EncodeToString(sum[:16]), Topic: "t" + strconv.Itoa(i)},
			First: int64(i), Last: int64(i)})
	}
	val, kept, err := encodeSnapshot(snapshot{Edges: edges}, 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(val) > 8<<10 || kept >= len(edges) || kept == 0 {
		t.Fatalf("%d bytes, %d edges kept", len(val), kept)
	}
	snap, err := decodeSnapshot(val)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range snap.Edges {
		if e.Last < int64(len(edges)-kept) {
			t.Fatalf("kept edge last seen at %d, not among the %d most recent", e.Last, kept)
		}
	}
}

// apiGet calls an API handler as an authenticated caller.
func apiGet(t *testing.T, fn func(http.ResponseWriter, *http.Request, governance.Actor) error, target string, pattern string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(pattern, governance.Handler(nil, fn))
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r = r.WithContext(auth.WithRequestPrincipal(r.Context(), auth.Anonymous, "127.0.0.1"))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: %v: %s", target, err, w.Body)
	}
	return w, body
}

// TestAPI: the lineage and clients endpoints answer the contract's shapes
// and refuse bad input with 4xx.
func TestAPI(t *testing.T) {
	e := clustertest.Start(t)
	clk := newClock()
	s := openService(t, e, 1, func(o *Options) {
		o.Now = clk.now
		o.Topics = func() []Topic { return []Topic{{Name: "in"}, {Name: "out"}, {Name: "idle"}} }
		o.Lag = func() []Lag {
			return []Lag{{Group: "etl-group", Topic: "in", Records: 3, Seconds: 2, HasSeconds: true, Status: "OK"}}
		}
	})
	for _, e := range pipeline(clk.now()) {
		s.agg.Add(e)
	}

	w, body := apiGet(t, s.HandleLineage, "/api/v1/lineage", "GET /api/v1/lineage")
	if w.Code != 200 || len(body["nodes"].([]any)) < 6 || len(body["edges"].([]any)) != 4 {
		t.Fatalf("whole graph: %d %v", w.Code, body)
	}
	w, body = apiGet(t, s.HandleLineage, "/api/v1/lineage?topic=out&depth=all", "GET /api/v1/lineage")
	edges := body["edges"].([]any)
	if w.Code != 200 || len(edges) != 4 {
		t.Fatalf("depth all: %d %v", w.Code, body)
	}
	first := edges[0].(map[string]any)
	for _, k := range []string{"from", "to", "kind", "principal", "clientId", "software", "firstSeen", "lastSeen", "bytes", "records", "window"} {
		if _, ok := first[k]; !ok {
			t.Errorf("edge without %q: %v", k, first)
		}
	}
	if ts, _ := first["lastSeen"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("lastSeen %q is not RFC 3339 UTC", ts)
	}
	w, body = apiGet(t, s.HandleLineage, "/api/v1/lineage?topic=idle", "GET /api/v1/lineage")
	if w.Code != 200 || len(body["edges"].([]any)) != 0 || len(body["nodes"].([]any)) != 1 {
		t.Fatalf("an existing topic without traffic: %d %v", w.Code, body)
	}
	for target, code := range map[string]int{
		"/api/v1/lineage?topic=in&depth=2": 400,
		"/api/v1/lineage?topic=nope":       404,
	} {
		w, body := apiGet(t, s.HandleLineage, target, "GET /api/v1/lineage")
		if w.Code != code || body["error_code"] == nil || body["message"] == "" {
			t.Errorf("%s: %d %v, want %d", target, w.Code, body, code)
		}
	}

	w, body = apiGet(t, s.HandleClients, "/api/v1/products/in/clients", "GET /api/v1/products/{topic}/clients")
	if w.Code != 200 {
		t.Fatalf("clients: %d %v", w.Code, body)
	}
	cons := body["consumers"].([]any)
	if len(body["producers"].([]any)) != 1 || len(cons) != 1 {
		t.Fatalf("clients: %v", body)
	}
	c0 := cons[0].(map[string]any)
	if c0["group"] != "etl-group" || c0["lagRecords"] != 3.0 || c0["lagSeconds"] != 2.0 || c0["status"] != "OK" {
		t.Fatalf("consumer %v", c0)
	}
	tp := body["throughput"].(map[string]any)
	if tp["bytesInPerSec"] != 10.0 || tp["bytesOutPerSec"] != 5.0 {
		t.Fatalf("throughput %v", tp)
	}
	if w, _ := apiGet(t, s.HandleClients, "/api/v1/products/nope/clients", "GET /api/v1/products/{topic}/clients"); w.Code != 404 {
		t.Fatalf("unknown product: %d", w.Code)
	}
}

package lineage

import (
	"testing"
	"time"
)

// pipeline is a transactional consume → produce pipeline as observed: a
// producer writes "in"; the client "etl" fetches "in", commits its group's
// offsets with TxnOffsetCommit under "etl-tx" and produces "out" in the
// same transactions; "audit" reads "out" outside any group.
func pipeline(now time.Time) []Edge {
	ms := now.UnixMilli()
	slot := slotOf(ms)
	w := func(b, r int64) []Bucket { return []Bucket{{Slot: slot, Bytes: b, Records: r}} }
	etl := func(k Key) Key { k.Principal, k.ClientID, k.Software = "User:etl", "etl", "kgo/1.19"; return k }
	return []Edge{
		{Key: Key{Kind: Produce, Principal: "User:alice", ClientID: "orders-app", Software: "apache-kafka-java/3.9.0", Topic: "in"},
			First: ms - 60000, Last: ms, Bytes: 1000, Records: 10, Window: w(600, 6)},
		{Key: etl(Key{Kind: Fetch, Topic: "in"}), First: ms - 50000, Last: ms, Bytes: 900, Records: 9, Window: w(300, 3)},
		{Key: etl(Key{Kind: Commit, Group: "etl-group", TransactionalID: "etl-tx", Topic: "in"}), First: ms - 50000, Last: ms},
		{Key: etl(Key{Kind: Produce, TransactionalID: "etl-tx", Topic: "out"}), First: ms - 50000, Last: ms, Bytes: 800, Records: 9, Window: w(240, 3)},
		{Key: Key{Kind: Fetch, Principal: "User:bob", ClientID: "audit", Topic: "out"}, First: ms - 1000, Last: ms, Bytes: 80, Records: 1},
	}
}

func findEdge(g Graph, from, to, kind string) *GraphEdge {
	for i := range g.Edges {
		if e := &g.Edges[i]; e.From == from && e.To == to && e.Kind == kind {
			return e
		}
	}
	return nil
}

func findNode(g Graph, id string) *Node {
	for i := range g.Nodes {
		if g.Nodes[i].ID == id {
			return &g.Nodes[i]
		}
	}
	return nil
}

// TestBuildTransactionalChain: the producer → in → group → out chain is
// drawn, the group being the job whose transactional id produces "out".
func TestBuildTransactionalChain(t *testing.T) {
	now := newClock().now()
	g := Build(pipeline(now), []Topic{{Name: "in"}, {Name: "out"}}, nil, now)

	p := findEdge(g, "producer:orders-app", "topic:in", EdgeProduces)
	if p == nil || p.Bytes != 1000 || p.Records != 10 || p.Principal != "User:alice" || p.Software != "apache-kafka-java/3.9.0" ||
		p.Window == nil || p.Window.Bytes != 600 || p.Window.Seconds != 60 || p.FirstSeen == nil || !p.LastSeen.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("producer edge %+v", p)
	}
	c := findEdge(g, "topic:in", "group:etl-group", EdgeConsumes)
	if c == nil || c.Group != "etl-group" || c.Bytes != 900 || c.Records != 9 || c.TransactionalID != "etl-tx" || c.ClientID != "etl" {
		t.Fatalf("consumer edge %+v", c)
	}
	o := findEdge(g, "group:etl-group", "topic:out", EdgeProduces)
	if o == nil || o.TransactionalID != "etl-tx" || o.Group != "etl-group" || o.Records != 9 {
		t.Fatalf("the group's output edge %+v (edges %+v)", o, g.Edges)
	}
	if findEdge(g, "producer:etl", "topic:out", EdgeProduces) != nil {
		t.Fatal("the transactional output is also drawn from a producer")
	}
	if a := findEdge(g, "topic:out", "consumer:audit", EdgeConsumes); a == nil || a.Group != "" {
		t.Fatalf("groupless consumer edge %+v", a)
	}
	for id, kind := range map[string]string{"topic:in": NodeTopic, "group:etl-group": NodeGroup, "producer:orders-app": NodeProducer, "consumer:audit": NodeConsumer} {
		if n := findNode(g, id); n == nil || n.Kind != kind {
			t.Errorf("node %s = %+v, want kind %s", id, n, kind)
		}
	}
	if n := findNode(g, "topic:in"); n.Exists == nil || !*n.Exists {
		t.Errorf("topic node %+v does not exist", n)
	}

	one := g.Around("topic:out", false)
	if findEdge(one, "producer:orders-app", "topic:in", EdgeProduces) != nil || findEdge(one, "group:etl-group", "topic:out", EdgeProduces) == nil {
		t.Fatalf("depth 1 around out: %+v", one.Edges)
	}
	all := g.Around("topic:out", true)
	if findEdge(all, "producer:orders-app", "topic:in", EdgeProduces) == nil || findEdge(all, "topic:out", "consumer:audit", EdgeConsumes) == nil {
		t.Fatalf("depth all around out misses the upstream or downstream: %+v", all.Edges)
	}
	for _, n := range all.Nodes {
		if n.ID == "topic:unrelated" {
			t.Fatal("unrelated node")
		}
	}
}

// TestBuildConfiguredNodes: tables, table sources, dead-letter and retry
// topics are nodes with materializes and deadletters edges.
func TestBuildConfiguredNodes(t *testing.T) {
	now := newClock().now()
	topics := []Topic{
		{Name: "orders", Table: &Table{Namespace: "sales", Name: "orders"}, DeadLetters: []string{"orders-table-dlq"}},
		{Name: "prices", Source: "market.prices"},
		{Name: "orders-table-dlq"},
	}
	edges := []Edge{{Key: Key{Kind: Commit, ClientID: "c", Group: "billing", Topic: "orders"}, First: 1, Last: now.UnixMilli()}}
	targets := func(g string) GroupTargets {
		if g != "billing" {
			return GroupTargets{}
		}
		return GroupTargets{Retry: []string{"retry.billing.1", "retry.billing.2"}, DeadLetter: "dlq.billing"}
	}
	g := Build(edges, topics, targets, now)
	for _, want := range []struct{ from, to, kind string }{
		{"topic:orders", "table:sales.orders", EdgeMaterializes},
		{"table:market.prices", "topic:prices", EdgeMaterializes},
		{"topic:orders", "topic:orders-table-dlq", EdgeDeadletters},
		{"group:billing", "topic:retry.billing.1", EdgeDeadletters},
		{"group:billing", "topic:retry.billing.2", EdgeDeadletters},
		{"group:billing", "topic:dlq.billing", EdgeDeadletters},
		{"topic:orders", "group:billing", EdgeConsumes},
	} {
		e := findEdge(g, want.from, want.to, want.kind)
		if e == nil {
			t.Errorf("no %s edge %s → %s", want.kind, want.from, want.to)
		} else if want.kind != EdgeConsumes && (e.FirstSeen != nil || e.Window != nil) {
			t.Errorf("configured edge %+v carries traffic fields", e)
		}
	}
	for id, kind := range map[string]string{
		"table:sales.orders": NodeTable, "table:market.prices": NodeTable, "topic:orders-table-dlq": NodeDLQ,
		"topic:retry.billing.1": NodeRetry, "topic:dlq.billing": NodeDLQ,
	} {
		if n := findNode(g, id); n == nil || n.Kind != kind {
			t.Errorf("node %s = %+v, want kind %s", id, n, kind)
		}
	}
	if n := findNode(g, "topic:dlq.billing"); *n.Exists {
		t.Error("a dead-letter topic not yet created exists")
	}
	if n := findNode(g, "table:sales.orders"); n.Namespace != "sales" || n.Name != "orders" {
		t.Errorf("table node %+v", n)
	}
}

// TestClientsOf: a product's producers and consumers, the consuming
// group's lag, and throughput from the window.
func TestClientsOf(t *testing.T) {
	now := newClock().now()
	g := Build(pipeline(now), nil, nil, now)
	lags := map[[2]string]Lag{{"etl-group", "in"}: {Group: "etl-group", Topic: "in", Records: 42, Seconds: 1.5, HasSeconds: true, Status: "WARN"}}
	c := clientsOf(g, "topic:in", "in", lags)
	if len(c.Producers) != 1 || c.Producers[0].ClientID != "orders-app" {
		t.Fatalf("producers %+v", c.Producers)
	}
	if len(c.Consumers) != 1 {
		t.Fatalf("consumers %+v", c.Consumers)
	}
	ce := c.Consumers[0]
	if ce.Group != "etl-group" || ce.LagRecords == nil || *ce.LagRecords != 42 || ce.LagSeconds == nil || *ce.LagSeconds != 1.5 || ce.Status != "WARN" {
		t.Fatalf("consumer %+v", ce)
	}
	if c.Throughput.BytesInPerSec != 10 || c.Throughput.RecordsInPerSec != 0.1 || c.Throughput.BytesOutPerSec != 5 {
		t.Fatalf("throughput %+v", c.Throughput)
	}
	out := clientsOf(g, "topic:out", "out", lags)
	if len(out.Consumers) != 1 || out.Consumers[0].LagRecords != nil || out.Consumers[0].Status != "" {
		t.Fatalf("groupless consumer of out %+v", out.Consumers)
	}
}

// TestBuildShareFetch: a share fetch is a consumes edge of its share
// group, whatever else its client is linked to.
func TestBuildShareFetch(t *testing.T) {
	now := newClock().now()
	edges := []Edge{
		{Key: Key{Kind: Fetch, ClientID: "worker", Group: "jobs", Topic: "tasks"}, First: 1, Last: now.UnixMilli(), Records: 5},
		{Key: Key{Kind: Member, ClientID: "worker", Group: "other", Topic: "tasks"}, First: 1, Last: now.UnixMilli()},
	}
	g := Build(edges, nil, nil, now)
	if e := findEdge(g, "topic:tasks", "group:jobs", EdgeConsumes); e == nil || e.Records != 5 || e.Group != "jobs" {
		t.Fatalf("share group edge %+v in %+v", e, g.Edges)
	}
}

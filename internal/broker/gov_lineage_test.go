package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance/lineage"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/telemetry/lag"
)

// runPipeline produces n records to "in" and moves them to "out" with a
// GroupTransactSession (group "etl", transactional id "etl-tx").
func runPipeline(t *testing.T, ctx context.Context, prodAddr, etlAddr string, n int) {
	t.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(prodAddr), kgo.DefaultProduceTopic("in"), kgo.ClientID("orders-app"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range n {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("r%03d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(etlAddr), kgo.ClientID("etl"), kgo.TransactionalID("etl-tx"),
		kgo.ConsumerGroup("etl"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("out"), kgo.TransactionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for handled := 0; handled < n; {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := sess.PollRecords(pctx, 100)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("pipeline handled %d: %v", handled, ctx.Err())
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { sess.Produce(ctx, &kgo.Record{Value: r.Value}, nil) })
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatal(err)
		}
		if committed {
			handled += fs.NumRecords()
		}
	}
}

func hasEdge(g lineage.Graph, from, to, kind string) *lineage.GraphEdge {
	for i, e := range g.Edges {
		if e.From == from && e.To == to && e.Kind == kind {
			return &g.Edges[i]
		}
	}
	return nil
}

// TestLineageTwoBrokers: a transactional pipeline whose producer talks to
// one broker and whose consume → produce session talks to the other shows
// as producer → in → group → out on both brokers' /api/v1/lineage, and
// the group's lag on /api/v1/products/in/clients.
func TestLineageTwoBrokers(t *testing.T) {
	shared := "file://" + t.TempDir()
	fast := func(c *config.Config) { c.Telemetry.LagInterval = 200 * time.Millisecond }
	cfg1 := testConfig(t, t.TempDir())
	cfg1.BrokerID, cfg1.ObjectStore = 1, shared
	fast(&cfg1)
	b1 := startBroker(t, &cfg1)
	cfg2 := testConfig(t, t.TempDir())
	cfg2.BrokerID, cfg2.ObjectStore = 2, shared
	cfg2.Etcd.Endpoints = []string{b1.EtcdClientURL()}
	fast(&cfg2)
	b2 := startBroker(t, &cfg2)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(b1.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopics(ctx, 1, -1, nil, "in", "out"); err != nil {
		t.Fatal(err)
	}
	const n = 30
	runPipeline(t, ctx, b1.KafkaAddr(), b2.KafkaAddr(), n)

	for _, b := range []*Broker{b1, b2} {
		var g lineage.Graph
		deadline := time.Now().Add(20 * time.Second)
		for {
			g = lineage.Graph{}
			code := getJSON(t, "http://"+b.HTTPAddr()+"/api/v1/lineage?topic=in&depth=all", &g)
			p := hasEdge(g, "producer:orders-app", "topic:in", lineage.EdgeProduces)
			c := hasEdge(g, "topic:in", "group:etl", lineage.EdgeConsumes)
			o := hasEdge(g, "group:etl", "topic:out", lineage.EdgeProduces)
			if code == http.StatusOK && p != nil && p.Records == n && c != nil && c.Records >= n && o != nil && o.Records >= n {
				if o.TransactionalID != "etl-tx" || c.ClientID != "etl" || p.Software == "" || p.Principal != "User:ANONYMOUS" {
					t.Fatalf("broker %d: edges %+v %+v %+v", b.cfg.BrokerID, *p, *c, *o)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker %d never showed the chain: %d %+v", b.cfg.BrokerID, code, g)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		var c lineage.Clients
		code := getJSON(t, "http://"+b1.HTTPAddr()+"/api/v1/products/in/clients", &c)
		if code == http.StatusOK && len(c.Producers) == 1 && len(c.Consumers) == 1 && c.Consumers[0].LagRecords != nil && *c.Consumers[0].LagRecords == 0 {
			if c.Consumers[0].Group != "etl" || c.Consumers[0].Status == "" || c.Throughput.BytesInPerSec <= 0 {
				t.Fatalf("clients %+v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clients never showed the group's lag: %d %+v", code, c)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLineageOff: with governance.lineage.enabled false the front end has
// no observer and the API answers 404 saying so.
func TestLineageOff(t *testing.T) {
	off := false
	env := newTestEnv(t, 30*time.Second, func(c *config.Config) { c.Governance.Lineage.Enabled = &off }, 1, "in")
	var po protocol.Options
	env.b.lineageProtocolOptions(&po)
	if env.b.gov.lineage.svc != nil || po.Lineage != nil {
		t.Fatal("lineage observes while off")
	}
	resp, err := http.Get("http://" + env.b.HTTPAddr() + "/api/v1/lineage")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusNotFound || body["message"] == nil {
		t.Fatalf("GET /api/v1/lineage with lineage off: %d %v", resp.StatusCode, body)
	}
}

// TestLineageTopicTargets: a topic's configs connect it to its table, the
// table it follows and its dead-letter topics.
func TestLineageTopicTargets(t *testing.T) {
	resolve := func(overrides map[string]string) config.Topic {
		tc, err := config.ResolveTopic(overrides, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tc
	}
	for _, c := range []struct {
		name      string
		overrides map[string]string
		exists    []string
		table     string
		source    string
		dlqs      []string
	}{
		{name: "plain", overrides: nil},
		{name: "table", overrides: map[string]string{"table.enabled": "true", "table.namespace": "sales"}, table: "sales.orders"},
		{name: "table dlq", overrides: map[string]string{"table.enabled": "true", "table.error.mode": "dlq"},
			table: "default.orders", dlqs: []string{"orders-table-dlq"}},
		{name: "table dlq named", overrides: map[string]string{"table.enabled": "true", "table.error.mode": "dlq", "table.error.dlq.topic": "bad-rows"},
			table: "default.orders", dlqs: []string{"bad-rows"}},
		{name: "source", overrides: map[string]string{"table.source": "market.prices"}, source: "market.prices"},
		{name: "schema dlq", overrides: map[string]string{"confluent.value.schema.validation": "true", "schema.validation.failure.action": "DLQ"},
			dlqs: []string{"orders-dlq"}},
		{name: "contract dlq that exists", overrides: map[string]string{"confluent.value.schema.validation": "true"},
			exists: []string{"orders-dlq"}, dlqs: []string{"orders-dlq"}},
		{name: "validation without a dlq", overrides: map[string]string{"confluent.value.schema.validation": "true"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			exists := map[string]bool{"orders": true}
			for _, e := range c.exists {
				exists[e] = true
			}
			table, source, dlqs := lineageTopicTargets("orders", resolve(c.overrides), exists)
			got := ""
			if table != nil {
				got = table.Namespace + "." + table.Name
			}
			if got != c.table || source != c.source || fmt.Sprint(dlqs) != fmt.Sprint(c.dlqs) {
				t.Fatalf("table %q source %q dlqs %v; want %q %q %v", got, source, dlqs, c.table, c.source, c.dlqs)
			}
		})
	}
}

// TestGroupLag: partition rows sum to a group's lag on a topic, with the
// largest lag in seconds and the worst status.
func TestGroupLag(t *testing.T) {
	rows := []lag.Row{
		{Group: "g", Topic: "in", Partition: 0, Lag: 3, LagSeconds: 1, HasLagSeconds: true, Status: lag.StatusOK},
		{Group: "g", Topic: "in", Partition: 1, Lag: 4, LagSeconds: 7, HasLagSeconds: true, Status: lag.StatusStalled},
		{Group: "g", Topic: "out", Partition: 0, Lag: 0, Status: lag.StatusOK},
	}
	got := groupLag(rows)
	want := []lineage.Lag{
		{Group: "g", Topic: "in", Records: 7, Seconds: 7, HasSeconds: true, Status: "STALLED"},
		{Group: "g", Topic: "out", Records: 0, Status: "OK"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groupLag = %+v, want %+v", got, want)
	}
}

// TestLineageGroupTargets: a group's retry policy (GROUP configs) names
// its retry and dead-letter topics; a share group's dead-letter topic
// alone is named too.
func TestLineageGroupTargets(t *testing.T) {
	env := newTestEnv(t, 30*time.Second, nil, 1)
	setGroupConfigs(t, env.ctx, env.cl, "billing", "errors.retry.delays.ms", "300,600", "errors.deadletterqueue.topic.name", "dlq.billing-bad")
	setGroupConfigs(t, env.ctx, env.cl, "workers", "errors.deadletterqueue.topic.name", "dlq.workers")
	for group, want := range map[string]lineage.GroupTargets{
		"billing": {Retry: []string{"retry.billing.1", "retry.billing.2"}, DeadLetter: "dlq.billing-bad"},
		"workers": {DeadLetter: "dlq.workers"},
		"plain":   {},
	} {
		if got := env.b.lineageGroupTargets(group); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %+v, want %+v", group, got, want)
		}
	}
}

// TestLineageAPIAuthenticated: with authentication configured the API
// needs a caller (401 without one), and any authenticated principal may
// read the lineage, ACLs or not: discovery is the point.
func TestLineageAPIAuthenticated(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Authorization.Enabled = true
	b := &Broker{cfg: cfg, log: slog.New(slog.DiscardHandler), cli: clustertest.Start(t).Client(),
		registry: prometheus.NewRegistry(), ready: make(chan struct{}), authn: pwAuthn{}, authz: grants{}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	svc, err := lineage.Open(ctx, lineage.Options{Client: b.cli, Topics: func() []lineage.Topic { return []lineage.Topic{{Name: "orders"}} }})
	if err != nil {
		t.Fatal(err)
	}
	b.gov.lineage.svc = svc
	if err := b.startHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		b.httpSrv.Shutdown(sctx)
		b.wg.Wait()
		svc.Close()
	})
	web := "http://" + b.HTTPAddr()
	for _, c := range []struct {
		name, url, user string
		status          int
		contains        string
	}{
		{"lineage needs credentials", web + "/api/v1/lineage", "", 401, `"error_code":40101`},
		{"lineage wrong password", web + "/api/v1/lineage", "alice:nope", 401, `"error_code":40101`},
		{"lineage for anyone authenticated", web + "/api/v1/lineage?topic=orders", "alice", 200, `"topic:orders"`},
		{"clients need credentials", web + "/api/v1/products/orders/clients", "", 401, `"error_code":40101`},
		{"clients for anyone authenticated", web + "/api/v1/products/orders/clients", "alice", 200, `"producers":[]`},
		{"clients of an unknown topic", web + "/api/v1/products/nope/clients", "alice", 404, `"error_code":40401`},
	} {
		if status, body := get(t, http.DefaultClient, "GET", c.url, c.user, ""); status != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, status, body, c.status, c.contains)
		}
	}
}

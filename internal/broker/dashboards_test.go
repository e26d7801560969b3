package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/runnel-dev/runnel/internal/config"
)

// The dashboard and alert rules shipped in dashboards/.
var (
	dashboardFile = filepath.Join("..", "..", "dashboards", "grafana", "runnel.json")
	alertsFile    = filepath.Join("..", "..", "dashboards", "prometheus", "alerts.yml")
)

// notYetExposed are names the dashboard or the alerts use that a broker
// exposes only after events this test cannot cheaply cause, each with the
// reason. Every other referenced name must be on /metrics.
var notYetExposed = map[string]string{
	"runnel_kafka_sasl_authentications_total": "needs a SASL listener and an authentication",
	"runnel_limit_rejections_total":           "needs a request refused by a memory cap (DESIGN §5a rule 10)",
}

// throttleHook notes that a broker throttled the client.
type throttleHook struct{ throttled atomic.Bool }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.throttled.Store(true)
	}
}

// requireTool skips the test when a tool is missing, unless
// RUNNEL_REQUIRE_CLIENTS says it must be there (scripts/test installs it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
		t.Fatalf("%s is required (RUNNEL_REQUIRE_CLIENTS is set) but unusable: %v", name, err)
	}
	t.Skipf("%s not available (%v); run scripts/test to install it (Debian package prometheus)", name, err)
	return ""
}

// TestAlertRulesCheck: promtool accepts the alert rules.
func TestAlertRulesCheck(t *testing.T) {
	promtool := requireTool(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}
}

// metricNames returns the runnel_ metric names a PromQL expression
// references, outside string literals (so a {__name__=~"runnel_client_.*"}
// selector names none).
func metricNames(expr string) []string {
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
		case isNameStart(c):
			j := i
			for j < len(expr) && (isNameStart(expr[j]) || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			if name := expr[i:j]; strings.HasPrefix(name, "runnel_") && (i == 0 || expr[i-1] != '$') {
				names = append(names, name)
			}
			i = j
		default:
			i++
		}
	}
	return names
}

func isNameStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (api_key) (rate(runnel_kafka_requests_total{instance=~"$instance"}[$__rate_interval]))`, []string{"runnel_kafka_requests_total"}},
		{`runnel_etcd_db_bytes / runnel_etcd_quota_bytes > 0.8`, []string{"runnel_etcd_db_bytes", "runnel_etcd_quota_bytes"}},
		{`count by (__name__) ({__name__=~"runnel_client_.*"})`, nil},
		{`label_values(runnel_topic_bytes_in_total, topic)`, []string{"runnel_topic_bytes_in_total"}},
		{`max(x{l="a\"runnel_b"}) + runnel_c_bucket`, []string{"runnel_c_bucket"}},
	} {
		if got := metricNames(tc.expr); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("metricNames(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// referencedNames returns every runnel_ metric name the dashboard's
// queries (panels and variables) and the alert rules use, with where.
func referencedNames(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if v, _ := dash["schemaVersion"].(float64); v < 36 {
		t.Fatalf("%s: schemaVersion %v, want at least 36", dashboardFile, dash["schemaVersion"])
	}
	exprs := 0
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = title
			} else if name, ok := v["name"].(string); ok {
				where = "$" + name
			}
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					exprs++
					for _, n := range metricNames(s) {
						refs[n] = append(refs[n], "dashboard: "+where)
					}
					continue
				}
				walk(where, x)
			}
		case []any:
			for _, x := range v {
				walk(where, x)
			}
		}
	}
	walk("", dash)
	if exprs < 20 {
		t.Fatalf("%s: only %d queries found", dashboardFile, exprs)
	}

	data, err = os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(r.Expr) {
				refs[n] = append(refs[n], "alert "+r.Alert)
			}
		}
	}
	return refs
}

// scrape reads /metrics with Prometheus' text parser and returns the
// names a query may use: each family's name, and a histogram's or
// summary's _bucket, _sum and _count series.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	names := map[string]bool{}
	for name, mf := range families {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		names[name] = true
		if mf.GetType().String() == "HISTOGRAM" || mf.GetType().String() == "SUMMARY" {
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		}
	}
	return names
}

// TestDashboardMetricsExposed: after a little produce, consume and group
// work and a throttled client, every metric name the dashboard and the
// alert rules use is exposed on /metrics, but for the few listed in
// notYetExposed.
func TestDashboardMetricsExposed(t *testing.T) {
	refs := referencedNames(t)
	env := newTestEnv(t, 60*time.Second, func(c *config.Config) {
		c.Telemetry.LagInterval = 100 * time.Millisecond // lag series soon after the commit
	}, 2, "dash")
	ctx := env.ctx

	prod, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.DefaultProduceTopic("dash"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 10 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.ConsumeTopics("dash"), kgo.ConsumerGroup("dash-group"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < 10; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 10: %v", got, err)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	// A client over a tiny produce quota is throttled.
	var q kadm.AlterClientQuotaEntry
	q.Entity = []kadm.ClientQuotaEntityComponent{{Type: "client-id", Name: kadm.StringPtr("dash-throttled")}}
	q.Ops = []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1}}
	if _, err := env.admin.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{q}); err != nil {
		t.Fatal(err)
	}
	var hook throttleHook
	throttled, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.DefaultProduceTopic("dash"),
		kgo.ClientID("dash-throttled"), kgo.WithHooks(&hook))
	if err != nil {
		t.Fatal(err)
	}
	defer throttled.Close()
	for deadline := time.Now().Add(20 * time.Second); !hook.throttled.Load(); { // until the quota applies
		if time.Now().After(deadline) {
			t.Fatal("no produce was throttled")
		}
		if err := throttled.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	metricsURL := "http://" + env.b.HTTPAddr() + "/metrics"
	exposed := scrape(t, metricsURL)
	for deadline := time.Now().Add(10 * time.Second); !exposed["runnel_group_lag_seconds"] && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // the lag tracker's next evaluation
		exposed = scrape(t, metricsURL)
	}
	var missing []string
	for name, where := range refs {
		if exposed[name] {
			if reason, ok := notYetExposed[name]; ok {
				t.Errorf("%s is exposed now: remove it from notYetExposed (%s)", name, reason)
			}
			continue
		}
		if _, ok := notYetExposed[name]; ok {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (used by %s)", name, strings.Join(where, ", ")))
	}
	for name := range notYetExposed {
		if _, ok := refs[name]; !ok {
			t.Errorf("notYetExposed lists %s, which nothing uses", name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("referenced but not on /metrics:\n%s", strings.Join(missing, "\n"))
	}
	if len(refs) < 30 {
		t.Fatalf("only %d metric names referenced", len(refs))
	}
}

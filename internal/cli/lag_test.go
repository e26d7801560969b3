package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

// scrape returns the gauges of the broker's /metrics whose name starts with
// runnel_group_, keyed "name{label=value,...}" with labels sorted.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "runnel_group_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() { // sorted by name
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[name+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestGroupLagAgainstBroker produces records with known timestamps, has a
// group consume part of them and commit, and checks that the broker's
// /metrics and runnel group lag report the same lag in offsets and in
// seconds, that the group turns STOPPED once its consumer is gone, and that
// a consumer stuck on one offset is STALLED and one falling behind WARN.
func TestGroupLagAgainstBroker(t *testing.T) {
	b := startBrokerWith(t, func(c *config.Config) {
		c.Telemetry.LagInterval = 100 * time.Millisecond // STOPPED after 1 s without a commit
		c.Telemetry.LagPartitionMetrics = true
	})
	addr, metricsURL := b.KafkaAddr(), "http://"+b.HTTPAddr()+"/metrics"
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	const topic, group = "lag-events", "lag-readers"
	createTopic(t, ctx, testAdmin(t, addr), topic, 1)

	// 31 records, one a second from 60 s ago to 30 s ago, one batch each.
	base := time.Now().Add(-60 * time.Second).Truncate(time.Millisecond)
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 31 {
		r := &kgo.Record{Value: fmt.Appendf(nil, "r%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// The group reads the first ten records, commits offset 10 and leaves.
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	for seen := 0; seen < 10; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		seen += fs.NumRecords()
	}
	var commitErr error
	cons.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 10}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil {
				err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
			}
			commitErr = err
		})
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	cons.Close()

	// The first unconsumed record (offset 10) was written with base+10 s.
	expectSeconds := func() float64 { return time.Since(base.Add(10 * time.Second)).Seconds() }
	const tolerance = 2.0
	lagKey := fmt.Sprintf("runnel_group_lag_offsets{agg=max,group=%s,topic=%s}", group, topic)
	secKey := fmt.Sprintf("runnel_group_lag_seconds{group=%s,topic=%s}", group, topic)
	partSecKey := fmt.Sprintf("runnel_group_partition_lag_seconds{group=%s,partition=0,topic=%s}", group, topic)
	var m map[string]float64
	for {
		m = scrape(t, metricsURL)
		if _, ok := m[lagKey]; ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no lag series for the group: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m[lagKey] != 21 || m[strings.Replace(lagKey, "agg=max", "agg=sum", 1)] != 21 {
		t.Fatalf("lag offsets: %v", m)
	}
	if got, want := m[secKey], expectSeconds(); math.Abs(got-want) > tolerance || math.Abs(m[partSecKey]-got) > 1e-9 {
		t.Fatalf("lag seconds %v (partition %v), want %.1f ± %.0f", got, m[partSecKey], want, tolerance)
	}

	// runnel group lag agrees, read through the Kafka protocol alone.
	lagRows := func() []partitionLag {
		t.Helper()
		out, _, err := runLive(t, addr, "group", "lag", group, "--json", "--metrics", metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		var rows []partitionLag
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		if len(rows) != 1 {
			t.Fatalf("rows %s", out)
		}
		return rows
	}
	r := lagRows()[0]
	if r.Topic != topic || r.Partition != 0 || r.Committed != 10 || *r.End != 31 || *r.LSO != 31 || *r.Lag != 21 || *r.StableLag != 21 {
		t.Fatalf("group lag row %+v", r)
	}
	if got, want := *r.LagSeconds, expectSeconds(); math.Abs(got-want) > tolerance || math.Abs(got-scrape(t, metricsURL)[secKey]) > tolerance {
		t.Fatalf("group lag seconds %v, want %.1f ± %.0f and the broker's figure", got, want, tolerance)
	}
	if r.CommitAge == nil || *r.CommitAge < 0 || *r.CommitAge > 30 {
		t.Fatalf("commit age %v", r.CommitAge)
	}
	// So does group describe (DescribeGroups and OffsetFetch).
	out, _, err := runLive(t, addr, "group", "describe", group, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var described []groupJSON
	if err := json.Unmarshal([]byte(out), &described); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(described) != 1 || len(described[0].Offsets) != 1 || described[0].Offsets[0].LagSeconds == nil {
		t.Fatalf("described %s", out)
	}
	if got, want := *described[0].Offsets[0].LagSeconds, expectSeconds(); math.Abs(got-want) > tolerance || *described[0].Offsets[0].Lag != 21 {
		t.Fatalf("describe lag seconds %v, want %.1f ± %.0f", got, want, tolerance)
	}
	out, _, err = runLive(t, addr, "group", "lag")
	if err != nil {
		t.Fatal(err)
	}
	tableRow(t, out, "GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LSO", "LAG", "LAG-SECONDS", "COMMIT-AGE", "STATUS")
	tableRow(t, out, group, topic, "0", "10", "31", "31", "21")

	// Nobody commits any more: after the window (10 × 100 ms) the group is
	// STOPPED, on /metrics and in runnel group lag.
	statusKey := fmt.Sprintf("runnel_group_status{group=%s,topic=%s}", group, topic)
	for scrape(t, metricsURL)[statusKey] != 4 {
		if ctx.Err() != nil {
			t.Fatalf("status never STOPPED: %v", scrape(t, metricsURL))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := lagRows()[0]; r.Status != "STOPPED" || *r.CommitAge < 1 {
		t.Fatalf("stopped group row %+v", r)
	}

	// A consumer that keeps committing the same offset while behind is
	// STALLED; one that commits forward while the log grows faster is WARN.
	adm := testAdmin(t, addr)
	commit := func(group string, off int64) {
		t.Helper()
		var o kadm.Offsets
		o.AddOffset(topic, 0, off, -1)
		resp, err := adm.CommitOffsets(ctx, group, o)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	statusOf := func(group string) float64 {
		return scrape(t, metricsURL)[fmt.Sprintf("runnel_group_status{group=%s,topic=%s}", group, topic)]
	}
	for _, c := range []struct {
		group string
		want  float64
		step  func(i int)
	}{
		{"lag-stalled", 3, func(int) { commit("lag-stalled", 5) }},
		{"lag-behind", 1, func(i int) {
			for range 3 {
				if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("more")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			commit("lag-behind", int64(i))
		}},
	} {
		// Evaluations every 100 ms over 10: a clean window needs about a
		// second of the behaviour; keep it up until the status shows.
		for i := 1; statusOf(c.group) != c.want; i++ {
			if ctx.Err() != nil {
				t.Fatalf("%s: status %v, want %v", c.group, statusOf(c.group), c.want)
			}
			c.step(i)
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestAddBrokerFigures reads commit age and status from per-partition
// series where a broker exports them and from its group and topic series
// otherwise, and leaves groups it does not export alone.
func TestAddBrokerFigures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# TYPE runnel_group_commit_age_seconds gauge
runnel_group_commit_age_seconds{group="a",topic="t"} 7
# TYPE runnel_group_status gauge
runnel_group_status{group="a",topic="t"} 3
runnel_group_status{group="b",topic="t"} 4
# TYPE runnel_group_partition_commit_age_seconds gauge
runnel_group_partition_commit_age_seconds{group="b",partition="1",topic="t"} 2.5
# TYPE runnel_group_partition_status gauge
runnel_group_partition_status{group="b",partition="1",topic="t"} 1
`)
	}))
	defer srv.Close()
	rows := []partitionLag{
		{Group: "a", Topic: "t", Partition: 0},
		{Group: "b", Topic: "t", Partition: 1},
		{Group: "c", Topic: "t", Partition: 0},
	}
	if err := addBrokerFigures(context.Background(), srv.URL, rows); err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(rows))
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s:%s:%s", r.Group, formatSeconds(r.CommitAge), orDash(r.Status)))
	}
	if want := "a:7.0:STALLED b:2.5:WARN c:-:-"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
	if err := addBrokerFigures(context.Background(), srv.URL+"/nope\x7f", rows); err == nil {
		t.Fatal("a bad URL is not an error")
	}
}

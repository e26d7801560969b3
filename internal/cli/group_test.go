package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestResetFlagsSpec(t *testing.T) {
	tests := []struct {
		name    string
		f       resetFlags
		want    resetMode
		wantErr string
	}{
		{"earliest", resetFlags{earliest: true}, resetEarliest, ""},
		{"latest", resetFlags{latest: true}, resetLatest, ""},
		{"offset zero", resetFlags{toOffsetSet: true}, resetToOffset, ""},
		{"datetime", resetFlags{toDatetime: "2024-01-01T00:00:00Z"}, resetToDatetime, ""},
		{"shift", resetFlags{shiftBy: -5, shiftBySet: true}, resetShiftBy, ""},
		{"none", resetFlags{}, 0, "say where to move"},
		{"two", resetFlags{earliest: true, latest: true}, 0, "only one"},
		{"negative offset", resetFlags{toOffset: -1, toOffsetSet: true}, 0, "must not be negative"},
		{"bad datetime", resetFlags{toDatetime: "soon"}, 0, "want RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := tt.f.spec()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || spec.mode != tt.want {
				t.Fatalf("spec = %+v, %v; want mode %d", spec, err, tt.want)
			}
		})
	}
}

func TestPlanReset(t *testing.T) {
	parts := map[int32]partitionState{
		0: {start: 10, end: 100, atTime: 50, committed: 40},
		1: {start: 0, end: 20, atTime: -1, committed: -1},
		2: {start: 5, end: 5, atTime: -1, committed: 5},
	}
	tests := []struct {
		name    string
		spec    resetSpec
		parts   map[int32]partitionState
		want    []int64 // new offsets by partition order
		clamped []bool
		wantErr string
	}{
		{"earliest", resetSpec{mode: resetEarliest}, parts, []int64{10, 0, 5}, []bool{false, false, false}, ""},
		{"latest", resetSpec{mode: resetLatest}, parts, []int64{100, 20, 5}, []bool{false, false, false}, ""},
		{"to offset clamps", resetSpec{mode: resetToOffset, offset: 15}, parts, []int64{15, 15, 5}, []bool{false, false, true}, ""},
		{"to offset below start", resetSpec{mode: resetToOffset, offset: 1}, parts, []int64{10, 1, 5}, []bool{true, false, true}, ""},
		{"datetime falls back to end", resetSpec{mode: resetToDatetime, at: time.Unix(0, 0)}, parts, []int64{50, 20, 5}, []bool{false, false, false}, ""},
		{
			"shift back clamps",
			resetSpec{mode: resetShiftBy, shift: -35},
			map[int32]partitionState{0: parts[0], 2: parts[2]},
			[]int64{10, 5}, []bool{true, true}, "",
		},
		{
			"shift forward",
			resetSpec{mode: resetShiftBy, shift: 10},
			map[int32]partitionState{0: parts[0]},
			[]int64{50}, []bool{false}, "",
		},
		{"shift without commit", resetSpec{mode: resetShiftBy, shift: 1}, parts, nil, nil, "no committed offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := planReset(tt.spec, "t", tt.parts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tt.want) {
				t.Fatalf("rows = %+v", rows)
			}
			for i, r := range rows {
				if i > 0 && rows[i-1].Partition >= r.Partition {
					t.Fatalf("rows not sorted: %+v", rows)
				}
				if r.New != tt.want[i] || r.Clamped != tt.clamped[i] {
					t.Errorf("partition %d: new %d clamped %t, want %d %t", r.Partition, r.New, r.Clamped, tt.want[i], tt.clamped[i])
				}
				if r.Current != tt.parts[r.Partition].committed {
					t.Errorf("partition %d: current %d, want %d", r.Partition, r.Current, tt.parts[r.Partition].committed)
				}
			}
		})
	}
}

func TestParseTopicSelection(t *testing.T) {
	tests := []struct {
		in      string
		topic   string
		parts   []int32
		wantErr bool
	}{
		{"events", "events", nil, false},
		{"events:0,2,2", "events", []int32{0, 2}, false},
		{"events:x", "", nil, true},
		{"events:-1", "", nil, true},
		{":1", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sel, err := parseTopicSelection(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", sel)
				}
				return
			}
			if err != nil || sel.topic != tt.topic || len(sel.partitions) != len(tt.parts) {
				t.Fatalf("got %+v, %v", sel, err)
			}
			for i := range tt.parts {
				if sel.partitions[i] != tt.parts[i] {
					t.Fatalf("got %+v", sel)
				}
			}
		})
	}
}

// consumeAll polls cl until it has seen want records.
func consumeAll(t *testing.T, ctx context.Context, cl *kgo.Client, want int) {
	t.Helper()
	seen := 0
	for seen < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", seen, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		seen += fs.NumRecords()
	}
}

// TestGroupDescribe runs group describe against a broker with a live
// consumer group (a static member that committed one of its two
// partitions) and a group with only committed offsets.
func TestGroupDescribe(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := testAdmin(t, addr)
	const topic = "grp-events"
	createTopic(t, ctx, adm, topic, 2)

	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for i := range 16 {
		p := int32(0)
		if i >= 10 {
			p = 1
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprint(i))})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumerGroup("audit"),
		kgo.InstanceID("audit-1"), kgo.ClientID("audit-client"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Balancers(kgo.RangeBalancer()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	consumeAll(t, ctx, cons, 16)
	var commitErr error
	cons.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 4}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if e := kerr.ErrorForCode(rp.ErrorCode); e != nil && commitErr == nil {
						commitErr = e
					}
				}
			}
		})
	if commitErr != nil {
		t.Fatalf("commit for audit: %v", commitErr)
	}
	idle := make(kadm.Offsets)
	idle.Add(kadm.Offset{Topic: topic, Partition: 1, At: 5, LeaderEpoch: -1})
	resps, err := adm.CommitOffsets(ctx, "idle", idle)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("commit for idle: %v", err)
	}
	memberID, _ := cons.GroupMetadata()

	t.Run("text", func(t *testing.T) {
		out, _, err := runLive(t, addr, "group", "describe", "audit", "idle")
		if err != nil {
			t.Fatal(err)
		}
		blocks := strings.Split(out, "\nGroup:")
		if len(blocks) != 2 {
			t.Fatalf("want two groups, got:\n%s", out)
		}
		audit, idle := blocks[0], "Group:"+blocks[1]
		for _, re := range []string{
			`(?m)^Group: +audit$`, `(?m)^State: +Stable$`, `(?m)^Type: +consumer$`, `(?m)^Protocol: +range$`, `(?m)^Members: +1$`,
			`(?m)^Total lag: 6$`,
		} {
			if !regexp.MustCompile(re).MatchString(audit) {
				t.Errorf("audit does not match %s:\n%s", re, audit)
			}
		}
		tableRow(t, audit, "MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT")
		if row := tableRow(t, audit, memberID, "audit-1"); row[len(row)-1] != topic+":0,1" {
			t.Errorf("member row %q, want assignment %s:0,1", row, topic)
		}
		tableRow(t, audit, "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG-SECONDS", "MEMBER-ID", "CLIENT-ID", "HOST")
		// The records were written just now: a lag of a few seconds at most.
		lagSeconds := func(row []string) {
			t.Helper()
			if s, err := strconv.ParseFloat(row[5], 64); err != nil || s < 0 || s > 60 {
				t.Errorf("lag seconds in %q", row)
			}
		}
		row := tableRow(t, audit, topic, "0", "4", "10", "6")
		lagSeconds(row)
		if row[6] != memberID {
			t.Errorf("row %q, want member %s", row, memberID)
		}
		tableRow(t, audit, topic, "1", "-", "6", "-", "-", memberID)

		for _, re := range []string{`(?m)^Group: +idle$`, `(?m)^State: +Empty$`, `(?m)^Members: +0$`, `(?m)^Total lag: 1$`} {
			if !regexp.MustCompile(re).MatchString(idle) {
				t.Errorf("idle does not match %s:\n%s", re, idle)
			}
		}
		row = tableRow(t, idle, topic, "1", "5", "6", "1")
		lagSeconds(row)
		if strings.Join(row[6:], " ") != "- - -" {
			t.Errorf("idle row %q", row)
		}
	})
	t.Run("unknown group", func(t *testing.T) {
		out, _, err := runLive(t, addr, "group", "describe", "nobody", "idle", "nobody-else")
		if err == nil {
			t.Fatal("want an error for unknown groups")
		}
		for _, want := range []string{`group "nobody" does not exist`, `group "nobody-else" does not exist`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if !strings.Contains(out, "Group:       idle") || strings.Contains(out, "nobody") {
			t.Errorf("the known group should still be described:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, _, err := runLive(t, addr, "group", "describe", "audit", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got []groupJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		if len(got) != 1 {
			t.Fatalf("got %+v", got)
		}
		g := got[0]
		if g.Group != "audit" || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "range" || g.TotalLag != 6 {
			t.Fatalf("group = %+v", g)
		}
		if len(g.Members) != 1 || g.Members[0].InstanceID == nil || *g.Members[0].InstanceID != "audit-1" ||
			len(g.Members[0].Assignment) != 1 || fmt.Sprint(g.Members[0].Assignment[0].Partitions) != "[0 1]" {
			t.Fatalf("members = %+v", g.Members)
		}
		str := func(p *int64) string {
			if p == nil {
				return "null"
			}
			return fmt.Sprint(*p)
		}
		var offs []string
		for _, o := range g.Offsets {
			offs = append(offs, fmt.Sprintf("%d:%s/%s/%s", o.Partition, str(o.Committed), str(o.End), str(o.Lag)))
		}
		if want := "[0:4/10/6 1:null/6/null]"; fmt.Sprint(offs) != want {
			t.Fatalf("offsets = %v, want %s", offs, want)
		}
	})
}

// TestWriteGroupDescription checks the rendering of what a live broker
// test cannot pin down: client ids and hosts, a member without a consumer
// assignment, commit and end offset errors, and a commit past the end.
func TestWriteGroupDescription(t *testing.T) {
	instance := "i-1"
	d := kadm.DescribedGroup{Group: "g", State: "Stable", ProtocolType: "consumer", Protocol: "cooperative-sticky"}
	members := []memberView{
		{id: "m-1", instanceID: &instance, clientID: "cid", host: "/10.0.0.1", assigned: map[string][]int32{"b": {1, 0}, "a": {3}}},
		{id: "m-2", clientID: "other", host: "/10.0.0.2"},
	}
	committed := kadm.OffsetResponses{}
	committed.Add(kadm.OffsetResponse{Offset: kadm.Offset{Topic: "a", Partition: 3, At: 7}})
	committed.Add(kadm.OffsetResponse{Offset: kadm.Offset{Topic: "b", Partition: 0, At: 50}})
	committed.Add(kadm.OffsetResponse{Offset: kadm.Offset{Topic: "c", Partition: 0, At: 1}, Err: kerr.UnstableOffsetCommit})
	ends := kadm.ListedOffsets{}
	for _, e := range []kadm.ListedOffset{
		{Topic: "a", Partition: 3, Offset: 10},
		{Topic: "b", Partition: 0, Offset: 40},
		{Topic: "b", Partition: 1, Offset: 5},
		{Topic: "c", Partition: 0, Err: kerr.UnknownTopicOrPartition},
	} {
		if ends[e.Topic] == nil {
			ends[e.Topic] = map[int32]kadm.ListedOffset{}
		}
		ends[e.Topic][e.Partition] = e
	}
	rows := groupLagRows(members, committed)
	var buf strings.Builder
	// The record at a:3's committed offset 7 is 90 s old.
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lt := lagTimes{times: map[string]map[int32]map[int64]int64{"a": {3: {7: now.Add(-90 * time.Second).UnixMilli()}}}, now: now}
	if err := writeGroupDescription(&buf, d, members, rows, ends, lt); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, re := range []string{`(?m)^Protocol: +cooperative-sticky$`, `(?m)^Members: +2$`, `(?m)^Total lag: 3$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	tableRow(t, out, "m-1", "i-1", "cid", "/10.0.0.1", "a:3", "b:0,1")
	tableRow(t, out, "m-2", "-", "other", "/10.0.0.2", "-")
	tableRow(t, out, "a", "3", "7", "10", "3", "90.0", "m-1", "cid", "/10.0.0.1")
	tableRow(t, out, "b", "0", "50", "40", "0", "0.0", "m-1")
	tableRow(t, out, "b", "1", "-", "5", "-", "-", "m-1")
	row := strings.Join(tableRow(t, out, "c", "0", "error:"), " ")
	if !strings.Contains(row, "UNSTABLE_OFFSET_COMMIT") || !strings.Contains(row, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("errors not shown: %q", row)
	}

	j := describedGroupJSON(d, members, rows, ends, lt)
	if s := j.Offsets[0].LagSeconds; s == nil || *s != 90 {
		t.Fatalf("json lag seconds of a:3 = %v", s)
	}
	if j.TotalLag != 3 || len(j.Members) != 2 || *j.Members[0].InstanceID != "i-1" || j.Members[1].InstanceID != nil ||
		fmt.Sprint(j.Members[0].Assignment) != "[{a [3]} {b [0 1]}]" || len(j.Members[1].Assignment) != 0 {
		t.Fatalf("json = %+v", j)
	}
	if c := j.Offsets[3]; c.Topic != "c" || c.Committed != nil || c.End != nil || c.Lag != nil || !strings.Contains(c.Error, "UNSTABLE_OFFSET_COMMIT") {
		t.Fatalf("json offset with errors = %+v", c)
	}
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestWriteShareGroupDescription checks the rendering of a share group:
// a partition shared by two members, the broker's lag preferred to
// end − start, a partition with no state yet, and start and end errors.
func TestWriteShareGroupDescription(t *testing.T) {
	set := func(parts map[string][]int32) kadm.TopicsSet {
		s := kadm.TopicsSet{}
		for topic, ps := range parts {
			s.Add(topic, ps...)
		}
		return s
	}
	sd := shareGroupDescription{
		d: kadm.DescribedShareGroup{
			GroupID: "jobs", GroupState: "Stable", GroupEpoch: 7, AssignmentEpoch: 7, Assignor: "simple",
			Coordinator: kadm.BrokerDetail{NodeID: 2, Host: "127.0.0.1", Port: 9092},
			Members: []kadm.ShareGroupMember{
				{MemberID: "m-1", ClientID: "w1", ClientHost: "/10.0.0.1", SubscribedTopicNames: []string{"q", "a"},
					Assignment: set(map[string][]int32{"q": {0, 1}})},
				{MemberID: "m-2", ClientID: "w2", ClientHost: "/10.0.0.2", SubscribedTopicNames: []string{"q"},
					Assignment: set(map[string][]int32{"q": {0}, "a": {0}})},
			},
		},
		offsets: kadm.ShareOffsets{
			"q": {
				0: {Topic: "q", Partition: 0, StartOffset: 100, Lag: 30},
				1: {Topic: "q", Partition: 1, StartOffset: 5, Lag: -1},
			},
			"z": {0: {Topic: "z", Partition: 0, StartOffset: -1, Err: kerr.UnknownTopicOrPartition}},
		},
	}
	ends := kadm.ListedOffsets{}
	for _, e := range []kadm.ListedOffset{
		{Topic: "q", Partition: 0, Offset: 150},
		{Topic: "q", Partition: 1, Offset: 9},
		{Topic: "a", Partition: 0, Offset: 4},
		{Topic: "z", Partition: 0, Err: kerr.UnknownTopicOrPartition},
	} {
		if ends[e.Topic] == nil {
			ends[e.Topic] = map[int32]kadm.ListedOffset{}
		}
		ends[e.Topic][e.Partition] = e
	}
	now := time.UnixMilli(1_000_000)
	sd.states = &shareStates{Group: "jobs", Partitions: []shareStatesPart{
		{Topic: "q", Partition: 0, StartOffset: 100, EndOffset: 130, PendingDeadLetters: 2, Runs: []shareStateRun{
			{First: 100, Last: 104, State: "acquired", DeliveryCount: 1, Member: "m-1", LockDeadlineMs: 1_004_500},
			{First: 105, Last: 105, State: "archived"},
			{First: 106, Last: 109, State: "available", DeliveryCount: 3},
			{First: 110, Last: 111, State: "acquired", DeliveryCount: 2, Member: "m-2", LockDeadlineMs: 1_002_000},
			{First: 112, Last: 129, State: "acknowledged"},
		}},
		{Topic: "q", Partition: 1, StartOffset: 5, EndOffset: 5},
	}}
	var buf strings.Builder
	if err := writeShareGroupDescription(&buf, sd, ends, now); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, re := range []string{`(?m)^Group: +jobs$`, `(?m)^Type: +share$`, `(?m)^Assignor: +simple$`, `(?m)^Epoch: +7 \(assignment 7\)$`,
		`(?m)^Coordinator: +2 \(127\.0\.0\.1:9092\)$`, `(?m)^Members: +2$`, `(?m)^Total lag: 34$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	tableRow(t, out, "MEMBER-ID", "CLIENT-ID", "HOST", "SUBSCRIBED", "ASSIGNMENT")
	tableRow(t, out, "m-1", "w1", "/10.0.0.1", "a,q", "q:0,1")
	tableRow(t, out, "m-2", "w2", "/10.0.0.2", "q", "a:0", "q:0")
	tableRow(t, out, "TOPIC", "PARTITION", "START-OFFSET", "END", "LAG", "MEMBERS")
	tableRow(t, out, "a", "0", "-", "4", "-", "1")      // assigned, no state yet
	tableRow(t, out, "q", "0", "100", "150", "30", "2") // the broker's lag
	tableRow(t, out, "q", "1", "5", "9", "4", "1")      // end − start
	tableRow(t, out, "TOPIC", "PARTITION", "ACQUIRED", "TO-REDELIVER", "MAX-DELIVERIES", "HOLDERS", "NEXT-LOCK-EXPIRY", "PENDING-DLQ")
	tableRow(t, out, "q", "0", "7", "4", "3", "2", "2.0s", "2")
	tableRow(t, out, "q", "1", "0", "0", "-", "0", "-", "0")
	row := strings.Join(tableRow(t, out, "z", "0", "error:"), " ")
	if strings.Count(row, "UNKNOWN_TOPIC_OR_PARTITION") != 2 {
		t.Errorf("errors not shown: %q", row)
	}

	j := describedShareGroupJSON(sd, ends)
	if fmt.Sprint(j.InFlight) != "[{q 0 7 4 3 2 1002000 2} {q 1 0 0 0 0 0 0}]" {
		t.Fatalf("json in flight = %v", j.InFlight)
	}
	if j.Type != "share" || j.TotalLag != 34 || len(j.Members) != 2 || fmt.Sprint(j.Members[0].Subscribed) != "[a q]" ||
		fmt.Sprint(j.Members[1].Assignment) != "[{a [0]} {q [0]}]" {
		t.Fatalf("json = %+v", j)
	}
	var parts []string
	str := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	for _, p := range j.Partitions {
		parts = append(parts, fmt.Sprintf("%s%d:%s/%s/%s%v", p.Topic, p.Partition, str(p.StartOffset), str(p.End), str(p.Lag), p.Members))
	}
	if want := "[a0:null/4/null[m-2] q0:100/150/30[m-1 m-2] q1:5/9/4[m-1] z0:null/null/null[]]"; fmt.Sprint(parts) != want {
		t.Fatalf("partitions = %v, want %s", parts, want)
	}
}

// TestGroupShareLive lists and describes a live share group beside a
// consumer group: the share group's type, members and share partitions.
func TestGroupShareLive(t *testing.T) {
	b := startBrokerWith(t, nil)
	addr := b.KafkaAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := testAdmin(t, addr)
	const topic = "share-jobs"
	createTopic(t, ctx, adm, topic, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := setShareGroupConfig(ctx, cl, "jobs", "share.auto.offset.reset", "earliest"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 8 {
		recs = append(recs, &kgo.Record{Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ShareGroup("jobs"), kgo.ClientID("worker"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// Accept the partition 0 records, keep partition 1's acquired.
	for got := 0; got < 8; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 8", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if r.Partition == 0 {
				r.Ack(kgo.AckAccept)
			}
		})
	}
	if err := cons.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}

	out, _, err := runLive(t, addr, "group", "list")
	if err != nil {
		t.Fatal(err)
	}
	tableRow(t, out, "jobs", "Stable", "share")

	out, _, err = runLive(t, addr, "group", "describe", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^Group: +jobs$`, `(?m)^Type: +share$`, `(?m)^State: +Stable$`, `(?m)^Members: +1$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	tableRow(t, out, topic, "0", "4", "4", "0", "1")
	row := tableRow(t, out, topic, "1", "0", "4")
	if row[4] != "4" || row[5] != "1" {
		t.Errorf("partition 1 row %q: want lag 4 (acquired, not acknowledged) and 1 member", row)
	}
	if m := tableRow(t, out, "MEMBER-ID"); len(m) != 5 {
		t.Errorf("member header %q", m)
	}
	if !strings.Contains(out, "worker") || !strings.Contains(out, topic+":0,1") {
		t.Errorf("member row missing:\n%s", out)
	}

	out, _, err = runLive(t, addr, "group", "describe", "jobs", "--http", "http://"+b.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	// Partition 1's four records are held by the one member.
	tableRow(t, out, topic, "1", "4", "0", "1", "1")
	tableRow(t, out, topic, "0", "0", "0", "-", "0", "-", "0")

	out, _, err = runLive(t, addr, "group", "describe", "jobs", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js []shareGroupJSON
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js) != 1 {
		t.Fatalf("%v in %s", err, out)
	}
	if js[0].Type != "share" || len(js[0].Members) != 1 || js[0].Members[0].ClientID != "worker" || len(js[0].Partitions) != 2 || js[0].TotalLag != 4 {
		t.Fatalf("json = %+v", js[0])
	}
}

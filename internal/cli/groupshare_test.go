package cli

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
	var buf strings.Builder
	if err := writeShareGroupDescription(&buf, sd, ends); err != nil {
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
	row := strings.Join(tableRow(t, out, "z", "0", "error:"), " ")
	if strings.Count(row, "UNKNOWN_TOPIC_OR_PARTITION") != 2 {
		t.Errorf("errors not shown: %q", row)
	}

	j := describedShareGroupJSON(sd, ends)
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

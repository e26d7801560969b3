package clients

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func requireKcat(t *testing.T) {
	t.Helper()
	requireTool(t, "kcat", func() error {
		_, err := exec.LookPath("kcat")
		return err
	})
}

// kcatFormat is the consume format; values and keys hold no spaces.
const kcatFormat = `%k %s %p %o %h\n`

// parseKcat parses lines printed with kcatFormat.
func parseKcat(t *testing.T, out string) []rec {
	t.Helper()
	var res []rec
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, " ")
		if len(f) != 5 {
			t.Fatalf("kcat line %q: want 5 fields", line)
		}
		p, err1 := strconv.ParseInt(f[2], 10, 32)
		o, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kcat line %q: bad partition or offset", line)
		}
		var hs [][2]string
		if f[4] != "" {
			for _, kv := range strings.Split(f[4], ",") {
				k, v, _ := strings.Cut(kv, "=")
				hs = append(hs, [2]string{k, v})
			}
		}
		k, v := f[0], f[1]
		res = append(res, rec{Key: &k, Value: &v, Headers: hs, Partition: int32(p), Offset: o})
	}
	return res
}

// kcatInput returns n "key:value" lines and what each record must hold.
func kcatInput(prefix string, n int, headers [][2]string) (string, map[string]expect) {
	var sb strings.Builder
	want := map[string]expect{}
	for i := range n {
		k := fmt.Sprintf("%s-k%03d", prefix, i)
		v := fmt.Sprintf("%s-v%03d-%s", prefix, i, pad)
		fmt.Fprintf(&sb, "%s:%s\n", k, v)
		want[k] = expect{Value: v, Headers: headers}
	}
	return sb.String(), want
}

// TestKcatCodecs produces with every compression codec through kcat's
// idempotent producer, reads everything back with kcat, and checks the
// stored batches carry the codec kcat used.
func TestKcatCodecs(t *testing.T) {
	requireKcat(t)
	b := startBroker(t)
	_, cl := admin(t, b.Kafka)
	const n = 25
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, b.Kafka, topic, 1)
			headers := [][2]string{{"src", "kcat"}, {"codec", codec}}
			input, want := kcatInput(topic, n, headers)
			run(t, b, input, "kcat", "-b", b.Kafka, "-P", "-t", topic, "-z", codec,
				"-K:", "-H", "src=kcat", "-H", "codec="+codec, "-X", "enable.idempotence=true")

			out := run(t, b, "", "kcat", "-b", b.Kafka, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
				"-f", kcatFormat)
			got := parseKcat(t, out)
			// One partition, one producer: record i is at offset i.
			placed := map[string]placement{}
			for i := range n {
				k := fmt.Sprintf("%s-k%03d", topic, i)
				placed[k] = placement{Key: k, Partition: 0, Offset: int64(i)}
			}
			checkConsumed(t, "kcat "+codec, got, want, placed, 1)
			for i, r := range got {
				if r.Offset != int64(i) {
					t.Fatalf("record %d has offset %d: not in offset order", i, r.Offset)
				}
			}

			batches := storedBatches(t, cl, topic, 0)
			if len(batches) == 0 {
				t.Fatal("no stored batches")
			}
			for _, bi := range batches {
				if bi.Codec != codec {
					t.Errorf("batch %d..%d stored with codec %s, kcat sent %s", bi.Base, bi.Last, bi.Codec, codec)
				}
			}
		})
	}
}

// kcatMetadata is the part of `kcat -L -J` the test reads.
type kcatMetadata struct {
	Brokers []struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	} `json:"brokers"`
	Topics []struct {
		Topic      string `json:"topic"`
		Error      string `json:"error"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			Leader    int32  `json:"leader"`
			Error     string `json:"error"`
			Replicas  []struct {
				ID int32 `json:"id"`
			} `json:"replicas"`
		} `json:"partitions"`
	} `json:"topics"`
}

// TestKcatMetadata lists the cluster with kcat -L, as JSON and as text.
func TestKcatMetadata(t *testing.T) {
	requireKcat(t)
	b := startBroker(t)
	createTopic(t, b.Kafka, "meta-a", 3)
	createTopic(t, b.Kafka, "meta-b", 1)

	var md kcatMetadata
	out := run(t, b, "", "kcat", "-b", b.Kafka, "-L", "-J")
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J output %q: %v", out, err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].ID != 0 || md.Brokers[0].Name != b.Kafka {
		t.Errorf("brokers = %+v, want one broker 0 at %s", md.Brokers, b.Kafka)
	}
	parts := map[string][]int32{}
	for _, tp := range md.Topics {
		if tp.Error != "" {
			t.Errorf("topic %s: error %s", tp.Topic, tp.Error)
		}
		for _, p := range tp.Partitions {
			if p.Error != "" || p.Leader != 0 || len(p.Replicas) != 1 || p.Replicas[0].ID != 0 {
				t.Errorf("topic %s partition %d: %+v, want leader 0, replicas [0], no error", tp.Topic, p.Partition, p)
			}
			parts[tp.Topic] = append(parts[tp.Topic], p.Partition)
		}
	}
	for topic, want := range map[string][]int32{"meta-a": {0, 1, 2}, "meta-b": {0}} {
		got := parts[topic]
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("topic %s partitions = %v, want %v", topic, got, want)
		}
	}

	text := run(t, b, "", "kcat", "-b", b.Kafka, "-L", "-t", "meta-a")
	for _, want := range []string{
		"1 brokers:", "broker 0 at " + b.Kafka, `topic "meta-a" with 3 partitions:`,
		"partition 0, leader 0", "partition 1, leader 0", "partition 2, leader 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, text)
		}
	}
}

// TestKcatGroupResume consumes part of a topic in a kcat balanced consumer
// group, then runs it again: the second run continues exactly at the
// committed offsets, and a third run finds nothing left.
func TestKcatGroupResume(t *testing.T) {
	requireKcat(t)
	b := startBroker(t)
	const topic, group, n, firstRun = "kcat-group", "kcat-g1", 30, 12
	createTopic(t, b.Kafka, topic, 3)
	input, want := kcatInput(topic, n, nil)
	run(t, b, input, "kcat", "-b", b.Kafka, "-P", "-t", topic, "-K:", "-z", "lz4")

	consume := func(extra ...string) []rec {
		args := append([]string{"-b", b.Kafka, "-G", group, topic, "-q",
			"-X", "auto.offset.reset=earliest", "-f", kcatFormat}, extra...)
		return parseKcat(t, run(t, b, "", "kcat", args...))
	}
	first := consume("-c", strconv.Itoa(firstRun))
	if len(first) != firstRun {
		t.Fatalf("first run read %d records, want %d", len(first), firstRun)
	}
	second := consume("-e")
	checkConsumed(t, "kcat group", append(slices.Clone(first), second...), want, nil, 3)
	checkResume(t, "kcat group", first, second)
	if third := consume("-e"); len(third) != 0 {
		t.Errorf("third run read %d records after everything was committed: %+v", len(third), third)
	}
}

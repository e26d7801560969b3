package clients

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/runnel-dev/runnel/test/harness"
)

// python is Debian's interpreter, which has python3-confluent-kafka; a
// python3 earlier on PATH (pyenv, venv) would not.
const python = "/usr/bin/python3"

func requirePython(t *testing.T) {
	t.Helper()
	requireTool(t, "python3-confluent-kafka", func() error {
		out, err := exec.Command(python, "-c", "import confluent_kafka").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -c 'import confluent_kafka': %v: %s", python, err, out)
		}
		return nil
	})
}

// clientRecords returns the keys and expected contents of what the Python
// and JS programs produce for prefix (see their doc comments).
func clientRecords(prefix, codec string, n int, want map[string]expect) []string {
	keys := make([]string, 0, n)
	for i := range n {
		k := fmt.Sprintf("%s-k%d", prefix, i)
		keys = append(keys, k)
		want[k] = expect{
			Value:   fmt.Sprintf("%s-v%d-%s", prefix, i, pad),
			Headers: [][2]string{{"h-index", strconv.Itoa(i)}, {"h-codec", codec}},
		}
	}
	return keys
}

// checkCodecs asserts that every record was stored in a batch compressed
// with the codec its producer was asked to use.
func checkCodecs(t *testing.T, b *harness.Proc, topic string, parts int32, placed map[string]placement, codecOf map[string]string) {
	t.Helper()
	_, cl := admin(t, b.Kafka)
	byPart := map[int32]map[int64]string{}
	for p := range parts {
		byPart[p] = codecAt(t, cl, topic, p)
	}
	for _, k := range sortedKeys(placed) {
		pl := placed[k]
		if got, want := byPart[pl.Partition][pl.Offset], codecOf[k]; got != want {
			t.Errorf("record %s at %d/%d stored with codec %q, producer used %q", k, pl.Partition, pl.Offset, got, want)
		}
	}
}

// TestPythonProduceConsume produces with every codec through an idempotent
// acks=all confluent-kafka producer, then consumes in a group in two runs
// that commit, close and resume.
func TestPythonProduceConsume(t *testing.T) {
	requirePython(t)
	b := startBroker(t)
	const topic, group, parts, per = "py-records", "py-group", 3, 12
	createTopic(t, b.Kafka, topic, parts)

	want := map[string]expect{}
	codecOf := map[string]string{}
	var keys []string
	var placed []placement
	for _, codec := range codecs {
		prefix := "py-" + codec
		ks := clientRecords(prefix, codec, per, want)
		for _, k := range ks {
			codecOf[k] = codec
		}
		keys = append(keys, ks...)
		out := run(t, b, "", python, "python/client.py", "produce", "--bootstrap", b.Kafka,
			"--topic", topic, "--compression", codec, "--count", strconv.Itoa(per), "--prefix", prefix)
		placed = append(placed, parseJSONLines[placement](t, out)...)
	}
	byKey := checkPlacements(t, "python produce", placed, keys, parts)
	checkCodecs(t, b, topic, parts, byKey, codecOf)

	consume := func(max int, timeout string) []rec {
		return parseJSONLines[rec](t, run(t, b, "", python, "python/client.py", "consume",
			"--bootstrap", b.Kafka, "--topic", topic, "--group", group,
			"--max", strconv.Itoa(max), "--timeout", timeout))
	}
	total := len(keys)
	first := consume(25, "60")
	if len(first) != 25 {
		t.Fatalf("first run read %d records, want 25", len(first))
	}
	second := consume(total-25, "60")
	checkConsumed(t, "python group", append(slices.Clone(first), second...), want, byKey, parts)
	checkResume(t, "python group", first, second)
	if third := consume(1, "3"); len(third) != 0 {
		t.Errorf("third run read records after everything was committed: %+v", third)
	}
}

// adminStep is one line of the Python and JS admin programs' output.
type adminStep struct {
	Step       string            `json:"step"`
	Error      *string           `json:"error"`
	Partitions []int32           `json:"partitions"`
	Leaders    []int32           `json:"leaders"`
	Brokers    []int32           `json:"brokers"`
	Configs    map[string]string `json:"configs"`
	Present    *bool             `json:"present"`
	Created    *bool             `json:"created"`
	Errors     []int             `json:"errors"`
	Offsets    []struct {
		Partition int32  `json:"partition"`
		Low       string `json:"low"`
		High      string `json:"high"`
	} `json:"offsets"`
}

func stepsByName(t *testing.T, out string, want ...string) map[string]adminStep {
	t.Helper()
	steps := parseJSONLines[adminStep](t, out)
	m := map[string]adminStep{}
	var names []string
	for _, s := range steps {
		m[s.Step] = s
		names = append(names, s.Step)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("admin steps = %v, want %v\n%s", names, want, out)
	}
	return m
}

// TestPythonAdmin creates, describes (topic and configs) and deletes a
// topic with confluent-kafka's AdminClient.
func TestPythonAdmin(t *testing.T) {
	requirePython(t)
	b := startBroker(t)
	out := run(t, b, "", python, "python/client.py", "admin", "--bootstrap", b.Kafka,
		"--topic", "py-admin", "--partitions", "4")
	steps := stepsByName(t, out, "create", "create-again", "describe", "configs", "delete", "after-delete")
	if e := steps["create-again"].Error; e == nil || *e != "TOPIC_ALREADY_EXISTS" {
		t.Errorf("creating an existing topic: error %v, want TOPIC_ALREADY_EXISTS", deref(e))
	}
	d := steps["describe"]
	if d.Error != nil || !slices.Equal(d.Partitions, []int32{0, 1, 2, 3}) ||
		!slices.Equal(d.Leaders, []int32{0}) || !slices.Equal(d.Brokers, []int32{0}) {
		t.Errorf("describe = %+v, want partitions 0..3 led by broker 0", d)
	}
	cfg := steps["configs"].Configs
	for name, want := range map[string]string{
		"retention.ms": "3600000", "cleanup.policy": "delete", "compression.type": "producer",
	} {
		if cfg[name] != want {
			t.Errorf("config %s = %q, want %q", name, cfg[name], want)
		}
	}
	if p := steps["after-delete"].Present; p == nil || *p {
		t.Errorf("topic still listed after delete")
	}
}

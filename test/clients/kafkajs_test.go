package clients

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/runnel-dev/runnel/test/harness"
)

func requireKafkaJS(t *testing.T) {
	t.Helper()
	requireTool(t, "kafkajs", func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		mod := filepath.Join(harness.RepoRoot(), "test", "clients", "js", "node_modules", "kafkajs")
		if _, err := os.Stat(mod); err != nil {
			return errors.New("test/clients/js/node_modules/kafkajs missing: run npm ci in test/clients/js")
		}
		return nil
	})
}

// TestKafkaJSProduceConsume produces with every codec (gzip built in;
// snappy, lz4 and zstd through codec plugins) with kafkajs' idempotent
// producer, then consumes in a group in two runs that commit and resume.
func TestKafkaJSProduceConsume(t *testing.T) {
	requireKafkaJS(t)
	b := startBroker(t)
	const topic, group, parts, per = "js-records", "js-group", 2, 8
	createTopic(t, b.Kafka, topic, parts)

	out := run(t, b, "", "node", "js/client.js", "codecs")
	if got := parseJSONLines[struct{ Codecs []string }](t, out); len(got) != 1 || !slices.Equal(got[0].Codecs, codecs) {
		t.Fatalf("kafkajs codecs = %s, want %v", out, codecs)
	}

	want := map[string]expect{}
	codecOf := map[string]string{}
	var keys []string
	var placed []placement
	for _, codec := range codecs {
		prefix := "js-" + codec
		ks := clientRecords(prefix, codec, per, want)
		for _, k := range ks {
			codecOf[k] = codec
		}
		keys = append(keys, ks...)
		out := run(t, b, "", "node", "js/client.js", "produce", b.Kafka, topic, codec,
			strconv.Itoa(per), prefix, strconv.Itoa(parts))
		placed = append(placed, parseJSONLines[placement](t, out)...)
	}
	byKey := checkPlacements(t, "kafkajs produce", placed, keys, parts)
	checkCodecs(t, b, topic, parts, byKey, codecOf)

	consume := func(max int, timeoutMs int) []rec {
		return parseJSONLines[rec](t, run(t, b, "", "node", "js/client.js", "consume",
			b.Kafka, topic, group, strconv.Itoa(max), strconv.Itoa(timeoutMs)))
	}
	total := len(keys)
	first := consume(13, 60000)
	if len(first) != 13 {
		t.Fatalf("first run read %d records, want 13", len(first))
	}
	second := consume(total-13, 60000)
	checkConsumed(t, "kafkajs group", append(slices.Clone(first), second...), want, byKey, parts)
	checkResume(t, "kafkajs group", first, second)
	if third := consume(1, 3000); len(third) != 0 {
		t.Errorf("third run read records after everything was committed: %+v", third)
	}
}

// TestKafkaJSAdmin creates, lists, describes and deletes a topic with the
// kafkajs admin client.
func TestKafkaJSAdmin(t *testing.T) {
	requireKafkaJS(t)
	b := startBroker(t)
	out := run(t, b, "", "node", "js/client.js", "admin", b.Kafka, "js-admin", "3")
	steps := stepsByName(t, out, "create", "create-again", "list", "describe", "offsets", "delete")
	if c := steps["create"].Created; c == nil || !*c {
		t.Errorf("createTopics reported created=%v, want true", c)
	}
	if c := steps["create-again"].Created; c == nil || *c {
		t.Errorf("creating an existing topic reported created=%v, want false", c)
	}
	if p := steps["list"].Present; p == nil || !*p {
		t.Errorf("listTopics does not include the new topic")
	}
	if d := steps["describe"]; !slices.Equal(d.Partitions, []int32{0, 1, 2}) || len(d.Errors) != 0 {
		t.Errorf("describe = %+v, want partitions 0..2 without errors", d)
	}
	offs := steps["offsets"].Offsets
	if len(offs) != 3 {
		t.Errorf("offsets = %+v, want 3 partitions", offs)
	}
	for _, o := range offs {
		if o.Low != "0" || o.High != "0" {
			t.Errorf("empty partition %d offsets low=%s high=%s, want 0/0", o.Partition, o.Low, o.High)
		}
	}
	if p := steps["delete"].Present; p == nil || *p {
		t.Errorf("topic still listed after delete")
	}
}

package tableflow_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// python is Debian's interpreter, which python3-confluent-kafka installs into.
const python = "/usr/bin/python3"

// tableNamespace is where a topic's table is when table.namespace is not set.
const tableNamespace = "default"

// tableWait bounds how long a table may take to hold every record: a few
// commit intervals of one second.
const tableWait = 45 * time.Second

// baseTimestamp is the first record's timestamp (2026-05-28); records are a
// minute apart, so the tables (partitioned by day of _timestamp by default)
// span a few partitions.
const baseTimestamp = int64(1_780_000_000_000)

// record is one record as the test hands it to a producer program.
type record struct {
	Key       string            `json:"key"`
	Timestamp int64             `json:"timestamp"`
	Headers   map[string]string `json:"headers"`
	Value     map[string]any    `json:"value"`
}

// fixedExprs sum the columns every table has, whatever the value's schema.
var fixedExprs = []string{"_partition", "_offset", "epoch_ms(_timestamp)", "octet_length(_key)", "cardinality(_headers)"}

// tableCase is one topic: how its records look, how they are produced and
// the sums of its value columns.
type tableCase struct {
	format     string
	topic      string
	partitions int32
	n          int
	schema     string
	// value returns record i's value and adds its column sums to s.
	value   func(i int, s sums) map[string]any
	require func(t *testing.T)
	produce func(t *testing.T, b *harness.Proc, c tableCase, in []byte) string
}

const avroSchema = `{"type":"record","name":"Payment","namespace":"runnel.tf","fields":[
	{"name":"id","type":"string"},
	{"name":"qty","type":"int"},
	{"name":"amount","type":"long"},
	{"name":"price","type":"double"},
	{"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
	{"name":"day","type":{"type":"int","logicalType":"date"}},
	{"name":"paid_at","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"customer","type":{"type":"record","name":"Customer","fields":[
		{"name":"name","type":"string"},
		{"name":"score","type":"int"}]}},
	{"name":"note","type":["null","string"],"default":null}]}`

const jsonSchema = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"Reading","type":"object",
	"properties":{
		"id":{"type":"string"},
		"n":{"type":"integer"},
		"score":{"type":"number"},
		"ok":{"type":"boolean"},
		"device":{"type":"object","properties":{"name":{"type":"string"},"level":{"type":"integer"}},"required":["name","level"]},
		"readings":{"type":"array","items":{"type":"number"}}},
	"required":["id","n","score","ok","device","readings"]}`

// avroDecimal is the Avro decimal encoding of unscaled: big-endian two's
// complement, as {"$hex": ...} for js/produce.mjs.
func avroDecimal(unscaled int64) map[string]any {
	b := big.NewInt(unscaled).Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return map[string]any{"$hex": hex.EncodeToString(b)}
}

var tableCases = []tableCase{
	{
		format: "AVRO", topic: "tf-avro", partitions: 3, n: 240, schema: avroSchema,
		value: func(i int, s sums) map[string]any {
			v := map[string]any{
				"id":       fmt.Sprintf("p-%d", i),
				"qty":      i % 11,
				"amount":   int64(i) * 50_000_000_007, // past int32
				"price":    float64(i) / 4,
				"total":    avroDecimal(int64(i)*1234 + 5),
				"day":      20000 + i%30,
				"paid_at":  baseTimestamp + int64(i)*60_000 + 123,
				"customer": map[string]any{"name": fmt.Sprintf("c-%d", i), "score": i * 7 % 100},
				"note":     nil,
			}
			s.addInt("qty", int64(i%11))
			s.addInt("amount", int64(i)*50_000_000_007)
			s.addFloat("price", float64(i)/4)
			s.add("total", ratOfCents(int64(i)*1234+5))
			s.addInt("date_diff('day', DATE '1970-01-01', day)", int64(20000+i%30))
			s.addInt("epoch_ms(paid_at)", baseTimestamp+int64(i)*60_000+123)
			s.addInt("customer.score", int64(i*7%100))
			if i%3 != 0 {
				note := strings.Repeat("n", i%4+1)
				v["note"] = note
				s.addInt("length(note)", int64(len(note)))
			}
			return v
		},
		require: func(t *testing.T) {
			requireNodeModules(t, "kafkajs and @kafkajs/confluent-schema-registry", "kafkajs", "@kafkajs/confluent-schema-registry")
		},
		produce: produceJS,
	},
	{
		format: "JSON", topic: "tf-json", partitions: 2, n: 150, schema: jsonSchema,
		value: func(i int, s sums) map[string]any {
			readings := make([]float64, i%4)
			for j := range readings {
				readings[j] = float64(j) + 0.5
			}
			s.addInt("n", int64(i)*1_000_003)
			s.addFloat("score", float64(i)*0.75)
			s.addInt("CAST(ok AS INTEGER)", int64(i%2))
			s.addInt("device.level", int64(i%9))
			s.addInt("len(readings)", int64(len(readings)))
			return map[string]any{
				"id":       fmt.Sprintf("r-%d", i),
				"n":        int64(i) * 1_000_003,
				"score":    float64(i) * 0.75,
				"ok":       i%2 == 1,
				"device":   map[string]any{"name": fmt.Sprintf("d-%d", i%5), "level": i % 9},
				"readings": readings,
			}
		},
		require: func(t *testing.T) {
			requireNodeModules(t, "kafkajs and @kafkajs/confluent-schema-registry", "kafkajs", "@kafkajs/confluent-schema-registry")
		},
		produce: produceJS,
	},
	{
		// @kafkajs/confluent-schema-registry writes Protobuf without
		// Confluent's message indexes (test/clients pins that), so
		// Protobuf comes from python3-confluent-kafka's serializer.
		format: "PROTOBUF", topic: "tf-proto", partitions: 2, n: 160,
		value: func(i int, s sums) map[string]any {
			s.addInt("qty", int64(i%13))
			s.addInt("amount", int64(i)*9_000_000_011)
			s.addFloat("price", float64(i)*1.25)
			s.addInt("CAST(paid AS INTEGER)", int64(i%3/2))
			s.addInt("customer.score", int64(i%17))
			s.addInt("len(tags)", int64(i%3))
			if i%3 == 1 {
				s.addInt("CASE WHEN status = 'PAID' THEN 1 ELSE 0 END", 1)
			}
			tags := make([]string, i%3)
			for j := range tags {
				tags[j] = fmt.Sprintf("t%d", j)
			}
			return map[string]any{
				"id":       fmt.Sprintf("o-%d", i),
				"qty":      i % 13,
				"amount":   int64(i) * 9_000_000_011,
				"price":    float64(i) * 1.25,
				"paid":     i%3 == 2,
				"customer": map[string]any{"name": fmt.Sprintf("c-%d", i), "score": i % 17},
				"tags":     tags,
				"status":   i % 3, // NEW, PAID, SHIPPED
			}
		},
		require: func(t *testing.T) {
			requireTool(t, "python3-confluent-kafka with its Protobuf serializer", func() error {
				out, err := exec.Command(python, "-c", "import confluent_kafka.schema_registry.protobuf").CombinedOutput()
				if err != nil {
					return fmt.Errorf("%s: %v: %s", python, err, out)
				}
				return nil
			})
		},
		produce: func(t *testing.T, b *harness.Proc, c tableCase, in []byte) string {
			return runClient(t, b, in, filepath.Join(harness.RepoRoot(), "test", "tableflow", "python"),
				python, "produce_proto.py", "--bootstrap", b.Kafka, "--registry", b.Registry, "--topic", c.topic)
		},
	},
}

func produceJS(t *testing.T, b *harness.Proc, c tableCase, in []byte) string {
	return runClient(t, b, in, jsDir(), "node", "produce.mjs", b.Kafka, b.Registry, c.topic, c.format)
}

// runClient runs a producer program with stdin in and returns its stdout;
// a failure fails the test with its stderr and the broker log.
func runClient(t *testing.T, b *harness.Proc, in []byte, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s\nbroker log (tail):\n%s", name, strings.Join(args, " "), err, stderr.String(), tail(b.Log(), 4000))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// TestThirdPartyReaderSumsTables is the first must-show: records
// produced by third-party clients with their schema registry serializers,
// as Avro (nested record, decimal, date and timestamp-millis logical
// types, an optional field), JSON Schema (nested object, array) and
// Protobuf (nested message, repeated field, enum), into topics with
// table.enabled=true and a one-second commit interval; then
// js/read_table.mjs, which shares no code with Runnel, finds each table
// through the broker's REST catalog (/iceberg), reads the manifests and
// lets DuckDB scan the Parquet files. Its row count and the sums of the
// fixed columns (_partition, _offset, _timestamp, _key, _headers) and of
// the value's numeric columns must be exactly those of what was produced.
//
// Run it alone with:
//
//	go test -run TestThirdPartyReaderSumsTables -count=1 -timeout 5m ./test/tableflow/
func TestThirdPartyReaderSumsTables(t *testing.T) {
	requireReader(t)
	b := harness.Start(t, harness.Options{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	catalog := "http://" + b.HTTP + "/iceberg"

	for _, c := range tableCases {
		t.Run(c.format, func(t *testing.T) {
			c.require(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := adm.CreateTopic(ctx, c.partitions, 1, map[string]*string{
				"table.enabled":            kmsg.StringPtr("true"),
				"table.commit.interval.ms": kmsg.StringPtr("1000"),
				// The records carry fixed timestamps months old: the
				// default retention (7 days) would delete them at once.
				"retention.ms": kmsg.StringPtr("-1"),
			}, c.topic)
			if err != nil || res.Err != nil {
				t.Fatalf("create topic %s: %v %v", c.topic, err, res.Err)
			}

			want := sums{}
			records := make([]record, c.n)
			for i := range records {
				r := record{
					Key:       fmt.Sprintf("%s-key-%d", c.format, i),
					Timestamp: baseTimestamp + int64(i)*60_000,
					Value:     c.value(i, want),
				}
				if i%4 == 0 {
					r.Headers = map[string]string{"trace": fmt.Sprintf("t-%d", i), "src": "tf"}
					want.addInt("cardinality(_headers)", 2)
				}
				want.addInt("epoch_ms(_timestamp)", r.Timestamp)
				want.addInt("octet_length(_key)", int64(len(r.Key)))
				records[i] = r
			}
			in, err := json.Marshal(map[string]any{"schema": c.schema, "records": records})
			if err != nil {
				t.Fatal(err)
			}
			out := c.produce(t, b, c, in)
			var produced struct{ ID, Produced int }
			if err := json.Unmarshal([]byte(out), &produced); err != nil || produced.Produced != c.n {
				t.Fatalf("producer printed %q, want %d records produced", out, c.n)
			}
			checkTopic(t, ctx, b.Kafka, c, produced.ID, records)

			// The topic's offsets give the fixed columns' sums: the only
			// producer wrote offsets 0..end-1 of every partition.
			ends, err := adm.ListEndOffsets(ctx, c.topic)
			if err != nil || ends.Error() != nil {
				t.Fatalf("end offsets of %s: %v %v", c.topic, err, ends.Error())
			}
			var total int64
			ends.Each(func(o kadm.ListedOffset) {
				total += o.Offset
				want.addInt("_partition", int64(o.Partition)*o.Offset)
				want.addInt("_offset", o.Offset*(o.Offset-1)/2)
			})
			if total != int64(c.n) {
				t.Fatalf("topic %s holds %d records, produced %d", c.topic, total, c.n)
			}

			exprs := append(append([]string(nil), fixedExprs...), sortedExprs(want, fixedExprs)...)
			got := waitTable(t, b, catalog, c.topic, int64(c.n), exprs)
			checkRead(t, c.topic, got, int64(c.n), want)
			if len(got.Files) == 0 || got.Snapshot == nil {
				t.Errorf("%s: reader read %d files of snapshot %v", c.topic, len(got.Files), got.Snapshot)
			}
		})
	}
}

// checkTopic consumes the topic and checks that it holds exactly what the
// producer was given, in the Confluent wire format with the schema id the
// producer registered (and, for Protobuf, the message index [0] as the
// single byte 0), so that a table that differs is the materialiser's fault.
func checkTopic(t *testing.T, ctx context.Context, addr string, c tableCase, id int, records []record) {
	t.Helper()
	byKey := make(map[string]record, len(records))
	for _, r := range records {
		byKey[r.Key] = r
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(c.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < len(records) && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 && ctx.Err() == nil {
			t.Fatalf("consume %s: %v", c.topic, errs)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			want, ok := byKey[k]
			switch {
			case !ok || seen[k]:
				t.Fatalf("%s: unexpected or repeated key %q at %d/%d", c.topic, k, r.Partition, r.Offset)
			case r.Timestamp.UnixMilli() != want.Timestamp:
				t.Fatalf("%s: key %s timestamp %d, want %d", c.topic, k, r.Timestamp.UnixMilli(), want.Timestamp)
			case len(r.Headers) != len(want.Headers):
				t.Fatalf("%s: key %s has %d headers, want %d", c.topic, k, len(r.Headers), len(want.Headers))
			case len(r.Value) < 6 || r.Value[0] != 0 || int(binary.BigEndian.Uint32(r.Value[1:5])) != id:
				t.Fatalf("%s: key %s value % x does not start with magic 0 and schema id %d", c.topic, k, r.Value[:min(len(r.Value), 6)], id)
			case c.format == "PROTOBUF" && r.Value[5] != 0:
				t.Fatalf("%s: key %s value % x lacks the message index [0] after the schema id", c.topic, k, r.Value[:6])
			}
			seen[k] = true
		})
	}
	if len(seen) != len(records) {
		t.Fatalf("%s: consumed %d of %d records: %v", c.topic, len(seen), len(records), ctx.Err())
	}
}

// sortedExprs lists s's expressions not in skip, in order.
func sortedExprs(s sums, skip []string) []string {
	var out []string
	for e := range s {
		if !slices.Contains(skip, e) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out
}

// waitTable reads the topic's table through the REST catalog until it
// holds n rows (more is a failure at once: a record twice), and returns
// that read.
func waitTable(t *testing.T, b *harness.Proc, catalog, topic string, n int64, exprs []string) tableRead {
	t.Helper()
	deadline := time.Now().Add(tableWait)
	var last *tableRead
	var lastErr error
	for time.Now().Before(deadline) {
		got, err := readTable(context.Background(), catalog, tableNamespace, topic, exprs...)
		switch {
		case err != nil:
			lastErr = err
		case got.Rows > n:
			t.Fatalf("table %s.%s holds %d rows, only %d records were produced: %+v", tableNamespace, topic, got.Rows, n, got)
		case got.Rows == n:
			return got
		default:
			last, lastErr = &got, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	seen := "never read"
	if last != nil {
		seen = fmt.Sprintf("last read %+v", *last)
	}
	if lastErr != nil {
		seen += fmt.Sprintf(", then %v", lastErr)
	}
	t.Fatalf("table %s.%s did not hold %d rows within %v: %s\nbroker log (tail):\n%s",
		tableNamespace, topic, n, tableWait, seen, tail(b.Log(), 4000))
	return tableRead{}
}

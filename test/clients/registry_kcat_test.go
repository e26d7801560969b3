package clients

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// kcatPaymentSchema is the Avro value schema of the data-contract test.
const kcatPaymentSchema = `{"type":"record","name":"Payment","namespace":"runnel.kcat","fields":[` +
	`{"name":"id","type":"string"},{"name":"amount","type":"double"}]}`

// kcatRule is one domain rule of a registered data contract.
type kcatRule struct {
	Name      string            `json:"name"`
	Kind      string            `json:"kind"`
	Mode      string            `json:"mode"`
	Type      string            `json:"type"`
	Expr      string            `json:"expr"`
	OnFailure string            `json:"onFailure"`
	Params    map[string]string `json:"params,omitempty"`
}

// registerAvro registers schema under subject with one domain rule through
// the registry's REST API, as any Confluent client would, and returns the
// schema id.
func registerAvro(t *testing.T, b *harness.Proc, subject, schema string, rule kcatRule) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"schemaType": "AVRO",
		"schema":     schema,
		"ruleSet":    map[string]any{"domainRules": []kcatRule{rule}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+b.Registry+"/subjects/"+subject+"/versions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register %s: HTTP %d: %s", subject, resp.StatusCode, out)
	}
	var res struct {
		ID int `json:"id"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.ID <= 0 {
		t.Fatalf("register %s: response %s: %v", subject, out, err)
	}
	return res.ID
}

// confluentWire frames an encoded payload in the registry wire format:
// magic byte 0, the schema id as 4 bytes big endian, the payload.
func confluentWire(id int, payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, payload...)
}

// kcatInvalidRecord is how kcat reports a delivery that failed with
// INVALID_RECORD (error code 87): librdkafka's text for the code. kcat's
// librdkafka (2.0) produces with Produce v7, before KIP-467, so it never
// sees the broker's per-record reason.
const kcatInvalidRecord = "% Delivery failed for message: Broker: Broker failed to validate record"

// kcatResult is what one kcat run did.
type kcatResult struct {
	code   int // exit status
	stdout []byte
	stderr string
}

// runKcat runs kcat and returns its exit status and output; only a failure
// to run it at all (or a timeout) fails the test.
func runKcat(t *testing.T, b *harness.Proc, stdin []byte, args ...string) kcatResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", append([]string{"-b", b.Kafka}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return kcatResult{stdout: stdout.Bytes(), stderr: stderr.String()}
	case errors.As(err, &exit) && ctx.Err() == nil:
		return kcatResult{code: exit.ExitCode(), stdout: stdout.Bytes(), stderr: stderr.String()}
	}
	t.Fatalf("kcat %s: %v\nstderr:\n%s\nbroker log (tail):\n%s", strings.Join(args, " "), err, tail(stderr.String(), 4000), tail(b.Log(), 4000))
	return kcatResult{}
}

// kcatProduceFile writes value to a file and has kcat send the whole file
// as one message (file mode without -l), so every byte goes out exactly as
// written, newlines and NULs included. extra are more kcat arguments.
func kcatProduceFile(t *testing.T, b *harness.Proc, topic, key string, value []byte, extra ...string) kcatResult {
	t.Helper()
	path := filepath.Join(t.TempDir(), "value.bin")
	if err := os.WriteFile(path, value, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-P", "-t", topic, "-p", "0", "-k", key}, extra...)
	return runKcat(t, b, nil, append(args, path)...)
}

// kcatRecord is one consumed record, with exact bytes.
type kcatRecord struct {
	Partition int32
	Offset    int64
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value
	Headers   map[string]string
}

// kcatBinaryFormat prints each record's partition, offset, value and key
// lengths on one line, then the key and value bytes, then a newline and the
// headers on their own line: the lengths frame the binary parts.
const kcatBinaryFormat = `%p %o %S %K\n%k%s\n%h\n`

// kcatConsume reads a whole partition-0 topic with kcat -C.
func kcatConsume(t *testing.T, b *harness.Proc, topic string) []kcatRecord {
	t.Helper()
	res := runKcat(t, b, nil, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", kcatBinaryFormat)
	if res.code != 0 {
		t.Fatalf("kcat -C -t %s: exit %d\nstderr:\n%s", topic, res.code, res.stderr)
	}
	return parseKcatBinary(t, res.stdout)
}

// parseKcatBinary parses kcatBinaryFormat output.
func parseKcatBinary(t *testing.T, out []byte) []kcatRecord {
	t.Helper()
	var recs []kcatRecord
	for len(out) > 0 {
		line, rest, ok := bytes.Cut(out, []byte("\n"))
		if !ok {
			t.Fatalf("kcat output: unterminated record line %q", out)
		}
		f := strings.Fields(string(line))
		if len(f) != 4 {
			t.Fatalf("kcat output: record line %q: want partition, offset, value and key lengths", line)
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		vlen, err3 := strconv.Atoi(f[2])
		klen, err4 := strconv.Atoi(f[3])
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatalf("kcat output: record line %q: %v", line, err)
		}
		r := kcatRecord{Partition: int32(p), Offset: o}
		take := func(n int) []byte {
			if n < 0 {
				return nil // kcat prints -1 and nothing for null
			}
			if n > len(rest) {
				t.Fatalf("kcat output: record at offset %d: %d bytes announced, %d left", o, n, len(rest))
			}
			v := append([]byte{}, rest[:n]...)
			rest = rest[n:]
			return v
		}
		r.Key = take(klen)
		r.Value = take(vlen)
		if len(rest) == 0 || rest[0] != '\n' {
			t.Fatalf("kcat output: record at offset %d: no newline after the value", o)
		}
		hdrs, rest, ok := bytes.Cut(rest[1:], []byte("\n"))
		if !ok {
			t.Fatalf("kcat output: record at offset %d: unterminated headers %q", o, rest)
		}
		r.Headers = splitKcatHeaders(t, string(hdrs))
		recs = append(recs, r)
		out = rest
	}
	return recs
}

// kcatHeaderStart matches where a header begins in kcat's %h output
// ("k1=v1,k2=v2"): a header name and '='.
var kcatHeaderStart = regexp.MustCompile(`^[A-Za-z0-9_.-]+=`)

// splitKcatHeaders parses kcat's %h. A value may hold commas (a reason
// does), so a comma separates headers only where a name and '=' follow.
func splitKcatHeaders(t *testing.T, h string) map[string]string {
	t.Helper()
	hs := map[string]string{}
	if h == "" {
		return hs
	}
	var starts []int
	for i := range len(h) {
		if (i == 0 || h[i-1] == ',') && kcatHeaderStart.MatchString(h[i:]) {
			starts = append(starts, i)
		}
	}
	if len(starts) == 0 || starts[0] != 0 {
		t.Fatalf("kcat headers %q do not start with a header name", h)
	}
	for i, at := range starts {
		end := len(h)
		if i+1 < len(starts) {
			end = starts[i+1] - 1 // the comma
		}
		k, v, _ := strings.Cut(h[at:end], "=")
		if _, dup := hs[k]; dup {
			t.Fatalf("kcat headers %q: %s twice", h, k)
		}
		hs[k] = v
	}
	return hs
}

// TestKcatDataContracts enforces data contracts on records kcat produces in
// the registry wire format: a valid record is stored as sent; an unknown
// schema id, a truncated payload and a record breaking an ERROR rule fail
// delivery with INVALID_RECORD and store nothing; a record breaking a DLQ
// rule is delivered, leaves a gap, and lands unchanged in the dead-letter
// topic with headers saying why; a tombstone passes value validation.
func TestKcatDataContracts(t *testing.T) {
	requireKcat(t)
	b := startBroker(t)
	adm, _ := admin(t, b.Kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const (
		strict     = "kcat-payments"     // ERROR rule
		routed     = "kcat-refunds"      // DLQ rule
		deadLetter = "kcat-refunds-dead" // the DLQ rule's dlq.topic
		strictSubj = strict + "-value"   // TopicNameStrategy
		routedSubj = routed + "-value"
	)
	strictID := registerAvro(t, b, strictSubj, kcatPaymentSchema, kcatRule{Name: "positiveAmount",
		Kind: "CONDITION", Mode: "WRITE", Type: "CEL", Expr: "message.amount > 0", OnFailure: "ERROR"})
	routedID := registerAvro(t, b, routedSubj, kcatPaymentSchema, kcatRule{Name: "positiveRefund",
		Kind: "CONDITION", Mode: "WRITE", Type: "CEL", Expr: "message.amount > 0", OnFailure: "DLQ",
		Params: map[string]string{"dlq.topic": deadLetter}})

	validated := map[string]*string{"confluent.value.schema.validation": kmsg.StringPtr("true")}
	for _, topic := range []string{strict, routed} {
		res, err := adm.CreateTopic(ctx, 1, 1, validated, topic)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}
	createTopic(t, b.Kafka, deadLetter, 1)

	avro := hamba.MustParse(kcatPaymentSchema)
	// The id holds a newline, a NUL and a colon: a line-oriented input
	// would split or cut the record.
	payment := func(id int, amount float64) []byte {
		t.Helper()
		p, err := hamba.Marshal(avro, map[string]any{"id": "pay\n1\x00:", "amount": amount})
		if err != nil {
			t.Fatal(err)
		}
		return confluentWire(id, p)
	}
	endOffset := func(t *testing.T, topic string) int64 {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			t.Fatalf("end offsets of %s: %v", topic, err)
		}
		o, ok := ends.Lookup(topic, 0)
		if !ok {
			t.Fatalf("end offsets of %s: no partition 0", topic)
		}
		return o.Offset
	}

	// A valid record is accepted and stored byte for byte at offset 0.
	good := payment(strictID, 12.5)
	if res := kcatProduceFile(t, b, strict, "good", good); res.code != 0 {
		t.Fatalf("kcat producing a valid record: exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	got := kcatConsume(t, b, strict)
	if len(got) != 1 || got[0].Offset != 0 || string(got[0].Key) != "good" || !bytes.Equal(got[0].Value, good) {
		t.Fatalf("%s holds %+v, want one record at offset 0 with key good and value %x", strict, got, good)
	}

	// Rejected records: kcat reports the failed delivery and exits non-zero;
	// nothing is stored.
	valid := payment(strictID, 3)
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"unknown schema id", payment(strictID+routedID+1000, 3)},
		{"truncated avro", valid[:len(valid)-3]},
		{"cel rule broken", payment(strictID, -4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := endOffset(t, strict)
			res := kcatProduceFile(t, b, strict, "bad", tc.value)
			t.Logf("kcat exit %d, stderr:\n%s", res.code, res.stderr)
			if res.code == 0 {
				t.Errorf("kcat exit 0 for a rejected record, want a failure\nstderr:\n%s", res.stderr)
			}
			if !strings.Contains(res.stderr, kcatInvalidRecord) {
				t.Errorf("kcat stderr does not report INVALID_RECORD (%q):\n%s", kcatInvalidRecord, res.stderr)
			}
			if after := endOffset(t, strict); after != before {
				t.Errorf("%s end offset %d after the rejected record, want %d (unchanged)", strict, after, before)
			}
		})
	}
	// The same framing with nothing wrong is accepted, at the next offset:
	// the rejected records took none.
	if res := kcatProduceFile(t, b, strict, "valid", valid); res.code != 0 {
		t.Fatalf("kcat producing a valid record after the rejections: exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	got = kcatConsume(t, b, strict)
	if len(got) != 2 || got[1].Offset != 1 || string(got[1].Key) != "valid" || !bytes.Equal(got[1].Value, valid) {
		t.Fatalf("%s holds %+v, want the valid record at offset 1 after the good one", strict, got)
	}

	// A tombstone passes value validation: kcat -Z sends the empty value
	// as null.
	before := endOffset(t, strict)
	if res := runKcat(t, b, []byte("tomb:\n"), "-P", "-t", strict, "-p", "0", "-K:", "-Z"); res.code != 0 {
		t.Fatalf("kcat producing a tombstone: exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	got = kcatConsume(t, b, strict)
	if len(got) != 3 || got[2].Offset != before || string(got[2].Key) != "tomb" || got[2].Value != nil {
		t.Fatalf("%s holds %+v, want the tombstone (key tomb, null value) at offset %d", strict, got, before)
	}

	// The DLQ rule: kcat's delivery succeeds, the failing record's offset is
	// a gap in the topic, and the dead-letter topic holds it unchanged (its
	// key, value and kcat's header) with headers saying why.
	first, bad, last := payment(routedID, 1), payment(routedID, -7), payment(routedID, 2)
	for i, v := range [][]byte{first, bad, last} {
		if res := kcatProduceFile(t, b, routed, fmt.Sprintf("r%d", i), v, "-H", "src=kcat"); res.code != 0 {
			t.Fatalf("kcat producing record %d to %s: exit %d\nstderr:\n%s", i, routed, res.code, res.stderr)
		}
	}
	if end := endOffset(t, routed); end != 3 {
		t.Errorf("%s end offset %d, want 3 (two records and a gap)", routed, end)
	}
	kept := kcatConsume(t, b, routed)
	if len(kept) != 2 || kept[0].Offset != 0 || !bytes.Equal(kept[0].Value, first) ||
		kept[1].Offset != 2 || !bytes.Equal(kept[1].Value, last) {
		t.Errorf("%s holds %+v, want offsets 0 and 2 (a gap at 1) with the two valid records", routed, kept)
	}
	if end := endOffset(t, deadLetter); end != 1 {
		t.Errorf("%s end offset %d, want 1", deadLetter, end)
	}
	dead := kcatConsume(t, b, deadLetter)
	if len(dead) != 1 {
		t.Fatalf("%s holds %d records, want 1: %+v", deadLetter, len(dead), dead)
	}
	d := dead[0]
	t.Logf("dead letter at %d/%d, headers: %q", d.Partition, d.Offset, d.Headers)
	if d.Partition != 0 || d.Offset != 0 || string(d.Key) != "r1" || !bytes.Equal(d.Value, bad) {
		t.Errorf("dead letter %d/%d key %q value %x, want 0/0, key r1 and the unchanged value %x",
			d.Partition, d.Offset, d.Key, d.Value, bad)
	}
	wantHeaders := map[string]string{
		"src":                    "kcat",
		"__runnel.dlq.topic":     routed,
		"__runnel.dlq.partition": "0",
		"__runnel.dlq.subject":   routedSubj,
		"__runnel.dlq.rule":      "positiveRefund",
	}
	for k, want := range wantHeaders {
		if got, ok := d.Headers[k]; !ok || got != want {
			t.Errorf("dead letter header %s = %q (present %v), want %q", k, got, ok, want)
		}
	}
	reason := d.Headers["__runnel.dlq.reason"]
	for _, want := range []string{`rule "positiveRefund"`, routedSubj + " version 1", "message.amount > 0"} {
		if !strings.Contains(reason, want) {
			t.Errorf("dead letter reason %q does not name %q", reason, want)
		}
	}
	if len(d.Headers) != len(wantHeaders)+1 { // and the reason
		t.Errorf("dead letter headers %q: want exactly src and the five __runnel.dlq headers", d.Headers)
	}
}

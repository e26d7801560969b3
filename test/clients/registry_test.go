package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/test/harness"
)

// The schemas both registry tests register. Each format has a first
// version, a BACKWARD-compatible second version and an incompatible one.
const (
	avroV1 = `{"type":"record","name":"Payment","namespace":"runnel.test","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"double"},
		{"name":"count","type":"int"},
		{"name":"ok","type":"boolean"},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"tags","type":{"type":"array","items":"string"}},
		{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["CARD","CASH"]}},
		{"name":"attrs","type":{"type":"map","values":"long"}}]}`
	// avroV2 adds a field with a default: a v2 reader can read v1 data.
	avroV2 = `{"type":"record","name":"Payment","namespace":"runnel.test","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"double"},
		{"name":"count","type":"int"},
		{"name":"ok","type":"boolean"},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"tags","type":{"type":"array","items":"string"}},
		{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["CARD","CASH"]}},
		{"name":"attrs","type":{"type":"map","values":"long"}},
		{"name":"currency","type":"string","default":"EUR"}]}`
	// avroBad adds a field without a default: v1 data cannot be read.
	avroBad = `{"type":"record","name":"Payment","namespace":"runnel.test","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"double"},
		{"name":"count","type":"int"},
		{"name":"ok","type":"boolean"},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"tags","type":{"type":"array","items":"string"}},
		{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["CARD","CASH"]}},
		{"name":"attrs","type":{"type":"map","values":"long"}},
		{"name":"region","type":"string"}]}`

	protoV1 = `syntax = "proto3";
package runnel.test;

message Order {
  string id = 1;
  int32 qty = 2;
  double price = 3;
  bool paid = 4;
  repeated string tags = 5;
  Address ship_to = 6;
  map<string, int32> counts = 7;
}

message Address {
  string city = 1;
  string zip = 2;
}
`
	// protoV2 adds a field.
	protoV2 = `syntax = "proto3";
package runnel.test;

message Order {
  string id = 1;
  int32 qty = 2;
  double price = 3;
  bool paid = 4;
  repeated string tags = 5;
  Address ship_to = 6;
  map<string, int32> counts = 7;
  string note = 8;
}

message Address {
  string city = 1;
  string zip = 2;
}
`
	// protoBad changes field 2 from int32 to string.
	protoBad = `syntax = "proto3";
package runnel.test;

message Order {
  string id = 1;
  string qty = 2;
  double price = 3;
  bool paid = 4;
  repeated string tags = 5;
  Address ship_to = 6;
  map<string, int32> counts = 7;
}

message Address {
  string city = 1;
  string zip = 2;
}
`

	jsonV1 = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"Event","type":"object",
		"properties":{"name":{"type":"string"},"n":{"type":"integer"},
		"meta":{"type":"object","properties":{"a":{"type":"string"}}},
		"list":{"type":"array","items":{"type":"number"}}},
		"required":["name","n"]}`
	// jsonV2 no longer requires "name": it accepts everything v1 did.
	jsonV2 = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"Event","type":"object",
		"properties":{"name":{"type":"string"},"n":{"type":"integer"},
		"meta":{"type":"object","properties":{"a":{"type":"string"}}},
		"list":{"type":"array","items":{"type":"number"}}},
		"required":["n"]}`
	// jsonBad changes the type of "name".
	jsonBad = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"Event","type":"object",
		"properties":{"name":{"type":"integer"},"n":{"type":"integer"},
		"meta":{"type":"object","properties":{"a":{"type":"string"}}},
		"list":{"type":"array","items":{"type":"number"}}},
		"required":["name","n"]}`
)

// Confluent's error codes the clients must see.
const (
	codeSubjectNotFound    = 40401
	codeVersionNotFound    = 40402
	codeSchemaNotFound     = 40403
	codeSubjectSoftDeleted = 40404
	codeIncompatible       = 409
	codeInvalidSchema      = 42201
	codeInvalidCompatible  = 42203
)

func requireRegistryJS(t *testing.T) {
	t.Helper()
	requireKafkaJS(t)
	requireTool(t, "@kafkajs/confluent-schema-registry", func() error {
		mod := filepath.Join(harness.RepoRoot(), "test", "clients", "js", "node_modules", "@kafkajs", "confluent-schema-registry")
		if _, err := os.Stat(mod); err != nil {
			return errors.New("test/clients/js/node_modules/@kafkajs/confluent-schema-registry missing: run npm ci in test/clients/js")
		}
		return nil
	})
}

// srClient is franz-go's registry client for b's registry: the test's own
// view of ids and versions, independent of the client under test.
func srClient(t *testing.T, b *harness.Proc) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs("http://" + b.Registry))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// idOf returns the id the registry reports for subject's version (-1 for
// the latest).
func idOf(t *testing.T, cl *sr.Client, subject string, version int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := cl.SchemaByVersion(ctx, subject, version)
	if err != nil {
		t.Fatalf("registry: %s version %d: %v", subject, version, err)
	}
	return s.ID
}

// sameJSON reports whether two JSON documents are equal as values.
func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// regStep is one line of the registry programs' output.
type regStep struct {
	Step       string          `json:"step"`
	Format     string          `json:"format"`
	Subject    string          `json:"subject"`
	Key        string          `json:"key"`
	ID         int             `json:"id"`
	Version    json.RawMessage `json:"version"`
	Latest     int             `json:"latest"`
	Registered int             `json:"registered"`
	Value      json.RawMessage `json:"value"`
	Type       string          `json:"type"`
	Schema     string          `json:"schema"`
	Versions   []int           `json:"versions"`
	Subjects   []string        `json:"subjects"`
	Level      string          `json:"level"`
	Result     map[string]any  `json:"result"`
	Compatible *bool           `json:"compatible"`
	Incompat   *bool           `json:"incompatible"`
	// Errors: both report the HTTP status and message; Python also the
	// error_code, kafkajs the error's class name.
	Name    string `json:"name"`
	Status  int    `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// TestKafkaJSSchemaRegistry registers an Avro, a Protobuf and a JSON schema
// with @kafkajs/confluent-schema-registry, encodes values with
// registry.encode, produces and consumes them with kafkajs and decodes them
// with a fresh registry.decode; the decoded values must equal the
// originals and every id must be the one the registry reports for the
// subject. It also checks getLatestSchemaId, getRegistryId,
// getRegistryIdBySchema, a compatible new version, and the package's
// ResponseError (HTTP status and Confluent's message; it does not keep the
// error_code, which TestPythonSchemaRegistry checks) for an incompatible
// registration (409) and a missing subject (404).
func TestKafkaJSSchemaRegistry(t *testing.T) {
	requireRegistryJS(t)
	b := startBroker(t)
	const topic = "js-registry"
	createTopic(t, b.Kafka, topic, 1)

	type jsCase struct {
		Format  string            `json:"format"`
		Subject string            `json:"subject"`
		Schema  string            `json:"schema"`
		Values  []json.RawMessage `json:"values"`
	}
	cases := []jsCase{
		{Format: "AVRO", Subject: "js-payment-value", Schema: avroV1, Values: []json.RawMessage{
			json.RawMessage(`{"id":"p1","amount":12.5,"count":3,"ok":true,"note":null,"tags":["a","b"],"kind":"CARD","attrs":{"x":1,"y":123456789012}}`),
			json.RawMessage(`{"id":"p2","amount":-0.25,"count":-7,"ok":false,"note":"hello ünïcode","tags":[],"kind":"CASH","attrs":{}}`),
		}},
		{Format: "PROTOBUF", Subject: "js-order-value", Schema: protoV1, Values: []json.RawMessage{
			json.RawMessage(`{"id":"o1","qty":4,"price":9.75,"paid":true,"tags":["x","y"],"shipTo":{"city":"Lyon","zip":"69001"},"counts":{"a":1,"b":2}}`),
			json.RawMessage(`{"id":"o2","qty":-1,"price":0.5,"tags":["z"],"shipTo":{"city":"Oslo"}}`),
		}},
		{Format: "JSON", Subject: "js-event-value", Schema: jsonV1, Values: []json.RawMessage{
			json.RawMessage(`{"name":"e1","n":1,"meta":{"a":"b"},"list":[1.5,2]}`),
			json.RawMessage(`{"name":"e2","n":42}`),
		}},
	}
	input, err := json.Marshal(map[string]any{
		"cases":   cases,
		"evolve":  map[string]string{"subject": "js-payment-value", "compatible": avroV2, "incompatible": avroBad},
		"missing": "js-no-such-subject",
	})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, b, string(input), "node", "js/registry.js", b.Kafka, b.Registry, topic, "js-registry-group")
	steps := parseJSONLines[regStep](t, out)

	cl := srClient(t, b)
	ids := map[string]int{} // format → id of version 1
	subjectOf := map[string]string{}
	for _, c := range cases {
		ids[c.Format] = idOf(t, cl, c.Subject, 1)
		subjectOf[c.Subject] = c.Format
	}
	if ids["AVRO"] == ids["PROTOBUF"] || ids["AVRO"] == ids["JSON"] || ids["PROTOBUF"] == ids["JSON"] {
		t.Errorf("distinct schemas share ids: %v", ids)
	}
	wantValues := map[string]json.RawMessage{}
	for _, c := range cases {
		for i, v := range c.Values {
			wantValues[c.Format+"-"+strconv.Itoa(i)] = v
		}
	}

	seen := map[string]bool{}
	for _, s := range steps {
		switch s.Step {
		case "register":
			seen["register-"+s.Format] = true
			if s.ID != ids[s.Format] {
				t.Errorf("register %s under %s: id %d, registry reports %d", s.Format, s.Subject, s.ID, ids[s.Format])
			}
		case "record":
			if seen["record-"+s.Key] {
				t.Errorf("record %s decoded twice", s.Key)
			}
			seen["record-"+s.Key] = true
			want, ok := wantValues[s.Key]
			if !ok {
				t.Errorf("unexpected record %s", s.Key)
				continue
			}
			if s.ID != ids[s.Format] {
				t.Errorf("record %s carries schema id %d, want %d", s.Key, s.ID, ids[s.Format])
			}
			if !sameJSON(t, s.Value, want) {
				t.Errorf("record %s decoded to %s, want %s", s.Key, s.Value, want)
			}
		case "latest":
			seen["latest-"+s.Subject] = true
			if want := ids[subjectOf[s.Subject]]; s.ID != want {
				t.Errorf("getLatestSchemaId(%s) = %d, want %d", s.Subject, s.ID, want)
			}
		case "by-version":
			seen["by-version-"+s.Subject+string(s.Version)] = true
			if want := ids[subjectOf[s.Subject]]; s.ID != want {
				t.Errorf("getRegistryId(%s, %s) = %d, want %d", s.Subject, s.Version, s.ID, want)
			}
		case "by-schema":
			seen["by-schema"] = true
			if s.ID != ids["AVRO"] {
				t.Errorf("getRegistryIdBySchema(%s) = %d, want %d", s.Subject, s.ID, ids["AVRO"])
			}
		case "evolve":
			seen["evolve"] = true
			v2 := idOf(t, cl, "js-payment-value", 2)
			if s.ID != v2 || s.Latest != v2 || v2 == ids["AVRO"] {
				t.Errorf("compatible v2: registered id %d, getLatestSchemaId %d; registry's version 2 is %d (v1 %d)",
					s.ID, s.Latest, v2, ids["AVRO"])
			}
		case "incompatible":
			seen["incompatible"] = true
			if s.Name != "ResponseError" || s.Status != 409 ||
				!strings.Contains(s.Message, `Schema being registered is incompatible with an earlier schema for subject "js-payment-value"`) {
				t.Errorf("incompatible registration: %s status %d %q, want a ResponseError with status 409 and Confluent's message",
					s.Name, s.Status, s.Message)
			}
		case "missing":
			seen["missing"] = true
			if s.Name != "ResponseError" || s.Status != 404 || !strings.HasSuffix(s.Message, "Subject 'js-no-such-subject' not found.") {
				t.Errorf("missing subject: %s status %d %q, want a ResponseError with status 404 and Confluent's message", s.Name, s.Status, s.Message)
			}
		default:
			t.Errorf("unexpected step %+v", s)
		}
	}
	want := []string{"register-AVRO", "register-PROTOBUF", "register-JSON", "by-schema", "evolve", "incompatible", "missing"}
	for k := range wantValues {
		want = append(want, "record-"+k)
	}
	for _, c := range cases {
		want = append(want, "latest-"+c.Subject, "by-version-"+c.Subject+"1", "by-version-"+c.Subject+`"latest"`)
	}
	for _, k := range want {
		if !seen[k] {
			t.Errorf("step %s missing from the output:\n%s", k, out)
		}
	}

	// The package sets BACKWARD on a subject's first registration; the
	// incompatible schema must not have become a version.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range cases {
		res := cl.Compatibility(ctx, c.Subject)
		if len(res) != 1 || res[0].Err != nil || res[0].Level != sr.CompatBackward {
			t.Errorf("compatibility of %s = %+v, want BACKWARD set by the client", c.Subject, res)
		}
	}
	vs, err := cl.SubjectVersions(ctx, "js-payment-value")
	if err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Errorf("versions of js-payment-value = %v (%v), want [1 2]", vs, err)
	}
}

// TestPythonSchemaRegistry drives python3-confluent-kafka's
// SchemaRegistryClient through registration, look-ups, compatibility
// settings and tests, and error paths, for Avro, JSON Schema and Protobuf,
// and sends records through topics with its JSONSerializer and
// ProtobufSerializer. Ids and versions must be those the registry reports,
// and every error a SchemaRegistryError with Confluent's status and
// error_code. ProtobufSerializer registers its schema as a base64-encoded
// FileDescriptorProto, which Confluent's registry accepts.
func TestPythonSchemaRegistry(t *testing.T) {
	requirePython(t)
	requireTool(t, "python3-confluent-kafka schema registry (python3-requests, python3-jsonschema, python3-protobuf)", func() error {
		return runCheck(python, "-c", "import confluent_kafka.schema_registry.json_schema, confluent_kafka.schema_registry.protobuf")
	})
	b := startBroker(t)
	const jsonTopic, protoTopic = "py-reg-json", "py-reg-proto"
	createTopic(t, b.Kafka, jsonTopic, 1)
	createTopic(t, b.Kafka, protoTopic, 1)

	type pyCase struct {
		Format       string `json:"format"`
		Subject      string `json:"subject"`
		Schema       string `json:"schema"`
		Compatible   string `json:"compatible"`
		Incompatible string `json:"incompatible"`
	}
	cases := []pyCase{
		{"AVRO", "py-payment", avroV1, avroV2, avroBad},
		{"JSON", "py-event", jsonV1, jsonV2, jsonBad},
		{"PROTOBUF", "py-order", protoV1, protoV2, protoBad},
	}
	records := []json.RawMessage{
		json.RawMessage(`{"name":"r0","n":0,"meta":{"a":"z"},"list":[0.5]}`),
		json.RawMessage(`{"name":"r1","n":7}`),
		json.RawMessage(`{"name":"r2","n":-3,"list":[]}`),
	}
	input, err := json.Marshal(map[string]any{
		"cases": cases, "missing": "py-no-such-subject", "deleted": "py-deleted",
		"invalid": `{"type":"record","name":"Broken","fields":[{"name":"x","type":"no-such-type"}]}`,
		"records": records,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, b, string(input), python, "python/registry.py", "--registry", b.Registry,
		"--bootstrap", b.Kafka, "--json-topic", jsonTopic, "--proto-topic", protoTopic)
	steps := parseJSONLines[regStep](t, out)

	cl := srClient(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subjectOf := map[string]string{}
	v1 := map[string]int{}
	v2 := map[string]int{}
	for _, c := range cases {
		subjectOf[c.Format] = c.Subject
		v1[c.Format] = idOf(t, cl, c.Subject, 1)
		v2[c.Format] = idOf(t, cl, c.Subject, 2)
	}
	errorWant := map[string][2]int{
		"missing-subject":   {404, codeSubjectNotFound},
		"missing-lookup":    {404, codeSubjectNotFound},
		"missing-id":        {404, codeSchemaNotFound},
		"invalid-schema":    {422, codeInvalidSchema},
		"invalid-level":     {422, codeInvalidCompatible},
		"after-soft-delete": {404, codeSubjectNotFound},
		"soft-delete-again": {404, codeSubjectSoftDeleted},
		"after-hard-delete": {404, codeSubjectNotFound},
	}
	for _, c := range cases {
		errorWant["incompatible-"+c.Format] = [2]int{409, codeIncompatible}
		errorWant["no-version-"+c.Format] = [2]int{404, codeVersionNotFound}
	}
	wantRecords := map[string]json.RawMessage{}
	for i, r := range records {
		k := "py-" + strconv.Itoa(i)
		wantRecords["JSON/"+k] = r
		var v struct {
			Name string `json:"name"`
			N    int    `json:"n"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(map[string]any{"id": v.Name, "qty": v.N, "price": float64(v.N) * 1.5, "tags": []string{v.Name, "t"}})
		wantRecords["PROTOBUF/"+k] = p
	}

	seen := map[string]bool{}
	for _, s := range steps {
		key := s.Step + "/" + s.Format
		if s.Step == "record" {
			key = s.Format + "/" + s.Key
		}
		if seen[key] {
			t.Errorf("step %s reported twice", key)
		}
		seen[key] = true
		if w, ok := errorWant[s.Step]; ok {
			if s.Status != w[0] || s.Code != w[1] {
				t.Errorf("%s: SchemaRegistryError status %d error_code %d (%q), want %d / %d", s.Step, s.Status, s.Code, s.Message, w[0], w[1])
			}
			if s.Message == "" {
				t.Errorf("%s: SchemaRegistryError without a message", s.Step)
			}
			continue
		}
		subject := subjectOf[s.Format]
		switch s.Step {
		case "register", "register-again":
			if s.ID != v1[s.Format] {
				t.Errorf("%s %s: id %d, registry reports %d for version 1", s.Step, s.Format, s.ID, v1[s.Format])
			}
		case "latest":
			if s.ID != v1[s.Format] || string(s.Version) != "1" || s.Subject != subject || s.Type != s.Format {
				t.Errorf("get_latest_version(%s) = %+v, want id %d version 1 type %s", subject, s, v1[s.Format], s.Format)
			}
		case "get-schema":
			text, err := cl.SchemaTextByID(ctx, s.ID)
			if err != nil {
				t.Fatalf("schema %d: %v", s.ID, err)
			}
			if s.Type != s.Format || s.Schema != text {
				t.Errorf("get_schema(%d) = %s %q, registry has %s %q", s.ID, s.Type, s.Schema, s.Format, text)
			}
		case "lookup":
			if s.ID != v1[s.Format] || string(s.Version) != "1" || s.Subject != subject {
				t.Errorf("lookup_schema(%s, v1) = %+v, want id %d version 1", subject, s, v1[s.Format])
			}
		case "versions":
			if !slices.Equal(s.Versions, []int{1}) {
				t.Errorf("get_versions(%s) = %v, want [1]", subject, s.Versions)
			}
		case "set-compat":
			if s.Result["compatibility"] != "BACKWARD" || s.Level != "BACKWARD" {
				t.Errorf("set_compatibility(%s, BACKWARD) = %v, get_compatibility = %q", subject, s.Result, s.Level)
			}
		case "test-compat":
			if s.Compatible == nil || !*s.Compatible || s.Incompat == nil || *s.Incompat {
				t.Errorf("test_compatibility(%s): compatible=%v incompatible=%v, want true/false", subject, deref2(s.Compatible), deref2(s.Incompat))
			}
		case "register-v2":
			if s.ID != v2[s.Format] || s.Registered != v2[s.Format] || string(s.Version) != "2" || s.ID == v1[s.Format] {
				t.Errorf("%s v2: registered %d, lookup %+v; registry's version 2 is %d (v1 %d)", s.Format, s.Registered, s, v2[s.Format], v1[s.Format])
			}
		case "subjects":
			for _, want := range []string{"py-payment", "py-event", "py-order", "py-deleted", "py-deleted-hard"} {
				if !slices.Contains(s.Subjects, want) {
					t.Errorf("get_subjects() = %v, missing %s", s.Subjects, want)
				}
			}
		case "soft-delete", "hard-delete":
			if !slices.Equal(s.Versions, []int{1}) {
				t.Errorf("%s = %v, want [1]", s.Step, s.Versions)
			}
		case "subjects-after":
			if slices.Contains(s.Subjects, "py-deleted") || slices.Contains(s.Subjects, "py-deleted-hard") {
				t.Errorf("get_subjects() after delete = %v, still lists a deleted subject", s.Subjects)
			}
		case "serializer-error":
			// Confluent accepts a Protobuf schema given as a base64-encoded
			// FileDescriptorProto, which is how ProtobufSerializer registers.
			t.Errorf("ProtobufSerializer could not register its schema (base64 FileDescriptorProto): status %d error_code %d %q",
				s.Status, s.Code, s.Message)
			for k := range wantRecords {
				if strings.HasPrefix(k, "PROTOBUF/") {
					delete(wantRecords, k)
				}
			}
		case "record":
			want, ok := wantRecords[key]
			if !ok {
				t.Errorf("unexpected record %s", key)
				continue
			}
			topic := jsonTopic
			if s.Format == "PROTOBUF" {
				topic = protoTopic
			}
			if id := idOf(t, cl, topic+"-value", -1); s.ID != id {
				t.Errorf("record %s carries schema id %d, registry's latest for %s-value is %d", key, s.ID, topic, id)
			}
			if !sameJSON(t, s.Value, want) {
				t.Errorf("record %s decoded to %s, want %s", key, s.Value, want)
			}
		default:
			t.Errorf("unexpected step %+v", s)
		}
	}
	var want []string
	for _, c := range cases {
		for _, st := range []string{"register", "register-again", "latest", "get-schema", "lookup", "versions",
			"set-compat", "test-compat", "register-v2", "incompatible-" + c.Format, "no-version-" + c.Format} {
			if strings.HasSuffix(st, c.Format) {
				want = append(want, st+"/")
			} else {
				want = append(want, st+"/"+c.Format)
			}
		}
	}
	for k := range errorWant {
		if !strings.HasSuffix(k, "AVRO") && !strings.HasSuffix(k, "JSON") && !strings.HasSuffix(k, "PROTOBUF") {
			want = append(want, k+"/")
		}
	}
	want = append(want, "subjects/", "soft-delete/", "hard-delete/", "subjects-after/")
	for k := range wantRecords {
		want = append(want, k)
	}
	for _, k := range want {
		if !seen[k] {
			t.Errorf("step %s missing from the output:\n%s", k, out)
		}
	}

	// The serializers registered under TopicNameStrategy subjects.
	subjects := []string{jsonTopic + "-value"}
	if !seen["serializer-error/PROTOBUF"] {
		subjects = append(subjects, protoTopic+"-value")
	}
	for _, subj := range subjects {
		if vs, err := cl.SubjectVersions(ctx, subj); err != nil || !slices.Equal(vs, []int{1}) {
			t.Errorf("versions of %s = %v (%v), want [1]", subj, vs, err)
		}
	}
}

func deref2(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

// runCheck runs a command that must exit 0.
func runCheck(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

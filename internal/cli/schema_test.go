package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"

	"github.com/runnel-dev/runnel/internal/broker"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
)

// startRegistryBroker starts an in-process broker like startBroker and
// returns its Kafka address and schema registry URL; RUNNEL_BROKERS and
// RUNNEL_REGISTRY point at them for the rest of the test.
func startRegistryBroker(t *testing.T) (kafkaAddr, registryURL string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = freeAddr(t), freeAddr(t), freeAddr(t)
		cfg.Etcd.ClientAddr, cfg.Etcd.PeerAddr = freeAddr(t), freeAddr(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b, err := broker.Start(ctx, cfg, nil)
		cancel()
		if err == nil {
			t.Cleanup(func() { b.Close() })
			t.Setenv(envRegistry, "http://"+b.RegistryAddr())
			return b.KafkaAddr(), "http://" + b.RegistryAddr()
		}
		if attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
		_ = os.RemoveAll(cfg.DataDir)
	}
}

// runWithInput runs args against the broker at addr with stdin as input.
func runWithInput(t *testing.T, addr, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := liveRoot(t, addr)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// writeFile writes text to a file in a temporary directory and returns its
// path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// compactJSON returns raw without insignificant space.
func compactJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return b.String()
}

func TestSchemaUsageErrors(t *testing.T) {
	t.Setenv(envRegistry, "http://127.0.0.1:1")
	badRuleSetFile := writeFile(t, "rules.json", `{"domainRules":[],"colour":"red"}`)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"register without schema", []string{"schema", "register", "s"}, "no schema given"},
		{"register file and text", []string{"schema", "register", "s", "--file", "x", "--schema", "y"}, "not both"},
		{"register bad type", []string{"schema", "register", "s", "--schema", "{}", "--type", "XML"}, `--type "XML"`},
		{"register bad ref", []string{"schema", "register", "s", "--schema", "{}", "--ref", "a=b"}, "want name=subject:version"},
		{"register bad ref version", []string{"schema", "register", "s", "--schema", "{}", "--ref", "a=b:zero"}, "want a positive number or latest"},
		{"register missing file", []string{"schema", "register", "s", "--file", "/nonexistent/x.avsc"}, "read schema"},
		{"register no subject", []string{"schema", "register"}, "takes 1 argument(s) (SUBJECT)"},
		{"get nothing", []string{"schema", "get"}, "say which schema"},
		{"get both", []string{"schema", "get", "s", "--id", "1"}, "not both"},
		{"get bad id", []string{"schema", "get", "--id", "0"}, "--id 0"},
		{"get bad version", []string{"schema", "get", "s", "--version", "x"}, "--version"},
		{"check bad version", []string{"schema", "check", "s", "--schema", "{}", "--version", "0"}, "--version"},
		{"config bad level", []string{"schema", "config", "--compatibility", "SIDEWAYS"}, "--compatibility"},
		{"config reset global", []string{"schema", "config", "--reset"}, "--reset needs SUBJECT"},
		{"config reset and set", []string{"schema", "config", "s", "--reset", "--normalize"}, "--reset needs SUBJECT and no other config flag"},
		{"config global alias", []string{"schema", "config", "--alias", "x"}, "--alias needs SUBJECT"},
		{"config empty alias", []string{"schema", "config", "s", "--alias", ""}, "--alias: want a subject name"},
		{"config empty group", []string{"schema", "config", "s", "--compatibility-group", " "}, "--compatibility-group: want a metadata property"},
		{"config bad normalize", []string{"schema", "config", "s", "--normalize=maybe"}, "invalid argument"},
		{"config missing metadata file", []string{"schema", "config", "s", "--default-metadata", "/nonexistent/m.json"}, "--default-metadata"},
		{"config bad ruleset file", []string{"schema", "config", "s", "--override-ruleset", badRuleSetFile}, "--override-ruleset"},
		{"mode bad", []string{"schema", "mode", "--set", "WRITEONLY"}, "--set"},
		{"bad registry", []string{"schema", "list", "--registry", "ftp://x"}, "--registry"},
		{"produce schema and id", []string{"produce", "t", "--schema", "s", "--schema-id", "1"}, "not both"},
		{"produce key schema without separator", []string{"produce", "t", "--key-schema", "k"}, "--key-separator"},
		{"produce message without schema", []string{"produce", "t", "--message", "M"}, "--message needs"},
		{"produce bad version", []string{"produce", "t", "--schema", "s", "--schema-version", "x"}, "--schema-version"},
		{"consume bad schema mode", []string{"consume", "t", "--schema=maybe"}, "want auto, on or off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSchemaHelp(t *testing.T) {
	for _, sub := range []string{"register", "get", "list", "versions", "check", "delete", "config", "mode"} {
		out, err := runCLI(t, "", "schema", sub, "--help")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "--registry") {
			t.Fatalf("schema %s --help lacks examples or --registry:\n%s", sub, out)
		}
	}
}

func TestSchemaRegistryUnreachable(t *testing.T) {
	_, err := runCLI(t, "", "schema", "list", "--registry", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the schema registry at http://127.0.0.1:1") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "brokers") {
		t.Fatalf("registry error mentions brokers: %v", err)
	}
}

const userV1 = `{"type":"record","name":"User","namespace":"ex","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"string"}]}`

const userV2Compatible = `{"type":"record","name":"User","namespace":"ex","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"string"},
 {"name":"email","type":["null","string"],"default":null}]}`

const userV2Incompatible = `{"type":"record","name":"User","namespace":"ex","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"string"},
 {"name":"age","type":"int"}]}`

func TestSchemaCommands(t *testing.T) {
	addr, _ := startRegistryBroker(t)
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, _, err := runLive(t, addr, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	v1 := writeFile(t, "user.avsc", userV1)

	out := run(t, "schema", "register", "users-value", "--file", v1)
	if out != "Registered AVRO schema under subject \"users-value\": id 1, version 1.\n" {
		t.Fatalf("register: %q", out)
	}
	// The same schema again keeps its id and version.
	out = run(t, "schema", "register", "users-value", "--schema", userV1, "--json")
	var reg registeredJSON
	if err := json.Unmarshal([]byte(out), &reg); err != nil || reg != (registeredJSON{"users-value", 1, 1}) {
		t.Fatalf("register --json: %q %v", out, err)
	}

	t.Run("get", func(t *testing.T) {
		out := run(t, "schema", "get", "users-value")
		for _, want := range []string{"Subject: users-value", "Version: 1", "ID:      1", "Type:    AVRO", `"name": "User"`} {
			if !strings.Contains(out, want) {
				t.Errorf("get output lacks %q:\n%s", want, out)
			}
		}
		out = run(t, "schema", "get", "--id", "1")
		if !strings.Contains(out, "Used by: users-value version 1") {
			t.Errorf("get --id:\n%s", out)
		}
		out = run(t, "schema", "get", "users-value", "--version", "1", "--schema-only")
		if strings.TrimSpace(out) == "" || !strings.Contains(out, `"namespace":"ex"`) {
			t.Errorf("--schema-only: %q", out)
		}
		_, _, err := runLive(t, addr, "schema", "get", "nobody-value")
		if err == nil || !strings.Contains(err.Error(), `get subject "nobody-value" version latest: 40401: `) {
			t.Errorf("missing subject: %v", err)
		}
		_, _, err = runLive(t, addr, "schema", "get", "users-value", "--version", "9")
		if err == nil || !strings.Contains(err.Error(), "40402: ") {
			t.Errorf("missing version: %v", err)
		}
		_, _, err = runLive(t, addr, "schema", "get", "--id", "99")
		if err == nil || !strings.Contains(err.Error(), "get schema id 99: 40403: ") {
			t.Errorf("missing id: %v", err)
		}
	})

	t.Run("check", func(t *testing.T) {
		out := run(t, "schema", "check", "users-value", "--schema", userV2Compatible)
		if out != "Compatible with subject \"users-value\" (its versions).\n" {
			t.Fatalf("check: %q", out)
		}
		out, _, err := runLive(t, addr, "schema", "check", "users-value", "--schema", userV2Incompatible, "--version", "1")
		if !errors.Is(err, errIncompatible) {
			t.Fatalf("check incompatible: err %v", err)
		}
		if !strings.HasPrefix(out, "Incompatible with subject \"users-value\" (version 1).\n  - ") || !strings.Contains(out, "age") {
			t.Fatalf("check incompatible output:\n%s", out)
		}
		out, _, err = runLive(t, addr, "schema", "check", "users-value", "--schema", userV2Incompatible, "--json")
		var res struct {
			Is       bool     `json:"is_compatible"`
			Messages []string `json:"messages"`
		}
		if !errors.Is(err, errIncompatible) || json.Unmarshal([]byte(out), &res) != nil || res.Is || len(res.Messages) == 0 {
			t.Fatalf("check --json: %v %q", err, out)
		}
		_, _, err = runLive(t, addr, "schema", "register", "users-value", "--schema", userV2Incompatible)
		if err == nil || !strings.Contains(err.Error(), "409: ") {
			t.Fatalf("register incompatible: %v", err)
		}
		_, _, err = runLive(t, addr, "schema", "register", "users-value", "--schema", `{"type":"record"`)
		if err == nil || !strings.Contains(err.Error(), "42201: ") {
			t.Fatalf("register invalid: %v", err)
		}
	})

	run(t, "schema", "register", "users-value", "--schema", userV2Compatible)
	run(t, "schema", "register", "orders-value", "--type", "JSON", "--schema", `{"type":"object"}`)

	t.Run("list and versions", func(t *testing.T) {
		out := run(t, "schema", "list")
		want := "SUBJECT       LATEST  ID  TYPE\norders-value  1       3   JSON\nusers-value   2       2   AVRO\n"
		if out != want {
			t.Fatalf("list:\n%s\nwant:\n%s", out, want)
		}
		out = run(t, "schema", "list", "--prefix", "users")
		if strings.Contains(out, "orders") || !strings.Contains(out, "users-value") {
			t.Fatalf("list --prefix:\n%s", out)
		}
		out = run(t, "schema", "versions", "users-value")
		if out != "VERSION  ID  TYPE\n1        1   AVRO\n2        2   AVRO\n" {
			t.Fatalf("versions:\n%s", out)
		}
	})

	t.Run("config", func(t *testing.T) {
		if out := run(t, "schema", "config"); out != "Compatibility of global: BACKWARD\n" {
			t.Fatalf("config: %q", out)
		}
		if out := run(t, "schema", "config", "users-value"); out != "Compatibility of subject \"users-value\": BACKWARD (inherited from the global level)\n" {
			t.Fatalf("config subject: %q", out)
		}
		if out := run(t, "schema", "config", "users-value", "--compatibility", "none"); out != "Compatibility of subject \"users-value\" set to NONE.\n" {
			t.Fatalf("config set: %q", out)
		}
		out := run(t, "schema", "config", "users-value", "--json")
		var c configJSON
		if err := json.Unmarshal([]byte(out), &c); err != nil || c.Compatibility != "NONE" || c.Inherited {
			t.Fatalf("config --json: %q", out)
		}
		// NONE lets the incompatible version in.
		run(t, "schema", "register", "users-value", "--schema", userV2Incompatible)
		run(t, "schema", "config", "users-value", "--reset")
		if out := run(t, "schema", "config", "users-value"); !strings.Contains(out, "BACKWARD (inherited") {
			t.Fatalf("config after reset: %q", out)
		}
	})

	t.Run("config fields", func(t *testing.T) {
		run(t, "schema", "register", "cfg-value", "--schema", userV1)
		meta := writeFile(t, "meta.json", `{"properties":{"owner":"team-a"}}`)
		rules := writeFile(t, "rules.json", `{"domainRules":[{"name":"positive","kind":"CONDITION","mode":"WRITE","type":"CEL","expr":"message.id > 0"}]}`)
		out := run(t, "schema", "config", "cfg-value", "--normalize", "--compatibility-group", "app.major",
			"--validate-fields", "--default-metadata", meta, "--override-ruleset", rules)
		want := "Config of subject \"cfg-value\" updated:\n" +
			"  Normalize:           true\n" +
			"  Compatibility group: app.major\n" +
			"  Validate fields:     true\n" +
			"  Default metadata:    {\"properties\":{\"owner\":\"team-a\"}}\n" +
			"  Override rule set:   {\"domainRules\":[{\"expr\":\"message.id > 0\",\"kind\":\"CONDITION\",\"mode\":\"WRITE\",\"name\":\"positive\",\"type\":\"CEL\"}]}\n"
		if out != want {
			t.Fatalf("config set:\n%s\nwant:\n%s", out, want)
		}
		out = run(t, "schema", "config", "cfg-value")
		for _, line := range []string{
			"Compatibility of subject \"cfg-value\": BACKWARD (inherited from the global level)\n",
			"Normalize:           true\n", "Compatibility group: app.major\n", "Validate fields:     true\n",
			"Default metadata:    {\"properties\":{\"owner\":\"team-a\"}}\n", "Override rule set:   {\"domainRules\":[{\"expr\":\"message.id > 0\"",
		} {
			if !strings.Contains(out, line) {
				t.Fatalf("config show lacks %q:\n%s", line, out)
			}
		}
		// Fields not given keep their values; =false turns a flag off.
		run(t, "schema", "config", "cfg-value", "--validate-fields=false", "--compatibility", "FULL")
		var c configJSON
		out = run(t, "schema", "config", "cfg-value", "--json")
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("config --json: %v\n%s", err, out)
		}
		if c.Subject != "cfg-value" || c.Compatibility != "FULL" || c.Inherited || c.Normalize == nil || !*c.Normalize ||
			c.ValidateFields == nil || *c.ValidateFields || c.Group != "app.major" ||
			compactJSON(t, c.DefaultMetadata) != `{"properties":{"owner":"team-a"}}` ||
			!strings.Contains(compactJSON(t, c.OverrideRuleSet), `"name":"positive"`) {
			t.Fatalf("config --json: %s", out)
		}
		// The registry applies them: a new registration carries the
		// default metadata and the override rule set.
		out = run(t, "schema", "register", "cfg-value", "--schema", userV1)
		if !strings.Contains(out, "version 2") {
			t.Fatalf("register with the config's contract: %q", out)
		}
		var got schemaJSON
		if err := json.Unmarshal([]byte(run(t, "schema", "get", "cfg-value", "--json")), &got); err != nil {
			t.Fatal(err)
		}
		if got.Metadata == nil || got.Metadata.Properties["owner"] != "team-a" || got.RuleSet == nil || len(got.RuleSet.DomainRules) != 1 {
			t.Fatalf("registered contract: %+v", got)
		}

		// An alias: lookups of the alias read its subject.
		out = run(t, "schema", "config", "cfg", "--alias", "cfg-value")
		if out != "Config of subject \"cfg\" updated:\n  Alias: cfg-value\n" {
			t.Fatalf("config --alias: %q", out)
		}
		if out := run(t, "schema", "get", "cfg"); !strings.Contains(out, "Subject:  cfg-value\nVersion:  2") {
			t.Fatalf("get through the alias:\n%s", out)
		}
		if out := run(t, "schema", "config", "cfg"); !strings.Contains(out, "Alias: cfg-value") {
			t.Fatalf("config show alias:\n%s", out)
		}

		if out := run(t, "schema", "config", "cfg-value", "--reset"); out != "Removed the config of subject \"cfg-value\"; it uses the global config.\n" {
			t.Fatalf("config --reset: %q", out)
		}
		if out := run(t, "schema", "config", "cfg-value"); out != "Compatibility of subject \"cfg-value\": BACKWARD (inherited from the global level)\n" {
			t.Fatalf("config after reset: %q", out)
		}
		_, _, err := runLive(t, addr, "schema", "config", "nobody-value", "--reset")
		if err == nil || !strings.Contains(err.Error(), "reset the config of subject \"nobody-value\": 40401: ") {
			t.Fatalf("reset of an unknown subject: %v", err)
		}
	})

	t.Run("mode", func(t *testing.T) {
		if out := run(t, "schema", "mode"); out != "Mode of the registry: READWRITE\n" {
			t.Fatalf("mode: %q", out)
		}
		run(t, "schema", "mode", "orders-value", "--set", "READONLY")
		if out := run(t, "schema", "mode", "orders-value"); out != "Mode of subject \"orders-value\": READONLY\n" {
			t.Fatalf("mode subject: %q", out)
		}
		_, _, err := runLive(t, addr, "schema", "register", "orders-value", "--type", "JSON", "--schema", `{"type":"object","properties":{}}`)
		if err == nil || !strings.Contains(err.Error(), "42205: ") {
			t.Fatalf("register in READONLY: %v", err)
		}
		run(t, "schema", "mode", "orders-value", "--reset")
		if out := run(t, "schema", "mode", "orders-value"); !strings.Contains(out, "READWRITE (inherited") {
			t.Fatalf("mode after reset: %q", out)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := run(t, "schema", "delete", "users-value", "--version", "1"); out != "Soft-deleted subject \"users-value\" version 1.\n" {
			t.Fatalf("delete version: %q", out)
		}
		if out := run(t, "schema", "versions", "users-value"); strings.Contains(out, "\n1 ") {
			t.Fatalf("versions after delete:\n%s", out)
		}
		if out := run(t, "schema", "versions", "users-value", "--deleted"); !strings.Contains(out, "\n1        1") {
			t.Fatalf("versions --deleted:\n%s", out)
		}
		if out := run(t, "schema", "delete", "orders-value"); out != "Soft-deleted subject \"orders-value\" version 1.\n" {
			t.Fatalf("delete subject: %q", out)
		}
		if out := run(t, "schema", "list"); strings.Contains(out, "orders-value") {
			t.Fatalf("list after delete:\n%s", out)
		}
		if out := run(t, "schema", "list", "--deleted"); !strings.Contains(out, "orders-value  1       3   JSON  true") {
			t.Fatalf("list --deleted:\n%s", out)
		}
		if out := run(t, "schema", "delete", "users-value", "--permanent"); out != "Permanently deleted subject \"users-value\" versions 1, 2, 3.\n" {
			t.Fatalf("delete --permanent: %q", out)
		}
		_, _, err := runLive(t, addr, "schema", "get", "users-value", "--deleted")
		if err == nil || !strings.Contains(err.Error(), "40401: ") {
			t.Fatalf("get after permanent delete: %v", err)
		}
	})
}

// TestAvroJSONRoundTrip checks the Avro JSON encoder and decoder against
// each other and against hamba/avro's own decoder.
func TestAvroJSONRoundTrip(t *testing.T) {
	parsed, err := avro.Parse(`{"type":"record","name":"R","namespace":"ex","fields":[
	  {"name":"i","type":"int"},
	  {"name":"l","type":"long"},
	  {"name":"d","type":"double"},
	  {"name":"b","type":"boolean"},
	  {"name":"s","type":"string"},
	  {"name":"raw","type":"bytes","default":"\u00ff"},
	  {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	  {"name":"opt","type":["null","string"],"default":null},
	  {"name":"num","type":["null","int","long"],"default":null},
	  {"name":"tags","type":{"type":"array","items":"string"}},
	  {"name":"m","type":{"type":"map","values":"long"}},
	  {"name":"fx","type":{"type":"fixed","name":"Two","size":2}}
	]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	schema := parsed.Avro()
	tests := []struct {
		name    string
		in      string
		want    string // decoded JSON; empty means same as in
		wantErr string
	}{
		{
			name: "full",
			in:   `{"b":true,"d":1.5,"e":"GREEN","fx":"ab","i":-3,"l":12345678901,"m":{"a":1},"num":{"long":7},"opt":"x","raw":"\u0001\u0002","s":"hé","tags":["a","b"]}`,
		},
		{
			name: "defaults and wrapped plain union",
			in:   `{"i":1,"l":2,"d":0,"b":false,"s":"","e":"RED","tags":[],"m":{},"fx":"zz","opt":{"string":"y"}}`,
			want: `{"b":false,"d":0,"e":"RED","fx":"zz","i":1,"l":2,"m":{},"num":null,"opt":"y","raw":"ÿ","s":"","tags":[]}`,
		},
		{name: "ambiguous union", in: `{"i":1,"l":2,"d":0,"b":false,"s":"","e":"RED","tags":[],"m":{},"fx":"zz","num":5}`, wantErr: `/num: the number 5 matches several branches of the union (int, long); give it as {"int": value}`},
		{name: "wrong type", in: `{"i":"x"}`, wantErr: "/i: want an integer, got the string \"x\""},
		{name: "int overflow", in: `{"i":3000000000}`, wantErr: "/i: 3000000000 is out of range for an int"},
		{name: "missing field", in: `{"i":1}`, wantErr: "/l: missing (record ex.R has no default for it)"},
		{name: "unknown field", in: `{"i":1,"l":2,"d":0,"b":false,"s":"","e":"RED","tags":[],"m":{},"fx":"zz","zz":1}`, wantErr: `record ex.R has no field "zz"`},
		{name: "bad enum", in: `{"i":1,"l":2,"d":0,"b":false,"s":"","e":"BLUE"}`, wantErr: `"BLUE" is not a symbol of enum ex.Color (symbols: RED, GREEN)`},
		{name: "bad fixed", in: `{"i":1,"l":2,"d":0,"b":false,"s":"","e":"RED","tags":[],"m":{},"fx":"abc"}`, wantErr: "fixed ex.Two takes 2 bytes, got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeJSONDoc([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			bin, err := encodeAvroJSON(schema, v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var native any
			if err := hamba.Unmarshal(schema, bin, &native); err != nil {
				t.Fatalf("hamba cannot read the encoding: %v", err)
			}
			back, err := decodeAvroJSON(parsed, bin)
			if err != nil {
				t.Fatal(err)
			}
			got, err := marshalJSON(back)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if string(got) != want {
				t.Fatalf("round trip:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestAvroDecodeRejectsGarbage(t *testing.T) {
	schema, err := avro.Parse(`{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range [][]byte{{}, {0x7f}, {0x02, 'a', 'b'}, {0x02, 0xff}} {
		if _, err := decodeAvroJSON(schema, payload); !errors.Is(err, registry.ErrInvalidPayload) {
			t.Errorf("payload %x: err = %v", payload, err)
		}
	}
}

// TestProduceConsumeWithSchema produces JSON lines with --schema for each
// format, consumes them back decoded, and checks that a line that does not
// match its schema stops produce with nothing of it written.
func TestProduceConsumeWithSchema(t *testing.T) {
	addr, _ := startRegistryBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := testAdmin(t, addr)

	avroSchema := `{"type":"record","name":"Order","namespace":"shop","fields":[
	  {"name":"id","type":"long"},
	  {"name":"item","type":"string"},
	  {"name":"note","type":["null","string"],"default":null},
	  {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]},"default":"NEW"}]}`
	protoSchema := `syntax = "proto3";
package shop;
message Ping { string from = 1; }
message Order {
  int32 id = 1;
  string item = 2;
  repeated string tags = 3;
  message Line { string sku = 1; }
  Line first = 4;
}`
	jsonSchema := `{"type":"object","properties":{"id":{"type":"integer"},"item":{"type":"string"}},"required":["id"]}`

	tests := []struct {
		name     string
		typ      string
		schema   string
		extra    []string // produce flags besides --schema
		lines    []string
		want     []string // consume output; nil means lines
		badLine  string
		wantBad  string
		keyLines bool
	}{
		{
			name: "avro", typ: "AVRO", schema: avroSchema,
			lines: []string{
				`{"id":1,"item":"tea","note":"hot","status":"PAID"}`,
				`{"id":2,"item":"cake","note":{"string":"x"}}`,
			},
			want: []string{
				`{"id":1,"item":"tea","note":"hot","status":"PAID"}`,
				`{"id":2,"item":"cake","note":"x","status":"NEW"}`,
			},
			badLine: `{"id":"three","item":"x"}`,
			wantBad: `line 1: value does not match schema 1 (subject "avro-value" version 1, AVRO): /id: want an integer, got the string "three"`,
		},
		{
			name: "protobuf", typ: "PROTOBUF", schema: protoSchema, extra: []string{"--message", "Order"},
			lines: []string{
				`{"id":1,"item":"tea","tags":["a","b"],"first":{"sku":"s1"}}`,
				`{"id":2}`,
			},
			badLine: `{"id":1,"colour":"red"}`,
			wantBad: `line 1: value does not match message shop.Order of schema 2`,
		},
		{
			name: "json", typ: "JSON", schema: jsonSchema,
			lines:   []string{`{"id":1,"item":"tea"}`, `{"id": 2}`},
			want:    []string{`{"id":1,"item":"tea"}`, `{"id":2}`},
			badLine: `{"item":"no id"}`,
			wantBad: `line 1: value does not match schema 3 (subject "json-value" version 1, JSON)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := tt.name
			subject := topic + "-value"
			createTopic(t, ctx, adm, topic, 1)
			if _, _, err := runLive(t, addr, "schema", "register", subject, "--type", tt.typ, "--schema", tt.schema); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"produce", topic, "--schema", subject}, tt.extra...)
			_, stderr, err := runWithInput(t, addr, strings.Join(tt.lines, "\n")+"\n", args...)
			if err != nil {
				t.Fatalf("produce: %v\n%s", err, stderr)
			}

			// A bad line: an error naming the line, nothing produced.
			_, stderr, err = runWithInput(t, addr, tt.badLine+"\n"+tt.lines[0]+"\n", args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantBad) {
				t.Fatalf("bad line: err = %v, want %q", err, tt.wantBad)
			}
			if !strings.Contains(stderr, "Produced 0 of 0 records") {
				t.Fatalf("bad line stderr: %q", stderr)
			}
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := ends.Lookup(topic, 0); o.Offset != int64(len(tt.lines)) {
				t.Fatalf("end offset %d after the bad line, want %d", o.Offset, len(tt.lines))
			}

			want := tt.want
			if want == nil {
				want = tt.lines
			}
			for _, mode := range []string{"--schema", "--schema=auto"} {
				out, stderr, err := runLive(t, addr, "consume", topic, "--from-beginning", "-n", "2", mode)
				if err != nil {
					t.Fatalf("consume %s: %v\n%s", mode, err, stderr)
				}
				if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("consume %s:\n%s\nwant:\n%s", mode, out, strings.Join(want, "\n"))
				}
			}
			out, _, err := runLive(t, addr, "consume", topic, "--from-beginning", "-n", "1", "--schema=off", "--format", "%S %v")
			if err != nil || strings.HasPrefix(out, "{") || len(out) < 5 || out[strings.IndexByte(out, ' ')+1] != 0 {
				t.Fatalf("--schema=off printed %q (%v)", out, err)
			}
		})
	}

	t.Run("key schema and schema id", func(t *testing.T) {
		createTopic(t, ctx, adm, "keyed", 1)
		if _, _, err := runLive(t, addr, "schema", "register", "keyed-key", "--schema", `"long"`); err != nil {
			t.Fatal(err)
		}
		// Schema id 3 is the JSON Schema registered above.
		_, stderr, err := runWithInput(t, addr, "42\t{\"id\":7}\n", "produce", "keyed", "-K", "\t", "--key-schema", "keyed-key", "--schema-id", "3")
		if err != nil {
			t.Fatalf("produce: %v\n%s", err, stderr)
		}
		out, _, err := runLive(t, addr, "consume", "keyed", "--from-beginning", "-n", "1", "--schema", "--print-key")
		if err != nil || out != "42\t{\"id\":7}\n" {
			t.Fatalf("consume: %q %v", out, err)
		}
		_, _, err = runWithInput(t, addr, "{\"id\":7}\n", "produce", "keyed", "-K", "\t", "--key-schema", "keyed-key", "--schema-id", "3")
		if err == nil || !strings.Contains(err.Error(), "line 1: no key") {
			t.Fatalf("line without key: %v", err)
		}
		_, _, err = runWithInput(t, addr, "{}\n", "produce", "keyed", "--schema", "missing-value")
		if err == nil || !strings.Contains(err.Error(), `fetch subject "missing-value" version latest: 40401: `) {
			t.Fatalf("unknown subject: %v", err)
		}
	})

	t.Run("avro reference", func(t *testing.T) {
		createTopic(t, ctx, adm, "priced", 1)
		money := `{"type":"record","name":"Money","namespace":"fin","fields":[{"name":"cents","type":"long"}]}`
		priced := `{"type":"record","name":"Priced","namespace":"shop","fields":[{"name":"price","type":"fin.Money"}]}`
		if _, _, err := runLive(t, addr, "schema", "register", "money-value", "--schema", money); err != nil {
			t.Fatal(err)
		}
		out, _, err := runLive(t, addr, "schema", "register", "priced-value", "--schema", priced, "--ref", "fin.Money=money-value:latest")
		if err != nil || !strings.Contains(out, "version 1") {
			t.Fatalf("register with reference: %q %v", out, err)
		}
		if out, _, _ := runLive(t, addr, "schema", "get", "priced-value"); !strings.Contains(out, "References: fin.Money = money-value version 1") {
			t.Fatalf("get shows no reference:\n%s", out)
		}
		line := `{"price":{"cents":250}}`
		if _, stderr, err := runWithInput(t, addr, line+"\n", "produce", "priced", "--schema", "priced-value"); err != nil {
			t.Fatalf("produce: %v\n%s", err, stderr)
		}
		out, _, err = runLive(t, addr, "consume", "priced", "--from-beginning", "-n", "1", "--schema")
		if err != nil || out != line+"\n" {
			t.Fatalf("consume: %q %v", out, err)
		}
	})

	t.Run("strict consume of plain records", func(t *testing.T) {
		createTopic(t, ctx, adm, "plain", 1)
		if _, _, err := runWithInput(t, addr, "hello\n", "produce", "plain"); err != nil {
			t.Fatal(err)
		}
		out, _, err := runLive(t, addr, "consume", "plain", "--from-beginning", "-n", "1")
		if err != nil || out != "hello\n" {
			t.Fatalf("auto: %q %v", out, err)
		}
		_, _, err = runLive(t, addr, "consume", "plain", "--from-beginning", "-n", "1", "--schema")
		if err == nil || !strings.Contains(err.Error(), "partition 0 offset 0: value is not in the schema registry wire format") {
			t.Fatalf("strict: %v", err)
		}
	})
}

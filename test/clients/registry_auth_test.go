package clients

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/test/harness"
)

// TestKafkaJSSchemaRegistryHTTPS: @kafkajs/confluent-schema-registry uses
// the schema registry over HTTPS (a test CA's certificate) with HTTP Basic
// authentication against the SASL users (bootstrap users file): a super
// user registers, reads and round-trips a record; a wrong password and no
// credentials get 401, an authenticated user without ACLs 403, each with
// Confluent's error message.
func TestKafkaJSSchemaRegistryHTTPS(t *testing.T) {
	requireRegistryJS(t)
	dir := t.TempDir()
	ca := harness.GenerateCA(t, dir, "test")
	server := ca.IssueServerCert(t, "server")
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("admin:admin-secret\nbob:bob-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "tls:\n  cert-file: " + server.CertFile + "\n  key-file: " + server.KeyFile + "\n" +
		"sasl:\n  mechanisms: [PLAIN, SCRAM-SHA-512]\n  bootstrap-users-file: " + users + "\n" +
		"authorization:\n  enabled: true\n  super-users: [User:admin]\n"
	b := harness.Start(t, harness.Options{Config: cfg, HTTPS: true})

	input, _ := json.Marshal(map[string]any{
		"admin":   map[string]string{"username": "admin", "password": "admin-secret"},
		"denied":  map[string]string{"username": "bob", "password": "bob-secret"},
		"subject": "payments-value",
		"schema":  `{"type":"record","name":"Payment","namespace":"runnel.test","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}`,
		"value":   map[string]any{"id": "p-1", "amount": 12.5},
	})
	out := run(t, b, string(input), "node", "js/registry_auth.js", "https://"+b.Registry, ca.CertFile)
	type line struct {
		Step    string          `json:"step"`
		ID      int             `json:"id"`
		Value   json.RawMessage `json:"value"`
		Status  *int            `json:"status"`
		Message string          `json:"message"`
	}
	steps := map[string]line{}
	for _, l := range parseJSONLines[line](t, out) {
		steps[l.Step] = l
	}
	if steps["register"].ID <= 0 || steps["latest"].ID != steps["register"].ID {
		t.Fatalf("register/latest: %+v %+v\n%s", steps["register"], steps["latest"], out)
	}
	if !sameJSON(t, steps["decoded"].Value, json.RawMessage(`{"id":"p-1","amount":12.5}`)) {
		t.Fatalf("decoded %s", steps["decoded"].Value)
	}
	for step, want := range map[string]int{"wrong-password": 401, "anonymous": 401, "denied": 403} {
		l, ok := steps[step]
		if !ok || l.Status == nil || *l.Status != want {
			t.Fatalf("%s: %+v, want status %d\n%s", step, l, want, out)
		}
	}
	if m := steps["denied"].Message; !strings.Contains(m, "denied operation Describe on Subject: payments-value") {
		t.Fatalf("denied message %q", m)
	}
}

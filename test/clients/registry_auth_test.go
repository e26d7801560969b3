package clients

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/runnel-dev/runnel/test/harness"
)

// TestKafkaJSSchemaRegistryHTTPS: @kafkajs/confluent-schema-registry uses
// the schema registry over HTTPS (a test CA's certificate) with HTTP Basic
// authentication against the SASL users (bootstrap users file): a super
// user registers, reads and round-trips a record; a wrong password and no
// credentials get 401, an authenticated user without ACLs 403, each with
// Confluent's error message; a user granted WRITE and ALTER_CONFIGS on a
// topic (CreateAcls over SASL) registers under its <topic>-value subject
// and nowhere else.
func TestKafkaJSSchemaRegistryHTTPS(t *testing.T) {
	requireRegistryJS(t)
	dir := t.TempDir()
	ca := harness.GenerateCA(t, dir, "test")
	server := ca.IssueServerCert(t, "server")
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("admin:admin-secret\nbob:bob-secret\ncarol:carol-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "tls:\n  cert-file: " + server.CertFile + "\n  key-file: " + server.KeyFile + "\n" +
		"sasl:\n  mechanisms: [PLAIN, SCRAM-SHA-512]\n  bootstrap-users-file: " + users + "\n" +
		"authorization:\n  enabled: true\n  super-users: [User:admin]\n"
	b := harness.Start(t, harness.Options{Config: cfg, HTTPS: true,
		Listeners: []harness.Listener{{Name: "SASL", SecurityProtocol: "SASL_PLAINTEXT"}}})
	grantWriter(t, b.Listeners["SASL"], "User:carol", "orders")
	// ACLs reach every broker's authorizer through a watch: wait until
	// the registry sees the grant.
	waitStatus(t, ca.ClientTLS(t, nil), "https://"+b.Registry+"/config/orders-value", "carol", "carol-secret", 404)

	input, _ := json.Marshal(map[string]any{
		"admin":         map[string]string{"username": "admin", "password": "admin-secret"},
		"denied":        map[string]string{"username": "bob", "password": "bob-secret"},
		"writer":        map[string]string{"username": "carol", "password": "carol-secret"},
		"writerSubject": "orders-value",
		"subject":       "payments-value",
		"schema":        `{"type":"record","name":"Payment","namespace":"runnel.test","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}`,
		"value":         map[string]any{"id": "p-1", "amount": 12.5},
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
	if steps["writer-register"].ID != steps["register"].ID {
		t.Fatalf("writer-register: %+v (the same schema has the same id)\n%s", steps["writer-register"], out)
	}
	for step, want := range map[string]int{"wrong-password": 401, "anonymous": 401, "denied": 403, "writer-denied": 403} {
		l, ok := steps[step]
		if !ok || l.Status == nil || *l.Status != want {
			t.Fatalf("%s: %+v, want status %d\n%s", step, l, want, out)
		}
	}
	if m := steps["denied"].Message; !strings.Contains(m, "denied operation Describe on Subject: payments-value") {
		t.Fatalf("denied message %q", m)
	}
}

// grantWriter lets principal register schemas for topic: WRITE and
// ALTER_CONFIGS (which @kafkajs/confluent-schema-registry needs to read
// and set the subject's compatibility), created by the super user over
// the SASL listener at addr.
func grantWriter(t *testing.T, addr, principal, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateACLs(ctx, kadm.NewACLs().Allow(principal).AllowHosts("*").
		Topics(topic).ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpWrite, kadm.OpAlterConfigs))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
}

// waitStatus polls GET url as user until it answers status (10s at most).
func waitStatus(t *testing.T, tc *tls.Config, url, user, password string, status int) {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth(user, password)
		resp, err := cl.Do(req)
		got := 0
		if err == nil {
			got = resp.StatusCode
			resp.Body.Close()
		}
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s as %s: %d (%v), want %d", url, user, got, err, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

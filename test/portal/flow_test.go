package portal_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/test/harness"
)

// customerSchema is the product's value schema: its email field carries
// the PII tag (Confluent's field-level confluent:tags).
const customerSchema = `{"type":"record","name":"Customer","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"string"},
 {"name":"email","type":"string","confluent:tags":["PII"]}]}`

// customerEmails are the records' email addresses, which nobody but the
// owner may see in the portal.
var customerEmails = []string{"ada@example.com", "grace@example.com", "edsger@example.com"}

// TestPortalAccessRequestFlow: the end-to-end flow on the built
// binary with SASL/SCRAM and authorization. Bob owns "customers" (set up
// through the API) whose Avro schema tags `email` PII. Alice logs in to
// the portal, finds the product by searching the field name, opens it
// (no records for her yet) and requests READ with a reason; her kcat
// consumer is refused. Bob logs in and approves with a reason; Alice's
// kcat consumer then reads the topic, and the portal shows her the
// records with email masked. Bob shares the topic with a partner and is
// shown the credentials. The audit log shows the request and the
// approval. Screenshots of the main pages are kept.
func TestPortalAccessRequestFlow(t *testing.T) {
	chromium := requireBrowser(t)
	requireKcat(t)
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("admin:admin-secret\nalice:alice-secret\nbob:bob-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "sasl:\n  mechanisms: [SCRAM-SHA-512]\n  bootstrap-users-file: " + users + "\n" +
		"authorization:\n  enabled: true\n  super-users: [User:admin]\n"
	b := harness.Start(t, harness.Options{Config: cfg, Listeners: []harness.Listener{{Name: "SASL", SecurityProtocol: "SASL_PLAINTEXT"}}})
	kafka := b.Listeners["SASL"]
	web := "http://" + b.HTTP
	// The browser starts while the broker is set up.
	br := startBrowser(t, chromium, web, harness.ArtifactsDir(t, "portal"))
	const topic = "customers"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The administrator creates the topic and lets Bob own it.
	adminCl := scramClient(t, kafka, "admin", "admin-secret")
	adm := kadm.NewClient(adminCl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	acls, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts("*").Topics(topic).
		ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpAll))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range acls {
		if r.Err != nil {
			t.Fatalf("ACL %+v: %v", r, r.Err)
		}
	}

	// Bob registers the schema, produces customers and describes his
	// product (ACLs reach the HTTP guard through a watch: retry a moment).
	var schemaID int
	eventually(t, 10*time.Second, "Bob registers the schema", func() error {
		body, _ := json.Marshal(map[string]string{"schema": customerSchema, "schemaType": "AVRO"})
		status, answer := call(t, "POST", "http://"+b.Registry+"/subjects/"+topic+"-value/versions", "bob", "bob-secret", string(body), "application/vnd.schemaregistry.v1+json")
		if status != 200 {
			return fmt.Errorf("%d %s", status, answer)
		}
		var got struct{ ID int }
		if err := json.Unmarshal([]byte(answer), &got); err != nil || got.ID <= 0 {
			return fmt.Errorf("answer %s: %v", answer, err)
		}
		schemaID = got.ID
		return nil
	})
	produceCustomers(t, ctx, kafka, topic, schemaID)
	product, _ := json.Marshal(map[string]any{"owner": "User:bob", "description": "Every customer, as the shop knows them",
		"domain": "sales", "tags": []string{"tier-1"}, "lifecycle": "active"})
	eventually(t, 10*time.Second, "Bob describes his product", func() error {
		if status, answer := call(t, "PUT", web+"/api/v1/products/"+topic, "bob", "bob-secret", string(product), "application/json"); status != 200 && status != 201 {
			return fmt.Errorf("%d %s", status, answer)
		}
		return nil
	})

	alice := br.run(t,
		step{"do": "login", "user": "alice", "password": "alice-secret", "shot": "login"},
		step{"do": "search", "q": "email", "expect": topic, "open": topic, "shot": "search"},
		step{"do": "product", "name": "before", "topic": topic, "here": true, "shot": "product-before-access"},
		step{"do": "requestAccess", "operation": "READ", "reason": "Churn analysis for Q1"},
		step{"do": "requests", "shot": "requests-pending"},
		step{"do": "logout"},
	)
	var found *searchResult
	for i, r := range alice["search"].Results {
		if r.Topic == topic {
			found = &alice["search"].Results[i]
		}
	}
	if found == nil || !contains(found.Matched, "email") || !contains(found.Tags, "PII") {
		t.Fatalf("searching email: %+v, want %s matched on its email field and tagged PII", alice["search"].Results, topic)
	}
	if before := alice["before"]; !contains(before.PIIFields, "email") || !strings.Contains(before.Head, "User:bob") ||
		!strings.Contains(before.Sample, "You need READ access") {
		t.Fatalf("the product page before access: PII fields %v\nhead %s\nsample %s", before.PIIFields, before.Head, before.Sample)
	}
	if rowWith(alice["requests"].Rows, topic, "PENDING") == nil {
		t.Fatalf("my requests: %v", alice["requests"].Rows)
	}

	if out, err := kcatConsume(t, kafka, topic); err == nil {
		t.Fatalf("Alice's kcat read the topic before her request was approved:\n%s", out)
	} else if !strings.Contains(strings.ToLower(out), "authoriz") {
		t.Fatalf("Alice's kcat failed, but not for authorization: %v\n%s", err, out)
	}

	bob := br.run(t,
		step{"do": "login", "user": "bob", "password": "bob-secret", "shot": "login-bob"},
		step{"do": "approve", "requester": "User:alice", "topic": topic, "reason": "Approved for the churn study", "shot": "approvals"},
		step{"do": "share", "topic": topic, "recipient": "Partner AG", "shot": "shares"},
		step{"do": "logout"},
	)
	if !strings.Contains(bob["approve"].After, "Nothing waits for your decision") {
		t.Fatalf("approvals after approving:\n%s", bob["approve"].After)
	}
	if c := bob["share"].Credentials; !strings.Contains(c, "SCRAM-SHA-512") || !strings.Contains(c, kafka) || rowWith(bob["share"].Rows, topic, "Partner AG") == nil {
		t.Fatalf("sharing in the portal: credentials %q, shares %v", c, bob["share"].Rows)
	}

	// The approval's ACLs reach the broker through a watch.
	var read string
	eventually(t, 15*time.Second, "Alice's kcat reads the topic", func() error {
		out, err := kcatConsume(t, kafka, topic)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		read = out
		return nil
	})
	for _, email := range customerEmails {
		if !strings.Contains(read, email) {
			t.Fatalf("Alice's kcat read %q, without %s", read, email)
		}
	}

	after := br.run(t,
		step{"do": "login", "user": "alice", "password": "alice-secret", "shot": "login-alice"},
		step{"do": "product", "name": "after", "topic": topic, "shot": "product"},
		step{"do": "requests", "shot": "requests"},
		step{"do": "audit", "query": "?topic=" + topic, "shot": "audit"},
	)
	sample := after["after"].Sample
	if !strings.Contains(sample, "****") || !strings.Contains(sample, "email") {
		t.Fatalf("the sample Alice sees does not mask email:\n%s", sample)
	}
	for _, email := range customerEmails {
		if strings.Contains(sample, email) {
			t.Fatalf("the sample shows Alice the PII value %s:\n%s", email, sample)
		}
	}
	if rowWith(after["requests"].Rows, topic, "APPROVED", "User:bob", "Approved for the churn study") == nil {
		t.Fatalf("my requests after the approval: %v", after["requests"].Rows)
	}
	rows := after["audit"].Rows
	if auditRow(rows, "User:alice", "request") == nil || auditRow(rows, "User:bob", "approve") == nil {
		t.Fatalf("the audit log lacks the request or the approval: %v", rows)
	}
}

// auditRow finds the audit row of actor whose action contains verb.
func auditRow(rows [][]string, actor, verb string) []string {
	for _, r := range rows {
		if len(r) > 3 && r[1] == actor && strings.Contains(r[3], verb) {
			return r
		}
	}
	return nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func scramClient(t *testing.T, addr, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceCustomers produces one Avro record (Confluent's framing) per
// customer email as Bob.
func produceCustomers(t *testing.T, ctx context.Context, addr, topic string, schemaID int) {
	t.Helper()
	schema, err := avro.Parse(customerSchema)
	if err != nil {
		t.Fatal(err)
	}
	cl := scramClient(t, addr, "bob", "bob-secret", kgo.DefaultProduceTopic(topic))
	for i, email := range customerEmails {
		value, err := avro.Marshal(schema, map[string]any{"id": int64(i + 1), "name": fmt.Sprintf("Customer %d", i+1), "email": email})
		if err != nil {
			t.Fatal(err)
		}
		framed := make([]byte, 5, 5+len(value))
		binary.BigEndian.PutUint32(framed[1:], uint32(schemaID))
		framed = append(framed, value...)
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i + 1)), Value: framed}).FirstErr(); err != nil {
			t.Fatalf("Bob produces: %v", err)
		}
	}
}

// kcatConsume reads the topic from the start as Alice, with kcat over
// SASL/SCRAM, and returns what it printed (stdout and stderr).
func kcatConsume(t *testing.T, addr, topic string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
		"-X", "sasl.username=alice", "-X", "sasl.password=alice-secret", "-f", "%k %s\n", "-m", "10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// call sends an HTTP request with Basic credentials.
func call(t *testing.T, method, url, user, password, body, contentType string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually retries fn until it succeeds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/governance/access"
)

// TestAccessAndShareCommands: the access and share commands call the
// governance API with HTTP Basic from --sasl-user and its password, send
// the flags as the JSON the API takes, print the answers, and show an API
// error's message.
func TestAccessAndShareCommands(t *testing.T) {
	var mu sync.Mutex
	var seen []string // "METHOD path?query user body"
	exp := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	req := access.AccessRequest{ID: "01jf3z0q7m9n8c5v4b2x1k0h6d", Topic: "orders", Operation: "READ", Group: "fraud-app",
		Reason: "fraud dashboards", Requester: "User:alice", RequesterHost: "10.0.0.7", State: "APPROVED", ExpiresAt: &exp,
		DecidedBy: "User:bob", ACLs: []access.ACLJSON{{ResourceType: "TOPIC", ResourceName: "orders", PatternType: "LITERAL",
			Principal: "User:alice", Host: "*", Operation: "READ", Permission: "ALLOW"}}}
	share := access.Share{ID: "01jf40000000000000000000aa", Topic: "orders", Recipient: "ACME", Username: "share-01jf40000000000000000000aa",
		CreatedBy: "User:bob", State: "ACTIVE"}
	mux := http.NewServeMux()
	answer := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			user, pw, _ := r.BasicAuth()
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen = append(seen, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+user+":"+pw+" "+string(b)))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		}
	}
	mux.Handle("POST /api/v1/access-requests", answer(req))
	mux.Handle("GET /api/v1/access-requests", answer(map[string]any{"items": []access.AccessRequest{req}, "total": 3}))
	mux.Handle("POST /api/v1/access-requests/{id}/{action}", answer(req))
	mux.HandleFunc("GET /api/v1/access-requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error_code":40401,"message":"governance: not found: no access request nope"}`))
	})
	mux.Handle("GET /api/v1/audit", answer(map[string]any{"items": []map[string]any{{"id": "x", "time": exp, "actor": "User:bob",
		"host": "10.0.0.8", "action": "access.approve", "resource": "access-request:" + req.ID}}}))
	mux.Handle("POST /api/v1/shares", answer(access.CreatedShare{Share: &share,
		Credentials: access.ShareCredentials{Username: share.Username, Password: "s3cret-once", Mechanism: "SCRAM-SHA-512"},
		Connection:  access.Connection{BootstrapServers: "b1:9093,b2:9093", SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "SCRAM-SHA-512"}}))
	mux.Handle("DELETE /api/v1/shares/{id}", answer(share))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	t.Setenv(envSASLPassword, "alice-pw")

	for _, c := range []struct {
		name string
		args []string
		sent string // what the server received
		want []string
		err  string
	}{
		{"request", []string{"access", "request", "orders", "--group", "fraud-app", "--reason", "fraud dashboards", "--duration", "720h"},
			`POST /api/v1/access-requests alice:alice-pw {"topic":"orders","operation":"READ","group":"fraud-app","reason":"fraud dashboards","duration":"720h"}`,
			[]string{"Requester:", "User:alice from 10.0.0.7", "APPROVED", "2027-01-31T00:00:00Z", "ALLOW User:alice READ TOPIC LITERAL orders"}, ""},
		{"request with expiry", []string{"access", "request", "orders", "--operation", "WRITE", "--reason", "x", "--expires-at", "2027-01-31T00:00:00Z"},
			`POST /api/v1/access-requests alice:alice-pw {"topic":"orders","operation":"WRITE","reason":"x","expiresAt":"2027-01-31T00:00:00Z"}`, nil, ""},
		{"bad expiry", []string{"access", "request", "orders", "--reason", "x", "--expires-at", "tomorrow"}, "", nil, "RFC 3339"},
		{"list", []string{"access", "list", "--role", "approver", "--state", "PENDING"},
			`GET /api/v1/access-requests?limit=50&offset=0&role=approver&state=PENDING alice:alice-pw`,
			[]string{"REQUESTER", "User:alice", "fraud dashboards", "1 of 3 shown"}, ""},
		{"approve", []string{"access", "approve", req.ID, "--reason", "ok"},
			`POST /api/v1/access-requests/` + req.ID + `/approve alice:alice-pw {"reason":"ok"}`, []string{"Decided by:", "User:bob"}, ""},
		{"decline needs a reason", []string{"access", "decline", req.ID}, "", nil, "decline needs --reason"},
		{"cancel", []string{"access", "cancel", req.ID}, `POST /api/v1/access-requests/` + req.ID + `/cancel alice:alice-pw {"reason":""}`, nil, ""},
		{"show unknown", []string{"access", "show", "nope"}, "", nil, "no access request nope (HTTP 404, error 40401)"},
		{"audit", []string{"access", "audit", "--topic", "orders", "--limit", "5"},
			`GET /api/v1/audit?limit=5&topic=orders alice:alice-pw`, []string{"access.approve", "10.0.0.8", "User:bob"}, ""},
		{"share create", []string{"share", "create", "orders", "--recipient", "ACME", "--duration", "24h", "--consumer-byte-rate", "1048576"},
			`POST /api/v1/shares alice:alice-pw {"topic":"orders","recipient":"ACME","duration":"24h","quota":{"consumerByteRate":1048576}}`,
			[]string{"bootstrap.servers=b1:9093,b2:9093", "sasl.password=s3cret-once", "sasl.username=share-01jf40000000000000000000aa", "security.protocol=SASL_PLAINTEXT"}, ""},
		{"share revoke", []string{"share", "revoke", share.ID}, `DELETE /api/v1/shares/` + share.ID + ` alice:alice-pw`, []string{"ACME"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			out, err := runCLI(t, "", append(c.args, "--http", srv.URL, "--sasl-user", "alice")...)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if c.sent != "" && (len(seen) != 1 || !strings.HasPrefix(seen[0], c.sent)) {
				t.Fatalf("sent %q, want %q", seen, c.sent)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

package portal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/portal"
	"github.com/runnel-dev/runnel/test/harness"
)

// The stand-in governance API: the JSON shapes of the governance design
// (catalog, lineage, access requests, shares, audit) for one product,
// "customers", owned by User:bob, with a PII-tagged email field.

type fakeUsers struct{}

var fakePasswords = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

func (fakeUsers) CheckPassword(_ context.Context, user, password string) (auth.Principal, error) {
	if pw, ok := fakePasswords[user]; ok && pw == password {
		return auth.User(user), nil
	}
	return auth.Principal{}, errors.New("auth: authentication failed")
}

func (fakeUsers) CheckToken(context.Context, string) (auth.Principal, time.Time, error) {
	return auth.Principal{}, time.Time{}, errors.New("no tokens")
}

// fakeACLs: bob may do everything with customers; alice may read it once
// her request is approved.
type fakeACLs struct{ api *fakeAPI }

func (a fakeACLs) Authorize(p auth.Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if typ != kmsg.ACLResourceTypeTopic || name != "customers" {
		return false
	}
	switch p.String() {
	case "User:bob":
		return true
	case "User:alice":
		return a.api.aliceReads.Load() && (op == kmsg.ACLOperationRead || op == kmsg.ACLOperationDescribe)
	}
	return false
}

type fakeAPI struct {
	mu         sync.Mutex
	requests   []map[string]any
	shares     []map[string]any
	audit      []governance.Event
	aliceReads atomic.Bool // Authorize reads it while a handler holds mu
	now        time.Time
}

var customersFields = []map[string]any{
	{"path": "id", "type": "long", "doc": "Customer number", "tags": []string{}},
	{"path": "name", "type": "string", "doc": "Full name", "tags": []string{}},
	{"path": "email", "type": "string", "doc": "Contact address", "tags": []string{"PII"}},
	{"path": "address.city", "type": "string", "doc": "", "tags": []string{}},
}

func customersSummary() map[string]any {
	return map[string]any{
		"topic": "customers", "exists": true, "partitions": 3, "owner": "User:bob",
		"description": "Every customer, as the CRM knows them", "domain": "sales", "tags": []string{"PII", "tier-1"},
		"lifecycle": "active", "businessMetadata": map[string]any{"costCenter": "4711"},
		"links":     []map[string]string{{"title": "Runbook", "url": "https://runbooks.example/customers"}},
		"fieldTags": map[string][]string{"email": {"PII"}}, "createdAt": "2026-12-01T09:00:00Z",
		"updatedAt": "2026-12-06T10:00:00Z", "updatedBy": "User:bob", "version": 3,
	}
}

func customersProduct() map[string]any {
	p := customersSummary()
	p["schema"] = map[string]any{"subject": "customers-value", "version": 2, "id": 7, "type": "AVRO", "fields": customersFields}
	p["keySchema"] = nil
	p["contract"] = map[string]any{"rules": []map[string]any{{"name": "email-present", "kind": "CONDITION", "mode": "WRITE", "type": "CEL", "expr": "size(message.email) > 0", "onFailure": "DLQ"}}}
	return p
}

func (f *fakeAPI) record(a governance.Actor, action, resource, reason string, before, after any) {
	e := governance.NewEvent(a, action, resource, "customers", reason, before, after)
	e.ID = fmt.Sprint(len(f.audit) + 1)
	e.Time = f.now.Add(time.Duration(len(f.audit)) * time.Second)
	f.audit = append([]governance.Event{e}, f.audit...)
}

func list(items any, total int) map[string]any { return map[string]any{"items": items, "total": total} }

// mount adds the stand-in API to mux behind g.
func (f *fakeAPI) mount(mux *http.ServeMux, g *auth.Guard, authz governance.Authorizer) {
	handle := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, a governance.Actor) error) {
		mux.Handle(pattern, g.Authenticate(governance.Handler(authz, func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			return fn(w, r, a)
		})))
	}
	handle("GET /api/v1/products", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		q := strings.ToLower(r.URL.Query().Get("q"))
		s := customersSummary()
		items := []map[string]any{}
		facets := map[string]map[string]int{"tags": {}, "owners": {}, "domains": {}, "lifecycle": {}}
		if q == "" || strings.HasPrefix("email", q) || strings.Contains("customers", q) {
			if strings.HasPrefix("email", q) && q != "" {
				s["matchedFields"] = []string{"email"}
			}
			items = append(items, s)
			facets["tags"] = map[string]int{"PII": 1, "tier-1": 1}
			facets["owners"] = map[string]int{"User:bob": 1}
			facets["domains"] = map[string]int{"sales": 1}
			facets["lifecycle"] = map[string]int{"active": 1}
		}
		governance.WriteJSON(w, 200, map[string]any{"items": items, "total": len(items), "facets": facets})
		return nil
	})
	handle("GET /api/v1/products/{topic}", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		if r.PathValue("topic") != "customers" {
			return fmt.Errorf("%w: no product %s", governance.ErrNotFound, r.PathValue("topic"))
		}
		governance.WriteJSON(w, 200, customersProduct())
		return nil
	})
	handle("GET /api/v1/products/{topic}/schema/diff", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		// Answer slowly, as a registry with many versions would: the page
		// shows "Comparing…" meanwhile, and the check must wait for the
		// answer, not stop at that placeholder.
		time.Sleep(300 * time.Millisecond)
		governance.WriteJSON(w, 200, map[string]any{"subject": "customers-value", "from": 1, "to": 2,
			"added":   []map[string]any{customersFields[3]},
			"removed": []map[string]any{{"path": "phone", "type": "string", "tags": []string{"PII"}}},
			"changed": []map[string]any{{"path": "id", "from": map[string]any{"path": "id", "type": "int"}, "to": customersFields[0]}}})
		return nil
	})
	handle("GET /api/v1/products/{topic}/sample", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		if !a.May(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "customers") {
			return fmt.Errorf("%w: READ on customers needed", governance.ErrForbidden)
		}
		items := []map[string]any{}
		for i := range 3 {
			items = append(items, map[string]any{"partition": i, "offset": 40 + i, "timestamp": "2026-12-07T09:00:0" + fmt.Sprint(i) + "Z",
				"key": fmt.Sprint(100 + i), "value": map[string]any{"id": 100 + i, "name": fmt.Sprintf("Customer %d", i), "email": "****", "address": map[string]any{"city": "Bern"}},
				"masked": []string{"email"}})
		}
		governance.WriteJSON(w, 200, map[string]any{"items": items})
		return nil
	})
	handle("GET /api/v1/products/{topic}/clients", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		governance.WriteJSON(w, 200, map[string]any{
			"producers":  []map[string]any{{"from": "producer:crm-sync", "to": "topic:customers", "kind": "produces", "principal": "User:bob", "clientId": "crm-sync", "software": "apache-kafka-java/3.9.0", "records": 1200, "bytes": 340000, "lastSeen": "2026-12-07T09:59:00Z"}},
			"consumers":  []map[string]any{{"from": "topic:customers", "to": "group:billing", "kind": "consumes", "principal": "User:carol", "group": "billing", "clientId": "billing-1", "lagRecords": 12, "lagSeconds": 3.5, "status": "OK", "lastSeen": "2026-12-07T09:59:30Z"}},
			"throughput": map[string]any{"bytesInPerSec": 2048.5, "recordsInPerSec": 7.5, "bytesOutPerSec": 4096},
		})
		return nil
	})
	handle("GET /api/v1/lineage", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		nodes := []map[string]any{
			{"id": "producer:crm-sync", "kind": "producer", "name": "crm-sync"},
			{"id": "topic:customers", "kind": "topic", "name": "customers"},
			{"id": "group:billing", "kind": "group", "name": "billing"},
		}
		edges := []map[string]any{
			{"from": "producer:crm-sync", "to": "topic:customers", "kind": "produces", "principal": "User:bob", "clientId": "crm-sync", "records": 1200, "bytes": 340000},
			{"from": "topic:customers", "to": "group:billing", "kind": "consumes", "principal": "User:carol", "group": "billing", "records": 1188, "bytes": 336000},
		}
		if r.URL.Query().Get("depth") == "all" {
			nodes = append(nodes, map[string]any{"id": "topic:invoices", "kind": "topic", "name": "invoices"},
				map[string]any{"id": "table:default.customers", "kind": "table", "name": "default.customers"})
			edges = append(edges, map[string]any{"from": "group:billing", "to": "topic:invoices", "kind": "produces"},
				map[string]any{"from": "topic:customers", "to": "table:default.customers", "kind": "materializes"})
		}
		governance.WriteJSON(w, 200, map[string]any{"nodes": nodes, "edges": edges})
		return nil
	})
	handle("POST /api/v1/access-requests", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		var req struct {
			Topic, Operation, Group, Reason, Duration, ExpiresAt string
		}
		if err := governance.ReadJSON(r, &req, 0); err != nil {
			return err
		}
		if req.Reason == "" || (req.Operation != "READ" && req.Operation != "WRITE") {
			return fmt.Errorf("%w: operation and reason are required", governance.ErrInvalid)
		}
		ar := map[string]any{"id": fmt.Sprintf("req-%d", len(f.requests)+1), "topic": req.Topic, "operation": req.Operation,
			"reason": req.Reason, "requester": a.String(), "requesterHost": a.Host, "expiresAt": nil, "state": "PENDING",
			"createdAt": f.now.Format(time.RFC3339), "decidedAt": nil}
		f.requests = append(f.requests, ar)
		f.record(a, "access.request", "access-request:"+ar["id"].(string), req.Reason, nil, ar)
		governance.WriteJSON(w, http.StatusCreated, ar)
		return nil
	})
	handle("GET /api/v1/access-requests", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		role, state := r.URL.Query().Get("role"), r.URL.Query().Get("state")
		items := []map[string]any{}
		for _, ar := range f.requests {
			mine := ar["requester"] == a.String()
			if (role == "mine" && !mine) || (role == "approver" && a.String() != "User:bob") || (state != "" && ar["state"] != state) {
				continue
			}
			items = append(items, ar)
		}
		governance.WriteJSON(w, 200, list(items, len(items)))
		return nil
	})
	handle("POST /api/v1/access-requests/{id}/{action}", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		var req struct{ Reason string }
		if err := governance.ReadJSON(r, &req, 0); err != nil {
			return err
		}
		for _, ar := range f.requests {
			if ar["id"] != r.PathValue("id") {
				continue
			}
			action := r.PathValue("action")
			if (action == "cancel") != (a.String() == ar["requester"]) || (action != "cancel" && a.String() != "User:bob") {
				return fmt.Errorf("%w: the requester cancels, the owner decides", governance.ErrForbidden)
			}
			before := map[string]any{"state": ar["state"]}
			switch action {
			case "cancel":
				ar["state"] = "CANCELLED"
			case "approve":
				ar["state"] = "APPROVED"
				f.aliceReads.Store(true)
			case "decline":
				ar["state"] = "DECLINED"
			default:
				return fmt.Errorf("%w: no action %s", governance.ErrNotFound, r.PathValue("action"))
			}
			ar["decidedBy"], ar["decisionReason"], ar["decidedAt"] = a.String(), req.Reason, f.now.Format(time.RFC3339)
			f.record(a, "access."+r.PathValue("action"), "access-request:"+r.PathValue("id"), req.Reason, before, map[string]any{"state": ar["state"]})
			governance.WriteJSON(w, 200, ar)
			return nil
		}
		return fmt.Errorf("%w: no request %s", governance.ErrNotFound, r.PathValue("id"))
	})
	handle("GET /api/v1/shares", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		governance.WriteJSON(w, 200, list(f.shares, len(f.shares)))
		return nil
	})
	handle("POST /api/v1/shares", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		var req struct {
			Topic, Recipient, Description, Duration, ExpiresAt string
			Quota                                              map[string]int64
		}
		if err := governance.ReadJSON(r, &req, 0); err != nil {
			return err
		}
		id := fmt.Sprintf("sh-%d", len(f.shares)+1)
		sh := map[string]any{"id": id, "topic": req.Topic, "recipient": req.Recipient, "username": "share-" + id, "createdBy": a.String(),
			"createdAt": f.now.Format(time.RFC3339), "expiresAt": nil, "state": "ACTIVE"}
		f.shares = append(f.shares, sh)
		f.record(a, "share.create", "share:"+id, "", nil, sh)
		governance.WriteJSON(w, http.StatusCreated, map[string]any{"share": sh,
			"credentials": map[string]any{"username": "share-" + id, "password": "once-only-secret", "mechanism": "SCRAM-SHA-512"},
			"connection":  map[string]any{"bootstrapServers": "127.0.0.1:9092", "securityProtocol": "SASL_PLAINTEXT", "saslMechanism": "SCRAM-SHA-512", "schemaRegistryUrl": "http://127.0.0.1:8081"}})
		return nil
	})
	handle("DELETE /api/v1/shares/{id}", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		for _, sh := range f.shares {
			if sh["id"] == r.PathValue("id") {
				sh["state"], sh["revokedBy"], sh["revokedAt"] = "REVOKED", a.String(), f.now.Format(time.RFC3339)
				f.record(a, "share.revoke", "share:"+r.PathValue("id"), "", nil, sh)
				governance.WriteJSON(w, 200, sh)
				return nil
			}
		}
		return fmt.Errorf("%w: no share %s", governance.ErrNotFound, r.PathValue("id"))
	})
	handle("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
		governance.WriteJSON(w, 200, list(f.audit, len(f.audit)))
		return nil
	})
}

// TestPortalPagesAgainstFakeAPI: every page renders against the API's
// JSON shapes with no console error or failed request: the login, a
// search by a field name (results, matched fields, facets), the product
// page (schema with the PII field tag, version diff, contract, masked
// sample, throughput and consumer lag, the lineage graph one hop and
// full, as SVG), an access request, the owner's approval, a share whose
// credentials are shown once and its revocation, and the audit log.
func TestPortalPagesAgainstFakeAPI(t *testing.T) {
	chromium := requireBrowser(t)
	api := &fakeAPI{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	authz := fakeACLs{api}
	sessions, err := auth.NewSessions(bytes.Repeat([]byte{3}, auth.SessionKeyBytes), auth.SessionOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	g := auth.NewGuard(auth.GuardOptions{Authenticator: fakeUsers{}, Authorizer: authz, Required: true, Sessions: sessions})
	p, err := portal.New(portal.Options{Sessions: sessions, Passwords: fakeUsers{}, LoginRequired: true, Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.mount(mux, g, authz)
	p.Mount(mux, true, g.Authenticate)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	shots := harness.ArtifactsDir(t, "portal")

	out := startBrowser(t, chromium, srv.URL, shots).run(t,
		step{"do": "login", "user": "alice", "password": "alice-pw", "path": "/products/customers"},
		step{"do": "search", "q": "email", "expect": "customers", "open": "customers"},
		step{"do": "product", "name": "before", "topic": "customers", "here": true, "shot": "product-before-access", "fullLineage": true, "diff": []int{1, 2}},
		step{"do": "requestAccess", "operation": "READ", "reason": "churn analysis", "duration": "720h"},
		step{"do": "product", "name": "again", "topic": "customers", "shot": "product-request-write"},
		step{"do": "requestAccess", "name": "write", "operation": "WRITE", "reason": "backfill"},
		step{"do": "cancelRequest", "operation": "WRITE"},
		step{"do": "requests", "name": "pending", "shot": "requests-pending"},
		step{"do": "logout", "name": "logout-alice"},
		step{"do": "login", "name": "login-bob", "user": "bob", "password": "bob-pw", "shot": "login-bob"},
		step{"do": "approve", "requester": "User:alice", "topic": "customers", "reason": "fine for analytics"},
		step{"do": "share", "topic": "customers", "recipient": "Partner AG"},
		step{"do": "revokeShare", "recipient": "Partner AG"},
		step{"do": "audit"},
		step{"do": "logout", "name": "logout-bob"},
		step{"do": "login", "name": "login-alice", "user": "alice", "password": "alice-pw", "shot": "login-alice"},
		step{"do": "product", "name": "after", "topic": "customers", "shot": "product-with-access"},
		step{"do": "requests", "name": "approved", "shot": "requests-approved"},
	)
	res := out["search"].Results
	if len(res) != 1 || res[0].Topic != "customers" || len(res[0].Matched) != 1 || res[0].Matched[0] != "email" {
		t.Fatalf("search results %+v", res)
	}
	if f := out["search"].Facets; len(f["Tags"]) != 2 || f["Owners"][0] != "User:bob" {
		t.Fatalf("facets %+v", f)
	}
	before := out["before"]
	for _, want := range []string{"User:bob", "Every customer", "costCenter", "4711", "Runbook"} {
		if !strings.Contains(before.Head, want) {
			t.Errorf("product head lacks %q:\n%s", want, before.Head)
		}
	}
	if len(before.PIIFields) != 1 || before.PIIFields[0] != "email" {
		t.Errorf("PII fields %v, want [email]", before.PIIFields)
	}
	if !strings.Contains(before.Sample, "You need READ access") {
		t.Errorf("sample without access:\n%s", before.Sample)
	}
	if !strings.Contains(before.Contract, "size(message.email) > 0") {
		t.Errorf("contract:\n%s", before.Contract)
	}
	for _, want := range []string{"billing", "3.5 s", "OK", "crm-sync", "7.5 records/s"} {
		if !strings.Contains(before.Activity, want) {
			t.Errorf("activity lacks %q:\n%s", want, before.Activity)
		}
	}
	if before.LineageNodes != 3 || before.FullNodes != 5 {
		t.Errorf("lineage nodes: one hop %d (want 3), full %d (want 5)", before.LineageNodes, before.FullNodes)
	}
	if rowWith(before.Diff, "added", "address.city") == nil || rowWith(before.Diff, "removed", "phone") == nil || rowWith(before.Diff, "changed", "id") == nil {
		t.Errorf("diff rows %v", before.Diff)
	}
	if r := rowWith(out["pending"].Rows, "customers", "WRITE", "backfill", "CANCELLED"); r == nil {
		t.Fatalf("my requests after cancelling the WRITE request: %v", out["pending"].Rows)
	}
	if r := rowWith(out["pending"].Rows, "customers", "READ", "PENDING"); r == nil {
		t.Fatalf("my requests %v", out["pending"].Rows)
	}

	if !strings.Contains(out["share"].Credentials, "once-only-secret") || rowWith(out["share"].Rows, "Partner AG") == nil {
		t.Fatalf("share: %q %v", out["share"].Credentials, out["share"].Rows)
	}
	if rowWith(out["revokeShare"].Rows, "Partner AG", "REVOKED by User:bob") == nil {
		t.Fatalf("shares after revoking: %v", out["revokeShare"].Rows)
	}
	rows := out["audit"].Rows
	if rowWith(rows, "User:alice", "access.request") == nil || rowWith(rows, "User:bob", "access.approve") == nil {
		t.Fatalf("audit rows %v", rows)
	}

	if s := out["after"].Sample; !strings.Contains(s, "****") || !strings.Contains(s, "Fields tagged PII are masked") {
		t.Fatalf("sample with access:\n%s", s)
	}
	if r := rowWith(out["approved"].Rows, "customers", "APPROVED", "User:bob", "fine for analytics"); r == nil {
		t.Fatalf("my requests after approval %v", out["approved"].Rows)
	}
}

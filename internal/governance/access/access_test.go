package access

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/governance"
)

// fakeOwners owns topics by principal ("orders" → "User:bob").
type fakeOwners map[string]string

func (f fakeOwners) Owner(_ context.Context, topic string) (string, bool, error) {
	o, ok := f[topic]
	return o, ok, nil
}

func (f fakeOwners) Owns(_ context.Context, topic string, p auth.Principal) (bool, error) {
	return f[topic] == p.String(), nil
}

// adminOnly makes User:admin the only administrator.
type adminOnly struct{}

func (adminOnly) Authorize(p auth.Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, _ string) bool {
	return p.String() == "User:admin"
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// node is one broker's view: a service with its own ACL store,
// credentials and quotas over the shared etcd, served over HTTP.
type node struct {
	svc    *Service
	acls   *auth.ACLStore
	creds  *auth.Credentials
	quotas *auth.Quotas
	url    string
}

type testEnv struct {
	t     *testing.T
	ctx   context.Context
	cli   *clientv3.Client
	clock *clock
	n     []*node
}

type envOpts struct {
	fourEyes bool
	noSASL   bool
	nodes    int
}

// newEnv starts etcd and the nodes; topics "orders" (owned by bob),
// "payments" (owned by carol) and "logs" (no owner) exist.
func newEnv(t *testing.T, eo envOpts) *testEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	t.Cleanup(cancel)
	e := &testEnv{t: t, ctx: ctx, cli: clustertest.Start(t).Client(),
		clock: &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}}
	if eo.nodes == 0 {
		eo.nodes = 1
	}
	topics := map[string]bool{"orders": true, "payments": true, "logs": true}
	for range eo.nodes {
		n := &node{}
		var err error
		if n.acls, err = auth.OpenACLStore(ctx, e.cli, "", nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.acls.Close() })
		if n.creds, err = auth.NewCredentials(ctx, auth.CredentialsOptions{Client: e.cli}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.creds.Close() })
		n.quotas = auth.NewQuotas(auth.QuotaOptions{Client: e.cli})
		if err := n.quotas.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.quotas.Close() })
		n.svc, err = Open(ctx, Options{
			Client: e.cli, Owners: fakeOwners{"orders": "User:bob", "payments": "User:carol"},
			ACLs: n.acls, Credentials: n.creds, Quotas: n.quotas,
			TopicExists: func(topic string) bool { return topics[topic] },
			Connection: func() (Connection, bool) {
				return Connection{BootstrapServers: "127.0.0.1:9093", SecurityProtocol: "SASL_PLAINTEXT"}, !eo.noSASL
			},
			FourEyes: eo.fourEyes, SCRAMIterations: 4096,
			SweepInterval: time.Hour, // tests sweep by hand
			Now:           e.clock.now,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.svc.Close() })
		mux := http.NewServeMux()
		n.svc.Mount(mux, asHeaderUser, adminOnly{})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		n.url = srv.URL
		e.n = append(e.n, n)
	}
	return e
}

// asHeaderUser authenticates a request as the user its X-User header
// names (no header: no principal, as without a guard).
func asHeaderUser(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-User"); u != "" {
			r = r.WithContext(auth.WithRequestPrincipal(r.Context(), auth.User(u), "127.0.0.1"))
		}
		h.ServeHTTP(w, r)
	})
}

// call makes an API call on node i as user; out, when set, receives the
// decoded answer. It returns the status and the body.
func (e *testEnv) call(i int, user, method, path, body string, out any) (int, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.n[i].url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// must is call expecting status.
func (e *testEnv) must(status, i int, user, method, path, body string, out any) string {
	e.t.Helper()
	got, b := e.call(i, user, method, path, body, out)
	if got != status {
		e.t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, user, got, status, b)
	}
	return b
}

// aclsOf lists the bindings of principal in node i's ACL store.
func (e *testEnv) aclsOf(i int, principal string) []string {
	var out []string
	for _, a := range e.n[i].acls.Snapshot().All() {
		if a.Principal == principal {
			out = append(out, a.String())
		}
	}
	slices.Sort(out)
	return out
}

// eventually waits up to two seconds for cond (another node's caches
// follow etcd through a watch).
func (e *testEnv) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventuallyACLs waits until node i's ACL store holds exactly want for
// principal.
func (e *testEnv) eventuallyACLs(i int, principal string, want []string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("ACLs of %s on node %d = %v (last %v)", principal, i, want, e.aclsOf(i, principal)), func() bool {
		return slices.Equal(e.aclsOf(i, principal), want)
	})
}

func aclStrings(acls ...auth.ACL) []string {
	var out []string
	for _, a := range acls {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func allow(typ kmsg.ACLResourceType, name string, pat kmsg.ACLResourcePatternType, principal string, op kmsg.ACLOperation) auth.ACL {
	return auth.ACL{ResourceType: typ, ResourceName: name, PatternType: pat, Principal: principal, Host: "*",
		Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
}

const lit = kmsg.ACLResourcePatternTypeLiteral

// TestAccessRequestLifecycle: Alice requests READ on orders with a
// group; Bob, the owner, sees it among the requests to approve, Carol
// does not; Bob approves and exactly the three bindings asked for appear;
// Bob revokes and they are gone; every step is audited and each
// principal sees the events the contract lets them see.
func TestAccessRequestLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{fourEyes: true})
	var r AccessRequest
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"read","group":"alice-app","reason":"dashboards","duration":"720h"}`, &r)
	if r.State != StatePending || r.Requester != "User:alice" || r.RequesterHost != "127.0.0.1" || r.Operation != OpRead || r.ExpiresAt != nil || r.Duration != "720h0m0s" {
		t.Fatalf("created %+v", r)
	}
	var list listAnswer[AccessRequest]
	e.must(200, 0, "bob", "GET", "/api/v1/access-requests?role=approver&state=PENDING", "", &list)
	if list.Total != 1 || list.Items[0].ID != r.ID {
		t.Fatalf("bob's requests to approve: %+v", list)
	}
	e.must(200, 0, "carol", "GET", "/api/v1/access-requests", "", &list)
	if list.Total != 0 {
		t.Fatalf("carol sees %+v", list)
	}
	e.must(403, 0, "carol", "GET", "/api/v1/access-requests/"+r.ID, "", nil)
	e.must(403, 0, "carol", "POST", "/api/v1/access-requests/"+r.ID+"/approve", `{"reason":"sure"}`, nil)
	if got := e.aclsOf(0, "User:alice"); len(got) != 0 {
		t.Fatalf("ACLs before approval: %v", got)
	}

	e.clock.add(time.Minute)
	e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+r.ID+"/approve", `{"reason":"ok for dashboards"}`, &r)
	want := aclStrings(
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, "User:alice", kmsg.ACLOperationRead),
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, "User:alice", kmsg.ACLOperationDescribe),
		allow(kmsg.ACLResourceTypeGroup, "alice-app", lit, "User:alice", kmsg.ACLOperationRead),
	)
	if got := e.aclsOf(0, "User:alice"); !slices.Equal(got, want) {
		t.Fatalf("ACLs after approval:\n got %v\nwant %v", got, want)
	}
	if r.State != StateApproved || r.DecidedBy != "User:bob" || r.DecisionReason != "ok for dashboards" || len(r.ACLs) != 3 || !r.Applied {
		t.Fatalf("approved %+v", r)
	}
	if wantExp := e.clock.now().Add(720 * time.Hour); r.ExpiresAt == nil || !r.ExpiresAt.Equal(wantExp) {
		t.Fatalf("expiresAt %v, want the approval + 720h = %v", r.ExpiresAt, wantExp)
	}
	e.must(200, 0, "alice", "GET", "/api/v1/access-requests/"+r.ID, "", &r)
	if r.State != StateApproved {
		t.Fatalf("alice sees %+v", r)
	}
	e.must(400, 0, "bob", "POST", "/api/v1/access-requests/"+r.ID+"/revoke", `{}`, nil) // a reason is required
	e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+r.ID+"/revoke", `{"reason":"project over"}`, &r)
	if got := e.aclsOf(0, "User:alice"); len(got) != 0 {
		t.Fatalf("ACLs after revocation: %v", got)
	}
	if r.State != StateRevoked || !r.Released || r.EndedBy != "User:bob" {
		t.Fatalf("revoked %+v", r)
	}

	actions := func(user, query string) []string {
		var a listAnswer[governance.Event]
		e.must(200, 0, user, "GET", "/api/v1/audit"+query, "", &a)
		var out []string
		for _, ev := range a.Items {
			out = append(out, ev.Action+" by "+ev.Actor)
		}
		return out
	}
	all := []string{"access.revoke by User:bob", "access.approve by User:bob", "access.request by User:alice"}
	for _, c := range []struct {
		user, query string
		want        []string
	}{
		{"admin", "", all},
		{"alice", "", all}, // her own request's events
		{"bob", "", all},   // his product's
		{"carol", "", nil}, // neither
		{"admin", "?action=access.approve", all[1:2]},
		{"admin", "?actor=User:alice", all[2:]},
		{"admin", "?topic=payments", nil},
		{"admin", "?limit=1", all[:1]},
	} {
		if got := actions(c.user, c.query); !slices.Equal(got, c.want) {
			t.Errorf("audit%s as %s: %v, want %v", c.query, c.user, got, c.want)
		}
	}
	var a listAnswer[governance.Event]
	e.must(200, 0, "admin", "GET", "/api/v1/audit?action=access.approve", "", &a)
	var before, after AccessRequest
	if err := json.Unmarshal(a.Items[0].Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(a.Items[0].After, &after); err != nil {
		t.Fatal(err)
	}
	if before.State != StatePending || after.State != StateApproved || a.Items[0].Host != "127.0.0.1" || a.Items[0].Time.IsZero() {
		t.Fatalf("approve event %+v: before %s after %s", a.Items[0], before.State, after.State)
	}
}

// TestAccessRequestBadInput: every bad input or step gets its 4xx and
// changes nothing.
func TestAccessRequestBadInput(t *testing.T) {
	e := newEnv(t, envOpts{fourEyes: true})
	var pending, approved AccessRequest
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"WRITE","reason":"ingest"}`, &pending)
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"read"}`, &approved)
	e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+approved.ID+"/approve", ``, nil)
	now := e.clock.now()
	past, far := now.Add(-time.Minute).Format(time.RFC3339), now.Add(400*24*time.Hour).Format(time.RFC3339)
	for _, c := range []struct {
		name, user, method, path, body string
		status                         int
		contains                       string
	}{
		{"no principal", "", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x"}`, 401, "not authenticated"},
		{"no topic", "alice", "POST", "/api/v1/access-requests", `{"operation":"READ","reason":"x"}`, 400, "topic is required"},
		{"bad topic name", "alice", "POST", "/api/v1/access-requests", `{"topic":"a/b","operation":"READ","reason":"x"}`, 400, "not a valid topic name"},
		{"unknown topic", "alice", "POST", "/api/v1/access-requests", `{"topic":"nope","operation":"READ","reason":"x"}`, 404, "does not exist"},
		{"no operation", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","reason":"x"}`, 400, "operation is required"},
		{"bad operation", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"ALL","reason":"x"}`, 400, "want READ or WRITE"},
		{"group with write", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"WRITE","group":"g","reason":"x"}`, 400, "READ only"},
		{"no reason", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"  "}`, 400, "reason is required"},
		{"expiry past", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","expiresAt":"` + past + `"}`, 400, "not in the future"},
		{"expiry too far", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","expiresAt":"` + far + `"}`, 400, "away"},
		{"duration too long", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","duration":"9000h"}`, 400, "longer than"},
		{"duration negative", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","duration":"-1h"}`, 400, "positive"},
		{"duration garbage", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","duration":"soon"}`, 400, "duration"},
		{"both expiries", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","duration":"1h","expiresAt":"` + far + `"}`, 400, "not both"},
		{"unknown field", "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","acls":[]}`, 400, "unknown field"},
		{"not JSON", "alice", "POST", "/api/v1/access-requests", `topic=orders`, 400, "invalid JSON"},
		{"bad state filter", "alice", "GET", "/api/v1/access-requests?state=DONE", "", 400, "state"},
		{"bad role", "alice", "GET", "/api/v1/access-requests?role=boss", "", 400, "role"},
		{"bad limit", "alice", "GET", "/api/v1/access-requests?limit=0", "", 400, "limit"},
		{"limit too big", "alice", "GET", "/api/v1/audit?limit=1001", "", 400, "limit"},
		{"unknown request", "bob", "GET", "/api/v1/access-requests/01jf0000000000000000000000", "", 404, "no access request"},
		{"unknown action", "bob", "POST", "/api/v1/access-requests/" + pending.ID + "/grant", "", 404, "no action"},
		{"approve unknown", "bob", "POST", "/api/v1/access-requests/nope/approve", "", 404, "no access request"},
		{"approve by stranger", "carol", "POST", "/api/v1/access-requests/" + pending.ID + "/approve", "", 403, "may not"},
		{"approve own (four-eyes)", "alice", "POST", "/api/v1/access-requests/" + pending.ID + "/approve", "", 403, ""},
		{"decline without reason", "bob", "POST", "/api/v1/access-requests/" + pending.ID + "/decline", `{"reason":""}`, 400, "needs a reason"},
		{"cancel by owner", "bob", "POST", "/api/v1/access-requests/" + pending.ID + "/cancel", "", 403, "only the requester"},
		{"revoke pending", "bob", "POST", "/api/v1/access-requests/" + pending.ID + "/revoke", `{"reason":"x"}`, 409, "only an APPROVED"},
		{"approve approved", "bob", "POST", "/api/v1/access-requests/" + approved.ID + "/approve", "", 409, "not PENDING"},
		{"decline approved", "admin", "POST", "/api/v1/access-requests/" + approved.ID + "/decline", `{"reason":"x"}`, 409, "not PENDING"},
		{"cancel approved", "alice", "POST", "/api/v1/access-requests/" + approved.ID + "/cancel", "", 409, "only a PENDING"},
		{"revoke by requester", "alice", "POST", "/api/v1/access-requests/" + approved.ID + "/revoke", `{"reason":"x"}`, 403, "may not revoke"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, body := e.call(0, c.user, c.method, c.path, c.body, nil)
			if got != c.status || !strings.Contains(body, c.contains) || !strings.Contains(body, `"error_code":`) {
				t.Fatalf("status %d %s, want %d containing %q", got, body, c.status, c.contains)
			}
		})
	}
	var list listAnswer[AccessRequest]
	e.must(200, 0, "admin", "GET", "/api/v1/access-requests", "", &list)
	if list.Total != 2 || list.Items[0].State != StateApproved || list.Items[1].State != StatePending {
		t.Fatalf("after the bad input: %+v", list)
	}
	// The pending one: alice cancels it; then nothing more happens to it.
	e.must(200, 0, "alice", "POST", "/api/v1/access-requests/"+pending.ID+"/cancel", "", nil)
	e.must(409, 0, "bob", "POST", "/api/v1/access-requests/"+pending.ID+"/approve", "", nil)
}

// TestFourEyes: with four-eyes on, an owner cannot approve their own
// request (an administrator can); with it off, they can.
func TestFourEyes(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("four-eyes=", on), func(t *testing.T) {
			e := newEnv(t, envOpts{fourEyes: on})
			var r AccessRequest
			e.must(201, 0, "bob", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"WRITE","reason":"backfill"}`, &r)
			if on {
				e.must(403, 0, "bob", "POST", "/api/v1/access-requests/"+r.ID+"/approve", "", nil)
				e.must(200, 0, "admin", "POST", "/api/v1/access-requests/"+r.ID+"/approve", "", &r)
			} else {
				e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+r.ID+"/approve", "", &r)
			}
			if r.State != StateApproved {
				t.Fatalf("%+v", r)
			}
			// The admin's own request is refused to the admin too.
			var own AccessRequest
			e.must(201, 0, "admin", "POST", "/api/v1/access-requests", `{"topic":"logs","operation":"READ","reason":"debug"}`, &own)
			status := 200
			if on {
				status = 403
			}
			e.must(status, 0, "admin", "POST", "/api/v1/access-requests/"+own.ID+"/approve", "", nil)
		})
	}
}

// TestRacingDecisions: an owner approving on one node and an
// administrator declining on another at the same moment produce one
// decision: one call succeeds, the other is 409, the stored state and the
// ACLs are the winner's, and one decision is audited.
func TestRacingDecisions(t *testing.T) {
	e := newEnv(t, envOpts{nodes: 2})
	for i := range 8 {
		var r AccessRequest
		e.must(201, 0, "alice", "POST", "/api/v1/access-requests", fmt.Sprintf(`{"topic":"orders","operation":"READ","group":"g%d","reason":"race %d"}`, i, i), &r)
		var wg sync.WaitGroup
		start := make(chan struct{})
		var st [2]int
		for j, c := range []struct{ user, action, body string }{{"bob", "approve", ""}, {"admin", "decline", `{"reason":"no"}`}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				st[j], _ = e.call(j, c.user, "POST", "/api/v1/access-requests/"+r.ID+"/"+c.action, c.body, nil)
			}()
		}
		close(start)
		wg.Wait()
		if !(st == [2]int{200, 409} || st == [2]int{409, 200}) {
			t.Fatalf("round %d: statuses %v, want one 200 and one 409", i, st)
		}
		e.must(200, 1, "admin", "GET", "/api/v1/access-requests/"+r.ID, "", &r)
		var a listAnswer[governance.Event]
		e.must(200, 1, "admin", "GET", "/api/v1/audit?resource=access-request:"+r.ID, "", &a)
		if len(a.Items) != 2 {
			t.Fatalf("round %d: audited %d events, want the request and one decision", i, len(a.Items))
		}
		// The two events may share a millisecond, from two nodes' id
		// generators: find the decision by its action.
		decision := a.Items[0].Action
		if decision == "access.request" {
			decision = a.Items[1].Action
		}
		groupACL := allow(kmsg.ACLResourceTypeGroup, fmt.Sprintf("g%d", i), lit, "User:alice", kmsg.ACLOperationRead).String()
		has := slices.Contains(e.aclsOf(0, "User:alice"), groupACL)
		switch {
		case st[0] == 200 && (r.State != StateApproved || !has || decision != "access.approve"):
			t.Fatalf("round %d: approve won, yet state %s, group ACL %v, decision event %s", i, r.State, has, decision)
		case st[1] == 200 && (r.State != StateDeclined || has || decision != "access.decline"):
			t.Fatalf("round %d: decline won, yet state %s, group ACL %v, decision event %s", i, r.State, has, decision)
		}
	}
}

// TestGrantACLBookkeeping: a grant removes only the bindings it made. A
// binding an administrator made before the approval stays after the
// revocation; a binding two grants share (approved on different nodes)
// stays until the second is revoked.
func TestGrantACLBookkeeping(t *testing.T) {
	e := newEnv(t, envOpts{nodes: 2})
	manual := allow(kmsg.ACLResourceTypeTopic, "payments", lit, "User:alice", kmsg.ACLOperationDescribe)
	if err := e.n[0].acls.Create(e.ctx, []auth.ACL{manual}); err[0] != nil {
		t.Fatal(err[0])
	}
	e.eventuallyACLs(1, "User:alice", aclStrings(manual))
	var r AccessRequest
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"payments","operation":"READ","reason":"x"}`, &r)
	e.must(200, 1, "carol", "POST", "/api/v1/access-requests/"+r.ID+"/approve", "", &r)
	for _, a := range r.ACLs {
		if pre := a.Operation == "DESCRIBE"; a.Preexisting != pre {
			t.Fatalf("binding %+v: preexisting %v, want %v", a, a.Preexisting, pre)
		}
	}
	e.must(200, 0, "carol", "POST", "/api/v1/access-requests/"+r.ID+"/revoke", `{"reason":"done"}`, nil)
	e.eventuallyACLs(1, "User:alice", aclStrings(manual)) // the administrator's binding alone

	// Two grants of the same bindings, approved on different nodes.
	var r1, r2 AccessRequest
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"WRITE","reason":"one"}`, &r1)
	e.must(201, 1, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"WRITE","reason":"two"}`, &r2)
	e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+r1.ID+"/approve", "", nil)
	e.must(200, 1, "bob", "POST", "/api/v1/access-requests/"+r2.ID+"/approve", "", nil)
	write := aclStrings(
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, "User:alice", kmsg.ACLOperationWrite),
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, "User:alice", kmsg.ACLOperationDescribe),
		manual,
	)
	at, err := e.cli.Get(e.ctx, "revision")
	if err != nil {
		t.Fatal(err)
	}
	e.must(200, 1, "bob", "POST", "/api/v1/access-requests/"+r1.ID+"/revoke", `{"reason":"one is enough"}`, nil)
	e.eventuallyACLs(0, "User:alice", write)
	// Not even for a moment: the revocation touched no binding.
	wctx, stop := context.WithTimeout(e.ctx, 200*time.Millisecond)
	defer stop()
	for wr := range e.cli.Watch(wctx, "/runnel/security/acls/", clientv3.WithPrefix(), clientv3.WithRev(at.Header.Revision+1)) {
		for _, ev := range wr.Events {
			t.Fatalf("revoking one of two grants changed a binding: %s %s", ev.Type, ev.Kv.Key)
		}
	}
	e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+r2.ID+"/revoke", `{"reason":"none"}`, nil)
	e.eventuallyACLs(1, "User:alice", aclStrings(manual))
	// No bookkeeping is left behind.
	resp, err := e.cli.Get(e.ctx, governance.Prefix+"access/acl-", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("%d bookkeeping keys left, first %s", len(resp.Kvs), resp.Kvs[0].Key)
	}
}

// TestExpirySweep: a grant past its expiry is expired by a sweep on any
// node, its bindings removed, once (a concurrent sweep on the other node
// does nothing more); a pending request past its expiry expires too.
func TestExpirySweep(t *testing.T) {
	e := newEnv(t, envOpts{nodes: 2})
	var g, p AccessRequest
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x","duration":"2s"}`, &g)
	exp := e.clock.now().Add(90 * time.Second).Format(time.RFC3339)
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"logs","operation":"READ","reason":"x","expiresAt":"`+exp+`"}`, &p)
	e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+g.ID+"/approve", "", &g)
	sweep := func() {
		var wg sync.WaitGroup
		for _, n := range e.n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.svc.Sweep(e.ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	e.clock.add(time.Second)
	sweep()
	e.eventually("the grant's two ACLs on node 1", func() bool { return len(e.aclsOf(1, "User:alice")) == 2 })
	e.clock.add(1500 * time.Millisecond)
	sweep()
	e.eventuallyACLs(0, "User:alice", nil)
	e.must(200, 1, "alice", "GET", "/api/v1/access-requests/"+g.ID, "", &g)
	if g.State != StateExpired || !g.Released {
		t.Fatalf("expired grant %+v", g)
	}
	e.must(409, 1, "bob", "POST", "/api/v1/access-requests/"+g.ID+"/revoke", `{"reason":"x"}`, nil)
	e.clock.add(90 * time.Second)
	sweep()
	e.must(200, 0, "alice", "GET", "/api/v1/access-requests/"+p.ID, "", &p)
	if p.State != StateExpired {
		t.Fatalf("pending request past its expiry: %s", p.State)
	}
	e.must(409, 0, "admin", "POST", "/api/v1/access-requests/"+p.ID+"/approve", "", nil)
	var a listAnswer[governance.Event]
	e.must(200, 0, "admin", "GET", "/api/v1/audit?action=access.expire", "", &a)
	if len(a.Items) != 2 || a.Items[1].Resource != "access-request:"+g.ID || a.Items[1].Actor != "Runnel:expiry" {
		t.Fatalf("expiry events %+v", a.Items)
	}
	// Ended requests go once past the retention.
	e.clock.add(DefaultRetention + time.Hour)
	sweep()
	e.must(404, 0, "admin", "GET", "/api/v1/access-requests/"+g.ID, "", nil)
}

// TestShares: an owner shares a topic: the answer carries the password
// once and the connection; a SCRAM user exists for both mechanisms with
// exactly the share's bindings and quota; the password is stored
// nowhere. Revoking removes the bindings, credentials and quota.
func TestShares(t *testing.T) {
	e := newEnv(t, envOpts{nodes: 2})
	var cs CreatedShare
	e.must(201, 0, "bob", "POST", "/api/v1/shares", `{"topic":"orders","recipient":"ACME Corp","duration":"24h","quota":{"consumerByteRate":1048576}}`, &cs)
	sh := cs.Share
	if sh.State != ShareActive || sh.Username != "share-"+sh.ID || cs.Credentials.Username != sh.Username ||
		len(cs.Credentials.Password) < 32 || cs.Credentials.Mechanism != "SCRAM-SHA-512" ||
		cs.Connection.BootstrapServers != "127.0.0.1:9093" || cs.Connection.SASLMechanism != "SCRAM-SHA-512" ||
		sh.ExpiresAt == nil || !sh.ExpiresAt.Equal(e.clock.now().Add(24*time.Hour)) {
		t.Fatalf("created %+v", cs)
	}
	user := "User:" + sh.Username
	want := aclStrings(
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, user, kmsg.ACLOperationRead),
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, user, kmsg.ACLOperationDescribe),
		allow(kmsg.ACLResourceTypeGroup, sh.Username, kmsg.ACLResourcePatternTypePrefixed, user, kmsg.ACLOperationRead),
	)
	e.eventuallyACLs(1, user, want)
	for _, m := range auth.SCRAMMechanisms {
		e.eventually("a "+m+" credential on the other node", func() bool {
			_, ok := e.n[1].creds.Lookup(sh.Username, m)
			return ok
		})
	}
	quota := func() float64 {
		qs, err := e.n[1].quotas.Describe(e.ctx, auth.QuotaFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Entity.User == sh.Username {
				return q.Values[auth.ConsumerByteRate]
			}
		}
		return 0
	}
	if q := quota(); q != 1048576 {
		t.Fatalf("quota %v", q)
	}
	all, err := e.cli.Get(e.ctx, "/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range all.Kvs {
		if strings.Contains(string(kv.Value), cs.Credentials.Password) {
			t.Fatalf("the password is stored in %s", kv.Key)
		}
	}
	var got Share
	e.must(200, 1, "bob", "GET", "/api/v1/shares/"+sh.ID, "", &got)
	if strings.Contains(e.must(200, 1, "admin", "GET", "/api/v1/shares?topic=orders", "", nil), cs.Credentials.Password) {
		t.Fatal("a listing shows the password")
	}
	e.must(403, 1, "carol", "GET", "/api/v1/shares/"+sh.ID, "", nil)
	e.must(403, 1, "carol", "DELETE", "/api/v1/shares/"+sh.ID, "", nil)

	e.clock.add(time.Second)
	e.must(200, 1, "bob", "DELETE", "/api/v1/shares/"+sh.ID, "", &got)
	if got.State != ShareRevoked || got.RevokedBy != "User:bob" || !got.Cleaned {
		t.Fatalf("revoked %+v", got)
	}
	e.eventuallyACLs(0, user, nil)
	for _, m := range auth.SCRAMMechanisms {
		e.eventually("no "+m+" credential after revocation", func() bool {
			_, ok := e.n[0].creds.Lookup(sh.Username, m)
			return !ok
		})
	}
	if q := quota(); q != 0 {
		t.Fatalf("quota left after revocation: %v", q)
	}
	e.must(409, 0, "bob", "DELETE", "/api/v1/shares/"+sh.ID, "", nil)
	var a listAnswer[governance.Event]
	e.must(200, 0, "bob", "GET", "/api/v1/audit?topic=orders", "", &a)
	if len(a.Items) != 2 || a.Items[0].Action != "share.revoke" || a.Items[1].Action != "share.create" {
		t.Fatalf("share events %+v", a.Items)
	}

	for _, c := range []struct {
		name, user, body string
		status           int
		contains         string
	}{
		{"not the owner", "carol", `{"topic":"orders","recipient":"x"}`, 403, "may not share"},
		{"no owner, not admin", "bob", `{"topic":"logs","recipient":"x"}`, 403, "may not share"},
		{"unknown topic", "admin", `{"topic":"nope","recipient":"x"}`, 404, "does not exist"},
		{"no recipient", "bob", `{"topic":"orders"}`, 400, "recipient is required"},
		{"zero quota", "bob", `{"topic":"orders","recipient":"x","quota":{"consumerByteRate":0}}`, 400, "consumerByteRate"},
		{"expiry past", "bob", `{"topic":"orders","recipient":"x","duration":"-5m"}`, 400, "positive"},
		{"password field", "bob", `{"topic":"orders","recipient":"x","password":"mine"}`, 400, "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, body := e.call(0, c.user, "POST", "/api/v1/shares", c.body, nil)
			if got != c.status || !strings.Contains(body, c.contains) {
				t.Fatalf("status %d %s, want %d containing %q", got, body, c.status, c.contains)
			}
		})
	}
	e.must(404, 0, "admin", "DELETE", "/api/v1/shares/nope", "", nil)
}

// TestShareWithoutSASL: a share is refused when outside clients could
// not connect with SCRAM.
func TestShareWithoutSASL(t *testing.T) {
	e := newEnv(t, envOpts{noSASL: true})
	_, body := e.call(0, "admin", "POST", "/api/v1/shares", `{"topic":"orders","recipient":"x"}`, nil)
	if !strings.Contains(body, "no SASL listener") {
		t.Fatalf("%s", body)
	}
	var l listAnswer[Share]
	e.must(200, 0, "admin", "GET", "/api/v1/shares", "", &l)
	if l.Total != 0 {
		t.Fatalf("a refused share is stored: %+v", l)
	}
}

// TestShareExpiry: a share past its expiry loses its user and bindings
// at the next sweep.
func TestShareExpiry(t *testing.T) {
	e := newEnv(t, envOpts{nodes: 2})
	var cs CreatedShare
	e.must(201, 0, "admin", "POST", "/api/v1/shares", `{"topic":"logs","recipient":"partner","duration":"2s"}`, &cs)
	e.clock.add(3 * time.Second)
	if err := e.n[1].svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.eventuallyACLs(0, "User:"+cs.Share.Username, nil)
	e.eventually("no credential after expiry", func() bool {
		_, ok := e.n[0].creds.Lookup(cs.Share.Username, "SCRAM-SHA-512")
		return !ok
	})
	var sh Share
	e.must(200, 0, "admin", "GET", "/api/v1/shares/"+cs.Share.ID, "", &sh)
	if sh.State != ShareExpired || !sh.Cleaned {
		t.Fatalf("%+v", sh)
	}
}

// TestAuditTrim: the log keeps at most MaxEvents events and none older
// than MaxAge, and lists across pages newest first.
func TestAuditTrim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli := clustertest.Start(t).Client()
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	a := OpenAudit(AuditOptions{Client: cli, MaxEvents: 600, MaxAge: time.Hour, TrimEvery: time.Hour, Now: c.now})
	defer a.Close()
	actor := governance.Actor{Principal: auth.User("alice"), Host: "10.0.0.1"}
	old := governance.NewEvent(actor, "product.update", "topic:old", "old", "", nil, nil)
	old.Time = c.now().Add(-2 * time.Hour)
	if err := a.Record(ctx, old); err != nil {
		t.Fatal(err)
	}
	for i := range 650 {
		if err := a.Record(ctx, governance.NewEvent(actor, "product.update", fmt.Sprint("topic:t", i), fmt.Sprint("t", i), "", nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.List(ctx, AuditFilter{Topic: "t3"}, 10, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("t3 past the first page: %v %+v", err, got)
	}
	if err := a.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = a.List(ctx, AuditFilter{}, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 600 || got[0].Topic != "t649" || got[599].Topic != "t50" {
		t.Fatalf("after trimming: %d events, newest %s, oldest %s", len(got), got[0].Topic, got[len(got)-1].Topic)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].ID <= got[i].ID {
			t.Fatalf("not newest first at %d: %s then %s", i, got[i-1].ID, got[i].ID)
		}
	}
}

// TestStepAndEventInOneTransaction: a request's creation and a decision
// are stored in the same etcd transaction as their audit events, so no
// step happens unaudited and no event tells of a step that did not.
func TestStepAndEventInOneTransaction(t *testing.T) {
	e := newEnv(t, envOpts{})
	var r AccessRequest
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"x"}`, &r)
	e.must(200, 0, "bob", "POST", "/api/v1/access-requests/"+r.ID+"/decline", `{"reason":"not now"}`, nil)
	req, err := e.cli.Get(e.ctx, requestPrefix+r.ID)
	if err != nil || len(req.Kvs) != 1 {
		t.Fatal(err, req)
	}
	events, err := e.cli.Get(e.ctx, AuditPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]int64{}
	for _, kv := range events.Kvs {
		var ev governance.Event
		if err := json.Unmarshal(kv.Value, &ev); err != nil {
			t.Fatal(err)
		}
		revs[ev.Action] = kv.ModRevision
	}
	if got, want := revs["access.request"], req.Kvs[0].CreateRevision; got != want {
		t.Errorf("the request event is at revision %d, the request was created at %d", got, want)
	}
	if got, want := revs["access.decline"], req.Kvs[0].ModRevision; got != want {
		t.Errorf("the decline event is at revision %d, the decline at %d", got, want)
	}
}

// TestSweepFinishesHalfDoneSteps: a broker that stopped between deciding
// a request and changing its ACLs leaves a request APPROVED but not
// applied, or REVOKED but not released; a sweep on another broker
// finishes the step once it is older than finishAfter.
func TestSweepFinishesHalfDoneSteps(t *testing.T) {
	e := newEnv(t, envOpts{nodes: 2})
	var r AccessRequest
	e.must(201, 0, "alice", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"WRITE","reason":"x"}`, &r)
	// What node 0 stores when it stops right after the approval's
	// compare-and-swap.
	decided := e.clock.now()
	r.State, r.DecidedBy, r.DecidedAt = StateApproved, "User:bob", &decided
	for _, a := range grantACLs(&r) {
		r.ACLs = append(r.ACLs, toJSON(a))
	}
	put := func(r *AccessRequest) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.cli.Put(e.ctx, requestPrefix+r.ID, string(b)); err != nil {
			t.Fatal(err)
		}
	}
	put(&r)
	want := aclStrings(
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, "User:alice", kmsg.ACLOperationWrite),
		allow(kmsg.ACLResourceTypeTopic, "orders", lit, "User:alice", kmsg.ACLOperationDescribe),
	)
	sweep := func() {
		e.eventually("node 1 sees the stored request", func() bool {
			got, _, _ := e.n[1].svc.List(e.ctx, governance.Actor{Admin: true}, RequestFilter{}, 10, 0)
			return len(got) == 1 && got[0].State == r.State
		})
		if err := e.n[1].svc.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	sweep()
	if got := e.aclsOf(1, "User:alice"); len(got) != 0 {
		t.Fatalf("a sweep finished a step younger than %v: %v", finishAfter, got)
	}
	e.clock.add(finishAfter + time.Second)
	sweep()
	e.eventuallyACLs(1, "User:alice", want)
	e.must(200, 1, "alice", "GET", "/api/v1/access-requests/"+r.ID, "", &r)
	if !r.Applied {
		t.Fatalf("not marked applied: %+v", r)
	}

	// Revoked, its ACLs not yet released.
	ended := e.clock.now()
	r.State, r.EndedBy, r.EndedAt = StateRevoked, "User:bob", &ended
	put(&r)
	e.clock.add(finishAfter + time.Second)
	sweep()
	e.eventuallyACLs(1, "User:alice", nil)
	e.must(200, 1, "alice", "GET", "/api/v1/access-requests/"+r.ID, "", &r)
	if !r.Released {
		t.Fatalf("not marked released: %+v", r)
	}
}

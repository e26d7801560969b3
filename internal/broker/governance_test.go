package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/access"
)

// TestGovernanceCatalogDecidesOwnership: with no stand-in, the stream
// catalog answers who owns a product. Bob may not approve a request on
// orders until an admin makes his team its owner; then he may, on the
// other broker, and the catalog's write is in the audit log beside the
// request's steps.
func TestGovernanceCatalogDecidesOwnership(t *testing.T) {
	c := startGovCluster(t, nil)
	admin := kadm.NewClient(c.client(0, "admin", "admin-pw"))
	if resp, err := admin.CreateTopics(c.ctx, 1, -1, nil, "orders"); err != nil || resp.Error() != nil {
		t.Fatal(err)
	}
	var r access.AccessRequest
	if st := c.api(1, "alice", "alice-pw", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"fraud dashboards"}`, &r); st != 201 {
		t.Fatalf("request: %d", st)
	}
	if st := c.api(0, "bob", "bob-pw", "POST", "/api/v1/access-requests/"+r.ID+"/approve", `{"reason":"ok"}`, nil); st != 403 {
		t.Fatalf("bob approving before he owns orders: %d, want 403", st)
	}
	if st := c.api(0, "admin", "admin-pw", "PUT", "/api/v1/teams/payments", `{"members":["User:bob"]}`, nil); st != 200 && st != 201 {
		t.Fatalf("team: %d", st)
	}
	// Each broker's catalog learns of topics and products from its own
	// watch of the log and of etcd, so allow the other broker a moment.
	eventually := func(what string, try func() bool) {
		t.Helper()
		for !try() {
			if c.ctx.Err() != nil {
				t.Fatalf("%s: gave up", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("product", func() bool {
		st := c.api(1, "admin", "admin-pw", "PUT", "/api/v1/products/orders", `{"owner":"Team:payments","description":"Orders as placed","tags":["tier-1"],"lifecycle":"active"}`, nil)
		if st != 200 && st != 201 && st != 404 {
			t.Fatalf("product: %d", st)
		}
		return st != 404
	})
	eventually("approval", func() bool {
		st := c.api(0, "bob", "bob-pw", "POST", "/api/v1/access-requests/"+r.ID+"/approve", `{"reason":"ok"}`, &r)
		if st != 200 && st != 403 {
			t.Fatalf("bob approving as a member of the owning team: %d", st)
		}
		return st == 200 && r.State == access.StateApproved
	})
	var audit struct{ Items []governance.Event }
	if st := c.api(1, "admin", "admin-pw", "GET", "/api/v1/audit?topic=orders", "", &audit); st != 200 {
		t.Fatalf("audit: %d", st)
	}
	var actions []string
	for _, e := range audit.Items {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"access.request", "access.approve"} {
		if !slices.Contains(actions, want) {
			t.Fatalf("audit of orders %v lacks %s", actions, want)
		}
	}
	if !slices.ContainsFunc(actions, func(a string) bool { return a != "access.request" && a != "access.approve" }) {
		t.Fatalf("audit of orders %v lacks the catalog's write of the product", actions)
	}
}

package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestGovRevokeWakesLongPolls: a share's consumer that is caught up waits
// in a long-poll fetch (20 s here) on each of two brokers; revoking the
// share answers both waits with TOPIC_AUTHORIZATION_FAILED within a
// second, not when the waits would have ended.
func TestGovRevokeWakesLongPolls(t *testing.T) {
	c := startGovCluster(t, nil)
	admin := kadm.NewClient(c.client(0, "admin", "admin-pw"))
	if resp, err := admin.CreateTopics(c.ctx, 1, -1, nil, "orders"); err != nil || resp.Error() != nil {
		t.Fatal(err)
	}
	c.produce("orders", 1)
	topics, err := admin.ListTopics(c.ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	id := [16]byte(topics["orders"].ID)
	var cs access.CreatedShare
	for {
		st := c.api(0, "admin", "admin-pw", "POST", "/api/v1/shares", `{"topic":"orders","recipient":"ACME","duration":"1h"}`, &cs)
		if st == 201 {
			break
		}
		if st != 404 || c.ctx.Err() != nil { // 404: the catalog has not seen the topic yet
			t.Fatalf("share: %d", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	type answer struct {
		code int16
		at   time.Time
	}
	answers := make(chan answer, 2)
	for i := range 2 {
		cl := c.client(i, cs.Credentials.Username, cs.Credentials.Password)
		br := cl.Broker(int(c.b[i].cfg.BrokerID))
		if err := cl.Ping(c.ctx); err != nil {
			t.Fatal(err)
		}
		go func() {
			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 20000, 1, 1<<20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = "orders", id
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.FetchOffset, fp.PartitionMaxBytes = 1, 1<<20 // the high watermark: caught up
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
			resp, err := req.RequestWith(c.ctx, br)
			if err != nil {
				t.Errorf("broker %d: %v", i+1, err)
				answers <- answer{-1, time.Now()}
				return
			}
			code := resp.ErrorCode
			if code == 0 && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
				code = resp.Topics[0].Partitions[0].ErrorCode
			}
			answers <- answer{code, time.Now()}
		}()
	}
	time.Sleep(300 * time.Millisecond) // both fetches are waiting
	select {
	case a := <-answers:
		t.Fatalf("a caught-up fetch answered before the revocation: %+v", a)
	default:
	}
	if st := c.api(1, "admin", "admin-pw", "DELETE", "/api/v1/shares/"+cs.Share.ID, "", nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	revoked := time.Now()
	for range 2 {
		a := <-answers
		if a.code != kerr.TopicAuthorizationFailed.Code {
			t.Fatalf("the waiting fetch answered %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(a.code))
		}
		if d := a.at.Sub(revoked); d > time.Second {
			t.Fatalf("the waiting fetch was refused %s after the revocation, want within a second", d)
		}
	}
}

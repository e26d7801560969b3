package catalog

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runnel-dev/runnel/internal/governance"
)

// TestProductsStoredAndVersioned: a product's metadata is created at
// version 1, each write bumps the version, a write based on a stale
// version (or creating what exists, or updating what does not) is 409 and
// changes nothing, deleting removes the metadata only, and every write is
// audited with its before and after.
func TestProductsStoredAndVersioned(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 3})
	var p Product
	status, body := e.call("bob", "GET", "/api/v1/products/orders", nil, &p)
	if status != 200 || !p.Exists || p.Partitions != 3 || p.Version != 0 || p.Lifecycle != "active" || p.Owner != "" {
		t.Fatalf("product without metadata: %d %s", status, body)
	}
	put := map[string]any{"owner": "User:bob", "description": "Orders as placed", "domain": "sales",
		"tags": []string{"tier-1", "GDPR", "tier-1"}, "businessMetadata": map[string]any{"costCenter": "4711"},
		"links": []map[string]string{{"title": "Runbook", "url": "https://wiki.example/orders"}}}
	if status, body = e.call("bob", "PUT", "/api/v1/products/orders", put, &p); status != 200 {
		t.Fatalf("create: %d %s", status, body)
	}
	if p.Version != 1 || p.Owner != "User:bob" || !slices.Equal(p.Tags, []string{"GDPR", "tier-1"}) || p.UpdatedBy != "User:bob" || p.CreatedAt == "" {
		t.Fatalf("created: %+v", p)
	}
	if status, body = e.call("bob", "PUT", "/api/v1/products/orders", put, nil); status != 409 || !strings.Contains(body, "40901") {
		t.Fatalf("create again (version 0): %d %s, want 409", status, body)
	}
	put["version"], put["description"] = 1, "Orders, placed and paid"
	if status, body = e.call("bob", "PUT", "/api/v1/products/orders", put, &p); status != 200 || p.Version != 2 {
		t.Fatalf("update at version 1: %d %s", status, body)
	}
	put["description"] = "lost update"
	if status, body = e.call("bob", "PUT", "/api/v1/products/orders", put, nil); status != 409 || !strings.Contains(body, "version 2, not 1") {
		t.Fatalf("stale update: %d %s, want 409", status, body)
	}
	if status, _ = e.call("bob", "GET", "/api/v1/products/orders", nil, &p); status != 200 || p.Description != "Orders, placed and paid" || p.Version != 2 {
		t.Fatalf("after the stale update: %+v", p)
	}
	if status, body = e.call("bob", "DELETE", "/api/v1/products/orders", nil, nil); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, _ = e.call("bob", "GET", "/api/v1/products/orders", nil, &p); status != 200 || p.Version != 0 || p.Description != "" || !p.Exists {
		t.Fatalf("after delete: %d %+v", status, p)
	}
	if status, _ = e.call("bob", "DELETE", "/api/v1/products/orders", nil, nil); status != 404 {
		t.Fatalf("delete again: %d, want 404", status)
	}
	put["version"] = 3
	if status, body = e.call("bob", "PUT", "/api/v1/products/orders", put, nil); status != 409 || !strings.Contains(body, "no metadata") {
		t.Fatalf("update of deleted metadata: %d %s, want 409", status, body)
	}
	if status, _ = e.call("bob", "PUT", "/api/v1/products/nosuch", map[string]any{}, nil); status != 404 {
		t.Fatalf("metadata for a topic that does not exist: %d, want 404", status)
	}
	if status, _ = e.call("bob", "GET", "/api/v1/products/nosuch", nil, nil); status != 404 {
		t.Fatalf("GET of an unknown topic: %d, want 404", status)
	}
	got := e.audit.actions()
	if len(got) != 3 || !strings.HasPrefix(got[0], "product.create topic:orders User:bob") ||
		!strings.HasPrefix(got[1], "product.update topic:orders User:bob") || !strings.HasPrefix(got[2], "product.delete topic:orders User:bob") {
		t.Fatalf("audit: %q", got)
	}
	ev := e.audit.events[1]
	if !strings.Contains(string(ev.Before), `"Orders as placed"`) || !strings.Contains(string(ev.After), `"Orders, placed and paid"`) || ev.Topic != "orders" {
		t.Fatalf("update event: %+v", ev)
	}
	if e.audit.events[2].After != nil || e.audit.events[0].Before != nil {
		t.Fatalf("create has no before, delete no after: %+v", e.audit.events)
	}
}

// TestAuditFailureFailsTheStep: a write whose audit event cannot be
// stored answers an error.
func TestAuditFailureFailsTheStep(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 1})
	e.audit.fail = true
	if status, body := e.call("bob", "PUT", "/api/v1/products/orders", map[string]any{"description": "x"}, nil); status != 500 || !strings.Contains(body, "could not be audited") {
		t.Fatalf("unaudited write: %d %s", status, body)
	}
}

// TestConcurrentWritersOneWins: writers based on the same version race;
// exactly one wins, the others get a conflict.
func TestConcurrentWritersOneWins(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 1})
	a := e.actor("admin")
	for round := int64(0); round < 5; round++ {
		var wg sync.WaitGroup
		results := make([]error, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, results[i] = e.cat.PutProduct(e.ctx, a, "orders", ProductUpdate{Description: fmt.Sprintf("writer %d", i), Version: round})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range results {
			switch {
			case err == nil:
				won++
			case !strings.Contains(err.Error(), governance.ErrConflict.Error()):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writers won: %v", round, won, results)
		}
		p, err := e.cat.Product(e.ctx, "orders")
		if err != nil || p.Version != round+1 {
			t.Fatalf("round %d: version %d, %v", round, p.Version, err)
		}
	}
}

// TestTwoBrokersShareTheCatalog: two catalogs on one etcd (two brokers)
// see each other's writes through the watch: products, their search
// entries, teams and so ownership.
func TestTwoBrokersShareTheCatalog(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 1}, Topic{Name: "payments", Partitions: 1})
	other := e.open(e.etcd.Client())
	admin := e.actor("admin")
	if _, err := e.cat.PutTeam(e.ctx, admin, "payments", TeamUpdate{Members: []string{"User:carol"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.PutProduct(e.ctx, admin, "payments", ProductUpdate{Owner: "Team:payments", Description: "settled card payments"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other broker to see the product", func() bool {
		own, err := other.Owns(e.ctx, "payments", e.actor("carol").Principal)
		res, _ := other.Search(Query{Text: "settled"})
		return err == nil && own && slices.Equal(topics(res), []string{"payments"})
	})
	if o, ok, _ := other.Owner(e.ctx, "payments"); !ok || o != "Team:payments" {
		t.Fatalf("owner on the other broker: %q %v", o, ok)
	}
	// A write on the other broker is seen here; one based on what the
	// first read is then stale.
	p, _ := other.Product(e.ctx, "payments")
	if _, err := other.PutProduct(e.ctx, admin, "payments", ProductUpdate{Owner: "Team:payments", Description: "card payments", Version: p.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.PutProduct(e.ctx, admin, "payments", ProductUpdate{Description: "stale", Version: p.Version}); err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("stale write on the first broker: %v", err)
	}
	waitFor(t, "the first broker's index", func() bool {
		res, _ := e.cat.Search(Query{Text: "card"})
		old, _ := e.cat.Search(Query{Text: "settled"})
		return len(res.Items) == 1 && old.Total == 0
	})
	if err := other.DeleteTeam(e.ctx, admin, "payments"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the team's deletion", func() bool {
		own, _ := e.cat.Owns(e.ctx, "payments", e.actor("carol").Principal)
		return !own
	})
}

// TestSearch: free text and facets over names, descriptions, tags,
// owners, domains, schema field names and business metadata; every term
// must match, the last as a prefix; name matches rank first; the index
// follows writes, deletes, schema registrations and topics.
func TestSearch(t *testing.T) {
	e := newEnv(t, nil,
		Topic{Name: "orders", Partitions: 1}, Topic{Name: "customers", Partitions: 1},
		Topic{Name: "clicks", Partitions: 1}, Topic{Name: "order-audit", Partitions: 1})
	admin := e.actor("admin")
	for topic, u := range map[string]ProductUpdate{
		"orders":      {Owner: "Team:sales", Domain: "sales", Tags: []string{"tier-1"}, Description: "Every order placed in the web shop", BusinessMetadata: map[string]any{"costCenter": "cc4711"}},
		"customers":   {Owner: "User:carol", Domain: "crm", Tags: []string{"GDPR"}, Description: "Customer master data, including orders count", Lifecycle: "deprecated"},
		"clicks":      {Owner: "User:dave", Domain: "web", Description: "Raw click stream"},
		"order-audit": {Owner: "Team:sales", Domain: "sales", Description: "Audit trail"},
	} {
		if _, err := e.cat.PutProduct(e.ctx, admin, topic, u); err != nil {
			t.Fatal(err)
		}
	}
	e.register("customers-value", "AVRO", `{"type":"record","name":"Customer","namespace":"crm","fields":[
		{"name":"id","type":"long"},
		{"name":"contact","type":{"type":"record","name":"Contact","fields":[{"name":"emailAddress","type":"string","confluent:tags":["PII"]}]}}]}`, nil, nil)
	waitFor(t, "the schema's fields in the index", func() bool {
		return slices.Equal(topics(e.search("q=email")), []string{"customers"})
	})

	for _, c := range []struct {
		qs   string
		want []string
	}{
		{"q=orders", []string{"orders", "customers"}},               // name before description
		{"q=order", []string{"order-audit", "orders", "customers"}}, // prefix of the last term; names first
		{"q=order+audit", []string{"order-audit"}},                  // every term
		{"q=sales", []string{"order-audit", "orders"}},              // owner and domain
		{"q=tier", []string{"orders"}},                              // tags
		{"q=cc4711", []string{"orders"}},                            // business metadata values
		{"q=contact+emailaddr", []string{"customers"}},              // nested field names, camelCase whole word
		{"q=PII", []string{"customers"}},                            // field tags make product tags
		{"q=nothing-matches", []string{}},
		{"tag=PII", []string{"customers"}},
		{"tag=GDPR&tag=PII", []string{"customers"}},
		{"tag=GDPR&tag=tier-1", []string{}},
		{"owner=Team:sales", []string{"order-audit", "orders"}},
		{"domain=web", []string{"clicks"}},
		{"lifecycle=deprecated", []string{"customers"}},
		{"q=order&domain=sales", []string{"order-audit", "orders"}},
		{"limit=2&offset=1", []string{"customers", "order-audit"}},
	} {
		if got := topics(e.search(c.qs)); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.qs, got, c.want)
		}
	}
	res := e.search("q=email")
	if res.Items[0].MatchedFields == nil || !slices.Equal(res.Items[0].MatchedFields, []string{"contact.emailAddress"}) {
		t.Fatalf("matched fields: %+v", res.Items[0])
	}
	all := e.search("")
	if all.Total != 4 || all.Facets["owners"]["Team:sales"] != 2 || all.Facets["domains"]["sales"] != 2 ||
		all.Facets["tags"]["PII"] != 1 || all.Facets["lifecycle"]["active"] != 3 || all.Facets["lifecycle"]["deprecated"] != 1 {
		t.Fatalf("facets: %+v", all.Facets)
	}

	// Writes move the index: the old text no longer matches.
	p, _ := e.cat.Product(e.ctx, "clicks")
	if _, err := e.cat.PutProduct(e.ctx, admin, "clicks", ProductUpdate{Owner: "User:dave", Description: "Page views", Version: p.Version}); err != nil {
		t.Fatal(err)
	}
	if got := topics(e.search("q=stream")); len(got) != 0 {
		t.Fatalf("old description still found: %v", got)
	}
	if got := topics(e.search("q=views")); !slices.Equal(got, []string{"clicks"}) {
		t.Fatalf("new description: %v", got)
	}
	// Deleting metadata keeps the product (a topic), without its text.
	if err := e.cat.DeleteProduct(e.ctx, admin, "clicks"); err != nil {
		t.Fatal(err)
	}
	if got := topics(e.search("q=views")); len(got) != 0 {
		t.Fatalf("deleted metadata still found: %v", got)
	}
	if got := topics(e.search("q=clicks")); !slices.Equal(got, []string{"clicks"}) {
		t.Fatalf("a topic without metadata is a product: %v", got)
	}
	// A deleted topic leaves the listings; its metadata shows on GET.
	e.log.setTopics(Topic{Name: "orders", Partitions: 1}, Topic{Name: "customers", Partitions: 1}, Topic{Name: "clicks", Partitions: 1})
	waitFor(t, "the deleted topic to leave the index", func() bool { return e.search("q=audit").Total == 0 })
	var gone Product
	if status, body := e.call("alice", "GET", "/api/v1/products/order-audit", nil, &gone); status != 200 || gone.Exists || gone.Description != "Audit trail" {
		t.Fatalf("deleted topic with metadata: %d %s", status, body)
	}
	// A new topic is a product at once.
	e.log.setTopics(Topic{Name: "orders", Partitions: 1}, Topic{Name: "customers", Partitions: 1}, Topic{Name: "clicks", Partitions: 1},
		Topic{Name: "shipments", Partitions: 2}, Topic{Name: "__consumer_offsets", Partitions: 50, Internal: true})
	waitFor(t, "the new topic in the index", func() bool { return slices.Equal(topics(e.search("q=ship")), []string{"shipments"}) })
	if e.search("q=consumer").Total != 0 {
		t.Fatal("an internal topic is listed")
	}
	// A new schema version moves the fields.
	e.register("customers-value", "AVRO", `{"type":"record","name":"Customer","namespace":"crm","fields":[
		{"name":"id","type":"long"},
		{"name":"contact","type":{"type":"record","name":"Contact","fields":[{"name":"emailAddress","type":"string","confluent:tags":["PII"]}]}},
		{"name":"loyaltyTier","type":"string","default":"none"}]}`, nil, nil)
	waitFor(t, "the new field", func() bool { return slices.Equal(topics(e.search("q=loyalty")), []string{"customers"}) })

	for _, qs := range []string{"limit=0", "limit=1001", "offset=-1", "limit=x", "lifecycle=gone", "q=" + manyTerms(20)} {
		if status, body := e.call("alice", "GET", "/api/v1/products?"+qs, nil, nil); status != 400 {
			t.Errorf("%s: %d %s, want 400", qs, status, body)
		}
	}
}

// manyTerms is a query of n distinct words.
func manyTerms(n int) string {
	var ws []string
	for i := range n {
		ws = append(ws, fmt.Sprintf("w%d", i))
	}
	return strings.Join(ws, "+")
}

// TestNewTopicHasAProductAtOnce: a topic created a moment ago, before the
// catalog's topic watch looked at the log again, already has a product
// to read and write (an import creates a topic, then sets its product).
func TestNewTopicHasAProductAtOnce(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 1})
	e.log.mu.Lock() // the topic appears without a change signal: the watch stays asleep
	e.log.topics = append(e.log.topics, Topic{Name: "fresh", Partitions: 2})
	e.log.mu.Unlock()
	if _, err := e.cat.PutProduct(e.ctx, e.actor("admin"), "fresh", ProductUpdate{Description: "created a moment ago"}); err != nil {
		t.Fatalf("setting the product of a new topic: %v", err)
	}
	if p, err := e.cat.Product(e.ctx, "fresh"); err != nil || p.Partitions != 2 || p.Description != "created a moment ago" {
		t.Fatalf("product of a new topic: %+v, %v", p, err)
	}
}

package catalog

import (
	"strings"
	"testing"
)

// TestBadInputs: every bad request is a 4xx naming what is wrong, and
// nothing stored changes.
func TestBadInputs(t *testing.T) {
	e := newEnv(t, nil, Topic{Name: "orders", Partitions: 1})
	for _, c := range []struct{ path, body string }{
		{"/api/v1/tags/RETENTION", `{"attributes":[{"name":"class","type":"enum","values":["gold","silver"],"required":true},{"name":"days","type":"int"},{"name":"until","type":"date"},{"name":"wiki","type":"url"},{"name":"legal","type":"bool"},{"name":"note","type":"string"}]}`},
	} {
		if status, body := e.call("admin", "PUT", c.path, c.body, nil); status != 200 {
			t.Fatalf("PUT %s: %d %s", c.path, status, body)
		}
	}
	if status, body := e.call("admin", "PUT", "/api/v1/products/orders", `{"description":"kept","tags":["RETENTION"],"businessMetadata":{"class":"gold"}}`, nil); status != 200 {
		t.Fatalf("valid product: %d %s", status, body)
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"not JSON", "PUT", "/api/v1/products/orders", `{"description":`, 400, "invalid JSON"},
		{"unknown field", "PUT", "/api/v1/products/orders", `{"descripton":"x","version":1}`, 400, "descripton"},
		{"trailing data", "PUT", "/api/v1/products/orders", `{"version":1} {}`, 400, "after the object"},
		{"bad topic name", "PUT", "/api/v1/products/bad%20name", `{}`, 400, "not a valid topic name"},
		{"bad owner", "PUT", "/api/v1/products/orders", `{"owner":"bob","version":1}`, 400, "owner"},
		{"bad team owner", "PUT", "/api/v1/products/orders", `{"owner":"Team:a b","version":1}`, 400, "team"},
		{"bad lifecycle", "PUT", "/api/v1/products/orders", `{"lifecycle":"gone","version":1}`, 400, "lifecycle"},
		{"bad tag", "PUT", "/api/v1/products/orders", `{"tags":["has space"],"version":1}`, 400, "not a valid tag"},
		{"bad link", "PUT", "/api/v1/products/orders", `{"links":[{"title":"x","url":"ftp://x"}],"version":1}`, 400, "links[0].url"},
		{"link without title", "PUT", "/api/v1/products/orders", `{"links":[{"url":"https://x"}],"version":1}`, 400, "links[0]"},
		{"bad field path", "PUT", "/api/v1/products/orders", `{"fieldTags":{"a..b":["PII"]},"version":1}`, 400, "a..b"},
		{"object metadata", "PUT", "/api/v1/products/orders", `{"businessMetadata":{"x":{"y":1}},"version":1}`, 400, "businessMetadata.x"},
		{"required attribute", "PUT", "/api/v1/products/orders", `{"tags":["RETENTION"],"version":1}`, 400, "businessMetadata.class is required by tag RETENTION"},
		{"enum value", "PUT", "/api/v1/products/orders", `{"tags":["RETENTION"],"businessMetadata":{"class":"bronze"},"version":1}`, 400, "businessMetadata.class"},
		{"int attribute", "PUT", "/api/v1/products/orders", `{"tags":["RETENTION"],"businessMetadata":{"class":"gold","days":1.5},"version":1}`, 400, "businessMetadata.days"},
		{"date attribute", "PUT", "/api/v1/products/orders", `{"tags":["RETENTION"],"businessMetadata":{"class":"gold","until":"tomorrow"},"version":1}`, 400, "businessMetadata.until"},
		{"url attribute", "PUT", "/api/v1/products/orders", `{"tags":["RETENTION"],"businessMetadata":{"class":"gold","wiki":"nope"},"version":1}`, 400, "businessMetadata.wiki"},
		{"bool attribute", "PUT", "/api/v1/products/orders", `{"tags":["RETENTION"],"businessMetadata":{"class":"gold","legal":"yes"},"version":1}`, 400, "businessMetadata.legal"},
		{"string attribute", "PUT", "/api/v1/products/orders", `{"tags":["RETENTION"],"businessMetadata":{"class":"gold","note":7},"version":1}`, 400, "businessMetadata.note"},
		{"field tag brings attributes", "PUT", "/api/v1/products/orders", `{"fieldTags":{"id":["RETENTION"]},"version":1}`, 400, "businessMetadata.class is required"},
		{"negative version", "PUT", "/api/v1/products/orders", `{"version":-1}`, 400, "version"},
		{"not JSON content", "PUT", "/api/v1/products/orders", ``, 400, "invalid JSON"},
		{"huge body", "PUT", "/api/v1/products/orders", `{"description":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "larger"},
		{"long description", "PUT", "/api/v1/products/orders", `{"description":"` + strings.Repeat("x", 17<<10) + `","version":1}`, 400, "description"},
		{"enum without values", "PUT", "/api/v1/tags/T", `{"attributes":[{"name":"a","type":"enum"}]}`, 400, "needs values"},
		{"values without enum", "PUT", "/api/v1/tags/T", `{"attributes":[{"name":"a","type":"int","values":["1"]}]}`, 400, "only an enum"},
		{"unknown type", "PUT", "/api/v1/tags/T", `{"attributes":[{"name":"a","type":"float"}]}`, 400, "float"},
		{"duplicate attribute", "PUT", "/api/v1/tags/T", `{"attributes":[{"name":"a","type":"int"},{"name":"a","type":"bool"}]}`, 400, "twice"},
		{"bad tag name", "PUT", "/api/v1/tags/-x", `{}`, 400, "not a valid tag"},
		{"bad member", "PUT", "/api/v1/teams/t", `{"members":["bob"]}`, 400, "member"},
		{"bad team name", "PUT", "/api/v1/teams/.t", `{}`, 400, "team name"},
		{"unknown team", "GET", "/api/v1/teams/nosuch", ``, 404, "no team"},
		{"unknown tag", "GET", "/api/v1/tags/nosuch", ``, 404, "no tag"},
		{"team list limit", "GET", "/api/v1/teams?limit=0", ``, 400, "limit"},
	} {
		var body any
		if c.body != "" {
			body = c.body
		} else if c.method == "PUT" {
			body = " "
		}
		status, got := e.call("admin", c.method, c.path, body, nil)
		if status != c.status || !strings.Contains(got, c.contains) {
			t.Errorf("%s: %s %s = %d %s, want %d with %q", c.name, c.method, c.path, status, got, c.status, c.contains)
		}
	}
	var p Product
	e.call("admin", "GET", "/api/v1/products/orders", nil, &p)
	if p.Version != 1 || p.Description != "kept" {
		t.Fatalf("bad input changed the product: %+v", p)
	}
}

// TestPermissions: reading the catalog is open to every authenticated
// caller; creating a product needs ALTER on the topic (naming only
// oneself or one's team as owner) or an administrator; editing needs the
// owner, a member of the owning team or an administrator; tag definitions
// and new teams need an administrator; a sample needs READ on the topic.
func TestPermissions(t *testing.T) {
	authz := grants{
		"User:bob ALTER TOPIC orders":  true,
		"User:bob READ TOPIC orders":   true,
		"User:dave ALTER TOPIC orders": true,
	}
	e := newEnv(t, authz, Topic{Name: "orders", Partitions: 1}, Topic{Name: "payments", Partitions: 1})
	if status, body := e.call("admin", "PUT", "/api/v1/teams/payments", `{"members":["User:carol"]}`, nil); status != 200 {
		t.Fatalf("admin creates a team: %d %s", status, body)
	}
	for i, c := range []struct {
		user, method, path, body string
		status                   int
	}{
		{"", "GET", "/api/v1/products", "", 401},
		{"", "GET", "/api/v1/products/orders", "", 401},
		{"alice", "GET", "/api/v1/products", "", 200},
		{"alice", "GET", "/api/v1/products/orders", "", 200},
		{"alice", "GET", "/api/v1/teams", "", 200},
		{"alice", "GET", "/api/v1/tags", "", 200},
		{"alice", "PUT", "/api/v1/products/orders", `{"owner":"User:alice"}`, 403},                                         // no ALTER
		{"dave", "PUT", "/api/v1/products/orders", `{"owner":"User:bob"}`, 403},                                            // ALTER, but names another
		{"dave", "PUT", "/api/v1/products/orders", `{"owner":"Team:payments"}`, 403},                                       // not a member
		{"bob", "PUT", "/api/v1/products/orders", `{"owner":"User:bob"}`, 200},                                             // ALTER, names itself
		{"dave", "PUT", "/api/v1/products/orders", `{"owner":"User:dave","version":1}`, 403},                               // ALTER is not ownership
		{"bob", "PUT", "/api/v1/products/orders", `{"owner":"Team:payments","version":1}`, 200},                            // the owner hands over
		{"bob", "PUT", "/api/v1/products/orders", `{"owner":"User:bob","version":2}`, 403},                                 // no longer the owner
		{"carol", "PUT", "/api/v1/products/orders", `{"owner":"Team:payments","description":"by carol","version":2}`, 200}, // a team member
		{"alice", "DELETE", "/api/v1/products/orders", "", 403},
		{"alice", "GET", "/api/v1/products/orders/sample", "", 403},
		{"bob", "GET", "/api/v1/products/orders/sample", "", 200},
		{"admin", "GET", "/api/v1/products/payments/sample", "", 200},
		{"carol", "PUT", "/api/v1/products/payments", `{}`, 403}, // no ALTER on payments
		{"admin", "PUT", "/api/v1/products/payments", `{"owner":"User:zed"}`, 200},
		{"alice", "PUT", "/api/v1/tags/PII", `{"mask":false}`, 403},
		{"alice", "DELETE", "/api/v1/tags/PII", "", 403},
		{"alice", "PUT", "/api/v1/teams/newteam", `{"members":["User:alice"]}`, 403},
		{"alice", "PUT", "/api/v1/teams/payments", `{"members":["User:alice"]}`, 403},
		{"carol", "PUT", "/api/v1/teams/payments", `{"members":["User:carol","User:erin"]}`, 200},
		{"carol", "DELETE", "/api/v1/teams/payments", "", 403},
		{"carol", "DELETE", "/api/v1/products/orders", "", 204},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		if status, got := e.call(c.user, c.method, c.path, body, nil); status != c.status {
			t.Fatalf("#%d %s %s %s %s: %d %s, want %d", i, c.user, c.method, c.path, c.body, status, got, c.status)
		}
	}
	if own, _ := e.cat.Owns(e.ctx, "payments", e.actor("zed").Principal); !own {
		t.Fatal("User:zed does not own payments")
	}
}

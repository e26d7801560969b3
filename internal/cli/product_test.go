package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runnel-dev/runnel/internal/governance/catalog"
)

// TestProductCommands: the product commands call the catalog's API with
// the security flags' credentials (HTTP Basic), `set` edits what it read
// and writes it back at the version read, and API errors come back with
// their message.
func TestProductCommands(t *testing.T) {
	var mu sync.Mutex
	var puts []catalog.ProductUpdate
	var users []string
	product := catalog.Product{ProductCore: catalog.ProductCore{Topic: "orders", Exists: true, Partitions: 3, Owner: "User:bob",
		Description: "Orders", Tags: []string{"PII", "tier-1"}, OwnTags: []string{"tier-1"}, Lifecycle: "active",
		BusinessMetadata: map[string]any{"tier": float64(1), "gone": "x"}, Links: []catalog.Link{}, FieldTags: map[string][]string{}, Version: 4},
		Schema: &catalog.Schema{Subject: "orders-value", Version: 2, ID: 7, Type: "AVRO",
			Fields: []catalog.Field{{Path: "customer.email", Type: "string", Tags: []string{"PII"}}}}}
	mux := http.NewServeMux()
	record := func(r *http.Request) {
		user, pw, _ := r.BasicAuth()
		mu.Lock()
		users = append(users, user+":"+pw)
		mu.Unlock()
	}
	mux.HandleFunc("GET /api/v1/products", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		if r.URL.Query().Get("q") != "email" || !slices.Equal(r.URL.Query()["tag"], []string{"PII"}) {
			http.Error(w, "unexpected query "+r.URL.RawQuery, 400)
			return
		}
		json.NewEncoder(w).Encode(catalog.SearchResult{Total: 1, Items: []catalog.ProductSummary{
			{ProductCore: product.ProductCore, MatchedFields: []string{"customer.email"}}}})
	})
	mux.HandleFunc("GET /api/v1/products/{topic}", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		if r.PathValue("topic") != "orders" {
			w.WriteHeader(404)
			w.Write([]byte(`{"error_code":40401,"message":"governance: not found: no product \"nope\""}`))
			return
		}
		json.NewEncoder(w).Encode(product)
	})
	mux.HandleFunc("PUT /api/v1/products/{topic}", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		var u catalog.ProductUpdate
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		puts = append(puts, u)
		mu.Unlock()
		p := product
		p.Version = u.Version + 1
		json.NewEncoder(w).Encode(p)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	t.Setenv("CLI_TEST_PW", "s3cret")
	auth := []string{"--http", srv.URL, "--sasl-mechanism", "PLAIN", "--sasl-user", "bob", "--sasl-password-env", "CLI_TEST_PW"}

	out, err := runCLI(t, "", append([]string{"product", "search", "email", "--tag", "PII"}, auth...)...)
	if err != nil || !strings.Contains(out, "orders") || !strings.Contains(out, "customer.email") || !strings.Contains(out, "1 of 1 products") {
		t.Fatalf("search: %v\n%s", err, out)
	}
	out, err = runCLI(t, "", append([]string{"product", "show", "orders"}, auth...)...)
	if err != nil || !strings.Contains(out, "orders-value version 2") || !strings.Contains(out, "customer.email") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, err = runCLI(t, "", append([]string{"product", "set", "orders", "--add-tag", "GDPR", "--meta", "tier=2", "--meta", "gone=",
		"--meta", `cost="4711"`, "--field-tag", "customer.name=PII", "--link", "Runbook=https://wiki/orders"}, auth...)...)
	if err != nil || !strings.Contains(out, "orders: version 5") {
		t.Fatalf("set: %v\n%s", err, out)
	}
	mu.Lock()
	u := puts[0]
	gotUsers := slices.Clone(users)
	mu.Unlock()
	if u.Version != 4 || u.Owner != "User:bob" || !slices.Equal(u.Tags, []string{"tier-1", "GDPR"}) ||
		u.BusinessMetadata["tier"] != float64(2) || u.BusinessMetadata["cost"] != "4711" || u.BusinessMetadata["gone"] != nil ||
		!slices.Equal(u.FieldTags["customer.name"], []string{"PII"}) || len(u.Links) != 1 || u.Links[0].URL != "https://wiki/orders" {
		t.Fatalf("put: %+v", u)
	}
	for _, got := range gotUsers {
		if got != "bob:s3cret" {
			t.Fatalf("credentials sent: %q", gotUsers)
		}
	}
	if _, err = runCLI(t, "", append([]string{"product", "show", "nope"}, auth...)...); err == nil || !strings.Contains(err.Error(), `no product "nope"`) {
		t.Fatalf("error: %v", err)
	}
	if _, err = runCLI(t, "", append([]string{"product", "tag", "set", "X", "--attr", "bad"}, auth...)...); err == nil || !strings.Contains(err.Error(), "NAME:TYPE") {
		t.Fatalf("bad attribute: %v", err)
	}
}

func TestParseAttribute(t *testing.T) {
	a, err := parseAttribute("retention:enum:required:30d|1y")
	if err != nil || a.Name != "retention" || a.Type != "enum" || !a.Required || !slices.Equal(a.Values, []string{"30d", "1y"}) {
		t.Fatalf("%+v %v", a, err)
	}
	if a, err = parseAttribute("dpo:url"); err != nil || a.Required || a.Values != nil {
		t.Fatalf("%+v %v", a, err)
	}
}

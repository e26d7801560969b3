package catalog

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

// benchWords are the vocabulary of the generated products.
var (
	benchDomains = []string{"sales", "crm", "web", "payments", "logistics", "finance", "marketing", "hr", "risk", "support"}
	benchTags    = []string{"PII", "GDPR", "tier-1", "tier-2", "tier-3", "internal", "public", "pci", "realtime", "batch",
		"golden", "raw", "curated", "deprecated-soon", "finance", "ml-feature", "experimental", "audited", "hot", "cold"}
	benchNouns = []string{"order", "customer", "payment", "invoice", "shipment", "click", "session", "account", "refund",
		"product", "cart", "review", "ticket", "agent", "device", "event", "price", "stock", "warehouse", "route"}
	benchFields = []string{"id", "email", "name", "address", "city", "street", "zip", "country", "amount", "currency",
		"status", "createdAt", "updatedAt", "phone", "iban", "sku", "quantity", "price", "discount", "total", "channel",
		"userAgent", "ipAddress", "latitude", "longitude", "score", "reason", "comment", "source", "version"}
	benchText = strings.Fields(`the a of every placed by customers in web shop stream records events emitted when
		state changes for downstream consumers analytics reporting fraud detection billing reconciliation nightly
		hourly raw enriched joined with reference data owned maintained team contact on call runbook schema evolves
		backward compatible partitions keyed by identifier retention seven days compacted tombstones`)
)

// benchIndex builds an index of n realistic products: a name of two or
// three nouns, a description of 12 to 30 words, 3 to 5 tags, 10 to 30
// fields (some nested), an owner, a domain and business metadata.
func benchIndex(n int) *index {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(ws []string) string { return ws[r.IntN(len(ws))] }
	ix := newIndex()
	for i := range n {
		name := fmt.Sprintf("%s-%s-%s-%d", pick(benchDomains), pick(benchNouns), pick(benchNouns), i)
		var desc []string
		for range 12 + r.IntN(19) {
			desc = append(desc, pick(benchText))
		}
		var tags []string
		for len(tags) < 3+r.IntN(3) {
			if t := pick(benchTags); !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		slices.Sort(tags)
		var fields []Field
		for j := range 10 + r.IntN(21) {
			path := pick(benchFields)
			if j%4 == 3 {
				path = pick(benchNouns) + "." + path
			}
			fields = append(fields, Field{Path: fmt.Sprintf("%s%d", path, j), Type: "string", Tags: []string{}})
		}
		c := ProductCore{Topic: name, Exists: true, Partitions: 6, Owner: "Team:" + pick(benchDomains), Domain: pick(benchDomains),
			Description: strings.Join(desc, " "), Tags: tags, Lifecycle: lifecycles[r.IntN(len(lifecycles))],
			BusinessMetadata: map[string]any{"costCenter": fmt.Sprintf("cc%d", r.IntN(500)), "tier": float64(1 + r.IntN(3))}}
		ix.put(newDoc(c, fields))
	}
	return ix
}

// BenchmarkSearch measures search over 10,000 products with a mix of
// queries (one term, two terms, a field name, facet filters, text with a
// filter, a listing) and reports each kind's p50 and p99 latency.
func BenchmarkSearch(b *testing.B) {
	ix := benchIndex(10_000)
	kinds := []struct {
		name string
		q    Query
	}{
		{"one-term", Query{Text: "payment"}},
		{"one-term-prefix", Query{Text: "cu"}},
		{"two-terms", Query{Text: "fraud billing"}},
		{"field-name", Query{Text: "email"}},
		{"nested-field", Query{Text: "customer iban"}},
		{"facet-tag", Query{Tags: []string{"PII", "tier-1"}}},
		{"facet-owner-lifecycle", Query{Owner: "Team:sales", Lifecycle: "active"}},
		{"text-and-facet", Query{Text: "order", Domain: "payments"}},
		{"list-all", Query{}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			q := k.q
			q.Limit = 50
			b.ReportAllocs()
			var lat []time.Duration
			total := 0
			for b.Loop() {
				start := time.Now()
				res, err := ix.search(q)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				total = res.Total
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(total), "matches")
		})
	}
}

// BenchmarkSearchAPI measures what a caller of GET /api/v1/products sees
// over 10,000 products: query parsing, the search and the JSON answer
// (50 summaries and the facets), through the catalog's HTTP handler.
func BenchmarkSearchAPI(b *testing.B) {
	c := &Catalog{ix: benchIndex(10_000)}
	h := governance.Handler(nil, c.httpList)
	for _, k := range []struct{ name, query string }{
		{"field-name", "q=email"},
		{"one-term-prefix", "q=cu"},
		{"text-and-facets", "q=order&tag=PII&domain=payments"},
		{"list-all", ""},
	} {
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			var lat []time.Duration
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/v1/products?"+k.query, nil)
				r = r.WithContext(auth.WithRequestPrincipal(r.Context(), auth.Anonymous, "127.0.0.1"))
				w := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(w, r)
				lat = append(lat, time.Since(start))
				if w.Code != 200 {
					b.Fatalf("%s: %d %s", k.query, w.Code, w.Body)
				}
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

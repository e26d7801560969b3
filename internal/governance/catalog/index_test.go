package catalog

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"testing"
)

// bruteSearch answers q by looking at every product: the reference the
// index must agree with.
func bruteSearch(ix *index, q Query) ([]string, map[string]map[string]int) {
	terms := uniqueTokens(q.Text)
	type hit struct {
		topic string
		score int
	}
	var hits []hit
	facets := map[string]map[string]int{"tags": {}, "owners": {}, "domains": {}, "lifecycle": {}}
	for _, d := range ix.docs {
		score := 0
		ok := filterDoc(d, q)
		for i, t := range terms {
			w := int(d.terms[t])
			if i == len(terms)-1 {
				for dt, dw := range d.terms {
					if strings.HasPrefix(dt, t) {
						w = max(w, int(dw))
					}
				}
			}
			if w == 0 {
				ok = false
			}
			score += w
		}
		if !ok {
			continue
		}
		hits = append(hits, hit{d.summary.Topic, score})
		s := d.summary
		for _, t := range s.Tags {
			facets["tags"][t]++
		}
		if s.Owner != "" {
			facets["owners"][s.Owner]++
		}
		if s.Domain != "" {
			facets["domains"][s.Domain]++
		}
		facets["lifecycle"][s.Lifecycle]++
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return strings.Compare(a.topic, b.topic)
	})
	out := []string{}
	for _, h := range hits {
		out = append(out, h.topic)
	}
	return out, facets
}

// TestIndexAgreesWithBruteForce: over a few hundred generated products,
// every query (rare and common terms, so both the few-candidates and the
// many-candidates paths, prefixes, filters) ranks and counts exactly as
// looking at every product does, also after products are replaced and
// removed.
func TestIndexAgreesWithBruteForce(t *testing.T) {
	ix := benchIndex(400)
	queries := []Query{
		{Text: "payment"}, {Text: "pay"}, {Text: "p"}, {Text: "fraud billing"}, {Text: "email"}, {Text: "customer iban"},
		{Text: "order 17"}, {Text: "sales order"}, {Text: "zzz"}, {Text: "cc42"}, {Tags: []string{"PII"}},
		{Text: "o", Domain: "web"}, {Owner: "Team:crm", Lifecycle: "active"}, {}, {Text: "team"},
		{Text: "customer-17"}, {Text: "order-customer"},
	}
	check := func(stage string) {
		t.Helper()
		for _, q := range queries {
			q.Limit = 1000
			res, err := ix.search(q)
			if err != nil {
				t.Fatal(err)
			}
			want, facets := bruteSearch(ix, q)
			if got := topics(res); !slices.Equal(got, want) || res.Total != len(want) {
				t.Fatalf("%s: %+v: %d results %v…, want %d %v…", stage, q, res.Total, got[:min(5, len(got))], len(want), want[:min(5, len(want))])
			}
			for k, m := range facets {
				if !maps.Equal(res.Facets[k], m) {
					t.Fatalf("%s: %+v: facet %s %v, want %v", stage, q, k, res.Facets[k], m)
				}
			}
		}
	}
	check("built")
	// Replace some products and remove others: slots are reused.
	var names []string
	for name := range ix.docs {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		switch i % 5 {
		case 0:
			ix.remove(name)
		case 1:
			c := ix.docs[name].summary
			c.Description, c.Tags = "replaced text about refunds", []string{"PII"}
			ix.put(newDoc(c, nil))
		}
	}
	queries = append(queries, Query{Text: "refunds"}, Query{Text: "replaced ab"})
	check("changed")
}

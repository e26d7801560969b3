package catalog

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// Where a term occurs in a product, by rank: a match in the name ranks
// above one in a tag, owner, domain or field name, which ranks above one
// in the description or business metadata.
const (
	weightText  = 1
	weightTag   = 10
	weightName  = 100
	prefixLen   = 3 // the longest prefix bucketed for prefix matches
	maxQueryLen = 1024
	maxTerms    = 16
)

// doc is one product as the index holds it.
type doc struct {
	summary ProductCore
	terms   map[string]uint8 // term → its best weight
	fields  []docField       // schema fields, for matchedFields
	slot    int32            // its number in the index, while indexed
	// Interned facet values: tags, owner, domain, lifecycle (-1: none).
	tagIDs                    []int32
	ownerID, domainID, lifeID int32
}

type docField struct {
	path  string
	terms []string
}

// index is the search index, changed one product at a time (put,
// remove): postings from term to the slots of the products holding it,
// term buckets by prefix for the prefix match of a query's last term,
// the products in name order, and facet values interned as numbers so a
// query counts facets in arrays. Interned facet values are never
// forgotten (they are few: tags, owners, domains). Safe for concurrent
// use.
type index struct {
	mu       sync.RWMutex
	docs     map[string]*doc
	slots    []*doc                         // slot → product (nil: free)
	free     []int32                        // free slots
	order    []*doc                         // by topic name
	postings map[string]map[int32]uint8     // term → slot → weight
	buckets  map[string]map[string]struct{} // prefix (1..prefixLen runes) → terms
	facetID  map[string]int32               // interned facet values
	facets   []string                       // id → value
}

func newIndex() *index {
	return &index{docs: map[string]*doc{}, postings: map[string]map[int32]uint8{},
		buckets: map[string]map[string]struct{}{}, facetID: map[string]int32{}}
}

// intern returns the id of a facet value ("" is -1).
func (ix *index) intern(v string) int32 {
	if v == "" {
		return -1
	}
	id, ok := ix.facetID[v]
	if !ok {
		id = int32(len(ix.facets))
		ix.facets = append(ix.facets, v)
		ix.facetID[v] = id
	}
	return id
}

// tokens splits text into lower-case terms: runs of letters and digits,
// and the parts of camelCase words beside the whole word.
func tokens(s string) []string {
	var out []string
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		w := s[start:end]
		out = append(out, strings.ToLower(w))
		out = append(out, camelParts(w)...)
		start = -1
	}
	for i, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(s))
	return out
}

// camelParts splits "customerEmail" into "customer", "email"; a word
// without an inner upper-case letter has no parts.
func camelParts(w string) []string {
	var parts []string
	last := 0
	rs := []rune(w)
	for i := 1; i < len(rs); i++ {
		if unicode.IsUpper(rs[i]) && unicode.IsLower(rs[i-1]) {
			parts = append(parts, strings.ToLower(string(rs[last:i])))
			last = i
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return append(parts, strings.ToLower(string(rs[last:])))
}

// newDoc builds the index entry of a product: its summary, and its terms
// from the name, tags, owner, domain, schema field names, description and
// business metadata values.
func newDoc(c ProductCore, fields []Field) *doc {
	d := &doc{summary: c, terms: map[string]uint8{}}
	add := func(text string, w uint8) {
		for _, t := range tokens(text) {
			if d.terms[t] < w {
				d.terms[t] = w
			}
		}
	}
	add(c.Topic, weightName)
	for _, t := range c.Tags {
		add(t, weightTag)
	}
	add(c.Owner, weightTag)
	add(c.Domain, weightTag)
	for _, f := range fields {
		ts := tokens(f.Path)
		d.fields = append(d.fields, docField{path: f.Path, terms: ts})
		for _, t := range ts {
			if d.terms[t] < weightTag {
				d.terms[t] = weightTag
			}
		}
	}
	add(c.Description, weightText)
	for _, k := range slices.Sorted(maps.Keys(c.BusinessMetadata)) {
		add(fmt.Sprint(c.BusinessMetadata[k]), weightText)
	}
	return d
}

// put replaces a product's entry.
func (ix *index) put(d *doc) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	topic := d.summary.Topic
	ix.removeLocked(topic)
	if n := len(ix.free); n > 0 {
		d.slot, ix.free = ix.free[n-1], ix.free[:n-1]
		ix.slots[d.slot] = d
	} else {
		d.slot = int32(len(ix.slots))
		ix.slots = append(ix.slots, d)
	}
	ix.docs[topic] = d
	i, _ := slices.BinarySearchFunc(ix.order, topic, func(o *doc, t string) int { return strings.Compare(o.summary.Topic, t) })
	ix.order = slices.Insert(ix.order, i, d)
	d.tagIDs = make([]int32, len(d.summary.Tags))
	for i, t := range d.summary.Tags {
		d.tagIDs[i] = ix.intern(t)
	}
	d.ownerID, d.domainID, d.lifeID = ix.intern(d.summary.Owner), ix.intern(d.summary.Domain), ix.intern(d.summary.Lifecycle)
	for t, w := range d.terms {
		p := ix.postings[t]
		if p == nil {
			p = map[int32]uint8{}
			ix.postings[t] = p
			for _, pre := range prefixes(t) {
				b := ix.buckets[pre]
				if b == nil {
					b = map[string]struct{}{}
					ix.buckets[pre] = b
				}
				b[t] = struct{}{}
			}
		}
		p[d.slot] = w
	}
}

// remove drops a product's entry.
func (ix *index) remove(topic string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(topic)
}

func (ix *index) removeLocked(topic string) {
	old := ix.docs[topic]
	if old == nil {
		return
	}
	delete(ix.docs, topic)
	if i, ok := slices.BinarySearchFunc(ix.order, topic, func(o *doc, t string) int { return strings.Compare(o.summary.Topic, t) }); ok {
		ix.order = slices.Delete(ix.order, i, i+1)
	}
	ix.slots[old.slot] = nil
	ix.free = append(ix.free, old.slot)
	for t := range old.terms {
		p := ix.postings[t]
		delete(p, old.slot)
		if len(p) > 0 {
			continue
		}
		delete(ix.postings, t)
		for _, pre := range prefixes(t) {
			if b := ix.buckets[pre]; b != nil {
				delete(b, t)
				if len(b) == 0 {
					delete(ix.buckets, pre)
				}
			}
		}
	}
}

// prefixes are the bucket keys of a term: its first 1..prefixLen runes.
func prefixes(t string) []string {
	var out []string
	n := 0
	for i := range t {
		if n > 0 {
			out = append(out, t[:i])
		}
		n++
		if n > prefixLen {
			return out
		}
	}
	return append(out, t)
}

// Query is a search: free text and facet filters.
type Query struct {
	Text      string
	Tags      []string // every tag must be on the product
	Owner     string
	Domain    string
	Lifecycle string
	Limit     int
	Offset    int
}

// SearchResult is a page of a search and its facets.
type SearchResult struct {
	Items  []ProductSummary          `json:"items"`
	Total  int                       `json:"total"`
	Facets map[string]map[string]int `json:"facets"`
}

// search answers q: every term must match (the last one as a prefix),
// ranked by where the terms occur, then by name; facets count the
// matching products' tags, owners, domains and lifecycles.
func (ix *index) search(q Query) (SearchResult, error) {
	if len(q.Text) > maxQueryLen {
		return SearchResult{}, invalid("q is longer than %d bytes", maxQueryLen)
	}
	terms := uniqueTokens(q.Text)
	if len(terms) > maxTerms {
		return SearchResult{}, invalid("q has more than %d terms", maxTerms)
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()

	type hit struct {
		d     *doc
		score int
	}
	var hits []hit
	var lastMatches map[string]struct{} // the terms the last (prefix) term matched
	if len(terms) == 0 {
		hits = make([]hit, 0, len(ix.order))
		for _, d := range ix.order { // already in name order
			if filterDoc(d, q) {
				hits = append(hits, hit{d: d})
			}
		}
	} else {
		// Every exact term must match; the last term matches as a prefix,
		// scored by the best of the terms it matches.
		exact, last := terms[:len(terms)-1], terms[len(terms)-1]
		lastMatches = ix.prefixMatchesLocked(last)
		lastW := make([]uint8, len(ix.slots))
		var touched []int32
		for t := range lastMatches {
			for slot, w := range ix.postings[t] {
				if lastW[slot] == 0 {
					touched = append(touched, slot)
				}
				lastW[slot] = max(lastW[slot], w)
			}
		}
		lists := make([]map[int32]uint8, 0, len(exact))
		for _, t := range exact {
			p := ix.postings[t]
			if len(p) == 0 {
				return emptyResult(), nil
			}
			lists = append(lists, p)
		}
		score := func(d *doc) (int, bool) {
			s := int(lastW[d.slot])
			if s == 0 {
				return 0, false
			}
			for _, p := range lists {
				w, ok := p[d.slot]
				if !ok {
					return 0, false
				}
				s += int(w)
			}
			return s, filterDoc(d, q)
		}
		few := len(touched)
		for _, p := range lists {
			few = min(few, len(p))
		}
		if few*8 < len(ix.order) {
			// Few candidates: score them, then sort by score and name.
			for _, slot := range touched {
				if d := ix.slots[slot]; d != nil {
					if s, ok := score(d); ok {
						hits = append(hits, hit{d: d, score: s})
					}
				}
			}
			slices.SortFunc(hits, func(a, b hit) int {
				if c := cmp.Compare(b.score, a.score); c != 0 {
					return c
				}
				return strings.Compare(a.d.summary.Topic, b.d.summary.Topic)
			})
		} else {
			// Many: walk the products in name order, then order by score
			// keeping the name order within a score.
			hits = make([]hit, 0, len(touched))
			var scores []int
			for _, d := range ix.order {
				if s, ok := score(d); ok {
					hits = append(hits, hit{d: d, score: s})
					if !slices.Contains(scores, s) {
						scores = append(scores, s)
					}
				}
			}
			switch {
			case len(scores) > 16:
				slices.SortStableFunc(hits, func(a, b hit) int { return cmp.Compare(b.score, a.score) })
			case len(scores) > 1:
				// Scores take few values: bucket by score, highest first.
				slices.Sort(scores)
				byScore := make([]hit, 0, len(hits))
				for i := len(scores) - 1; i >= 0; i-- {
					for _, h := range hits {
						if h.score == scores[i] {
							byScore = append(byScore, h)
						}
					}
				}
				hits = byScore
			}
		}
	}
	// Facets count every match, in arrays over the interned values.
	counts := [4][]int32{}
	for i := range counts {
		counts[i] = make([]int32, len(ix.facets))
	}
	for _, h := range hits {
		d := h.d
		for _, id := range d.tagIDs {
			counts[0][id]++
		}
		if d.ownerID >= 0 {
			counts[1][d.ownerID]++
		}
		if d.domainID >= 0 {
			counts[2][d.domainID]++
		}
		if d.lifeID >= 0 {
			counts[3][d.lifeID]++
		}
	}
	res := emptyResult()
	res.Total = len(hits)
	for i, name := range []string{"tags", "owners", "domains", "lifecycle"} {
		m := res.Facets[name]
		for id, n := range counts[i] {
			if n > 0 {
				m[ix.facets[id]] = int(n)
			}
		}
	}
	if q.Offset < len(hits) {
		page := hits[q.Offset:]
		if len(page) > q.Limit {
			page = page[:q.Limit]
		}
		for _, h := range page {
			item := ProductSummary{ProductCore: h.d.summary}
			if len(terms) > 0 {
				item.MatchedFields = matchedFields(h.d, terms[:len(terms)-1], lastMatches)
			}
			res.Items = append(res.Items, item)
		}
	}
	return res, nil
}

func emptyResult() SearchResult {
	return SearchResult{Items: []ProductSummary{}, Facets: map[string]map[string]int{
		"tags": {}, "owners": {}, "domains": {}, "lifecycle": {}}}
}

// prefixMatchesLocked returns the indexed terms starting with p.
func (ix *index) prefixMatchesLocked(p string) map[string]struct{} {
	key := p
	if rs := []rune(p); len(rs) > prefixLen {
		key = string(rs[:prefixLen])
	}
	out := map[string]struct{}{}
	for t := range ix.buckets[key] {
		if strings.HasPrefix(t, p) {
			out[t] = struct{}{}
		}
	}
	return out
}

// matchedFields lists the fields of d whose names hold one of the exact
// terms or a term the last one matched.
func matchedFields(d *doc, exact []string, last map[string]struct{}) []string {
	var out []string
	for _, f := range d.fields {
		for _, t := range f.terms {
			_, ok := last[t]
			if ok || slices.Contains(exact, t) {
				out = append(out, f.path)
				break
			}
		}
	}
	return out
}

// uniqueTokens are the distinct terms of a query, in order.
func uniqueTokens(s string) []string {
	var out []string
	for _, t := range tokens(s) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// filterDoc applies the facet filters.
func filterDoc(d *doc, q Query) bool {
	s := &d.summary
	if q.Owner != "" && s.Owner != q.Owner {
		return false
	}
	if q.Domain != "" && s.Domain != q.Domain {
		return false
	}
	if q.Lifecycle != "" && s.Lifecycle != q.Lifecycle {
		return false
	}
	for _, t := range q.Tags {
		if !slices.Contains(s.Tags, t) {
			return false
		}
	}
	return true
}

// get returns a product's indexed summary.
func (ix *index) get(topic string) (ProductCore, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d, ok := ix.docs[topic]
	if !ok {
		return ProductCore{}, false
	}
	return d.summary, true
}

// len is the number of products indexed.
func (ix *index) len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.docs)
}

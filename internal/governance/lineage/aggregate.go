package lineage

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// The rolling window: WindowBuckets buckets of BucketSeconds each.
const (
	BucketSeconds = 10
	WindowBuckets = 6
	// WindowSeconds is the window's length as the API reports it.
	WindowSeconds = BucketSeconds * WindowBuckets
)

// Defaults of the aggregate's bounds.
const (
	DefaultMaxEdges  = 10000
	DefaultRetention = 7 * 24 * time.Hour
)

// Key identifies an observed edge: one client's kind of use of one topic.
type Key struct {
	Kind            Kind   `json:"k"`
	Principal       string `json:"p,omitempty"`
	ClientID        string `json:"c,omitempty"`
	Software        string `json:"s,omitempty"` // "name/version"
	TransactionalID string `json:"x,omitempty"`
	Group           string `json:"g,omitempty"`
	Topic           string `json:"t"`
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Group, b.Group),
		cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.ClientID, b.ClientID),
		cmp.Compare(a.Software, b.Software), cmp.Compare(a.TransactionalID, b.TransactionalID))
}

// Bucket is one BucketSeconds slot of an edge's window.
type Bucket struct {
	Slot    int64 `json:"s"` // unix seconds / BucketSeconds
	Bytes   int64 `json:"b,omitempty"`
	Records int64 `json:"r,omitempty"`
}

// Edge is what was observed of one Key.
type Edge struct {
	Key
	ProducerID int64    `json:"pid,omitempty"` // the last seen; 0 when none
	First      int64    `json:"f"`             // unix ms
	Last       int64    `json:"l"`             // unix ms
	Bytes      int64    `json:"b,omitempty"`
	Records    int64    `json:"r,omitempty"`
	Window     []Bucket `json:"w,omitempty"` // oldest first, at most WindowBuckets
}

func slotOf(ms int64) int64 { return ms / 1000 / BucketSeconds }

// addWindow adds to the bucket of slot, dropping buckets that left the
// window.
func (e *Edge) addWindow(slot, bytes, records int64) {
	if n := len(e.Window); n > 0 && e.Window[n-1].Slot == slot {
		e.Window[n-1].Bytes += bytes
		e.Window[n-1].Records += records
	} else if n == 0 || e.Window[n-1].Slot < slot {
		e.Window = append(e.Window, Bucket{Slot: slot, Bytes: bytes, Records: records})
	} else { // an earlier slot (a late drain): keep order
		i, found := slices.BinarySearchFunc(e.Window, slot, func(b Bucket, s int64) int { return cmp.Compare(b.Slot, s) })
		if found {
			e.Window[i].Bytes += bytes
			e.Window[i].Records += records
		} else {
			e.Window = slices.Insert(e.Window, i, Bucket{Slot: slot, Bytes: bytes, Records: records})
		}
	}
	e.trimWindow(e.Window[len(e.Window)-1].Slot)
}

// trimWindow drops the buckets outside the window ending at slot.
func (e *Edge) trimWindow(slot int64) {
	i := 0
	for i < len(e.Window) && e.Window[i].Slot <= slot-WindowBuckets {
		i++
	}
	if i > 0 {
		e.Window = append(e.Window[:0], e.Window[i:]...)
	}
}

// WindowTotals returns the bytes and records of the window ending at now:
// the current bucket and the WindowBuckets-1 before it.
func (e *Edge) WindowTotals(now time.Time) (bytes, records int64) {
	slot := slotOf(now.UnixMilli())
	for _, b := range e.Window {
		if b.Slot > slot-WindowBuckets && b.Slot <= slot {
			bytes += b.Bytes
			records += b.Records
		}
	}
	return bytes, records
}

// merge adds o (the same key, seen elsewhere) to e.
func (e *Edge) merge(o *Edge) {
	if o.First != 0 && (e.First == 0 || o.First < e.First) {
		e.First = o.First
	}
	if o.Last > e.Last {
		e.Last = o.Last
		if o.ProducerID != 0 {
			e.ProducerID = o.ProducerID
		}
	}
	e.Bytes += o.Bytes
	e.Records += o.Records
	for _, b := range o.Window {
		e.addWindow(b.Slot, b.Bytes, b.Records)
	}
}

func (e *Edge) clone() Edge {
	c := *e
	c.Window = slices.Clone(e.Window)
	return c
}

// Aggregate is one broker's edges, bounded: at most maxEdges (the least
// recently seen evicted by Prune) and none older than the retention. Safe
// for concurrent use.
type Aggregate struct {
	maxEdges  int
	retention time.Duration

	mu      sync.Mutex
	edges   map[Key]*Edge
	version uint64 // changes with every change of edges
	evicted int64
}

// NewAggregate returns an empty aggregate; maxEdges <= 0 and retention
// <= 0 mean the defaults.
func NewAggregate(maxEdges int, retention time.Duration) *Aggregate {
	if maxEdges <= 0 {
		maxEdges = DefaultMaxEdges
	}
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Aggregate{maxEdges: maxEdges, retention: retention, edges: map[Key]*Edge{}}
}

// software joins a client's software name and version.
func software(name, version string) string {
	if name == "" && version == "" {
		return ""
	}
	return name + "/" + version
}

// addAll adds a connection's tallies.
func (a *Aggregate) addAll(p map[connKey]*tally, now time.Time) {
	if len(p) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range p {
		key := Key{Kind: k.kind, Principal: k.client.Principal, ClientID: k.client.ClientID,
			Software:        software(k.client.SoftwareName, k.client.SoftwareVersion),
			TransactionalID: k.txnID, Group: k.group, Topic: k.topic}
		e := &Edge{Key: key, First: t.first, Last: t.last, Bytes: t.bytes, Records: t.records}
		if t.producerID >= 0 {
			e.ProducerID = t.producerID
		}
		if t.bytes != 0 || t.records != 0 {
			e.Window = []Bucket{{Slot: slotOf(t.last), Bytes: t.bytes, Records: t.records}}
		}
		a.mergeLocked(e)
	}
}

// Add merges e into the aggregate (a restarted broker's persisted edges,
// tests).
func (a *Aggregate) Add(e Edge) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mergeLocked(&e)
}

func (a *Aggregate) mergeLocked(e *Edge) {
	a.version++
	if cur := a.edges[e.Key]; cur != nil {
		cur.merge(e)
		return
	}
	c := e.clone()
	a.edges[e.Key] = &c
}

// Prune drops the edges last seen longer than the retention before now
// and then, past maxEdges, the least recently seen. It returns how many
// it dropped.
func (a *Aggregate) Prune(now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	cut := now.Add(-a.retention).UnixMilli()
	n := 0
	for k, e := range a.edges {
		if e.Last < cut {
			delete(a.edges, k)
			n++
		}
	}
	if over := len(a.edges) - a.maxEdges; over > 0 {
		all := make([]*Edge, 0, len(a.edges))
		for _, e := range a.edges {
			all = append(all, e)
		}
		slices.SortFunc(all, func(x, y *Edge) int {
			return cmp.Or(cmp.Compare(x.Last, y.Last), compareKeys(x.Key, y.Key))
		})
		for _, e := range all[:over] {
			delete(a.edges, e.Key)
		}
		n += over
		a.evicted += int64(over)
	}
	if n > 0 {
		a.version++
	}
	return n
}

// Snapshot returns a copy of the edges, sorted by key, and the version it
// reflects.
func (a *Aggregate) Snapshot() ([]Edge, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Edge, 0, len(a.edges))
	for _, e := range a.edges {
		out = append(out, e.clone())
	}
	slices.SortFunc(out, func(x, y Edge) int { return compareKeys(x.Key, y.Key) })
	return out, a.version
}

// Len returns the number of edges.
func (a *Aggregate) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.edges)
}

// Merge merges edge lists (each broker's) into one, by key, sorted.
func Merge(lists ...[]Edge) []Edge {
	m := map[Key]*Edge{}
	for _, l := range lists {
		for i := range l {
			e := &l[i]
			if cur := m[e.Key]; cur != nil {
				cur.merge(e)
			} else {
				c := e.clone()
				m[e.Key] = &c
			}
		}
	}
	out := make([]Edge, 0, len(m))
	for _, e := range m {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(x, y Edge) int { return compareKeys(x.Key, y.Key) })
	return out
}

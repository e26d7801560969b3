package lineage

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)} }

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

var alice = Client{Principal: "User:alice", ClientID: "orders-app", SoftwareName: "apache-kafka-java", SoftwareVersion: "3.9.0"}

func produce(topic string, bytes, records int64) Fact {
	return Fact{Kind: Produce, Topic: topic, ProducerID: 7, Bytes: bytes, Records: records}
}

// TestConnAggregates: a connection's facts are summed per key, keep their
// first and last sight, and reach the aggregate on a drain and on close.
func TestConnAggregates(t *testing.T) {
	clk := newClock()
	agg := NewAggregate(0, 0)
	r := NewRecorder(agg, clk.now)
	c := r.Open()
	first := clk.now()
	c.Observe(alice, produce("orders", 100, 2))
	clk.add(time.Second)
	c.Observe(alice, produce("orders", 50, 1))
	c.Observe(alice, produce("payments", 10, 1))
	if agg.Len() != 0 {
		t.Fatal("facts reached the aggregate before a drain")
	}
	r.Drain()
	edges, _ := agg.Snapshot()
	if len(edges) != 2 {
		t.Fatalf("%d edges, want 2: %+v", len(edges), edges)
	}
	e := edges[0]
	want := Key{Kind: Produce, Principal: "User:alice", ClientID: "orders-app", Software: "apache-kafka-java/3.9.0", Topic: "orders"}
	if e.Key != want || e.Bytes != 150 || e.Records != 3 || e.ProducerID != 7 ||
		e.First != first.UnixMilli() || e.Last != clk.now().UnixMilli() {
		t.Fatalf("edge %+v", e)
	}
	clk.add(time.Second)
	c.Observe(alice, produce("orders", 1, 1))
	c.Close()
	c.Observe(alice, produce("orders", 1000, 1000)) // after close: ignored
	r.Drain()
	edges, _ = agg.Snapshot()
	if edges[0].Records != 4 || edges[0].Last != clk.now().UnixMilli() {
		t.Fatalf("after close: %+v", edges[0])
	}
}

// TestObserveAllocatesNothing: observing a key seen since the last drain
// allocates nothing.
func TestObserveAllocatesNothing(t *testing.T) {
	r := NewRecorder(NewAggregate(0, 0), nil)
	c := r.Open()
	f := produce("orders", 100, 2)
	c.Observe(alice, f)
	other := produce("payments", 1, 1)
	c.Observe(alice, other)
	if n := testing.AllocsPerRun(1000, func() { c.Observe(alice, f); c.Observe(alice, other) }); n != 0 {
		t.Fatalf("%v allocations per observation", n)
	}
}

// TestConnBoundsKeys: a connection holds at most maxConnKeys distinct
// facts between drains; the rest are counted as dropped.
func TestConnBoundsKeys(t *testing.T) {
	r := NewRecorder(NewAggregate(0, 0), nil)
	c := r.Open()
	for i := range maxConnKeys + 10 {
		c.Observe(alice, produce("t"+strconv.Itoa(i), 1, 1))
	}
	if d := r.Dropped(); d != 10 {
		t.Fatalf("dropped %d, want 10", d)
	}
}

// TestAggregateEvictsLeastRecentlySeen: past the cap, Prune drops the
// edges seen least recently.
func TestAggregateEvictsLeastRecentlySeen(t *testing.T) {
	agg := NewAggregate(3, time.Hour)
	base := newClock().now()
	for i, topic := range []string{"a", "b", "c", "d", "e"} {
		at := base.Add(time.Duration([]int{5, 1, 4, 2, 3}[i]) * time.Second).UnixMilli()
		agg.Add(Edge{Key: Key{Kind: Fetch, Topic: topic}, First: at, Last: at, Bytes: 1})
	}
	if n := agg.Prune(base.Add(time.Minute)); n != 2 {
		t.Fatalf("pruned %d, want 2", n)
	}
	edges, _ := agg.Snapshot()
	var got []string
	for _, e := range edges {
		got = append(got, e.Topic)
	}
	if want := []string{"a", "c", "e"}; !equalStrings(got, want) {
		t.Fatalf("kept %v, want %v (the three seen last)", got, want)
	}
}

// TestAggregateRetention: an edge unused for longer than the retention is
// dropped.
func TestAggregateRetention(t *testing.T) {
	agg := NewAggregate(0, time.Hour)
	now := newClock().now()
	agg.Add(Edge{Key: Key{Kind: Fetch, Topic: "old"}, First: 1, Last: now.Add(-61 * time.Minute).UnixMilli()})
	agg.Add(Edge{Key: Key{Kind: Fetch, Topic: "new"}, First: 1, Last: now.Add(-59 * time.Minute).UnixMilli()})
	agg.Prune(now)
	edges, _ := agg.Snapshot()
	if len(edges) != 1 || edges[0].Topic != "new" {
		t.Fatalf("after retention: %+v", edges)
	}
}

// TestWindowRolls: the window counts the last minute only, in 10-second
// buckets, and keeps at most WindowBuckets of them.
func TestWindowRolls(t *testing.T) {
	clk := newClock()
	agg := NewAggregate(0, 0)
	r := NewRecorder(agg, clk.now)
	c := r.Open()
	c.Observe(alice, produce("orders", 100, 1))
	r.Drain()
	clk.add(30 * time.Second)
	c.Observe(alice, produce("orders", 50, 1))
	r.Drain()
	edges, _ := agg.Snapshot()
	if b, n := edges[0].WindowTotals(clk.now()); b != 150 || n != 2 {
		t.Fatalf("window at 30s: %d bytes %d records, want 150, 2", b, n)
	}
	clk.add(35 * time.Second)
	c.Observe(alice, produce("orders", 10, 1))
	r.Drain()
	edges, _ = agg.Snapshot()
	if b, n := edges[0].WindowTotals(clk.now()); b != 60 || n != 2 {
		t.Fatalf("window at 65s: %d bytes %d records, want 60, 2 (the first bucket left it)", b, n)
	}
	if edges[0].Bytes != 160 || edges[0].Records != 3 {
		t.Fatalf("totals %d, %d", edges[0].Bytes, edges[0].Records)
	}
	clk.add(2 * time.Minute)
	if b, n := edges[0].WindowTotals(clk.now()); b != 0 || n != 0 {
		t.Fatalf("window two minutes later: %d, %d", b, n)
	}
	for i := range 20 {
		clk.add(BucketSeconds * time.Second)
		c.Observe(alice, produce("orders", int64(i), 1))
		r.Drain()
	}
	edges, _ = agg.Snapshot()
	if len(edges[0].Window) > WindowBuckets {
		t.Fatalf("%d buckets kept", len(edges[0].Window))
	}
}

// TestMergeSumsBrokers: the same edge seen on two brokers is summed, with
// the earliest first and latest last sight and the windows added.
func TestMergeSumsBrokers(t *testing.T) {
	now := newClock().now()
	ms := now.UnixMilli()
	k := Key{Kind: Produce, ClientID: "app", Topic: "orders"}
	one := []Edge{{Key: k, First: ms - 5000, Last: ms - 1000, Bytes: 10, Records: 1, Window: []Bucket{{Slot: slotOf(ms), Bytes: 10, Records: 1}}}}
	two := []Edge{{Key: k, First: ms - 9000, Last: ms, Bytes: 5, Records: 2, Window: []Bucket{{Slot: slotOf(ms), Bytes: 5, Records: 2}}},
		{Key: Key{Kind: Fetch, Topic: "orders"}, First: ms, Last: ms}}
	m := Merge(one, two)
	if len(m) != 2 {
		t.Fatalf("%d merged edges", len(m))
	}
	e := m[0]
	if e.Kind != Produce {
		e = m[1]
	}
	if e.First != ms-9000 || e.Last != ms || e.Bytes != 15 || e.Records != 3 {
		t.Fatalf("merged %+v", e)
	}
	if b, n := e.WindowTotals(now); b != 15 || n != 3 {
		t.Fatalf("merged window %d, %d", b, n)
	}
	if one[0].Bytes != 10 || len(one[0].Window) != 1 || one[0].Window[0].Bytes != 10 {
		t.Fatalf("Merge changed its input: %+v", one[0])
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkConnObserve is the per-partition cost a produce pays with
// lineage on: one Observe of a key seen since the last drain, each
// goroutine on its own connection as the front end calls it.
func BenchmarkConnObserve(b *testing.B) {
	r := NewRecorder(NewAggregate(0, 0), nil)
	f := produce("orders", 16<<10, 16)
	b.ReportAllocs()
	b.SetBytes(f.Bytes)
	b.RunParallel(func(pb *testing.PB) {
		c := r.Open()
		defer c.Close()
		for pb.Next() {
			c.Observe(alice, f)
		}
	})
}

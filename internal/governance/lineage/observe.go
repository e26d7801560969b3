package lineage

import (
	"sync"
	"time"
)

// Kind is what an observed fact, and the edge it adds to, records.
type Kind uint8

// The observed kinds.
const (
	Produce Kind = iota + 1 // records written to a topic
	Fetch                   // records read from a topic
	Commit                  // a group committed offsets of a topic
	Member                  // a group member subscribed to a topic
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Produce:
		return "produce"
	case Fetch:
		return "fetch"
	case Commit:
		return "commit"
	case Member:
		return "member"
	}
	return "unknown"
}

// Client is who a connection's client is.
type Client struct {
	Principal                     string // "User:alice"
	ClientID                      string
	SoftwareName, SoftwareVersion string
}

// Fact is one observation of a connection.
type Fact struct {
	Kind            Kind
	Topic           string
	Group           string
	TransactionalID string
	ProducerID      int64 // -1 when none
	Bytes, Records  int64
}

// maxConnKeys bounds the distinct facts one connection holds between two
// drains; further new ones are dropped (counted in Recorder.Dropped).
const maxConnKeys = 1024

// Recorder collects what connections observe and drains it into an
// Aggregate. Safe for concurrent use.
type Recorder struct {
	agg *Aggregate
	now func() time.Time

	mu      sync.Mutex // guards conns and dropped; never taken by Observe
	conns   map[*Conn]struct{}
	dropped int64
}

// NewRecorder returns a recorder draining into agg; now is its clock
// (time.Now when nil).
func NewRecorder(agg *Aggregate, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{agg: agg, now: now, conns: map[*Conn]struct{}{}}
}

// Open returns the observer of a new connection.
func (r *Recorder) Open() *Conn {
	c := &Conn{r: r, pending: map[connKey]*tally{}}
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	return c
}

// Drain moves every connection's facts into the aggregate.
func (r *Recorder) Drain() {
	r.mu.Lock()
	conns := make([]*Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	now := r.now()
	for _, c := range conns {
		r.agg.addAll(c.take(), now)
	}
}

// Dropped returns how many facts were dropped because a connection held
// maxConnKeys distinct ones.
func (r *Recorder) Dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// connKey is one distinct fact of a connection.
type connKey struct {
	kind                Kind
	client              Client
	topic, group, txnID string
}

// tally is what a connection observed of one connKey since the last
// drain.
type tally struct {
	bytes, records int64
	producerID     int64
	first, last    int64 // unix ms
}

// Conn observes one connection. Observe and Close may be called from two
// goroutines (the request loop and the response writer); the lock is the
// connection's own, contended only by the once-a-second drain.
type Conn struct {
	r *Recorder

	mu      sync.Mutex
	pending map[connKey]*tally
	lastKey connKey
	last    *tally // pending[lastKey]: the next fact is often of the same key
	closed  bool
}

// Observe adds one fact. It allocates only for a key new since the last
// drain.
func (c *Conn) Observe(cl Client, f Fact) {
	k := connKey{kind: f.Kind, client: cl, topic: f.Topic, group: f.Group, txnID: f.TransactionalID}
	now := c.r.now().UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	t := c.last
	if t == nil || k != c.lastKey {
		t = c.pending[k]
		if t == nil {
			if len(c.pending) >= maxConnKeys {
				c.r.mu.Lock()
				c.r.dropped++
				c.r.mu.Unlock()
				return
			}
			t = &tally{first: now, producerID: -1}
			c.pending[k] = t
		}
		c.lastKey, c.last = k, t
	}
	t.bytes += f.Bytes
	t.records += f.Records
	t.last = now
	if f.ProducerID >= 0 {
		t.producerID = f.ProducerID
	}
}

// Close ends the connection: its facts go to the aggregate now.
func (c *Conn) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.r.mu.Lock()
	delete(c.r.conns, c)
	c.r.mu.Unlock()
	c.r.agg.addAll(c.take(), c.r.now())
}

// take returns the facts since the last drain and starts afresh.
func (c *Conn) take() map[connKey]*tally {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	p := c.pending
	c.pending = make(map[connKey]*tally, len(p))
	c.last = nil
	return p
}

package lag

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Committed is one partition's committed offset.
type Committed struct {
	Topic     string
	Partition int32
	Offset    int64
	// CommitMs is when it was committed (ms since the epoch), or 0 when
	// unknown; the Tracker then uses the first evaluation that saw the
	// offset.
	CommitMs int64
}

// Group is one group's committed offsets.
type Group struct {
	ID      string
	Offsets []Committed
}

// Groups lists the groups to evaluate. A broker passes the groups it
// coordinates, so that each group is exported by one broker only.
type Groups interface {
	Committed() []Group
}

// Log is what the Tracker reads of the log, all from memory.
type Log interface {
	// Ends returns a partition's high watermark and last stable offset;
	// ok is false for an unknown topic or partition.
	Ends(topic string, partition int32) (hwm, lso int64, ok bool)
	// TimeAt returns the largest record timestamp (ms) of the indexed
	// extent holding offset; ok is false when the index has none.
	TimeAt(topic string, partition int32, offset int64) (ms int64, ok bool)
}

// Options configure a Tracker.
type Options struct {
	Log    Log
	Groups Groups
	// Interval is the time between evaluations (default 5 s).
	Interval time.Duration
	// Window is the number of evaluations the status is judged over
	// (default 10); a partition without a commit for Interval × Window is
	// STOPPED.
	Window int
	// Partitions adds per-partition series to the per-topic ones.
	Partitions bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Row is one group partition's figures at the last evaluation.
type Row struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"` // high watermark
	Stable    int64  `json:"lso"` // last stable offset
	Lag       int64  `json:"lag"` // against the high watermark
	StableLag int64  `json:"lag_stable"`
	// LagSeconds is the age of the first unconsumed record (0 when caught
	// up); HasLagSeconds is false when the index has no timestamp for it.
	LagSeconds    float64 `json:"lag_seconds"`
	HasLagSeconds bool    `json:"-"`
	CommitAge     float64 `json:"commit_age_seconds"`
	// ConsumeRate and ProduceRate are offsets per second over the window;
	// CatchUp is Lag / (ConsumeRate − ProduceRate), 0 when caught up and
	// +Inf when not catching up, NaN before two evaluations (HasRates
	// false).
	ConsumeRate float64 `json:"consume_rate"`
	ProduceRate float64 `json:"produce_rate"`
	CatchUp     float64 `json:"-"`
	HasRates    bool    `json:"-"`
	Status      Status  `json:"-"`
}

type partKey struct {
	group, topic string
	partition    int32
}

// partHistory is one group partition's recent samples.
type partHistory struct {
	window  []Sample
	seenOff int64 // offset at the previous evaluation
	seenAt  time.Time
	hasSeen bool
}

// Tracker evaluates lag on a timer and serves the result as Prometheus
// metrics. Evaluate may also be called directly (tests drive it with a
// fake clock).
type Tracker struct {
	opts Options

	mu   sync.Mutex // guards hist and rows; Evaluate holds it throughout
	hist map[partKey]*partHistory
	rows []Row
}

// New returns a Tracker; it evaluates only when Run or Evaluate is called.
func New(opts Options) *Tracker {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Window <= 0 {
		opts.Window = 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Tracker{opts: opts, hist: map[partKey]*partHistory{}}
}

// Run evaluates every Interval until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.opts.Interval)
	defer tick.Stop()
	for {
		t.Evaluate()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// StopAfter is how long a lagging partition may go without a commit before
// it is STOPPED: the window's length.
func (t *Tracker) StopAfter() time.Duration { return t.opts.Interval * time.Duration(t.opts.Window) }

// Evaluate takes one sample of every group partition, judges it, and
// returns the rows sorted by group, topic and partition. Partitions no
// longer reported (group deleted, coordinator moved) are forgotten.
func (t *Tracker) Evaluate() []Row {
	now := t.opts.Now()
	groups := t.opts.Groups.Committed()
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[partKey]bool)
	var rows []Row
	for _, g := range groups {
		for _, c := range g.Offsets {
			hwm, lso, ok := t.opts.Log.Ends(c.Topic, c.Partition)
			if !ok || c.Offset < 0 {
				continue
			}
			k := partKey{g.ID, c.Topic, c.Partition}
			seen[k] = true
			h := t.hist[k]
			if h == nil {
				h = &partHistory{}
				t.hist[k] = h
			}
			if !h.hasSeen || h.seenOff != c.Offset {
				h.seenOff, h.seenAt, h.hasSeen = c.Offset, now, true
			}
			commitAt := h.seenAt
			if c.CommitMs > 0 {
				commitAt = time.UnixMilli(c.CommitMs)
			}
			s := Sample{At: now, Offset: c.Offset, End: hwm, CommitAt: commitAt}
			h.window = append(h.window, s)
			if len(h.window) > t.opts.Window {
				h.window = append(h.window[:0], h.window[len(h.window)-t.opts.Window:]...)
			}
			rows = append(rows, t.row(g.ID, c, hwm, lso, h.window, now))
		}
	}
	for k := range t.hist {
		if !seen[k] {
			delete(t.hist, k)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	t.rows = rows
	return rows
}

func (t *Tracker) row(group string, c Committed, hwm, lso int64, w []Sample, now time.Time) Row {
	last := w[len(w)-1]
	r := Row{
		Group: group, Topic: c.Topic, Partition: c.Partition,
		Committed: c.Offset, End: hwm, Stable: lso,
		Lag: last.Lag(), StableLag: max(lso-c.Offset, 0),
		CommitAge: max(now.Sub(last.CommitAt).Seconds(), 0),
		Status:    Evaluate(w, t.opts.Window, t.StopAfter(), now),
	}
	if r.Lag == 0 {
		r.HasLagSeconds = true
	} else if ms, ok := t.opts.Log.TimeAt(c.Topic, c.Partition, c.Offset); ok && ms >= 0 {
		r.LagSeconds, r.HasLagSeconds = max(float64(now.UnixMilli()-ms)/1000, 0), true
	}
	if first := w[0]; len(w) >= 2 {
		if span := last.At.Sub(first.At).Seconds(); span > 0 {
			r.ConsumeRate = float64(last.Offset-first.Offset) / span
			r.ProduceRate = float64(last.End-first.End) / span
			r.HasRates = true
		}
	}
	switch {
	case r.Lag == 0:
		r.CatchUp = 0
	case !r.HasRates:
		r.CatchUp = math.NaN()
	case r.ConsumeRate > r.ProduceRate:
		r.CatchUp = float64(r.Lag) / (r.ConsumeRate - r.ProduceRate)
	default:
		r.CatchUp = math.Inf(1)
	}
	return r
}

// Rows returns the figures of the last evaluation.
func (t *Tracker) Rows() []Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Row(nil), t.rows...)
}

// Register adds the Tracker's metrics to reg.
func (t *Tracker) Register(reg prometheus.Registerer) error {
	return reg.Register(collector{t})
}

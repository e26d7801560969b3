package lag

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// window builds samples one second apart from (offset, end, commit second)
// triples.
func window(points ...[3]int64) []Sample {
	var w []Sample
	for i, p := range points {
		w = append(w, Sample{At: t0.Add(time.Duration(i) * time.Second), Offset: p[0], End: p[1], CommitAt: t0.Add(time.Duration(p[2]) * time.Second)})
	}
	return w
}

func TestEvaluate(t *testing.T) {
	const size = 4
	stop := 4 * time.Second
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	cases := []struct {
		name string
		w    []Sample
		now  time.Time
		want Status
	}{
		{"empty", nil, at(0), StatusOK},
		{"caught up once in the window", window([3]int64{10, 20, 0}, [3]int64{20, 20, 1}, [3]int64{20, 30, 2}, [3]int64{20, 40, 3}), at(3), StatusOK},
		{"catching up", window([3]int64{10, 50, 0}, [3]int64{20, 55, 1}, [3]int64{30, 58, 2}, [3]int64{40, 60, 3}), at(3), StatusOK},
		{"lag grows while committing", window([3]int64{10, 20, 0}, [3]int64{12, 25, 1}, [3]int64{14, 30, 2}, [3]int64{16, 35, 3}), at(3), StatusWarn},
		{"lag grows, window not full yet", window([3]int64{10, 20, 0}, [3]int64{12, 25, 1}), at(1), StatusOK},
		{"same offset recommitted, lag kept", window([3]int64{10, 20, 0}, [3]int64{10, 20, 1}, [3]int64{10, 22, 2}, [3]int64{10, 22, 3}), at(3), StatusStalled},
		{"same offset, no new commit, not yet stopped", window([3]int64{10, 20, 0}, [3]int64{10, 20, 0}, [3]int64{10, 20, 0}, [3]int64{10, 20, 0}), at(3), StatusOK},
		{"no commit for longer than the window", window([3]int64{10, 20, 0}, [3]int64{10, 20, 0}, [3]int64{10, 20, 0}, [3]int64{10, 20, 0}), at(5), StatusStopped},
		{"no commit but caught up", window([3]int64{20, 20, 0}, [3]int64{20, 20, 0}), at(60), StatusOK},
		{"offset went backwards", window([3]int64{10, 20, 0}, [3]int64{5, 20, 1}, [3]int64{6, 20, 2}), at(2), StatusRewind},
		{"stopped after a rewind is still a rewind", window([3]int64{10, 20, 0}, [3]int64{5, 20, 0}), at(60), StatusRewind},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Evaluate(c.w, size, stop, c.now); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

// fakeLog is one topic's partitions: end offsets and a timestamp per
// extent (extents of one record each unless span says otherwise).
type fakeLog struct {
	hwm, lso map[int32]int64
	ts       func(p int32, off int64) int64
}

func (f *fakeLog) Ends(topic string, p int32) (int64, int64, bool) {
	h, ok := f.hwm[p]
	return h, f.lso[p], ok && topic == "t"
}

func (f *fakeLog) TimeAt(topic string, p int32, off int64) (int64, bool) {
	if off >= f.hwm[p] {
		return 0, false
	}
	return f.ts(p, off), true
}

type fakeGroups struct{ groups []Group }

func (f *fakeGroups) Committed() []Group { return f.groups }

func TestTrackerFiguresAndStatus(t *testing.T) {
	now := t0
	base := t0.Add(-100 * time.Second).UnixMilli()
	log := &fakeLog{hwm: map[int32]int64{0: 100, 1: 50}, lso: map[int32]int64{0: 90, 1: 50},
		ts: func(p int32, off int64) int64 { return base + off*1000 }} // record n at base + n s
	grp := &fakeGroups{groups: []Group{{ID: "g", Offsets: []Committed{
		{Topic: "t", Partition: 0, Offset: 40, CommitMs: t0.UnixMilli()},
		{Topic: "t", Partition: 1, Offset: 50, CommitMs: t0.UnixMilli()},
	}}}}
	tr := New(Options{Log: log, Groups: grp, Interval: time.Second, Window: 3, Partitions: true, Now: func() time.Time { return now }})
	reg := prometheus.NewRegistry()
	if err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	rows := tr.Evaluate()
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	// Offset 40 holds the record of base+40 s = now−60 s.
	if r.Lag != 60 || r.StableLag != 50 || !r.HasLagSeconds || r.LagSeconds != 60 || r.CommitAge != 0 || r.Status != StatusOK {
		t.Fatalf("partition 0: %+v", r)
	}
	if !math.IsNaN(r.CatchUp) {
		t.Fatalf("catch-up before two evaluations: %v", r.CatchUp)
	}
	if r := rows[1]; r.Lag != 0 || r.LagSeconds != 0 || !r.HasLagSeconds || r.CatchUp != 0 {
		t.Fatalf("partition 1 caught up: %+v", r)
	}

	// The consumer moves 10 offsets a second on partition 0 while 2 a
	// second are produced: 48 behind after one second, 6 s to catch up.
	now = now.Add(time.Second)
	log.hwm[0], log.lso[0] = 102, 102
	grp.groups[0].Offsets[0] = Committed{Topic: "t", Partition: 0, Offset: 50, CommitMs: now.UnixMilli()}
	rows = tr.Evaluate()
	if r := rows[0]; r.ConsumeRate != 10 || r.ProduceRate != 2 || r.CatchUp != 52.0/8 {
		t.Fatalf("rates: %+v", r)
	}

	// The consumer stops: after the window (3 s) without a commit, STOPPED.
	for i := 0; i < 4; i++ {
		now = now.Add(time.Second)
		rows = tr.Evaluate()
	}
	if r := rows[0]; r.Status != StatusStopped || r.CommitAge != 4 || !math.IsInf(r.CatchUp, 1) {
		t.Fatalf("stopped consumer: %+v", r)
	}
	want := `
# HELP runnel_group_lag_offsets Consumer group lag in offsets against the high watermark, max or sum over the topic's partitions (agg).
# TYPE runnel_group_lag_offsets gauge
runnel_group_lag_offsets{agg="max",group="g",topic="t"} 52
runnel_group_lag_offsets{agg="sum",group="g",topic="t"} 52
# HELP runnel_group_lag_seconds Largest age over the topic's partitions of the first record the group has not consumed (0 when caught up), from the partition index's batch timestamps.
# TYPE runnel_group_lag_seconds gauge
runnel_group_lag_seconds{group="g",topic="t"} 55
# HELP runnel_group_status Worst status over the topic's partitions after Burrow's rules: 0 OK, 1 WARN, 2 REWIND, 3 STALLED, 4 STOPPED.
# TYPE runnel_group_status gauge
runnel_group_status{group="g",topic="t"} 4
# HELP runnel_group_partition_status Partition status after Burrow's rules: 0 OK, 1 WARN, 2 REWIND, 3 STALLED, 4 STOPPED.
# TYPE runnel_group_partition_status gauge
runnel_group_partition_status{group="g",partition="0",topic="t"} 4
runnel_group_partition_status{group="g",partition="1",topic="t"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "runnel_group_lag_offsets", "runnel_group_lag_seconds", "runnel_group_status", "runnel_group_partition_status"); err != nil {
		t.Fatal(err)
	}

	// The group goes away: its series go with it.
	grp.groups = nil
	tr.Evaluate()
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("series after the group left: %d, %v", n, err)
	}
}

func TestTrackerCommitTimeUnknown(t *testing.T) {
	// A transactional commit carries no time: the first evaluation that
	// saw the offset stands in for it.
	now := t0
	log := &fakeLog{hwm: map[int32]int64{0: 10}, lso: map[int32]int64{0: 10}, ts: func(int32, int64) int64 { return t0.UnixMilli() }}
	grp := &fakeGroups{groups: []Group{{ID: "g", Offsets: []Committed{{Topic: "t", Partition: 0, Offset: 5}}}}}
	tr := New(Options{Log: log, Groups: grp, Interval: time.Second, Window: 2, Now: func() time.Time { return now }})
	tr.Evaluate()
	now = now.Add(1500 * time.Millisecond)
	if r := tr.Evaluate()[0]; r.CommitAge != 1.5 || r.Status != StatusOK {
		t.Fatalf("%+v", r)
	}
	now = now.Add(time.Second)
	if r := tr.Evaluate()[0]; r.Status != StatusStopped {
		t.Fatalf("%+v", r)
	}
}

// BenchmarkTrackerEvaluate measures one evaluation of 100 groups × 100
// partitions (10,000 rows), the work a coordinator does every
// lag-interval, to bound what lag tracking costs a broker.
func BenchmarkTrackerEvaluate(b *testing.B) {
	const groups, partitions = 100, 100
	hwm, lso := map[int32]int64{}, map[int32]int64{}
	for p := range int32(partitions) {
		hwm[p], lso[p] = 1_000_000, 1_000_000
	}
	base := t0.Add(-time.Hour).UnixMilli()
	log := &fakeLog{hwm: hwm, lso: lso, ts: func(_ int32, off int64) int64 { return base + off }}
	var gs fakeGroups
	for g := range groups {
		grp := Group{ID: fmt.Sprintf("g%03d", g)}
		for p := range int32(partitions) {
			grp.Offsets = append(grp.Offsets, Committed{Topic: "t", Partition: p, Offset: 500_000, CommitMs: t0.UnixMilli()})
		}
		gs.groups = append(gs.groups, grp)
	}
	now := t0
	tr := New(Options{Log: log, Groups: &gs, Now: func() time.Time { return now }})
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(5 * time.Second)
		if rows := tr.Evaluate(); len(rows) != groups*partitions {
			b.Fatalf("%d rows", len(rows))
		}
	}
}

package cli

import (
	"strings"
	"testing"
	"time"
)

func TestRecordInterval(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		size, n int
		want    time.Duration
	}{
		{"unlimited", 0, 1024, 1, 0},
		{"1 MB/s of 1000-byte records", 1, 1000, 1, time.Millisecond},
		{"split over producers", 1, 1000, 4, 4 * time.Millisecond},
		{"empty records count as one byte", 1, 0, 1, time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recordInterval(tt.rate, tt.size, tt.n); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFlowStatsReports(t *testing.T) {
	s := newFlowStats(true)
	start := time.Now()
	for i := 1; i <= 100; i++ {
		s.add(1000, time.Duration(i)*time.Millisecond, true)
	}
	s.fail(errMismatch)
	iv := s.takeInterval(time.Second)
	if iv.Records != 100 || iv.Bytes != 100000 || iv.RecordsPerSec != 100 || iv.MBPerSec != 0.1 {
		t.Fatalf("interval = %+v", iv)
	}
	if iv.Latency == nil || iv.Latency.Max != 100 || iv.Latency.P50 < 49 || iv.Latency.P50 > 51 {
		t.Fatalf("interval latency = %+v", iv.Latency)
	}
	if again := s.takeInterval(time.Second); again.Records != 0 || again.Latency.Count != 0 {
		t.Fatalf("interval not reset: %+v", again)
	}
	total := s.total(start, time.Hour)
	if total.Records != 100 || total.Errors != 1 || total.Latency.Count != 100 {
		t.Fatalf("total = %+v", total)
	}
	if total.RecordsPerSec < 1000 {
		t.Fatalf("total rate should be over the time until the last record, got %.1f/s", total.RecordsPerSec)
	}
	noLat := newFlowStats(false)
	noLat.add(10, 0, false)
	if r := noLat.total(start, time.Second); r.Latency != nil {
		t.Fatalf("latency reported for a flow without latency: %+v", r.Latency)
	}
}

func TestLagClock(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type obs struct {
		ms             int
		done           bool
		acked, receivd int64
	}
	tests := []struct {
		name       string
		obs        []obs
		wantNil    bool
		atStop     int64
		catchUpSec float64 // -1: not caught up
		left       int64
	}{
		{name: "producers still running", obs: []obs{{0, false, 100, 50}}, wantNil: true},
		{name: "kept up", obs: []obs{{0, false, 100, 100}, {100, true, 200, 200}}, atStop: 0, catchUpSec: 0},
		{name: "behind, then caught up", obs: []obs{{0, false, 100, 40}, {100, true, 1000, 400}, {600, true, 1000, 900}, {1100, true, 1000, 1000}},
			atStop: 600, catchUpSec: 1.0},
		{name: "never caught up", obs: []obs{{100, true, 1000, 10}, {15100, true, 1000, 700}}, atStop: 990, catchUpSec: -1, left: 300},
		{name: "caught up stays caught up", obs: []obs{{100, true, 10, 0}, {200, true, 10, 10}, {900, true, 10, 10}}, atStop: 10, catchUpSec: 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l lagClock
			for _, o := range tt.obs {
				l.observe(at(o.ms), o.done, o.acked, o.receivd)
			}
			r := l.report()
			if tt.wantNil {
				if r != nil {
					t.Fatalf("report before the producers stopped: %+v", r)
				}
				return
			}
			if r == nil || r.AtProducerStop != tt.atStop || r.NotConsumed != tt.left {
				t.Fatalf("report %+v, want %d behind at stop and %d left", r, tt.atStop, tt.left)
			}
			switch {
			case tt.catchUpSec < 0 && r.CatchUpSec != nil:
				t.Fatalf("caught up in %v, want never", *r.CatchUpSec)
			case tt.catchUpSec >= 0 && (r.CatchUpSec == nil || *r.CatchUpSec != tt.catchUpSec):
				t.Fatalf("catch-up %v, want %v", r.CatchUpSec, tt.catchUpSec)
			}
		})
	}
}

func TestBenchShareValidate(t *testing.T) {
	base := func() (*benchOptions, *benchShareOptions) {
		return &benchOptions{topic: "b", recordSize: 100, compression: "none"},
			&benchShareOptions{records: 10, consumers: 8, timeout: time.Minute, maxRecords: 500}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*benchOptions, *benchShareOptions)
		errHas string
	}{
		{"ok", func(*benchOptions, *benchShareOptions) {}, ""},
		{"no records", func(_ *benchOptions, s *benchShareOptions) { s.records = 0 }, "--records 0"},
		{"no consumers", func(_ *benchOptions, s *benchShareOptions) { s.consumers = 0 }, "--consumers 0"},
		{"no timeout", func(_ *benchOptions, s *benchShareOptions) { s.timeout = 0 }, "--timeout"},
		{"no share max records", func(_ *benchOptions, s *benchShareOptions) { s.maxRecords = 0 }, "--share-max-records 0"},
		{"no topic", func(o *benchOptions, _ *benchShareOptions) { o.topic = "" }, "--topic"},
		{"bad compression", func(o *benchOptions, _ *benchShareOptions) { o.compression = "brotli" }, "brotli"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, so := base()
			tc.edit(o, so)
			err := so.validate(o)
			if tc.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.errHas)
			}
		})
	}
}

func TestWriteShareBenchSummary(t *testing.T) {
	var b strings.Builder
	writeShareBenchSummary(&b, shareBenchResult{Records: 100, RecordSize: 10, Groups: []shareBenchSide{
		{Kind: "share", Consumers: 2, Partitions: 1, Records: 100, ElapsedSec: 2, JoinSec: 0.5, RecordsPS: 50, MBPS: 0.0005, PerConsumer: []int64{40, 60}, Redelivered: 3},
		{Kind: "consumer", Consumers: 2, Partitions: 2, Records: 90, PerConsumer: []int64{90, 0}, Error: "not every record was read within 1m0s"},
	}})
	out := b.String()
	for _, want := range []string{
		"groups run one after the other",
		"share    group, 2 consumers on 1 partition(s): 100 records in 2.00s (group formed in 0.50s), 50 records/s, 0.00 MB/s; per consumer 40..60; 3 redeliveries",
		"consumer group, 2 consumers on 2 partition(s): 90 records",
		"per consumer 0..90; error: not every record was read within 1m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

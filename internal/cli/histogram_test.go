package cli

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	// Every bucket's range must be contiguous with the next and contain the
	// values that map to it.
	prevHi := int64(-1)
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, prevHi+1)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: bucketOf(lo)=%d bucketOf(hi)=%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if hi == math.MaxInt64 {
			if i != histBuckets-1 {
				t.Fatalf("bucket %d reaches MaxInt64 before the last bucket", i)
			}
			return
		}
		prevHi = hi
	}
	t.Fatalf("last bucket ends at %d, want MaxInt64", prevHi)
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []int64
	}{
		{"small exact", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"uniform", uniform(10000, 1, 1_000_000)},
		{"wide", uniform(10000, 1, 10_000_000_000)},
		{"one value", []int64{123456}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistogram()
			for _, v := range tt.values {
				h.Record(v)
			}
			sorted := append([]int64(nil), tt.values...)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
			for _, q := range []float64{0, 0.5, 0.95, 0.99, 1} {
				rank := int(math.Ceil(q * float64(len(sorted))))
				rank = max(rank, 1)
				want := sorted[rank-1]
				got := h.Quantile(q)
				if relErr(got, want) > 1.0/histHalf {
					t.Errorf("q%.2f = %d, want %d (±%.1f%%)", q, got, want, 100.0/histHalf)
				}
			}
			if h.Max() != sorted[len(sorted)-1] || h.Min() != sorted[0] {
				t.Errorf("min/max = %d/%d, want %d/%d", h.Min(), h.Max(), sorted[0], sorted[len(sorted)-1])
			}
			if h.Count() != uint64(len(sorted)) {
				t.Errorf("count = %d, want %d", h.Count(), len(sorted))
			}
		})
	}
}

func TestHistogramMergeResetEmpty(t *testing.T) {
	a, b := newHistogram(), newHistogram()
	if a.Quantile(0.5) != 0 || a.Min() != 0 || a.Max() != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram should answer zeros")
	}
	for i := int64(1); i <= 100; i++ {
		a.Record(i)
		b.Record(i + 100)
	}
	b.Record(-5) // counts as 0
	a.Merge(b)
	if a.Count() != 201 || a.Min() != 0 || a.Max() != 200 {
		t.Fatalf("merged count/min/max = %d/%d/%d", a.Count(), a.Min(), a.Max())
	}
	if got := a.Quantile(0.5); got != 100 {
		t.Fatalf("merged median = %d, want 100", got)
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.99) != 0 {
		t.Fatal("reset did not empty the histogram")
	}
}

func uniform(n int, lo, hi int64) []int64 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]int64, n)
	for i := range out {
		out[i] = lo + r.Int64N(hi-lo)
	}
	return out
}

func relErr(got, want int64) float64 {
	if want == 0 {
		return math.Abs(float64(got))
	}
	return math.Abs(float64(got-want)) / float64(want)
}

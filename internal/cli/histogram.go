package cli

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2*histHalf are counted exactly; above,
// every power-of-two range is split into histHalf equal buckets, so a
// bucket's width is at most 1/histHalf of its values (relative error
// below 1.6% with histHalf = 64), over the whole int64 range in fixed
// memory. This is the idea behind HdrHistogram, in a few lines.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // exact values below this
	histHalf    = histSub / 2
	histBuckets = histSub + (63-histSubBits)*histHalf // int64 values have at most 63 bits
)

// histogram records non-negative int64 values (latencies in nanoseconds)
// and answers quantiles. It is not safe for concurrent use.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64
	min, max int64
}

func newHistogram() *histogram { return &histogram{min: math.MaxInt64} }

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < histSub {
		return int(u)
	}
	shift := bits.Len64(u) - histSubBits // >= 1
	top := u >> uint(shift)              // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(top-histHalf)
}

// bucketRange returns the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	i -= histSub
	shift := i/histHalf + 1
	top := uint64(i%histHalf + histHalf)
	lo64 := top << uint(shift)
	hi64 := lo64 + (uint64(1) << uint(shift)) - 1
	if hi64 > math.MaxInt64 {
		hi64 = math.MaxInt64
	}
	return int64(lo64), int64(hi64)
}

// Record adds one value; negative values count as 0.
func (h *histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// RecordDuration adds d in nanoseconds.
func (h *histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Count returns the number of recorded values.
func (h *histogram) Count() uint64 { return h.n }

// Min returns the smallest value, or 0 when empty.
func (h *histogram) Min() int64 {
	if h.n == 0 {
		return 0
	}
	return h.min
}

// Max returns the largest value, or 0 when empty.
func (h *histogram) Max() int64 { return h.max }

// Mean returns the average value, or 0 when empty.
func (h *histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q in [0, 1]: the upper end of the
// bucket holding the ceil(q*n)-th value, capped at the recorded maximum.
// It returns 0 when empty.
func (h *histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// Merge adds every value of o to h.
func (h *histogram) Merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Reset empties h.
func (h *histogram) Reset() { *h = histogram{min: math.MaxInt64} }

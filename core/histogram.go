package core

import (
	"sync/atomic"
	"time"
)

// durationBounds are Prometheus's default buckets as durations, so that an
// observation needs no float arithmetic.
var durationBounds = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// DurationBuckets returns the upper bounds, in seconds, of every duration
// histogram in this package (Prometheus's default buckets).
func DurationBuckets() []float64 {
	b := make([]float64, len(durationBounds))
	for i, d := range durationBounds {
		b[i] = d.Seconds()
	}
	return b
}

// histogram counts durations in fixed buckets with atomic counters: no lock
// and no allocation per observation. The zero value is ready to use.
type histogram struct {
	counts [len(durationBounds) + 1]atomic.Uint64 // per bucket; the last is +Inf
	sum    atomic.Int64                           // nanoseconds
}

// Observe adds one duration (negative counts as zero).
func (h *histogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(durationBounds) && d > durationBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// reset zeroes the histogram; callers serialise it with Observe.
func (h *histogram) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.sum.Store(0)
}

// Snapshot returns the histogram's current counts.
func (h *histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	var c uint64
	for i := range durationBounds {
		c += h.counts[i].Load()
		s.Buckets[i] = c
	}
	s.Count = c + h.counts[len(durationBounds)].Load()
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// HistogramSnapshot is a duration histogram at one moment, shaped as a
// Prometheus histogram wants it.
type HistogramSnapshot struct {
	// Count is how many durations were observed.
	Count uint64
	// Sum is their total.
	Sum time.Duration
	// Buckets holds cumulative counts: Buckets[i] is how many lasted at most
	// DurationBuckets()[i] seconds. Longer ones are only in Count.
	Buckets [len(durationBounds)]uint64
}

func (s *HistogramSnapshot) add(o HistogramSnapshot) {
	s.Count += o.Count
	s.Sum += o.Sum
	for i := range s.Buckets {
		s.Buckets[i] += o.Buckets[i]
	}
}

package core

import (
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{0, 5 * time.Millisecond, 6 * time.Millisecond, time.Second, time.Minute, -time.Second} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if s.Count != 6 || s.Sum != 5*time.Millisecond+6*time.Millisecond+time.Second+time.Minute {
		t.Fatalf("count %d sum %s", s.Count, s.Sum)
	}
	// Cumulative: <=5ms holds 0, 5ms and the negative one.
	if s.Buckets[0] != 3 || s.Buckets[1] != 4 || s.Buckets[7] != 5 || s.Buckets[10] != 5 {
		t.Fatalf("buckets %v", s.Buckets)
	}
	if b := DurationBuckets(); len(b) != len(s.Buckets) || b[0] != 0.005 || b[len(b)-1] != 10 {
		t.Fatalf("bounds %v", b)
	}
}

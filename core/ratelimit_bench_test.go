package core

import "testing"

// BenchmarkRateLimitAllow takes a token from a limiter that is never
// reached, from every CPU at once.
func BenchmarkRateLimitAllow(b *testing.B) {
	l, err := NewRateLimiter(RateLimitConfig{Name: "bench", Rate: 1e9, Burst: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Allow(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRateLimitRefuse is a limiter whose bucket is always empty: every
// call is refused.
func BenchmarkRateLimitRefuse(b *testing.B) {
	l, err := NewRateLimiter(RateLimitConfig{Name: "bench", Rate: 0.000001, Burst: 1})
	if err != nil {
		b.Fatal(err)
	}
	_ = l.Allow()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.Allow() == nil {
				b.Error("allowed")
				return
			}
		}
	})
}

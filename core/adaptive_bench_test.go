package core

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAdaptiveLimiterPermit admits and records a call from every CPU
// at once, with a limit never reached: the cost every call pays.
func BenchmarkAdaptiveLimiterPermit(b *testing.B) {
	l, err := NewAdaptiveLimiter(AdaptiveConfig{Name: "bench", MinLimit: 1000, MaxLimit: 1000})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := l.Acquire(ctx, 0)
			if err != nil {
				b.Error(err)
				return
			}
			p.Done(Success, time.Millisecond)
		}
	})
}

// BenchmarkAdaptiveLimiterShed refuses calls of a limiter at its limit:
// the path every call takes under overload.
func BenchmarkAdaptiveLimiterShed(b *testing.B) {
	l, err := NewAdaptiveLimiter(AdaptiveConfig{Name: "bench", MinLimit: 1, MaxLimit: 1})
	if err != nil {
		b.Fatal(err)
	}
	held, _ := l.TryAcquire(0)
	defer held.Done(Ignored, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.TryAcquire(0); err == nil {
				b.Error("admitted over the limit")
				return
			}
		}
	})
}

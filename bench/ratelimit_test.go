package bench

import (
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark/core"
)

// BenchmarkRateLimit takes a permit from a rate limiter whose limit is
// never reached, from every CPU at once: Bulwark's Allow, failsafe-go's
// smooth limiter's TryAcquirePermit and golang.org/x/time/rate's Allow.
func BenchmarkRateLimit(b *testing.B) {
	b.Run("bulwark", func(b *testing.B) {
		l, err := core.NewRateLimiter(core.RateLimitConfig{Name: "bench", Rate: 1e9, Burst: 1e9})
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
	})
	b.Run("failsafe-go", func(b *testing.B) {
		// One permit per nanosecond: the fastest rate it can be given.
		l := ratelimiter.NewSmoothWithMaxRate[any](time.Nanosecond)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !l.TryAcquirePermit() {
					b.Error("refused")
					return
				}
			}
		})
	})
	b.Run("x-time-rate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Limit(1e9), 1e9)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !l.Allow() {
					b.Error("refused")
					return
				}
			}
		})
	})
}

// BenchmarkRateLimitRefused is a limiter whose bucket stays empty, so that
// every call is refused, as during a flood.
func BenchmarkRateLimitRefused(b *testing.B) {
	b.Run("bulwark", func(b *testing.B) {
		l, err := core.NewRateLimiter(core.RateLimitConfig{Name: "bench", Rate: 0.001, Burst: 1})
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
	})
	b.Run("failsafe-go", func(b *testing.B) {
		l := ratelimiter.NewSmooth[any](1, 1000*time.Second)
		l.TryAcquirePermit()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if l.TryAcquirePermit() {
					b.Error("allowed")
					return
				}
			}
		})
	})
	b.Run("x-time-rate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Limit(0.001), 1)
		l.Allow()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if l.Allow() {
					b.Error("allowed")
					return
				}
			}
		})
	})
}

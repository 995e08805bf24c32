package bench

import (
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
)

// BenchmarkAdaptiveLimiter admits a call and records its end, from every
// CPU at once, with a limit the load never reaches: both limiters adapt
// as usual, above a floor of 100 that a benchmark's few goroutines never
// fill.
//
// failsafe-go reads time.Now in TryAcquirePermit and in Record. Bulwark
// takes the latency from its caller, which has it already (the HTTP
// middleware and Transport time every call once, for the breaker, the SLO
// and the metrics too): that is the "bulwark" row. "bulwark-timed" adds
// the two time.Now readings a caller would make only for the limiter.
func BenchmarkAdaptiveLimiter(b *testing.B) {
	newBulwark := func(b *testing.B) *core.AdaptiveLimiter {
		l, err := core.NewAdaptiveLimiter(core.AdaptiveConfig{Name: "bench", MinLimit: 100})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	b.Run("bulwark", func(b *testing.B) {
		l := newBulwark(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, err := l.TryAcquire(0)
				if err != nil {
					b.Error(err)
					return
				}
				p.Done(core.Success, time.Millisecond)
			}
		})
	})
	b.Run("bulwark-timed", func(b *testing.B) {
		l := newBulwark(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				start := time.Now()
				p, err := l.TryAcquire(0)
				if err != nil {
					b.Error(err)
					return
				}
				p.Done(core.Success, time.Since(start))
			}
		})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		l := adaptivelimiter.NewBuilder[any]().WithLimits(100, 200, 100).Build()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, ok := l.TryAcquirePermit()
				if !ok {
					b.Error("limit exceeded")
					return
				}
				p.Record()
			}
		})
	})
}

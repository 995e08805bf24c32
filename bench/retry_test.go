package bench

import (
	"context"
	"testing"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/bulwark-go/bulwark/core"
)

// BenchmarkRetry measures a retry policy around a call that succeeds on its
// first attempt, the common case, alone and composed with a circuit
// breaker (the seed's circuit-breaker-aware retry). Each policy is built
// once, outside the loop.
func BenchmarkRetry(b *testing.B) {
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	okAny := func() error { return nil }

	b.Run("bulwark", func(b *testing.B) {
		r, err := core.NewRetry(core.RetryConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Do(ctx, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe-go", func(b *testing.B) {
		exec := failsafe.With(retrypolicy.NewWithDefaults[any]())
		b.ReportAllocs()
		for b.Loop() {
			if err := exec.Run(okAny); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bulwark+breaker", func(b *testing.B) {
		br, err := core.NewBreaker(core.BreakerConfig{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		r, err := core.NewRetry(core.RetryConfig{Breaker: br})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Do(ctx, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe-go+breaker", func(b *testing.B) {
		exec := failsafe.With[any](retrypolicy.NewWithDefaults[any](), circuitbreaker.NewWithDefaults[any]())
		b.ReportAllocs()
		for b.Loop() {
			if err := exec.Run(okAny); err != nil {
				b.Fatal(err)
			}
		}
	})
}

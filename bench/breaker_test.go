package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/afex/hystrix-go/hystrix"
	"github.com/bulwark-go/bulwark/core"
	"github.com/eapache/go-resiliency/breaker"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

var errBoom = errors.New("boom")

func parallel(b *testing.B, op func() bool) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !op() {
				b.Error("unexpected outcome")
				return
			}
		}
	})
}

func bulwarkBreaker(b *testing.B) *core.Breaker {
	br, err := core.NewBreaker(core.BreakerConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return br
}

func gobreakerTwoStep(open bool) *gobreaker.TwoStepCircuitBreaker[any] {
	cb := gobreaker.NewTwoStepCircuitBreaker[any](gobreaker.Settings{Name: "bench", Timeout: time.Hour})
	if open {
		for range 10 {
			if done, err := cb.Allow(); err == nil {
				done(errBoom)
			}
		}
	}
	return cb
}

func resiliencyBreaker(open bool) *breaker.Breaker {
	br := breaker.New(5, 2, time.Hour)
	if open {
		for range 10 {
			_ = br.Run(func() error { return errBoom })
		}
	}
	return br
}

var hystrixSeq int

// hystrixCircuit configures a fresh command (hystrix keeps a global registry).
func hystrixCircuit(b *testing.B, open bool) (string, *hystrix.CircuitBreaker) {
	hystrixSeq++
	name := "bench-" + time.Now().Format("150405.000000") + string(rune('a'+hystrixSeq%26))
	hystrix.ConfigureCommand(name, hystrix.CommandConfig{
		Timeout: 10000, MaxConcurrentRequests: 100000,
		RequestVolumeThreshold: 1, ErrorPercentThreshold: 1, SleepWindow: 3600_000,
	})
	c, _, err := hystrix.GetCircuit(name)
	if err != nil {
		b.Fatal(err)
	}
	if open {
		for range 50 {
			_ = c.ReportEvent([]string{"failure"}, time.Now(), 0)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !c.IsOpen() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // hystrix aggregates metrics on its own goroutine
		}
		if !c.IsOpen() {
			b.Fatal("hystrix circuit did not open")
		}
	}
	return name, c
}

// BenchmarkAllowRecord: a closed breaker, a successful call reported
// through each library's two-step (permit) API.
func BenchmarkAllowRecord(b *testing.B) {
	b.Run("bulwark", func(b *testing.B) {
		br := bulwarkBreaker(b)
		parallel(b, func() bool {
			p, err := br.Allow()
			p.Report(core.Success, 0)
			return err == nil
		})
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreakerTwoStep(false)
		parallel(b, func() bool {
			done, err := cb.Allow()
			if err != nil {
				return false
			}
			done(nil)
			return true
		})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		cb := circuitbreaker.NewWithDefaults[any]()
		parallel(b, func() bool {
			if !cb.TryAcquirePermit() {
				return false
			}
			cb.RecordSuccess()
			return true
		})
	})
	b.Run("go-resiliency", func(b *testing.B) { // no permit API: Run is the closest
		br := resiliencyBreaker(false)
		parallel(b, func() bool { return br.Run(func() error { return nil }) == nil })
	})
	b.Run("hystrix-go", func(b *testing.B) {
		_, c := hystrixCircuit(b, false)
		parallel(b, func() bool {
			if !c.AllowRequest() {
				return false
			}
			// hystrix drops metrics (with an error) when its channel is full.
			_ = c.ReportEvent([]string{"success"}, time.Now(), 0)
			return true
		})
	})
}

// BenchmarkRejectOpen: an open breaker refusing a call.
func BenchmarkRejectOpen(b *testing.B) {
	b.Run("bulwark", func(b *testing.B) {
		br := bulwarkBreaker(b)
		br.Trip("bench")
		parallel(b, func() bool { _, err := br.Allow(); return err != nil })
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreakerTwoStep(true)
		parallel(b, func() bool { _, err := cb.Allow(); return err != nil })
	})
	b.Run("failsafe-go", func(b *testing.B) {
		cb := circuitbreaker.NewWithDefaults[any]()
		cb.Open()
		parallel(b, func() bool { return !cb.TryAcquirePermit() })
	})
	b.Run("go-resiliency", func(b *testing.B) {
		br := resiliencyBreaker(true)
		parallel(b, func() bool { return br.Run(func() error { return nil }) != nil })
	})
	b.Run("hystrix-go", func(b *testing.B) {
		_, c := hystrixCircuit(b, true)
		parallel(b, func() bool { return !c.AllowRequest() })
	})
}

// BenchmarkExecute: a trivial function run through each library's
// wrap-a-function API.
func BenchmarkExecute(b *testing.B) {
	b.Run("bulwark", func(b *testing.B) {
		br := bulwarkBreaker(b)
		ctx := context.Background()
		fn := func(context.Context) error { return nil }
		parallel(b, func() bool { return br.Execute(ctx, fn) == nil })
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Name: "bench"})
		fn := func() (any, error) { return nil, nil }
		parallel(b, func() bool { _, err := cb.Execute(fn); return err == nil })
	})
	b.Run("failsafe-go", func(b *testing.B) {
		exec := failsafe.With[any](circuitbreaker.NewWithDefaults[any]())
		fn := func() error { return nil }
		parallel(b, func() bool { return exec.Run(fn) == nil })
	})
	b.Run("go-resiliency", func(b *testing.B) {
		br := resiliencyBreaker(false)
		fn := func() error { return nil }
		parallel(b, func() bool { return br.Run(fn) == nil })
	})
	b.Run("hystrix-go", func(b *testing.B) {
		name, _ := hystrixCircuit(b, false)
		fn := func() error { return nil }
		parallel(b, func() bool { return hystrix.Do(name, fn, nil) == nil })
	})
}

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/bulwark-go/bulwark/core"
)

// BenchmarkDeadline runs a trivial function under a 1s timeout, from every
// CPU at once: a Bulwark Manager's WithTimeout, context.WithTimeout, and
// failsafe-go's timeout policy. The "-done" runs also ask the context for
// its Done channel, as a call that selects on it does (an HTTP client, a
// database driver).
func BenchmarkDeadline(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	parent := context.Background()
	trivial := func(ctx context.Context) error { return ctx.Err() }
	trivialDone := func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		default:
			return nil
		}
	}

	b.Run("bulwark", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx := m.WithTimeout(parent, time.Second)
				err := trivial(ctx)
				core.CancelTimeout(ctx)
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("context", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, cancel := context.WithTimeout(parent, time.Second)
				err := trivial(ctx)
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		exec := failsafe.With(timeout.New[any](time.Second))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := exec.RunWithExecution(func(e failsafe.Execution[any]) error { return trivial(e.Context()) }); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("bulwark-done", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx := m.WithTimeout(parent, time.Second)
				err := trivialDone(ctx)
				core.CancelTimeout(ctx)
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("context-done", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, cancel := context.WithTimeout(parent, time.Second)
				err := trivialDone(ctx)
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("failsafe-go-done", func(b *testing.B) {
		exec := failsafe.With(timeout.New[any](time.Second))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := exec.RunWithExecution(func(e failsafe.Execution[any]) error { return trivialDone(e.Context()) }); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

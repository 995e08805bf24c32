package core

import (
	"context"
	"testing"
	"time"
)

// BenchmarkDeadline makes a 1s deadline and cancels it at once, from every
// CPU at once.
func BenchmarkDeadline(b *testing.B) {
	m := newBenchManager(b)
	parent := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx := m.WithTimeout(parent, time.Second)
			CancelTimeout(ctx)
		}
	})
}

// BenchmarkDeadlineDone also waits on the context's Done, which puts it
// on the wheel and makes its channel.
func BenchmarkDeadlineDone(b *testing.B) {
	m := newBenchManager(b)
	parent := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx := m.WithTimeout(parent, time.Second)
			select {
			case <-ctx.Done():
				b.Error("done")
			default:
			}
			CancelTimeout(ctx)
		}
	})
}

// BenchmarkContextWithTimeout is context.WithTimeout and its cancel, the
// same workload as BenchmarkDeadline.
func BenchmarkContextWithTimeout(b *testing.B) {
	parent := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, cancel := context.WithTimeout(parent, time.Second)
			cancel()
		}
	})
}

// newBenchManager returns a Manager on SystemClock: its deadlines are the
// process's shared wheel.
func newBenchManager(tb testing.TB) *Manager {
	m, err := NewManager(ManagerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

package core

import (
	"context"
	"testing"
)

// BenchmarkBulkheadAcquireRelease takes and releases a slot of a bulkhead
// that never fills up, from every CPU at once.
func BenchmarkBulkheadAcquireRelease(b *testing.B) {
	bh, err := NewBulkhead(BulkheadConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g, err := bh.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			g.Release()
		}
	})
}

// BenchmarkBulkheadTryAcquireRelease is the same with TryAcquire.
func BenchmarkBulkheadTryAcquireRelease(b *testing.B) {
	bh, err := NewBulkhead(BulkheadConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g, err := bh.TryAcquire()
			if err != nil {
				b.Error(err)
				return
			}
			g.Release()
		}
	})
}

// BenchmarkBulkheadFull measures rejection when every slot is taken and the
// queue is full: the overload path must stay cheap too.
func BenchmarkBulkheadFull(b *testing.B) {
	bh, err := NewBulkhead(BulkheadConfig{Name: "bench", MaxConcurrentRequests: 1, MaxQueueSize: NoQueue})
	if err != nil {
		b.Fatal(err)
	}
	held, _ := bh.TryAcquire()
	defer held.Release()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bh.Acquire(ctx); err == nil {
				b.Error("acquired a slot of a full bulkhead")
				return
			}
		}
	})
}

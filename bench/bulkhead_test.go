package bench

import (
	"context"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/eapache/go-resiliency/semaphore"
	"github.com/failsafe-go/failsafe-go/bulkhead"
)

// bulkheadSlots is the slot count every peer gets: the seed's default, far
// more than the goroutines RunParallel starts, so no call ever waits.
const bulkheadSlots = 100

// BenchmarkBulkhead takes and releases a slot of a bulkhead that never
// fills up, from every CPU at once, without waiting.
func BenchmarkBulkhead(b *testing.B) {
	b.Run("bulwark", func(b *testing.B) {
		bh, err := core.NewBulkhead(core.BulkheadConfig{Name: "bench", MaxConcurrentRequests: bulkheadSlots})
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
	})
	b.Run("bulwark-acquire-ctx", func(b *testing.B) {
		bh, err := core.NewBulkhead(core.BulkheadConfig{Name: "bench", MaxConcurrentRequests: bulkheadSlots})
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
	})
	b.Run("failsafe-go", func(b *testing.B) {
		bh := bulkhead.New[any](bulkheadSlots)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !bh.TryAcquirePermit() {
					b.Error("bulkhead full")
					return
				}
				bh.ReleasePermit()
			}
		})
	})
	b.Run("eapache-semaphore", func(b *testing.B) {
		// Its Acquire always waits up to the timeout; there is no try form.
		sem := semaphore.New(bulkheadSlots, time.Second)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := sem.Acquire(); err != nil {
					b.Error(err)
					return
				}
				sem.Release()
			}
		})
	})
}

package core

import (
	"context"
	"testing"
)

func benchBreaker(b *testing.B) *Breaker {
	br, err := NewBreaker(BreakerConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return br
}

// BenchmarkBreakerAllowRecord is a closed breaker's success path through
// the permit API, from every core at once.
func BenchmarkBreakerAllowRecord(b *testing.B) {
	br := benchBreaker(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := br.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			p.Report(Success, 0)
		}
	})
}

// BenchmarkBreakerRejectOpen is an open breaker refusing calls.
func BenchmarkBreakerRejectOpen(b *testing.B) {
	br := benchBreaker(b)
	br.Trip("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Allow(); err == nil {
				b.Error("allowed")
				return
			}
		}
	})
}

// BenchmarkBreakerExecute runs a trivial function through Execute.
func BenchmarkBreakerExecute(b *testing.B) {
	br := benchBreaker(b)
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Execute(ctx, fn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

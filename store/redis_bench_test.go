package store

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

// BenchmarkBreakerAllowRecordShared is core's BenchmarkBreakerAllowRecord
// with the breaker attached to a live Redis store (syncing every 20ms, with
// a second instance on the same endpoint): the request path must cost the
// same, since Redis is never on it.
//
//	go test -run '^$' -bench 'BreakerAllowRecord' ./core/ ./store/
func BenchmarkBreakerAllowRecordShared(b *testing.B) {
	srv := redistest.Start(b)
	a := newInstance(b, srv, "a", core.BreakerConfig{}, RedisConfig{SyncInterval: 20 * time.Millisecond})
	other := newInstance(b, srv, "b", core.BreakerConfig{}, RedisConfig{SyncInterval: 20 * time.Millisecond})
	a.loaded(b, "bench")
	other.loaded(b, "bench")
	br := a.breaker(b, "bench")
	start := a.s.rounds.Load()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := br.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			p.Report(core.Success, 0)
		}
	})
	b.StopTimer()
	if !a.s.healthy.Load() {
		b.Fatal("the store lost Redis during the benchmark")
	}
	b.ReportMetric(float64(a.s.rounds.Load()-start), "syncs")
}

// TestRedisPropagationLatency measures, over 100 trips, the time from a
// Trip on instance a to the transition applied on instance b (seen by an
// OnStateChange listener on b), and fails unless p99 is under 50ms: on
// loopback it is about a millisecond, so the bound leaves room for a busy
// CI machine and the race detector.
//
//	go test -run TestRedisPropagationLatency -v ./store/
func TestRedisPropagationLatency(t *testing.T) {
	srv := redistest.Start(t)
	a := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	const trips = 100
	names := make([]string, trips)
	arrived := make(chan time.Time, trips)
	for i := range names {
		names[i] = fmt.Sprintf("prop-%d", i)
		a.breaker(t, names[i])
		bb := b.breaker(t, names[i])
		bb.OnStateChange(func(e events.StateChange) {
			if e.Remote && e.NewState == events.Open {
				arrived <- time.Now()
			}
		})
	}
	settle(t, a, b)
	lat := make([]time.Duration, 0, trips)
	for _, n := range names {
		ba := a.breaker(t, n)
		t0 := time.Now()
		ba.Trip("propagation")
		select {
		case t1 := <-arrived:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the trip did not reach b", n)
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[(len(lat)+1)/2-1], lat[(len(lat)*99+99)/100-1] // nearest rank
	t.Logf("trip on a -> applied on b, %d trips: p50 %v, p99 %v, max %v", trips, p50, p99, lat[len(lat)-1])
	if p99 >= 50*time.Millisecond {
		t.Errorf("p99 %v, want under 50ms", p99)
	}
}

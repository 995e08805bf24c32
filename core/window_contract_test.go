package core

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Lifetime counts feed Prometheus counters: a reader racing the window's
// rotation must never see them go down.
func TestLifetimeCountsNeverGoBackwards(t *testing.T) {
	var w window
	w.init(10, 4, 0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for now := int64(10); !stop.Load(); now += 10 {
			w.record(now, false, false) // one call per bucket: every call rotates
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	var last int64
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		got := w.lifetime().total
		if got < last {
			t.Fatalf("lifetime total went from %d down to %d", last, got)
		}
		last = got
	}
}

// The same through the public API: a metrics scrape (Snapshot) while calls
// rotate the window never sees total_requests go down, which Prometheus
// would read as a counter reset.
func TestSnapshotTotalRequestsIsMonotonic(t *testing.T) {
	b, clk, _ := newTestBreaker(t, Config{RollingWindow: 40 * time.Millisecond, WindowBuckets: 4})
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			clk.Advance(10 * time.Millisecond)
			mustAllow(t, b).Report(Success, 0)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	var last int64
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		got := b.Snapshot().TotalRequests
		if got < last {
			t.Fatalf("Snapshot().TotalRequests went from %d down to %d", last, got)
		}
		last = got
	}
}

// The window's sums never count a call twice while the head moves on, or
// checkRates could open the breaker on calls that are not there.
func TestWindowCountsNeverExceedWhatWasRecorded(t *testing.T) {
	var w window
	w.init(10, 4, 0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for now := int64(10); !stop.Load(); now += 10 {
			w.record(now, true, false) // one failure per bucket: at most 4 in the window
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if c := w.counts(); c.total > 4 || c.failed > 4 {
			t.Fatalf("window of 4 buckets with one call each reads %+v", c)
		}
	}
}

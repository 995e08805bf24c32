package core

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// racing runs write in a loop on another goroutine while check runs in a
// loop here, for a second of real time: long enough for the two to meet
// mid-rotation many times. check returns false to stop early.
func racing(write func(), check func() bool) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			write()
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if !check() {
			return
		}
	}
}

// Lifetime counts feed Prometheus counters: a reader racing the window's
// rotation must never see them go down.
func TestLifetimeCountsNeverGoBackwards(t *testing.T) {
	var w window
	w.init(10, 4, 0)
	now, last := int64(0), int64(0)
	racing(func() {
		now += 10
		w.record(now, false, false) // one call per bucket: every call rotates
	}, func() bool {
		got := w.lifetime().total
		if got < last {
			t.Errorf("lifetime total went from %d down to %d", last, got)
			return false
		}
		last = got
		return true
	})
}

// The same through the public API: a metrics scrape (Snapshot) while calls
// rotate the window never sees total_requests go down, which Prometheus
// would read as a counter reset.
func TestSnapshotTotalRequestsIsMonotonic(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{RollingWindow: 40 * time.Millisecond, WindowBuckets: 4})
	var last int64
	racing(func() {
		clk.Advance(10 * time.Millisecond)
		mustAllow(t, b).Report(Success, 0)
	}, func() bool {
		got := b.Snapshot().TotalRequests
		if got < last {
			t.Errorf("Snapshot().TotalRequests went from %d down to %d", last, got)
			return false
		}
		last = got
		return true
	})
}

// The window's sums never count a call twice while the head moves on, or
// checkRates could open the breaker on calls that are not there.
func TestWindowCountsNeverExceedWhatWasRecorded(t *testing.T) {
	var w window
	w.init(10, 4, 0)
	now := int64(0)
	racing(func() {
		now += 10
		w.record(now, true, false) // one failure per bucket: at most 4 in the window
	}, func() bool {
		if c := w.counts(); c.total > 4 || c.failed > 4 {
			t.Errorf("window of 4 buckets with one call each reads %+v", c)
			return false
		}
		return true
	})
}

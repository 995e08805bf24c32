package core

import (
	"github.com/bulwark-go/bulwark/events"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// HedgeConfig turns on hedged requests for an outbound endpoint: when an
// idempotent call has not answered after Delay, a second attempt is sent,
// and the first answer wins. Hedges are bounded by a budget and never sent
// while the endpoint's breaker is not Closed.
type HedgeConfig struct {
	// Delay is how long a call runs before it is hedged. Default 0: the
	// endpoint's recent 95th percentile latency (by its latency histogram
	// over the last 30s; 10ms before it has any), so that about one call in
	// twenty is hedged; otherwise 1ms to 1m.
	Delay time.Duration
	// MaxRatio is the share of calls that may be hedged over the last 10s.
	// Default 0.1; above 0 up to 1.
	MaxRatio float64
	// Disabled turns hedging off, for an endpoint whose Defaults give it.
	Disabled bool
}

func (cfg HedgeConfig) normalize(c *check.Checker) HedgeConfig {
	if d := cfg.Delay; d != 0 && (d < time.Millisecond || d > time.Minute) {
		c.Fail("Delay", d, "must be between 1ms and 1m0s, or 0 for the endpoint's recent 95th percentile")
	}
	c.Float("MaxRatio", &cfg.MaxRatio, 0.1, 1e-9, 1)
	return cfg
}

// hedger is an endpoint's hedging policy: its configuration, its budget,
// and the latency histogram its delay is read from.
type hedger struct {
	cfg    HedgeConfig
	budget *RetryBudget
	// base is the histogram as it was at the start of the current
	// percentile window, and baseAt when that was (clock Nanotime).
	base   atomic.Pointer[HistogramSnapshot]
	baseAt atomic.Int64
}

// hedgeWindow is how far back the recent percentile looks (between one
// and two of these).
const hedgeWindow = 30 * time.Second

func newHedger(cfg HedgeConfig, clock Clock) *hedger {
	h := &hedger{cfg: cfg, budget: newRetryBudget(RetryBudgetConfig{
		Ratio: cfg.MaxRatio, NoMinRetries: true, Window: 10 * time.Second, Clock: clock,
	})}
	h.base.Store(new(HistogramSnapshot))
	h.baseAt.Store(clock.Nanotime())
	return h
}

// HedgeDelay reports whether a call to the endpoint should be hedged if it
// has not answered in time, and after how long: only when the endpoint has
// a HedgeConfig and its breaker is Closed. Every call it says yes to counts
// toward the budget that Hedge spends.
func (e *Endpoint) HedgeDelay() (time.Duration, bool) {
	h := e.hedge.Load()
	if h == nil || e.breaker.State() != events.Closed {
		return 0, false
	}
	h.budget.recordFirst()
	if h.cfg.Delay > 0 {
		return h.cfg.Delay, true
	}
	return h.recentP95(e), true
}

// Hedge asks to send the hedged attempt of a call whose delay passed: it
// reports false when the budget is spent or the breaker has left Closed
// meanwhile.
func (e *Endpoint) Hedge() bool {
	h := e.hedge.Load()
	if h == nil || e.breaker.State() != events.Closed || !h.budget.tryRetry() {
		return false
	}
	e.hedges.Add(1)
	return true
}

// Hedges returns how many hedged attempts Hedge has allowed.
func (e *Endpoint) Hedges() uint64 { return e.hedges.Load() }

// recentP95 reads the 95th percentile of the latency observed since the
// start of the current window, by the upper bound of its bucket.
func (h *hedger) recentP95(e *Endpoint) time.Duration {
	now := e.m.clock.Nanotime()
	cur := e.durations.Snapshot()
	base := h.base.Load()
	if at := h.baseAt.Load(); now-at >= int64(hedgeWindow) && h.baseAt.CompareAndSwap(at, now) {
		h.base.Store(&cur) // the next window starts from here; this one reads the old base
	}
	n := cur.Count - base.Count
	if n == 0 {
		return 10 * time.Millisecond
	}
	target := (n*95 + 99) / 100
	for i, ub := range durationBounds {
		if cur.Buckets[i]-base.Buckets[i] >= target {
			return ub
		}
	}
	return durationBounds[len(durationBounds)-1]
}

package core

import (
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// SLOConfig configures an SLOTracker. The zero value is the default: 99% of calls succeed over 5 minutes, a 1% error
// budget, and the burn-rate rule of the Google SRE workbook (14.4× over the
// long and the short window) scaled to the window.
//
// TargetSuccessRate and ErrorBudgetPercent say the same thing twice, so they
// must agree: ErrorBudgetPercent = 100×(1−TargetSuccessRate), to within
// 1e-6. Set either one and leave the other 0 to have it derived.
type SLOConfig struct {
	// TargetSuccessRate is the share of calls that should succeed. Default
	// 0.99 (or derived from ErrorBudgetPercent); above 0 and below 1.
	TargetSuccessRate float64
	// Window is the span the success rate and the error budget are measured
	// over. Default 5m; 1s to 7 days.
	Window time.Duration
	// ErrorBudgetPercent is the percentage of calls allowed to fail. Default
	// 1 (or derived from TargetSuccessRate); above 0 and below 100.
	ErrorBudgetPercent float64

	// BurnRateThreshold is the burn rate (error ratio ÷ budget ratio) both
	// windows must reach for the rule to fire. At 14.4 a 30-day budget would
	// last about 2 days. Default 14.4; 1 to 10,000.
	BurnRateThreshold float64
	// LongWindow is the burn rule's long window: it proves the burn is
	// significant. Default Window; above ShortWindow, at most Window.
	LongWindow time.Duration
	// ShortWindow is the burn rule's short window: it proves the burn is
	// still going on, so the rule clears soon after the errors stop.
	// Default LongWindow/12 (5m for 1h in the workbook); 10ms up to below
	// LongWindow. The tracker's buckets are ShortWindow/10 wide, and Window
	// may hold at most 4,096 of them.
	ShortWindow time.Duration
	// MinEvents is how many calls the long window must hold before the burn
	// rule may fire, so that a handful of failures cannot trip it. Default
	// 20; 1 to 1,000,000,000.
	MinEvents int
	// Disabled turns SLO tracking off, for an endpoint whose Defaults give
	// one.
	Disabled bool
	// Clock tells time. Nil means SystemClock. A Manager sets its own.
	Clock Clock
}

const (
	// ShortWindow defaults to LongWindow divided by this.
	sloShortDivisor = 12
	// Buckets per ShortWindow, and the most buckets a tracker keeps.
	sloBucketsPerShort = 10
	maxSLOBuckets      = 4096
)

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg SLOConfig) normalize(c *check.Checker) SLOConfig {
	given := cfg
	t, p := cfg.TargetSuccessRate, cfg.ErrorBudgetPercent
	if t != 0 && !(t > 0 && t < 1) {
		c.Fail("TargetSuccessRate", t, "must be above 0 and below 1 (0 means the default, 0.99)")
	}
	if p != 0 && !(p > 0 && p < 100) {
		c.Fail("ErrorBudgetPercent", p, "must be above 0 and below 100 (0 means the default, 1)")
	}
	switch {
	case t == 0 && p == 0:
		cfg.TargetSuccessRate, cfg.ErrorBudgetPercent = 0.99, 1
	case p == 0:
		cfg.ErrorBudgetPercent = 100 * (1 - t)
	case t == 0:
		cfg.TargetSuccessRate = 1 - p/100
	case math.Abs(p-100*(1-t)) > 1e-6 && t > 0 && t < 1 && p > 0 && p < 100:
		c.Fail("ErrorBudgetPercent", p, fmt.Sprintf("must equal 100×(1−TargetSuccessRate) = %.6g, or be 0 to derive it", 100*(1-t)))
	}
	c.Duration("Window", &cfg.Window, 5*time.Minute, time.Second, 7*24*time.Hour)
	c.Float("BurnRateThreshold", &cfg.BurnRateThreshold, 14.4, 1, 10_000)
	c.Int("MinEvents", &cfg.MinEvents, 20, 1, 1_000_000_000)
	window := cfg.Window
	if window < time.Second || window > 7*24*time.Hour {
		window = 5 * time.Minute
	}
	switch {
	case cfg.LongWindow < 0:
		c.Fail("LongWindow", cfg.LongWindow, "must not be negative (0 means the default, Window)")
	case cfg.LongWindow == 0:
		cfg.LongWindow = window
	case cfg.LongWindow > window:
		c.Fail("LongWindow", cfg.LongWindow, "must be at most Window ("+window.String()+")")
	}
	long := cfg.LongWindow
	if long <= 0 || long > window {
		long = window
	}
	switch {
	case cfg.ShortWindow < 0:
		c.Fail("ShortWindow", cfg.ShortWindow, "must not be negative (0 means the default, LongWindow/12)")
	case cfg.ShortWindow == 0:
		cfg.ShortWindow = long / sloShortDivisor
	}
	if short := cfg.ShortWindow; short >= 0 {
		if short < 10*time.Millisecond || short >= long {
			c.Fail("ShortWindow", short, "must be at least 10ms and below LongWindow ("+long.String()+")")
		} else if n := sloBucketCount(window, short); n > maxSLOBuckets {
			c.Fail("ShortWindow", short, fmt.Sprintf("must be at least Window/%d (%v): buckets are ShortWindow/%d wide and Window would need %d of them",
				maxSLOBuckets/sloBucketsPerShort, window/(maxSLOBuckets/sloBucketsPerShort), sloBucketsPerShort, n))
		}
	}
	_ = given
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return cfg
}

// sloBucketCount returns how many buckets of ShortWindow/10 cover window.
func sloBucketCount(window, short time.Duration) int64 {
	w := int64(short / sloBucketsPerShort)
	return (int64(window) + w - 1) / w
}

// SLOTracker measures one service level objective:
// the success rate over a rolling window, the error budget left, and how
// fast the budget burns.
//
// Calls are counted in a ring of time buckets holding success and failure
// counts. Record is lock-free, O(1) and allocation-free; the queries add up
// the buckets they span. Record only calls that ran: a call a breaker
// rejected says nothing about the service, and counting it would keep an
// open breaker's SLO failing forever.
type SLOTracker struct {
	cfg    SLOConfig
	clock  Clock
	width  uint64 // bucket width in nanoseconds
	mask   uint64 // ring size − 1
	window uint64 // buckets in Window
	long   uint64 // buckets in LongWindow
	short  uint64 // buckets in ShortWindow
	budget float64
	// Each word packs the bucket's epoch (high 32 bits) and a count (low 32
	// bits), so that a writer recognises and resets a stale bucket without
	// a lock.
	ring []sloBucket
	// burn, for the tracker of a Manager's endpoint, trips the endpoint's
	// breaker when the burn rule fires; nil for a lone tracker.
	burn *sloBurn
}

type sloBucket struct {
	ok, failed atomic.Uint64
}

// SLOStatus is a tracker's reading at one moment.
type SLOStatus struct {
	// Endpoint names the tracked endpoint; empty for a lone SLOTracker.
	Endpoint string `json:"endpoint,omitempty"`
	// Target is the configured TargetSuccessRate.
	Target float64 `json:"target"`
	// SuccessRate is the share of calls in the window that succeeded; 1
	// when the window holds none.
	SuccessRate float64 `json:"success_rate"`
	// ErrorBudgetRemaining is the share of the window's error budget left,
	// as a ratio: 1 with no failures, 0 when spent, negative when
	// overspent.
	ErrorBudgetRemaining float64 `json:"error_budget_remaining"`
	// Violated is true when SuccessRate is below Target.
	Violated bool `json:"violated"`
	// LongBurnRate and ShortBurnRate are the burn rates over the long and
	// the short window: the error ratio divided by the budget ratio. 1
	// spends the budget exactly over the window; 0 when a window is empty.
	LongBurnRate  float64 `json:"long_burn_rate"`
	ShortBurnRate float64 `json:"short_burn_rate"`
	// Burning is true when the multi-window burn rule fires.
	Burning bool `json:"burning"`
	// Total and Failed count the calls in the window.
	Total  uint64 `json:"total"`
	Failed uint64 `json:"failed"`
	// LongEvents counts the calls in the long window.
	LongEvents uint64 `json:"long_events"`
}

// NewSLOTracker returns a tracker, or every field of cfg that is out of
// range as *ConfigError values.
func NewSLOTracker(cfg SLOConfig) (*SLOTracker, error) {
	c := newChecker("core.SLOConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newSLOTracker(cfg), nil
}

// newSLOTracker builds a tracker from a normalized configuration.
func newSLOTracker(cfg SLOConfig) *SLOTracker {
	width := uint64(cfg.ShortWindow / sloBucketsPerShort)
	n := uint64(sloBucketCount(cfg.Window, cfg.ShortWindow))
	size := uint64(1) << bits.Len64(n-1) // the ring must hold the whole window
	ceil := func(d time.Duration) uint64 { return min((uint64(d)+width-1)/width, n) }
	return &SLOTracker{
		cfg:    cfg,
		clock:  cfg.Clock,
		width:  width,
		mask:   size - 1,
		window: n,
		long:   ceil(cfg.LongWindow),
		short:  ceil(cfg.ShortWindow),
		budget: cfg.ErrorBudgetPercent / 100,
		ring:   make([]sloBucket, size),
	}
}

func (t *SLOTracker) epoch() uint64 { return uint64(max(t.clock.Nanotime(), 0)) / t.width }

// Record counts one call: success true for a call that met the objective.
// For an endpoint's tracker it also applies the burn rule (see
// SLOConfig: a burn trips the endpoint's breaker).
func (t *SLOTracker) Record(success bool) {
	e := t.epoch()
	b := &t.ring[e&t.mask]
	if success {
		addPacked(&b.ok, e)
	} else {
		addPacked(&b.failed, e)
	}
	if t.burn != nil {
		t.burn.recorded(t, success)
	}
}

// sum returns the calls and failures in the last n buckets, the current one
// included.
func (t *SLOTracker) sum(e, n uint64) (total, failed uint64) {
	for i := uint64(0); i < n && i <= e; i++ {
		x := e - i
		b := &t.ring[x&t.mask]
		ok, f := packedCount(b.ok.Load(), x), packedCount(b.failed.Load(), x)
		total += ok + f
		failed += f
	}
	return total, failed
}

// Status returns every reading at once, from one pass over the buckets.
// For an endpoint's tracker it applies a change of the burn rule too, so
// that a burn is seen to clear even when no calls come in.
func (t *SLOTracker) Status() SLOStatus {
	s := t.read()
	if t.burn != nil {
		t.burn.evaluate(t, s)
	}
	return s
}

// read returns the tracker's readings.
func (t *SLOTracker) read() SLOStatus {
	e := t.epoch()
	var s SLOStatus
	var longFailed, shortTotal, shortFailed uint64
	for i := uint64(0); i < t.window && i <= e; i++ {
		x := e - i
		b := &t.ring[x&t.mask]
		ok, f := packedCount(b.ok.Load(), x), packedCount(b.failed.Load(), x)
		s.Total += ok + f
		s.Failed += f
		if i < t.long {
			s.LongEvents += ok + f
			longFailed += f
		}
		if i < t.short {
			shortTotal += ok + f
			shortFailed += f
		}
	}
	s.Target = t.cfg.TargetSuccessRate
	s.SuccessRate = successRate(s.Total, s.Failed)
	s.ErrorBudgetRemaining = t.budgetRemaining(s.Total, s.Failed)
	s.Violated = s.SuccessRate < s.Target
	s.LongBurnRate = t.burnRate(s.LongEvents, longFailed)
	s.ShortBurnRate = t.burnRate(shortTotal, shortFailed)
	thr := t.cfg.BurnRateThreshold
	s.Burning = s.LongEvents >= uint64(t.cfg.MinEvents) && s.LongBurnRate >= thr && s.ShortBurnRate >= thr
	if t.burn != nil {
		s.Endpoint = t.burn.endpoint
	}
	return s
}

func successRate(total, failed uint64) float64 {
	if total == 0 {
		return 1
	}
	return 1 - float64(failed)/float64(total)
}

func (t *SLOTracker) burnRate(total, failed uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(failed) / float64(total) / t.budget
}

func (t *SLOTracker) budgetRemaining(total, failed uint64) float64 {
	return 1 - t.burnRate(total, failed)
}

package core

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// maxPriorityLevels bounds AdaptiveConfig.PriorityShares.
const maxPriorityLevels = 8

// AdaptiveConfig configures an AdaptiveLimiter. The zero value is the
// default limiter, which needs no tuning; every zero field takes the
// default written beside it.
type AdaptiveConfig struct {
	// Name is the endpoint the limiter guards, as refusals name it. A
	// Manager sets it.
	Name string
	// Disabled turns the limiter off, for an endpoint whose Defaults give
	// one.
	Disabled bool
	// MinLimit is the lowest the limit falls. Default 1; 1 to 1,000,000.
	MinLimit int
	// MaxLimit is the highest the limit rises. Default 1000; MinLimit to
	// 1,000,000.
	MaxLimit int
	// InitialLimit is the limit until the first sample window ends.
	// Default 20 (or MinLimit or MaxLimit when 20 is outside them);
	// MinLimit to MaxLimit.
	InitialLimit int
	// Tolerance is how far a window's mean latency may rise above the
	// baseline and still count as healthy: the limit falls once latency
	// exceeds Tolerance × baseline, and rises only below the middle of
	// that band (1.25 × baseline for the default). Lower keeps latency
	// closer to the baseline; higher trades latency for fewer cuts on a
	// noisy service. Default 1.5; 1.05 to 10.
	Tolerance float64
	// SampleWindow is how often the limit is reconsidered: at most once
	// per window, and only once the window holds 32 samples. Refusals
	// suggest it as their RetryAfter. Default 50ms; 1ms to 1m.
	SampleWindow time.Duration
	// MaxLatency is the highest mean latency that is ever healthy: above
	// it the limit falls whatever the baseline says, and the baseline
	// never rises above it. Default 0: no such bound; otherwise 1ms to 1h.
	MaxLatency time.Duration
	// BaselineDecay is the baseline's time constant: how fast it follows
	// the service's latency where that moves on its own (windows near the
	// baseline in which nothing was shed, or latency that stays high after
	// a cut lowered concurrency). Latency that grows with concurrency never
	// raises it. Default 10s (SampleWindow if that is longer);
	// SampleWindow to 24h.
	BaselineDecay time.Duration
	// MaxQueueSize is how many calls of Acquire may wait for a slot when
	// the limit is reached. Default 0: no queue, a call over the limit is
	// refused at once; otherwise 1 to 1,000,000.
	MaxQueueSize int
	// QueueTimeout is the longest a call waits in the queue before it is
	// refused. Default 50ms; 1ms to 1m.
	QueueTimeout time.Duration
	// PriorityShares turns priorities on: calls of priority p are admitted
	// only while fewer than limit × PriorityShares[p] calls are in flight,
	// so under pressure lower priorities are shed first. Priority 0 is the
	// least important; priorities below 0 count as 0 and priorities past
	// the end as the last. Shares must be above 0, must not decrease, and
	// the last must be 1. Default nil: one priority, every call alike; at
	// most 8 levels.
	PriorityShares []float64
	// Clock times the windows and the queue. Nil means SystemClock. A
	// Manager sets its own.
	Clock Clock
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg AdaptiveConfig) normalize(c *check.Checker) AdaptiveConfig {
	c.Int("MinLimit", &cfg.MinLimit, 1, 1, 1_000_000)
	lo := max(cfg.MinLimit, 1)
	c.Int("MaxLimit", &cfg.MaxLimit, max(1000, lo), lo, 1_000_000)
	hi := max(cfg.MaxLimit, lo)
	c.Int("InitialLimit", &cfg.InitialLimit, min(max(20, lo), hi), lo, hi)
	c.Float("Tolerance", &cfg.Tolerance, 1.5, 1.05, 10)
	c.Duration("SampleWindow", &cfg.SampleWindow, 50*time.Millisecond, time.Millisecond, time.Minute)
	if cfg.MaxLatency != 0 && (cfg.MaxLatency < time.Millisecond || cfg.MaxLatency > time.Hour) {
		c.Fail("MaxLatency", cfg.MaxLatency, "must be between 1ms and 1h, or 0 for no bound")
	}
	c.Duration("BaselineDecay", &cfg.BaselineDecay, max(10*time.Second, cfg.SampleWindow), max(cfg.SampleWindow, time.Millisecond), 24*time.Hour)
	if q := cfg.MaxQueueSize; q < 0 || q > 1_000_000 {
		c.Fail("MaxQueueSize", q, "must be between 1 and 1000000, or 0 for no queue")
	}
	c.Duration("QueueTimeout", &cfg.QueueTimeout, 50*time.Millisecond, time.Millisecond, time.Minute)
	if n := len(cfg.PriorityShares); n > maxPriorityLevels {
		c.Fail("PriorityShares", n, fmt.Sprintf("must have at most %d levels", maxPriorityLevels))
	} else if n > 0 {
		shares := make([]float64, n) // a copy: the caller's slice may change
		copy(shares, cfg.PriorityShares)
		cfg.PriorityShares = shares
		for i, s := range shares {
			field := fmt.Sprintf("PriorityShares[%d]", i)
			switch {
			case !(s > 0 && s <= 1):
				c.Fail(field, s, "must be above 0 and at most 1")
			case i > 0 && s < shares[i-1]:
				c.Fail(field, s, "must not be below the share of the priority under it")
			case i == n-1 && s != 1:
				c.Fail(field, s, "must be 1: the highest priority may use the whole limit")
			}
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return cfg
}

// levels is how many priority levels cfg has.
func (cfg *AdaptiveConfig) levels() int { return max(len(cfg.PriorityShares), 1) }

// share is the part of the limit priority level lv may fill.
func (cfg *AdaptiveConfig) share(lv int) float64 {
	if lv >= len(cfg.PriorityShares) {
		return 1
	}
	return cfg.PriorityShares[lv]
}

// AdaptiveStats is a snapshot of an AdaptiveLimiter. Counters only grow.
type AdaptiveStats struct {
	// Limit is the current concurrency limit.
	Limit int
	// InFlight is how many admitted calls have not reported back.
	InFlight int
	// Queued is how many calls wait in the queue.
	Queued int
	// Admitted counts every call admitted, at once or from the queue.
	Admitted uint64
	// Shed counts refusals per priority (index = priority level; one entry
	// without priorities): calls over the limit, a full queue or a queue
	// timeout.
	Shed []uint64
	// Baseline is the latency the limiter takes as healthy; 0 before the
	// first sample window.
	Baseline time.Duration
	// Recent is the mean latency of the last sample window.
	Recent time.Duration
}

// AdaptivePermit is an admitted call. Report its end with Done.
//
// A permit is a small value: admitting and recording a call allocates
// nothing. Call Done through the variable Acquire returned into (or a
// pointer to it). A copy is a second handle on the same call, so do not
// report copies.
type AdaptivePermit struct {
	l     *AdaptiveLimiter
	epoch uint32 // the limit's epoch at admission: a call is a sample only of the limit it was admitted under
}

// AdaptiveLimiter is a concurrency limit that finds itself: it sheds load
// when latency shows the service is queueing, and needs no tuning.
//
// Every SampleWindow it compares the window's mean latency (recent) with
// a baseline, the latency of the service when it is not queueing:
//
//   - recent near the baseline (below the middle of the Tolerance band)
//     and calls filling two thirds of the limit: the limit grows by
//     √limit. So at low load it stays within about 1.5 × the concurrency
//     in use, and a surge meets a limit not far above it.
//   - recent between that and Tolerance × baseline: the limit holds.
//   - recent above Tolerance × baseline: the limit is cut to the
//     concurrency in use × baseline/recent (at most halved), the
//     concurrency at which latency would be back at the baseline.
//
// A window judges only calls admitted under its limit, so calls still
// running from before a change neither cut it twice nor hide a rise.
//
// Guardrails, against the known weak spots of latency-gradient limiters:
//
//   - The baseline is a slow average (time constant BaselineDecay) of
//     windows near it in which nothing was shed, and drops quickly to a
//     clearly lower latency. Windows above it, and windows whose latency
//     the limit shaped, never raise it, so a long overload cannot drag it
//     up after the recent latency until the limit stops falling.
//   - If latency stays put after a cut lowered concurrency (or the limit
//     is at MinLimit), the service got slower on its own: the limit
//     holds, and the baseline follows with time constant BaselineDecay,
//     so a slower release is not throttled forever.
//   - MaxLatency bounds that: above it the limit falls whatever the
//     baseline says, and the baseline never rises past it.
//   - Calls reported Ignored (cancelled, or refused by a later policy),
//     calls the limiter refused, latencies of 0 and failures faster than
//     half the baseline (a downstream refusing at once) are not samples:
//     such fast calls would make an overloaded service look healthy.
//
// Taking and recording a permit is a few atomic operations on one cache
// line, without allocation. Whichever call ends a window updates the
// limit, holding no lock other calls wait on.
type AdaptiveLimiter struct {
	name  string
	clock Clock
	cfg   atomic.Pointer[AdaptiveConfig]
	_     [64]byte

	// Read-mostly: written at most once per window.
	caps      [maxPriorityLevels]atomic.Int64 // admission cap of each priority level
	levels    atomic.Int32
	epoch     atomic.Uint32 // bumped by every change of the limit
	windowEnd atomic.Int64  // clock Nanotime after which a window may close
	baseline  atomic.Int64  // nanoseconds
	maxQueue  atomic.Int64
	timeout   atomic.Int64 // QueueTimeout in nanoseconds
	errShed   atomic.Pointer[RejectedError]
	_         [64]byte

	// Hot: every admitted call writes here.
	inflight atomic.Int64
	peak     atomic.Int64  // highest inflight since the last window closed
	acc      atomic.Uint64 // this window's samples: count<<accShift | sum of latencies in accUnit
	admitted atomic.Uint64
	mask     atomic.Uint64 // bit lv: calls of level lv are queued or about to queue
	_        [64]byte

	shed [maxPriorityLevels]atomic.Uint64
	_    [64]byte

	upd    sync.Mutex // held by the window update; calls only TryLock it
	st     adaptiveState
	limit  atomic.Int64
	recent atomic.Int64

	mu         sync.Mutex // the queue
	queues     [maxPriorityLevels]adaptiveQueue
	queued     int
	queuedHint atomic.Int64
	waits      atomic.Uint64 // calls ever queued
}

// The window accumulator packs a sample count and a latency sum into one
// word, so that recording a sample is one atomic add and closing a window
// one swap.
const (
	accShift      = 42
	accUnit       = 64 // nanoseconds per unit of the sum
	accMaxSample  = int64(10 * time.Minute / accUnit)
	adaptiveMinN  = 32      // samples a window needs before it may close
	accMaxCount   = 1 << 20 // samples that close a window early, long before the count could overflow
	accSampleMask = 1<<accShift - 1
)

// NewAdaptiveLimiter returns an adaptive limiter, or every field of cfg
// that is out of range as *ConfigError values.
func NewAdaptiveLimiter(cfg AdaptiveConfig) (*AdaptiveLimiter, error) {
	c := newChecker("core.AdaptiveConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newAdaptiveLimiter(cfg), nil
}

// newAdaptiveLimiter builds a limiter from a normalized configuration.
func newAdaptiveLimiter(cfg AdaptiveConfig) *AdaptiveLimiter {
	l := &AdaptiveLimiter{name: cfg.Name, clock: cfg.Clock}
	l.st.limit = float64(cfg.InitialLimit)
	l.st.last = l.clock.Nanotime()
	l.windowEnd.Store(l.st.last + int64(cfg.SampleWindow))
	l.apply(cfg)
	return l
}

// reconfigure applies a normalized configuration in place: the limit (kept
// within the new bounds), the baseline, calls in flight and calls queued
// stay.
func (l *AdaptiveLimiter) reconfigure(cfg AdaptiveConfig) {
	cfg.Name, cfg.Clock = l.name, l.clock
	l.upd.Lock()
	l.apply(cfg)
	l.upd.Unlock()
	if l.mask.Load() != 0 {
		l.handoff()
	}
}

// apply stores cfg and publishes what follows from it. Called with upd
// held, or before the limiter is shared.
func (l *AdaptiveLimiter) apply(cfg AdaptiveConfig) {
	l.cfg.Store(&cfg)
	l.errShed.Store(&RejectedError{Endpoint: cfg.Name, kind: ErrLimitExceeded, after: cfg.SampleWindow})
	l.maxQueue.Store(int64(cfg.MaxQueueSize))
	l.timeout.Store(int64(cfg.QueueTimeout))
	l.levels.Store(int32(cfg.levels()))
	l.st.limit = min(max(l.st.limit, float64(cfg.MinLimit)), float64(cfg.MaxLimit))
	l.publish(&cfg)
}

// publish makes the state's limit the one calls are admitted against.
func (l *AdaptiveLimiter) publish(cfg *AdaptiveConfig) {
	lim := int64(l.st.limit)
	l.limit.Store(lim)
	for lv := range l.caps {
		l.caps[lv].Store(int64(float64(lim) * cfg.share(lv)))
	}
	l.baseline.Store(int64(l.st.baseline))
}

// config returns the configuration in effect, defaults filled in.
func (l *AdaptiveLimiter) config() AdaptiveConfig { return *l.cfg.Load() }

// level maps a caller's priority onto a configured level.
func (l *AdaptiveLimiter) level(priority int) int {
	if priority <= 0 {
		return 0
	}
	return min(priority, int(l.levels.Load())-1)
}

// TryAcquire admits a call of the given priority if the limit allows it
// now, and never waits. A refusal is a *RejectedError matching
// ErrLimitExceeded, counted as shed; it is also refused while calls of the
// same or a higher priority are queued. Report the call's end with the
// permit's Done.
func (l *AdaptiveLimiter) TryAcquire(priority int) (AdaptivePermit, error) {
	lv := l.level(priority)
	if l.mask.Load()>>lv == 0 && l.take(lv) {
		return AdaptivePermit{l: l, epoch: l.epoch.Load()}, nil
	}
	return AdaptivePermit{}, l.refuse(lv)
}

// Acquire admits a call of the given priority. When the limit is reached
// and the limiter has a queue with room, it waits until a slot is handed
// to it (higher priorities first, then first come first served),
// QueueTimeout passes (a *RejectedError matching ErrLimitExceeded) or ctx
// ends (ctx.Err()); without a queue it is refused at once, like
// TryAcquire. A ctx that has already ended gets its error without a
// permit. Report the call's end with the permit's Done.
func (l *AdaptiveLimiter) Acquire(ctx context.Context, priority int) (AdaptivePermit, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return AdaptivePermit{}, err
	}
	lv := l.level(priority)
	if l.mask.Load()>>lv == 0 && l.take(lv) {
		return AdaptivePermit{l: l, epoch: l.epoch.Load()}, nil
	}
	if q := l.maxQueue.Load(); q == 0 || l.queuedHint.Load() >= q {
		return AdaptivePermit{}, l.refuse(lv)
	}
	return l.wait(ctx, lv)
}

// take admits one call of level lv if fewer than its cap are in flight.
func (l *AdaptiveLimiter) take(lv int) bool {
	limit := l.caps[lv].Load()
	for {
		n := l.inflight.Load()
		if n >= limit {
			return false
		}
		if l.inflight.CompareAndSwap(n, n+1) {
			if n+1 > l.peak.Load() {
				l.raisePeak(n + 1)
			}
			l.admitted.Add(1)
			return true
		}
	}
}

func (l *AdaptiveLimiter) raisePeak(n int64) {
	for {
		p := l.peak.Load()
		if n <= p || l.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (l *AdaptiveLimiter) refuse(lv int) error {
	l.shed[lv].Add(1)
	return l.errShed.Load()
}

// Done reports the end of the admitted call: its outcome and how long it
// took. Success and Failure report a latency sample (a failure faster than
// half the baseline, or a latency of 0 or less, is not one: it says
// nothing about queueing); Ignored only frees the slot, for calls that
// were cancelled or refused by a later policy. Done is idempotent: only
// the first call on a permit counts; later calls, and calls on the zero
// permit, do nothing.
func (p *AdaptivePermit) Done(o Outcome, latency time.Duration) {
	if p == nil || p.l == nil {
		return
	}
	l := p.l
	p.l = nil
	if l.inflight.Add(-1) < 0 {
		// More reports than admissions: only a copied permit does this.
		l.inflight.Add(1)
		return
	}
	// The decrement above and this load pair with a queued call's setting
	// of its mask bit and its retry (both sequentially consistent): either
	// it saw this slot free, or this sees it.
	if l.mask.Load() != 0 {
		l.handoff()
	}
	if o == Ignored || latency <= 0 || p.epoch != l.epoch.Load() {
		return
	}
	if o.failed() && int64(latency) < l.baseline.Load()/2 {
		return
	}
	u := min(int64(latency)/accUnit, accMaxSample)
	if n := l.acc.Add(1<<accShift|uint64(u)) >> accShift; n >= adaptiveMinN && (n >= accMaxCount || l.clock.Nanotime() >= l.windowEnd.Load()) {
		l.update()
	}
}

// update closes the sample window and moves the limit. Whichever call
// finds the window due runs it; the others go on without waiting.
func (l *AdaptiveLimiter) update() {
	if !l.upd.TryLock() {
		return
	}
	now := l.clock.Nanotime()
	if now < l.windowEnd.Load() && l.acc.Load()>>accShift < accMaxCount {
		l.upd.Unlock()
		return
	}
	v := l.acc.Swap(0)
	n := v >> accShift
	if n < adaptiveMinN {
		l.acc.Add(v) // reconfigured or raced: keep the samples for the next try
		l.upd.Unlock()
		return
	}
	cfg := l.cfg.Load()
	w := adaptiveWindow{
		mean:    float64(v&accSampleMask) * accUnit / float64(n),
		peak:    float64(l.peak.Swap(l.inflight.Load())),
		elapsed: float64(now - l.st.last),
	}
	var refused uint64
	for i := range l.shed {
		refused += l.shed[i].Load()
	}
	refused += l.waits.Load()
	w.limited = refused != l.st.refused || l.mask.Load() != 0
	l.st.last, l.st.refused = now, refused
	old := l.limit.Load()
	l.st.step(w, cfg)
	l.publish(cfg)
	if l.limit.Load() != old {
		// Only calls admitted under a limit are samples of it. Bumped
		// after publishing, so that no call admitted under the old limit
		// carries the new epoch.
		l.epoch.Add(1)
	}
	l.recent.Store(int64(w.mean))
	l.windowEnd.Store(now + int64(cfg.SampleWindow))
	l.upd.Unlock()
	if l.limit.Load() > old && l.mask.Load() != 0 {
		l.handoff()
	}
}

// Stats returns a snapshot of the limiter.
func (l *AdaptiveLimiter) Stats() AdaptiveStats {
	n := int(l.levels.Load())
	st := AdaptiveStats{
		Limit:    int(l.limit.Load()),
		InFlight: int(max(l.inflight.Load(), 0)),
		Queued:   int(l.queuedHint.Load()),
		Admitted: l.admitted.Load(),
		Shed:     make([]uint64, n),
		Baseline: time.Duration(l.baseline.Load()),
		Recent:   time.Duration(l.recent.Load()),
	}
	for i := range st.Shed {
		st.Shed[i] = l.shed[i].Load()
	}
	return st
}

// adaptiveWindow summarises one sample window.
type adaptiveWindow struct {
	mean    float64 // mean latency of the window's samples, ns
	peak    float64 // highest in-flight count during the window
	elapsed float64 // ns since the previous window closed
	limited bool    // calls were shed or queued during the window
}

// adaptiveState is the limit algorithm's state, owned by the window update.
type adaptiveState struct {
	limit     float64
	baseline  float64 // ns; 0 until the first window
	last      int64   // clock Nanotime the previous window closed
	refused   uint64  // calls shed or queued, up to the previous window
	cut       bool    // the previous window cut the limit
	cutUsed   float64 // ... from this concurrency
	cutMean   float64 // ... on this latency
	intrinsic bool    // latency stayed high after a cut: holding, not cutting
	holdMean  float64 // the latency that decision was made on
}

// step moves the limit and the baseline for one window.
func (s *adaptiveState) step(w adaptiveWindow, cfg *AdaptiveConfig) {
	r, b := w.mean, s.baseline
	band := (cfg.Tolerance - 1) / 2
	used := min(s.limit, max(w.peak, 1)) // the concurrency behind this latency
	weight := min(1, w.elapsed/float64(cfg.BaselineDecay))
	maxLat := float64(cfg.MaxLatency)
	wasCut := s.cut
	s.cut = false
	grow := false
	switch {
	case maxLat > 0 && r > maxLat:
		s.intrinsic = false
		s.cutTo(used*min(max(maxLat/r, 0.5), 0.9), used, r)
	case b == 0:
		s.baseline = r
		grow = true
	default:
		if s.intrinsic && (r < b*(1+band) || r > s.holdMean*(1+band)) {
			// Back near the baseline, or worse than when the limiter
			// decided the latency was the service's own: judge afresh.
			s.intrinsic = false
		}
		if !s.intrinsic && r > cfg.Tolerance*b {
			switch {
			case s.limit <= float64(cfg.MinLimit):
				// No lower concurrency to try: take the latency as the
				// service's own.
				s.intrinsic, s.holdMean = true, r
			case wasCut:
				// Did latency fall with the concurrency the cut removed?
				// If it stayed about where it was (fell by less than a
				// quarter as much, and did not rise), the service is
				// slower on its own, and cutting further would only shed
				// load.
				fell := 1 - used/s.cutUsed
				if fell >= 0.1 && r <= s.cutMean*(1+band) && 1-r/s.cutMean < fell/4 {
					s.intrinsic, s.holdMean = true, r
				}
			}
		}
		switch {
		case s.intrinsic:
			// Hold (grow once healthy), and let the baseline follow.
			s.baseline += (r - b) * weight
			grow = r <= cfg.Tolerance*b
		case r > cfg.Tolerance*b:
			s.cutTo(used*max(b/r, 0.5), used, r)
		case r >= b*(1+band):
			// Above the baseline but tolerable: hold. Neither this window
			// nor one the limit shaped (calls were shed or queued) says
			// anything about the service's own latency, so the baseline
			// stays: this is what keeps a long overload from dragging it
			// upward.
		case w.limited:
			grow = true
		case r >= b*(1-band):
			s.baseline += (r - b) * weight
			grow = true
		default:
			// Clearly faster than the baseline: the service sped up, or
			// the baseline was learnt under load. Follow four times as
			// fast (not at once: one lucky window must not set it).
			s.baseline += (r - b) * min(1, 4*weight)
			grow = true
		}
	}
	if grow && w.peak*1.5 >= s.limit {
		s.limit += math.Sqrt(s.limit)
	}
	s.limit = min(max(s.limit, float64(cfg.MinLimit)), float64(cfg.MaxLimit))
	if maxLat > 0 {
		s.baseline = min(s.baseline, maxLat)
	}
}

func (s *adaptiveState) cutTo(limit, used, mean float64) {
	s.limit = min(limit, s.limit)
	s.cut, s.cutUsed, s.cutMean = true, used, mean
}

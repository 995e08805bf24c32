package core

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// RateLimitConfig configures a rate limiter: a bucket of Burst tokens that
// refills at Rate tokens per second, one token per call. The zero value is
// the default limiter; every zero field takes the default written beside
// it.
type RateLimitConfig struct {
	// Name is the endpoint the limiter guards, as refusals name it. A
	// Manager sets it for the limiters it makes.
	Name string
	// Disabled lifts the limit: every call is allowed. Calls are still
	// counted, so Stats keeps showing the load.
	Disabled bool
	// Rate is how many calls per second are allowed on average. Default
	// 100; 0.000001 to 1,000,000,000.
	Rate float64
	// Burst is how many calls may come at once after a quiet spell: the
	// size of the bucket. Default Rate rounded up (one second's worth), at
	// least 1; 1 to 1,000,000,000, and Burst/Rate (the time an empty bucket
	// takes to fill) at most 720h. The limiter reads a clock that is coarse
	// to a millisecond, so a Burst below Rate × 1ms acts as Rate × 1ms.
	Burst int
	// Shared makes Rate and Burst the cluster's: a store that shares
	// state across instances (store.RedisStore) gives each instance
	// sharing the endpoint a part of them in proportion to its demand,
	// recomputed every sync interval, so that the instances together
	// allow about Rate calls per second; Allow never waits for the store.
	// Without such a store the whole limit is this instance's, as if
	// Shared were false; while the store cannot reach the others, each
	// instance's part moves toward an even split (see Quota). Default
	// false: each instance allows Rate on its own. Only an endpoint's
	// limit can be shared, not each user's.
	Shared bool
	// Clock times the refill. Nil means SystemClock. A Manager sets its
	// own.
	Clock Clock
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg RateLimitConfig) normalize(c *check.Checker) RateLimitConfig {
	c.Float("Rate", &cfg.Rate, 100, minRate, 1e9)
	if cfg.Burst == 0 && cfg.Rate >= minRate && cfg.Rate <= 1e9 {
		cfg.Burst = int(math.Ceil(cfg.Rate))
	}
	c.Int("Burst", &cfg.Burst, 1, 1, 1_000_000_000)
	if r, b := cfg.Rate, cfg.Burst; r >= minRate && r <= 1e9 && b >= 1 && b <= 1_000_000_000 && float64(b)/r > maxFill.Seconds() {
		c.Fail("Burst", b, "Burst / Rate, the time an empty bucket takes to fill, must be at most 720h")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return cfg
}

// maxFill bounds Burst/Rate, so that the bucket's arithmetic cannot
// overflow.
const maxFill = 720 * time.Hour

// RateLimitStats is a snapshot of a rate limiter.
type RateLimitStats struct {
	// Allowed and Refused count calls since the limiter was made (for a
	// per-user limiter, over every user, including users since evicted).
	Allowed uint64
	Refused uint64
	// Rate is the rate in force, in calls per second: the configured Rate,
	// or this instance's share of it while a store shares the limit across
	// instances (see Quota). 0 when the limiter is disabled.
	Rate float64
	// Burst is the size of the bucket in force, in calls: the configured
	// Burst, scaled like Rate by a share, and at least Rate × 1ms.
	Burst float64
	// Share is the fraction of the configured Rate and Burst in force: 1,
	// or this instance's share while a store shares the limit. 0 when the
	// limiter is disabled.
	Share float64
	// Tokens is how many calls the bucket would allow at once now (0 for a
	// per-user limiter).
	Tokens float64

	// A per-user limiter also reports how many users it tracks now and at
	// most, how many it has evicted, and how many calls it turned away
	// with ErrTooManyUsers (not counted in Refused).
	Users        int
	MaxUsers     int
	Evicted      uint64
	TooManyUsers uint64
}

// RateLimiter allows calls at a steady rate with room for bursts: a token
// bucket, kept as the time at which it will be full again (the generic
// cell rate algorithm). It is safe for concurrent use.
//
// Allow costs one read of the coarse clock and one compare-and-swap on a
// cache line of the limiter's own, and allocates nothing, refusals
// included.
//
// A RateLimiter can also be this instance's share of a limit kept across a
// cluster: see QuotaOf.
type RateLimiter struct {
	_ [64]byte
	// b is written by every allowed call: it sits on a line of its own.
	b tokenBucket
	_ [48]byte
	// refused is written only by refusals.
	refused atomic.Uint64
	_       [56]byte

	// Read-mostly.
	params atomic.Pointer[rlParams]
	clock  Clock
	base   int64 // clock Nanotime when the limiter was made
	rej    *rlRejections

	mu    sync.Mutex // serialises reconfiguration, shares and Demand
	cfg   RateLimitConfig
	share float64 // this instance's fraction of the limit, (0, 1]
	// The counts Demand last returned.
	seenAllowed, seenRefused uint64
}

// NewRateLimiter returns a rate limiter, or every field of cfg that is out
// of range as *ConfigError values.
func NewRateLimiter(cfg RateLimitConfig) (*RateLimiter, error) {
	c := newChecker("core.RateLimitConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newRateLimiter(cfg), nil
}

// newRateLimiter builds a limiter from a normalized configuration.
func newRateLimiter(cfg RateLimitConfig) *RateLimiter {
	l := &RateLimiter{
		clock: cfg.Clock,
		base:  cfg.Clock.Nanotime(),
		rej:   &rlRejections{name: cfg.Name},
		cfg:   cfg,
		share: 1,
	}
	l.params.Store(newRLParams(cfg, 1))
	return l
}

// Allow takes a token for one call. It returns nil, or a *RejectedError
// matching ErrRateLimited whose RetryAfter is the wait until a token is
// due, to the millisecond (to within 1.6% past 128ms, never less than the
// true wait). Refusing allocates nothing.
func (l *RateLimiter) Allow() error {
	p := l.params.Load()
	if p.disabled {
		l.b.allowed.Add(1)
		return nil
	}
	wait, ok := l.b.take(p, rlUnits(l.clock.Nanotime()-l.base))
	if ok {
		return nil
	}
	l.refused.Add(1)
	return l.rej.get(wait)
}

// Stats returns a snapshot of the limiter's counters and bucket.
func (l *RateLimiter) Stats() RateLimitStats {
	p := l.params.Load()
	st := RateLimitStats{Allowed: l.b.allowed.Load(), Refused: l.refused.Load()}
	if !p.disabled {
		st.Rate, st.Burst, st.Share = p.rate, p.burst, p.share
		st.Tokens = l.b.tokens(p, rlUnits(l.clock.Nanotime()-l.base))
	}
	return st
}

// reconfigure applies a normalized configuration in place. The counters
// stay, the share stays (as a fraction of the new Rate), and so do the
// tokens the bucket holds, up to the new Burst.
func (l *RateLimiter) reconfigure(cfg RateLimitConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg.Name, cfg.Clock = l.cfg.Name, l.clock
	l.cfg = cfg
	l.apply()
}

// setShare makes the limiter this instance's fraction f of the configured
// limit: Rate × f per second, with a bucket of Burst × f.
func (l *RateLimiter) setShare(f float64) {
	switch {
	case math.IsNaN(f) || f > 1:
		f = 1
	case f < minShare:
		f = minShare
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if f == l.share {
		return
	}
	l.share = f
	l.apply()
}

// minShare is the smallest fraction of a limit an instance is given, so
// that an idle instance still lets its first calls through.
const minShare = 0.0001

// minRate is the slowest rate a bucket refills at, share or not.
const minRate = 0.000001

// apply puts l.cfg and l.share in force, keeping the bucket's tokens.
// Called with l.mu held.
func (l *RateLimiter) apply() {
	old := l.params.Load()
	p := newRLParams(l.cfg, l.share)
	l.params.Store(p)
	if !old.disabled && !p.disabled {
		l.b.rescale(old, p, rlUnits(l.clock.Nanotime()-l.base))
	}
}

// demand returns the calls allowed and refused since it was last called.
func (l *RateLimiter) demand() (allowed, refused uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, r := l.b.allowed.Load(), l.refused.Load()
	allowed, refused = a-l.seenAllowed, r-l.seenRefused
	l.seenAllowed, l.seenRefused = a, r
	return allowed, refused
}

// The bucket's time is kept in sixteenths of a nanosecond since the
// limiter was made, so that the interval between tokens stays exact to
// 0.1% up to 30 million calls per second, and the count lasts for 18
// years.
const rlShift = 4

func rlUnits(ns int64) int64 { return ns << rlShift }

func rlDuration(u int64) time.Duration { return time.Duration(u >> rlShift) }

// rlParams is one configuration of a bucket, immutable once made.
type rlParams struct {
	interval int64   // time units per token
	capacity int64   // time units of tokens the bucket holds when full
	rate     float64 // calls per second in force, as configured
	burst    float64 // capacity in calls, as configured
	share    float64 // the fraction of the configured limit in force
	disabled bool
}

func newRLParams(cfg RateLimitConfig, share float64) *rlParams {
	if cfg.Disabled {
		return &rlParams{disabled: true}
	}
	rate := max(cfg.Rate*share, minRate)
	interval := max(int64(math.Round(float64(time.Second<<rlShift)/rate)), 1)
	// The clock moves in steps of about a millisecond: a bucket that
	// cannot hold a step's worth of tokens would lose them.
	burst := max(float64(cfg.Burst)*share, 1, rate*coarseResolution.Seconds())
	return &rlParams{
		interval: interval,
		capacity: max(int64(math.Round(burst*float64(interval))), interval),
		rate:     rate,
		burst:    burst,
		share:    share,
	}
}

// tokenBucket is the state of one token bucket: the time at which it will be
// full again, its theoretical arrival time. A call is allowed when taking
// its token leaves that time at most capacity ahead of now.
type tokenBucket struct {
	tat     atomic.Int64
	allowed atomic.Uint64
}

// take takes one token at time now. When the bucket is empty it returns
// how long until a token is due.
func (b *tokenBucket) take(p *rlParams, now int64) (time.Duration, bool) {
	for {
		tat := b.tat.Load()
		next := max(tat, now) + p.interval
		if over := next - now - p.capacity; over > 0 {
			return rlDuration(over + 1<<rlShift - 1), false
		}
		if b.tat.CompareAndSwap(tat, next) {
			b.allowed.Add(1)
			return 0, true
		}
	}
}

// tokens returns how many tokens the bucket holds at time now.
func (b *tokenBucket) tokens(p *rlParams, now int64) float64 {
	return tokensAt(p, b.tat.Load(), now)
}

// tokensAt is how many tokens a bucket full again at tat holds at now.
func tokensAt(p *rlParams, tat, now int64) float64 {
	debt := max(tat-now, 0)
	return max(float64(p.capacity-debt)/float64(p.interval), 0)
}

// rescale moves the bucket from params old to p keeping the tokens it
// holds, up to p's size: a new limit or share never makes tokens of its
// own. A call taking a token with the old params at the same moment makes
// it off by that one token.
func (b *tokenBucket) rescale(old, p *rlParams, now int64) {
	for {
		tat := b.tat.Load()
		tokens := tokensAt(old, tat, now)
		debt := p.capacity - int64(math.Round(tokens*float64(p.interval)))
		next := now + min(max(debt, 0), p.capacity)
		if b.tat.CompareAndSwap(tat, next) {
			return
		}
	}
}

// rlRejections holds a limiter's refusals, one per wait they report, each
// made the first time it is needed: a refusal allocates nothing once the
// waits a limiter sees are made, and RetryAfter stays exact to the
// millisecond without state shared between refusals.
type rlRejections struct {
	name string
	mu   sync.Mutex
	tab  atomic.Pointer[[]atomic.Pointer[RejectedError]]
}

// get returns the refusal that suggests waiting wait.
func (r *rlRejections) get(wait time.Duration) *RejectedError {
	i, d := rejectionSlot(wait)
	if t := r.tab.Load(); t != nil && i < len(*t) {
		if e := (*t)[i].Load(); e != nil {
			return e
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tab.Load()
	if t == nil || i >= len(*t) {
		n := make([]atomic.Pointer[RejectedError], max(i+1, 16))
		if t != nil {
			for j := range *t {
				n[j].Store((*t)[j].Load())
			}
		}
		t = &n
		r.tab.Store(t)
	}
	e := (*t)[i].Load()
	if e == nil {
		e = &RejectedError{Endpoint: r.name, kind: ErrRateLimited, after: d}
		(*t)[i].Store(e)
	}
	return e
}

// rejectionSlot rounds wait up to the wait a refusal reports and returns
// that refusal's index: one per millisecond below 128ms, then 64 per
// doubling (each at most 1.6% above the waits it stands for).
func rejectionSlot(wait time.Duration) (int, time.Duration) {
	ms := max(int64((wait+time.Millisecond-1)/time.Millisecond), 1)
	if ms < 128 {
		return int(ms), time.Duration(ms) * time.Millisecond
	}
	shift := bits.Len64(uint64(ms)) - 7 // ms>>shift is in [64, 127]
	m := (ms + 1<<shift - 1) >> shift
	if m == 128 {
		shift, m = shift+1, 64
	}
	return 128 + (shift-1)*64 + int(m-64), time.Duration(m<<shift) * time.Millisecond
}

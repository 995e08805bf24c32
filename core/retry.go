package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// RetryConfig configures a Retry (the seed's RetryConfig). The zero value is
// the default policy: 3 attempts, waits of 100ms, 200ms, 400ms, … up to 30s,
// each spread ±10% at random. Every zero field takes the default written
// beside it.
type RetryConfig struct {
	// MaxAttempts is how many times fn may run in all, the first attempt
	// included. Default 3; 1 to 1,000.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry. Default 100ms;
	// 1µs to 24h.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait before jitter is applied, so that waits at
	// the cap still spread: a wait is at most MaxBackoff×(1+JitterFactor).
	// It also caps delays chosen by Delay. Default 30s, or InitialBackoff
	// when that is longer; InitialBackoff to 24h.
	MaxBackoff time.Duration
	// BackoffMultiplier grows the wait after each retry:
	// InitialBackoff×BackoffMultiplier^n before retry n+1. Default 2; 1 to 100.
	BackoffMultiplier float64
	// JitterFactor spreads each wait uniformly over ±JitterFactor of itself,
	// so that clients that failed together do not retry together. Default
	// 0.1; above 0 up to 1. Zero means the default: set NoJitter for waits
	// without jitter.
	JitterFactor float64
	// NoJitter turns jitter off. JitterFactor must then be 0.
	NoJitter bool

	// Retryable reports whether a failed attempt's error is worth another
	// attempt. Nil means DefaultRetryable.
	Retryable func(err error) bool
	// Delay, when set, may choose the wait after the attempt-th attempt
	// failed with err: it returns the wait and true, or false to use the
	// computed backoff. It is how a server's Retry-After is honoured. Its
	// wait gets no jitter and is capped at MaxBackoff; a negative wait
	// counts as zero.
	Delay func(attempt int, err error) (time.Duration, bool)
	// Budget, when set, caps retries to a share of first attempts. Share one
	// budget among the Retry values that call the same service.
	Budget *RetryBudget
}

// The seed's retry defaults.
const (
	DefaultMaxAttempts       = 3
	DefaultInitialBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff        = 30 * time.Second
	DefaultBackoffMultiplier = 2.0
	DefaultJitterFactor      = 0.1
)

// ErrRetryDeadline is returned, joined with the last attempt's error, when
// Retry gives up because the next wait would end after the context's
// deadline. It matches context.DeadlineExceeded as well: the call could not
// have succeeded in time.
var ErrRetryDeadline error = retryDeadlineError{}

type retryDeadlineError struct{}

func (retryDeadlineError) Error() string {
	return "bulwark: retry gave up: the next wait would pass the context deadline"
}

func (retryDeadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

var errNilFunc = errors.New("bulwark: Retry.Do called with a nil function")

// DefaultRetryable retries every error except a context's cancellation or
// deadline (the caller gave up, so another attempt cannot help) and a
// circuit breaker's rejection (retrying it would hammer an open breaker).
func DefaultRetryable(err error) bool {
	return !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, ErrOpen) &&
		!errors.Is(err, ErrForcedOpen) &&
		!errors.Is(err, ErrTooManyProbes)
}

// Validate reports every field that is out of range, each as a *ConfigError
// naming the field and what it allows.
func (c RetryConfig) Validate() error {
	v := rangeCheck{prefix: "RetryConfig."}
	v.int("MaxAttempts", c.MaxAttempts, 1, 1000, "3")
	v.duration("InitialBackoff", c.InitialBackoff, time.Microsecond, 24*time.Hour, "100ms")
	v.duration("MaxBackoff", c.MaxBackoff, time.Microsecond, 24*time.Hour, "30s")
	v.float("BackoffMultiplier", c.BackoffMultiplier, 1, 100, "2")
	v.float("JitterFactor", c.JitterFactor, 1e-9, 1, "0.1; set NoJitter for none")
	if c.NoJitter && c.JitterFactor != 0 {
		v.fail("JitterFactor", c.JitterFactor, "must be 0 when NoJitter is set")
	}
	if len(v.errs) > 0 {
		return v.err()
	}
	if d := c.withDefaults(); d.MaxBackoff < d.InitialBackoff {
		v.fail("MaxBackoff", c.MaxBackoff, "must be at least InitialBackoff ("+d.InitialBackoff.String()+")")
	}
	return v.err()
}

func (c RetryConfig) withDefaults() RetryConfig {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = DefaultInitialBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.InitialBackoff)
	}
	if c.BackoffMultiplier == 0 {
		c.BackoffMultiplier = DefaultBackoffMultiplier
	}
	if c.JitterFactor == 0 && !c.NoJitter {
		c.JitterFactor = DefaultJitterFactor
	}
	if c.Retryable == nil {
		c.Retryable = DefaultRetryable
	}
	return c
}

// Retry runs a function again when it fails, with exponential backoff and
// jitter; with a circuit breaker attached it is the seed's
// CircuitBreakerAwareRetry. It is safe for concurrent use and holds no
// per-call state. Make one with NewRetry; the zero value is not usable.
//
// With a breaker, every attempt asks the breaker first and reports its
// outcome to it, and the retries stop as soon as the breaker rejects.
type Retry struct {
	cfg     RetryConfig
	clock   Clock
	breaker *Breaker
	stats   *retryStats
	// rnd, when set by a test, replaces the global source of jitter. It is
	// not safe for concurrent use.
	rnd *rand.Rand
}

type retryStats struct {
	first               atomic.Uint64 // first attempts: the one hot counter
	_                   cacheLinePad
	unstarted           atomic.Uint64 // calls whose context was done on entry
	retries             atomic.Uint64
	successesAfterRetry atomic.Uint64
	exhausted           atomic.Uint64
	abortedByBreaker    atomic.Uint64
	rejected            atomic.Uint64
	budgetDenied        atomic.Uint64
	deadline            atomic.Uint64
	stopped             atomic.Uint64
}

// RetryStats counts what a Retry did since it was made.
type RetryStats struct {
	// Calls is how many times Do was called.
	Calls uint64 `json:"calls"`
	// Attempts is how many times fn ran, first attempts and retries.
	Attempts uint64 `json:"attempts"`
	// Retries is how many of the attempts were retries.
	Retries uint64 `json:"retries"`
	// SuccessesAfterRetry is how many calls succeeded on a retry.
	SuccessesAfterRetry uint64 `json:"successes_after_retry"`
	// Exhausted is how many calls failed on their last allowed attempt.
	Exhausted uint64 `json:"exhausted"`
	// AbortedByBreaker is how many calls stopped retrying because the
	// breaker rejected the next attempt.
	AbortedByBreaker uint64 `json:"aborted_by_breaker"`
	// Rejected is how many calls the breaker rejected before their first
	// attempt: fn never ran.
	Rejected uint64 `json:"rejected"`
	// BudgetDenied is how many calls stopped because the retry budget was
	// spent.
	BudgetDenied uint64 `json:"budget_denied"`
	// DeadlineGiveUps is how many calls stopped early because the next wait
	// would have passed the context's deadline.
	DeadlineGiveUps uint64 `json:"deadline_give_ups"`
	// Stopped is how many calls stopped because their context had ended,
	// before their first attempt or between attempts.
	Stopped uint64 `json:"stopped"`
}

// NewRetry returns a Retry, or a *ConfigError when cfg is invalid. Of the
// options only WithClock applies: waits use the clock's timers.
func NewRetry(cfg RetryConfig, opts ...Option) (*Retry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := applyOptions(opts)
	return &Retry{cfg: cfg.withDefaults(), clock: d.clock, stats: new(retryStats)}, nil
}

// WithBreaker returns a copy of r whose attempts go through b (the seed's
// with_circuit_breaker); a nil b detaches the breaker. The copy shares r's
// configuration, budget and statistics. To pick the breaker per call
// without a copy, use DoWithBreaker.
func (r *Retry) WithBreaker(b *Breaker) *Retry {
	c := *r
	c.breaker = b
	return &c
}

// Breaker returns the attached breaker, or nil.
func (r *Retry) Breaker() *Breaker { return r.breaker }

// Config returns the configuration with every default filled in.
func (r *Retry) Config() RetryConfig { return r.cfg }

// Stats returns the counts so far.
func (r *Retry) Stats() RetryStats {
	s := r.stats
	first, unstarted := s.first.Load(), s.unstarted.Load()
	st := RetryStats{
		Retries:             s.retries.Load(),
		SuccessesAfterRetry: s.successesAfterRetry.Load(),
		Exhausted:           s.exhausted.Load(),
		AbortedByBreaker:    s.abortedByBreaker.Load(),
		Rejected:            s.rejected.Load(),
		BudgetDenied:        s.budgetDenied.Load(),
		DeadlineGiveUps:     s.deadline.Load(),
		Stopped:             s.stopped.Load() + unstarted,
	}
	st.Attempts = first + st.Retries
	st.Calls = first + st.Rejected + unstarted
	return st
}

// Do runs fn until it succeeds, fails with an error that Retryable refuses,
// or runs out of attempts, waiting between attempts (the seed's execute). It
// returns nil on success and otherwise the last attempt's error, except:
//
//   - ctx is already done: ctx.Err(), and fn never runs;
//   - the breaker rejects the first attempt: its *RejectedError, and fn
//     never runs;
//   - the breaker rejects a later attempt: errors.Join of the
//     *RejectedError and the last attempt's error;
//   - the next wait would pass ctx's deadline: an error matching
//     ErrRetryDeadline, context.DeadlineExceeded and the last error;
//   - ctx ends while waiting: an error matching ctx.Err() and the last
//     error. Do returns at once; it does not wait for the timer.
//
// When the retry budget is spent, Do returns the last error without
// retrying. fn receives ctx unchanged.
func (r *Retry) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return r.do(ctx, r.breaker, fn)
}

// DoWithBreaker is Do with b in place of the attached breaker; a nil b runs
// without one. It suits a caller that picks the breaker per call (per host,
// say) and shares one Retry.
func (r *Retry) DoWithBreaker(ctx context.Context, b *Breaker, fn func(ctx context.Context) error) error {
	return r.do(ctx, b, fn)
}

// do is kept small: the first attempt costs a context check, one atomic
// add and, with a breaker, its permit; everything a failure needs is in
// retry.
func (r *Retry) do(ctx context.Context, b *Breaker, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errNilFunc
	}
	if err := ctx.Err(); err != nil {
		r.stats.unstarted.Add(1)
		return err
	}
	if r.cfg.Budget != nil {
		r.cfg.Budget.recordFirst()
	}
	var err error
	if b == nil {
		r.stats.first.Add(1)
		err = fn(ctx)
	} else {
		p, rej := b.Allow()
		if rej != nil {
			r.stats.rejected.Add(1)
			return rej
		}
		r.stats.first.Add(1)
		err = p.run(ctx, fn)
	}
	if err == nil {
		return nil
	}
	return r.retry(ctx, b, fn, err)
}

// retry carries on after the first attempt failed with err.
func (r *Retry) retry(ctx context.Context, b *Breaker, fn func(ctx context.Context) error, err error) error {
	s := r.stats
	for attempt := 1; ; attempt++ {
		if !r.cfg.Retryable(err) {
			return err
		}
		if attempt >= r.cfg.MaxAttempts {
			s.exhausted.Add(1)
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			s.stopped.Add(1)
			return fmt.Errorf("bulwark: retry stopped: %w; last error: %w", cerr, err)
		}
		wait := r.wait(attempt, err)
		if deadline, ok := ctx.Deadline(); ok {
			// Context deadlines run on the real clock, whatever r.clock is.
			if left := time.Until(deadline); wait >= left {
				s.deadline.Add(1)
				return fmt.Errorf("%w (wait %v, %v left); last error: %w", ErrRetryDeadline, wait, max(left, 0).Round(time.Millisecond), err)
			}
		}
		if b != nil {
			if rej := rejectionAhead(b, wait); rej != nil {
				s.abortedByBreaker.Add(1)
				return errors.Join(rej, err)
			}
		}
		if r.cfg.Budget != nil && !r.cfg.Budget.tryRetry() {
			s.budgetDenied.Add(1)
			return err
		}
		if wait > 0 {
			if cerr := r.sleep(ctx, wait); cerr != nil {
				s.stopped.Add(1)
				return fmt.Errorf("bulwark: retry stopped: %w; last error: %w", cerr, err)
			}
		}
		if b == nil {
			s.retries.Add(1)
			err = fn(ctx)
		} else {
			p, rej := b.Allow()
			if rej != nil {
				s.abortedByBreaker.Add(1)
				return errors.Join(rej, err)
			}
			s.retries.Add(1)
			err = p.run(ctx, fn)
		}
		if err == nil {
			s.successesAfterRetry.Add(1)
			return nil
		}
	}
}

// rejectionAhead returns the breaker's rejection when it is open and will
// still be open after wait, so that Do stops now instead of sleeping only to
// be rejected.
func rejectionAhead(b *Breaker, wait time.Duration) error {
	switch b.State() {
	case ForcedOpen:
	case Open:
		if b.RetryAfter() <= wait {
			return nil
		}
	default:
		return nil
	}
	return b.rejection()
}

// wait returns the wait before the retry that follows the attempt-th
// attempt.
func (r *Retry) wait(attempt int, err error) time.Duration {
	if r.cfg.Delay != nil {
		if d, ok := r.cfg.Delay(attempt, err); ok {
			return min(max(d, 0), r.cfg.MaxBackoff)
		}
	}
	return r.backoff(attempt - 1)
}

// backoff returns the wait before retry n+1 (n from 0): the exponential base
// is capped first and jittered after, so that waits at the cap still spread.
func (r *Retry) backoff(n int) time.Duration {
	limit := float64(r.cfg.MaxBackoff)
	base := float64(r.cfg.InitialBackoff) * math.Pow(r.cfg.BackoffMultiplier, float64(n))
	if !(base < limit) { // also catches +Inf and NaN
		base = limit
	}
	if j := r.cfg.JitterFactor; j > 0 {
		base *= 1 + j*(2*r.random()-1)
	}
	return time.Duration(base)
}

func (r *Retry) random() float64 {
	if r.rnd != nil {
		return r.rnd.Float64()
	}
	return rand.Float64()
}

// sleep waits d on r's clock, or until ctx ends, whichever comes first.
func (r *Retry) sleep(ctx context.Context, d time.Duration) error {
	t := r.clock.NewTimer(d)
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

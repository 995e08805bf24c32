package core

import (
	"context"
	"errors"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/backoff"
	"github.com/bulwark-go/bulwark/internal/check"
)

// RetryConfig configures a Retry. The zero value is
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
	// failed with err: it returns the wait and true, or false to go on.
	// Next, an error with a method RetryAfter() (time.Duration, bool) that
	// reports true chooses the wait itself: it is how a server's
	// Retry-After is honoured. Otherwise the computed backoff applies. A
	// chosen wait gets no jitter and is capped at MaxBackoff; a negative
	// wait counts as zero.
	Delay func(attempt int, err error) (time.Duration, bool)
	// Budget, when set, caps retries to a share of first attempts. Share one
	// budget among the Retry values that call the same service.
	Budget *RetryBudget
	// Breaker, when set, is asked before every attempt of Do and told each
	// attempt's outcome; retries stop as soon as it rejects. A Manager sets
	// its endpoint's breaker.
	Breaker *Breaker
	// Clock times the waits. Nil means SystemClock. A Manager sets its own.
	Clock Clock
}

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
//
// An error can also speak for itself: one with a method Retryable() bool
// (found with errors.As) is retried only when that says true.
func DefaultRetryable(err error) bool {
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	return !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, ErrOpen) &&
		!errors.Is(err, ErrForcedOpen) &&
		!errors.Is(err, ErrTooManyProbes)
}

// serverDelay is the method of an error that says when to try again, as a
// server's Retry-After does.
type serverDelay interface {
	RetryAfter() (time.Duration, bool)
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg RetryConfig) normalize(c *check.Checker) RetryConfig {
	given := cfg
	c.Int("MaxAttempts", &cfg.MaxAttempts, 3, 1, 1000)
	c.Duration("InitialBackoff", &cfg.InitialBackoff, 100*time.Millisecond, time.Microsecond, 24*time.Hour)
	c.Float("BackoffMultiplier", &cfg.BackoffMultiplier, 2, 1, 100)
	if cfg.NoJitter {
		if cfg.JitterFactor != 0 {
			c.Fail("JitterFactor", cfg.JitterFactor, "must be 0 when NoJitter is set")
		}
	} else {
		c.Float("JitterFactor", &cfg.JitterFactor, 0.1, 1e-9, 1)
	}
	initial := cfg.InitialBackoff
	if initial < time.Microsecond || initial > 24*time.Hour {
		initial = 100 * time.Millisecond
	}
	if given.MaxBackoff == 0 {
		cfg.MaxBackoff = max(30*time.Second, initial)
	} else if cfg.MaxBackoff < initial || cfg.MaxBackoff > 24*time.Hour {
		c.Fail("MaxBackoff", cfg.MaxBackoff, "must be between InitialBackoff ("+initial.String()+") and 24h0m0s (0 means the default, 30s)")
	}
	if cfg.Retryable == nil {
		cfg.Retryable = DefaultRetryable
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return cfg
}

// Retry runs a function again when it fails, with exponential backoff and
// jitter; with a circuit breaker attached (RetryConfig.Breaker) it stops
// as soon as the breaker refuses. It is safe for concurrent use and holds no
// per-call state. Make one with NewRetry; the zero value is not usable.
//
// With a breaker, every attempt asks the breaker first and reports its
// outcome to it, and the retries stop as soon as the breaker rejects.
type Retry struct {
	cfg     RetryConfig
	backoff backoff.Policy
	stats   *retryStats // shared with the Retry that replaces it on reconfiguration
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

// NewRetry returns a Retry, or every field of cfg that is out of range as
// *ConfigError values.
func NewRetry(cfg RetryConfig) (*Retry, error) {
	c := newChecker("core.RetryConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newRetry(cfg, nil), nil
}

// newRetry builds a Retry from a normalized configuration; stats is the
// counters to continue, or nil for new ones.
func newRetry(cfg RetryConfig, stats *retryStats) *Retry {
	if stats == nil {
		stats = new(retryStats)
	}
	return &Retry{cfg: cfg, stats: stats, backoff: backoff.Policy{
		Initial: cfg.InitialBackoff, Max: cfg.MaxBackoff, Multiplier: cfg.BackoffMultiplier, Jitter: cfg.JitterFactor,
	}}
}

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
// or runs out of attempts, waiting between attempts. It
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
	return r.do(ctx, r.cfg.Breaker, fn)
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
	case events.ForcedOpen:
	case events.Open:
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
	var sd serverDelay
	if errors.As(err, &sd) {
		if d, ok := sd.RetryAfter(); ok {
			return min(max(d, 0), r.cfg.MaxBackoff)
		}
	}
	return r.backoff.Wait(attempt-1, r.random())
}

func (r *Retry) random() float64 {
	if r.rnd != nil {
		return r.rnd.Float64()
	}
	return rand.Float64()
}

// sleep waits d on r's clock, or until ctx ends, whichever comes first.
func (r *Retry) sleep(ctx context.Context, d time.Duration) error {
	t := r.cfg.Clock.NewTimer(d)
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

var errBoom = errors.New("boom")

// waitLimit bounds how long a test waits in real time for a goroutine to
// reach a fake timer; it is never reached when the code works.
const waitLimit = 5 * time.Second

func newTestRetry(t *testing.T, cfg RetryConfig, clock Clock) *Retry {
	t.Helper()
	cfg.Clock = clock
	r, err := NewRetry(cfg)
	if err != nil {
		t.Fatalf("NewRetry: %v", err)
	}
	return r
}

func newFake() *FakeClock { return NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)) }

// failN returns a function that fails its first n calls and counts them all.
func failN(n int64, calls *atomic.Int64) func(context.Context) error {
	return func(context.Context) error {
		if calls.Add(1) <= n {
			return errBoom
		}
		return nil
	}
}

// runAsync runs Do in a goroutine and returns its result channel.
func runAsync(ctx context.Context, r *Retry, fn func(context.Context) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Do(ctx, fn) }()
	return done
}

func recv(t *testing.T, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(waitLimit):
		t.Fatal("Do did not return")
		return nil
	}
}

// advanceTimer waits for Do to start waiting, then moves the clock by d.
func advanceTimer(t *testing.T, clock *FakeClock, d time.Duration) {
	t.Helper()
	if !clock.WaitForTimers(1, waitLimit) {
		t.Fatal("Do never started to wait")
	}
	clock.Advance(d)
}

func TestRetryConfigNamesTheField(t *testing.T) {
	if _, err := NewRetry(RetryConfig{}); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	cases := []struct {
		name  string
		cfg   RetryConfig
		field string
	}{
		{"attempts", RetryConfig{MaxAttempts: -1}, "MaxAttempts"},
		{"attempts high", RetryConfig{MaxAttempts: 1001}, "MaxAttempts"},
		{"initial", RetryConfig{InitialBackoff: -time.Second}, "InitialBackoff"},
		{"max", RetryConfig{MaxBackoff: 25 * time.Hour}, "MaxBackoff"},
		{"max below initial", RetryConfig{MaxBackoff: 50 * time.Millisecond}, "MaxBackoff"},
		{"multiplier", RetryConfig{BackoffMultiplier: 0.5}, "BackoffMultiplier"},
		{"jitter", RetryConfig{JitterFactor: 1.5}, "JitterFactor"},
		{"jitter negative", RetryConfig{JitterFactor: -0.1}, "JitterFactor"},
		{"jitter NaN", RetryConfig{JitterFactor: math.NaN()}, "JitterFactor"},
		{"jitter and none", RetryConfig{JitterFactor: 0.2, NoJitter: true}, "JitterFactor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewRetry(c.cfg)
			want := "core.RetryConfig." + c.field
			ces := configErrors(err)
			if r != nil || len(ces) != 1 || ces[0].Field != want || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewRetry = %v, want one *ConfigError for %s", err, want)
			}
		})
	}
}

func TestRetryDefaults(t *testing.T) {
	r := newTestRetry(t, RetryConfig{}, newFake())
	c := r.cfg
	if c.MaxAttempts != 3 || c.InitialBackoff != 100*time.Millisecond || c.MaxBackoff != 30*time.Second ||
		c.BackoffMultiplier != 2 || c.JitterFactor != 0.1 || c.Retryable == nil {
		t.Fatalf("defaults = %+v", c)
	}
	if c := newTestRetry(t, RetryConfig{NoJitter: true}, newFake()).cfg; c.JitterFactor != 0 {
		t.Fatalf("NoJitter left JitterFactor %v", c.JitterFactor)
	}
	// MaxBackoff defaults to InitialBackoff when that is longer than 30s.
	if c := newTestRetry(t, RetryConfig{InitialBackoff: time.Minute}, newFake()).cfg; c.MaxBackoff != time.Minute {
		t.Fatalf("MaxBackoff = %v, want InitialBackoff", c.MaxBackoff)
	}
	if r, _ := NewRetry(RetryConfig{}); r.cfg.Clock != SystemClock() || r.cfg.Breaker != nil {
		t.Fatalf("Clock/Breaker defaults %+v", r.cfg)
	}
}

func TestRetryBackoffSequence(t *testing.T) {
	r := newTestRetry(t, RetryConfig{NoJitter: true, MaxBackoff: time.Second}, newFake())
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for n, w := range want {
		if got := r.wait(n+1, errBoom); got != w*time.Millisecond {
			t.Errorf("wait after attempt %d = %v, want %v", n, got, w*time.Millisecond)
		}
	}
	// Huge exponents must not overflow past the cap.
	if got := r.wait(10_001, errBoom); got != time.Second {
		t.Errorf("wait(10001) = %v, want the cap", got)
	}
}

func TestRetryJitterBoundsAndSpread(t *testing.T) {
	const j, samples = 0.1, 20_000
	r := newTestRetry(t, RetryConfig{MaxBackoff: time.Second}, newFake())
	r.rnd = rand.New(rand.NewPCG(1, 2))
	for n, d := range map[int]time.Duration{0: 100 * time.Millisecond, 2: 400 * time.Millisecond, 30: time.Second} {
		base := float64(d) // at n=30 the cap: jitter must still spread it
		lo, hi := base*(1-j), base*(1+j)
		var sum float64
		minD, maxD, above := math.Inf(1), 0.0, 0
		for range samples {
			d := float64(r.wait(n+1, errBoom))
			if d < lo || d > hi {
				t.Fatalf("wait after attempt %d = %v outside [%v, %v]", n, time.Duration(d), time.Duration(lo), time.Duration(hi))
			}
			sum += d
			minD, maxD = min(minD, d), max(maxD, d)
			if d > base {
				above++
			}
		}
		// Uniform over ±10%: the mean sits on the base and the samples
		// reach close to both ends, at the cap too (not clamped there).
		if mean := sum / samples; math.Abs(mean-base)/base > 0.005 {
			t.Errorf("n=%d: mean %v, want about %v", n, time.Duration(mean), time.Duration(base))
		}
		if minD > base*(1-0.98*j) || maxD < base*(1+0.98*j) {
			t.Errorf("n=%d: samples span [%v, %v], want nearly [%v, %v]", n, time.Duration(minD), time.Duration(maxD), time.Duration(lo), time.Duration(hi))
		}
		if frac := float64(above) / samples; math.Abs(frac-0.5) > 0.02 {
			t.Errorf("n=%d: %.3f of samples above the base, want about half", n, frac)
		}
	}
}

func TestRetrySucceedsAfterRetries(t *testing.T) {
	clock := newFake()
	r := newTestRetry(t, RetryConfig{MaxAttempts: 4, NoJitter: true}, clock)
	var calls atomic.Int64
	done := runAsync(t.Context(), r, failN(2, &calls))
	advanceTimer(t, clock, 100*time.Millisecond)
	// The second wait is twice the first: 199ms is not enough.
	advanceTimer(t, clock, 199*time.Millisecond)
	if calls.Load() != 2 {
		t.Fatalf("retried before its wait was over: %d calls", calls.Load())
	}
	clock.Advance(time.Millisecond)
	if err := recv(t, done); err != nil {
		t.Fatalf("Do = %v", err)
	}
	st := r.Stats()
	if calls.Load() != 3 || st.Attempts != 3 || st.Retries != 2 || st.SuccessesAfterRetry != 1 || st.Calls != 1 || st.Exhausted != 0 {
		t.Fatalf("calls %d, stats %+v", calls.Load(), st)
	}
}

func TestRetryExhausted(t *testing.T) {
	clock := newFake()
	r := newTestRetry(t, RetryConfig{NoJitter: true}, clock)
	var calls atomic.Int64
	done := runAsync(t.Context(), r, failN(100, &calls))
	advanceTimer(t, clock, 100*time.Millisecond)
	advanceTimer(t, clock, 200*time.Millisecond)
	if err := recv(t, done); err != errBoom {
		t.Fatalf("Do = %v, want the last error itself", err)
	}
	if st := r.Stats(); calls.Load() != 3 || st.Exhausted != 1 || st.Attempts != 3 {
		t.Fatalf("calls %d, stats %+v", calls.Load(), st)
	}
}

func TestRetryNotRetryable(t *testing.T) {
	clock := newFake()
	errFatal := errors.New("fatal")
	r := newTestRetry(t, RetryConfig{Retryable: func(err error) bool { return err != errFatal }}, clock)
	var calls atomic.Int64
	err := r.Do(t.Context(), func(context.Context) error { calls.Add(1); return errFatal })
	if err != errFatal || calls.Load() != 1 {
		t.Fatalf("Do = %v after %d calls", err, calls.Load())
	}

	// By default context errors and breaker rejections are final.
	for _, e := range []error{context.Canceled, context.DeadlineExceeded, ErrOpen, ErrForcedOpen, ErrTooManyProbes, ErrRetryDeadline} {
		if DefaultRetryable(e) {
			t.Errorf("DefaultRetryable(%v) = true", e)
		}
	}
	if !DefaultRetryable(errBoom) {
		t.Error("DefaultRetryable(errBoom) = false")
	}
}

func TestRetryGivesUpBeforeDeadline(t *testing.T) {
	clock := newFake()
	r := newTestRetry(t, RetryConfig{NoJitter: true, InitialBackoff: 2 * time.Minute}, clock)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var calls atomic.Int64
	err := r.Do(ctx, failN(100, &calls))
	if !errors.Is(err, ErrRetryDeadline) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errBoom) {
		t.Fatalf("Do = %v, want ErrRetryDeadline joined with the last error", err)
	}
	if calls.Load() != 1 || clock.Timers() != 0 || r.Stats().DeadlineGiveUps != 1 {
		t.Fatalf("calls %d, timers %d, stats %+v", calls.Load(), clock.Timers(), r.Stats())
	}
	t.Log(err)
}

func TestRetryWaitsWhenDeadlineAllows(t *testing.T) {
	clock := newFake()
	r := newTestRetry(t, RetryConfig{NoJitter: true}, clock)
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	var calls atomic.Int64
	done := runAsync(ctx, r, failN(1, &calls))
	advanceTimer(t, clock, 100*time.Millisecond)
	if err := recv(t, done); err != nil {
		t.Fatalf("Do = %v", err)
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	clock := newFake()
	r := newTestRetry(t, RetryConfig{InitialBackoff: time.Hour, MaxBackoff: time.Hour}, clock)
	ctx, cancel := context.WithCancel(t.Context())
	var calls atomic.Int64
	done := runAsync(ctx, r, failN(100, &calls))
	if !clock.WaitForTimers(1, waitLimit) {
		t.Fatal("Do never started to wait")
	}
	cancel()
	err := recv(t, done)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) {
		t.Fatalf("Do = %v, want context.Canceled and the last error", err)
	}
	if calls.Load() != 1 || clock.Timers() != 0 || r.Stats().Stopped != 1 {
		t.Fatalf("calls %d, timers left %d, stats %+v", calls.Load(), clock.Timers(), r.Stats())
	}

	// A context already done never runs fn.
	calls.Store(0)
	err = r.Do(ctx, failN(100, &calls))
	if err != context.Canceled || calls.Load() != 0 {
		t.Fatalf("Do on a dead context = %v after %d calls", err, calls.Load())
	}
	if st := r.Stats(); st.Calls != 2 || st.Stopped != 2 || st.Attempts != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A context that ends during an attempt stops the retries at once.
	ctx, cancel = context.WithCancel(t.Context())
	calls.Store(0)
	err = r.Do(ctx, func(context.Context) error { calls.Add(1); cancel(); return errBoom })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) || calls.Load() != 1 {
		t.Fatalf("Do = %v after %d calls", err, calls.Load())
	}
}

func TestRetryDelayHook(t *testing.T) {
	clock := newFake()
	var gotAttempt int
	var gotErr error
	r := newTestRetry(t, RetryConfig{
		MaxBackoff: 2 * time.Second,
		Delay: func(attempt int, err error) (time.Duration, bool) {
			gotAttempt, gotErr = attempt, err
			return time.Minute, true // a server asking for more than the cap
		},
	}, clock)
	var calls atomic.Int64
	done := runAsync(t.Context(), r, failN(1, &calls))
	advanceTimer(t, clock, 2*time.Second-time.Nanosecond)
	if calls.Load() != 1 {
		t.Fatal("retried before the capped server delay was over")
	}
	clock.Advance(time.Nanosecond)
	if err := recv(t, done); err != nil {
		t.Fatalf("Do = %v", err)
	}
	if gotAttempt != 1 || gotErr != errBoom {
		t.Fatalf("Delay got (%d, %v)", gotAttempt, gotErr)
	}

	// Declining falls back to the backoff; a zero delay retries at once.
	r = newTestRetry(t, RetryConfig{Delay: func(int, error) (time.Duration, bool) { return -time.Second, true }}, clock)
	calls.Store(0)
	if err := r.Do(t.Context(), failN(2, &calls)); err != nil || calls.Load() != 3 {
		t.Fatalf("zero delay: Do = %v after %d calls", err, calls.Load())
	}
}

// errAfter is an error that says when to come back, as a 429 or 503 with
// Retry-After does.
type errAfter struct {
	after time.Duration
	ok    bool
}

func (e errAfter) Error() string                     { return "busy" }
func (e errAfter) RetryAfter() (time.Duration, bool) { return e.after, e.ok }

func TestRetryErrorChoosesItsDelay(t *testing.T) {
	clock := newFake()
	r := newTestRetry(t, RetryConfig{NoJitter: true, MaxBackoff: time.Minute}, clock)
	if got := r.wait(1, fmt.Errorf("wrapped: %w", errAfter{7 * time.Second, true})); got != 7*time.Second {
		t.Fatalf("wait for an error asking 7s = %v", got)
	}
	if got := r.wait(1, errAfter{time.Hour, true}); got != time.Minute {
		t.Fatalf("wait for an error asking an hour = %v, want MaxBackoff", got)
	}
	if got := r.wait(1, errAfter{-time.Second, true}); got != 0 {
		t.Fatalf("negative wait = %v", got)
	}
	if got := r.wait(1, errAfter{time.Hour, false}); got != 100*time.Millisecond {
		t.Fatalf("an error that does not say = %v, want the backoff", got)
	}
	// Delay decides first.
	r = newTestRetry(t, RetryConfig{NoJitter: true, Delay: func(int, error) (time.Duration, bool) { return time.Second, true }}, clock)
	if got := r.wait(1, errAfter{7 * time.Second, true}); got != time.Second {
		t.Fatalf("Delay and an error both choose: %v, want Delay's", got)
	}
}

type errRetryable bool

func (e errRetryable) Error() string   { return "speaks for itself" }
func (e errRetryable) Retryable() bool { return bool(e) }

func TestDefaultRetryableAsksTheError(t *testing.T) {
	if DefaultRetryable(errRetryable(false)) || !DefaultRetryable(fmt.Errorf("x: %w", errRetryable(true))) {
		t.Fatal("the error's own Retryable was not asked")
	}
}

func TestRetryNilFunc(t *testing.T) {
	r := newTestRetry(t, RetryConfig{}, newFake())
	if err := r.Do(t.Context(), nil); err == nil {
		t.Fatal("Do(nil) = nil")
	}
}

func newRetryBreaker(t *testing.T, cfg BreakerConfig, clock Clock) *Breaker {
	t.Helper()
	cfg.Name, cfg.Clock = "api", clock
	b, err := NewBreaker(cfg)
	if err != nil {
		t.Fatalf("NewBreaker: %v", err)
	}
	return b
}

func TestRetryBreakerRecordsAttempts(t *testing.T) {
	clock := newFake()
	b := newRetryBreaker(t, BreakerConfig{}, clock)
	r := newTestRetry(t, RetryConfig{NoJitter: true, Breaker: b}, clock)
	if r.cfg.Breaker != b {
		t.Fatal("RetryConfig.Breaker was not kept")
	}
	var calls atomic.Int64
	done := runAsync(t.Context(), r, failN(1, &calls))
	advanceTimer(t, clock, 100*time.Millisecond)
	if err := recv(t, done); err != nil {
		t.Fatalf("Do = %v", err)
	}
	s := b.Snapshot()
	if s.TotalRequests != 2 || s.FailedRequests != 1 || s.SuccessfulRequests != 1 {
		t.Fatalf("breaker saw %+v", s)
	}
}

func TestRetryBreakerRejectsFirstAttempt(t *testing.T) {
	clock := newFake()
	b := newRetryBreaker(t, BreakerConfig{}, clock)
	b.ForceOpen("maintenance")
	r := newTestRetry(t, RetryConfig{Breaker: b}, clock)
	var calls atomic.Int64
	err := r.Do(t.Context(), failN(0, &calls))
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrOpen) || calls.Load() != 0 {
		t.Fatalf("Do = %v after %d calls, want the rejection and no call", err, calls.Load())
	}
	if st := r.Stats(); st.Rejected != 1 || st.Calls != 1 || st.Attempts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRetryAbortsWhenBreakerOpens(t *testing.T) {
	clock := newFake()
	// Two failures open the breaker for a minute, far longer than the
	// backoff: the retry stops at once instead of waiting to be rejected.
	b := newRetryBreaker(t, BreakerConfig{FailureThreshold: 2, Timeout: time.Minute}, clock)
	r := newTestRetry(t, RetryConfig{MaxAttempts: 10, NoJitter: true, Breaker: b}, clock)
	var calls atomic.Int64
	done := runAsync(t.Context(), r, failN(100, &calls))
	advanceTimer(t, clock, 100*time.Millisecond)
	err := recv(t, done)
	if !errors.Is(err, ErrOpen) || !errors.Is(err, errBoom) {
		t.Fatalf("Do = %v, want the rejection joined with the last failure", err)
	}
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.Endpoint != "api" {
		t.Fatalf("no *RejectedError in %v", err)
	}
	if st := r.Stats(); calls.Load() != 2 || st.AbortedByBreaker != 1 || st.Exhausted != 0 {
		t.Fatalf("calls %d, stats %+v", calls.Load(), st)
	}
	if clock.Timers() != 0 {
		t.Fatalf("%d timers left", clock.Timers())
	}
}

func TestRetryAbortsWhenBreakerOpensDuringWait(t *testing.T) {
	clock := newFake()
	b := newRetryBreaker(t, BreakerConfig{}, clock)
	r := newTestRetry(t, RetryConfig{NoJitter: true, Breaker: b}, clock)
	var calls atomic.Int64
	done := runAsync(t.Context(), r, failN(100, &calls))
	if !clock.WaitForTimers(1, waitLimit) {
		t.Fatal("Do never started to wait")
	}
	b.Trip("tripped by a test")
	clock.Advance(100 * time.Millisecond)
	err := recv(t, done)
	if !errors.Is(err, ErrOpen) || !errors.Is(err, errBoom) || calls.Load() != 1 {
		t.Fatalf("Do = %v after %d calls", err, calls.Load())
	}
}

func TestRetryBreakerRejectionIsNotRetried(t *testing.T) {
	clock := newFake()
	inner := newRetryBreaker(t, BreakerConfig{}, clock)
	inner.ForceOpen("down")
	r := newTestRetry(t, RetryConfig{}, clock)
	var calls atomic.Int64
	err := r.Do(t.Context(), func(ctx context.Context) error {
		calls.Add(1)
		return inner.Execute(ctx, func(context.Context) error { return nil })
	})
	if !errors.Is(err, ErrOpen) || calls.Load() != 1 {
		t.Fatalf("Do = %v after %d calls, want one call", err, calls.Load())
	}
}

func TestRetryPanicReportsFailure(t *testing.T) {
	clock := newFake()
	b := newRetryBreaker(t, BreakerConfig{}, clock)
	r := newTestRetry(t, RetryConfig{Breaker: b}, clock)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = r.Do(t.Context(), func(context.Context) error { panic("oops") })
	}()
	if s := b.Snapshot(); s.FailedRequests != 1 {
		t.Fatalf("breaker saw %+v", s)
	}
}

func TestRetryBudget(t *testing.T) {
	clock := newFake()
	budget, err := NewRetryBudget(RetryBudgetConfig{Ratio: 0.5, NoMinRetries: true, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	immediate := func(int, error) (time.Duration, bool) { return 0, true }
	r := newTestRetry(t, RetryConfig{MaxAttempts: 2, Budget: budget, Delay: immediate}, clock)
	var calls atomic.Int64
	for range 10 {
		if err := r.Do(t.Context(), failN(1000, &calls)); err != errBoom {
			t.Fatalf("Do = %v, want the last error", err)
		}
	}
	// Half a retry is earned per call: every second call may retry.
	st := r.Stats()
	if st.Retries != 5 || st.BudgetDenied != 5 || calls.Load() != 15 {
		t.Fatalf("calls %d, stats %+v", calls.Load(), st)
	}
	if bs := budgetStats(budget); bs.firstAttempts != 10 || bs.retries != 5 || bs.allowed != 5 {
		t.Fatalf("budget counts %+v", bs)
	}

	// Once the window has passed, the spent retries are forgotten; so are
	// the first attempts that earned them.
	clock.Advance(10 * time.Second)
	if bs := budgetStats(budget); bs.firstAttempts != 0 || bs.retries != 0 {
		t.Fatalf("after the window: %+v", bs)
	}
	calls.Store(0)
	_ = r.Do(t.Context(), failN(1000, &calls))
	_ = r.Do(t.Context(), failN(1000, &calls))
	if calls.Load() != 3 {
		t.Fatalf("after the window: %d calls, want 3", calls.Load())
	}
}

func TestRetryBudgetFloor(t *testing.T) {
	clock := newFake()
	budget, err := NewRetryBudget(RetryBudgetConfig{MinRetriesPerSecond: 1, Window: 2 * time.Second, Ratio: 1e-9, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	// The floor alone allows 1/s × 2s = 2 retries per window.
	got := 0
	for range 5 {
		budget.recordFirst()
		if budget.tryRetry() {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("%d retries allowed, want 2", got)
	}
	// The window slides: after one more second, still within the window.
	clock.Advance(time.Second)
	if budget.tryRetry() {
		t.Fatal("retry allowed while the window still holds 2")
	}
	clock.Advance(1100 * time.Millisecond)
	if !budget.tryRetry() {
		t.Fatal("retry refused after the window slid past the spent ones")
	}
}

func TestRetryBudgetConfigNamesTheField(t *testing.T) {
	if _, err := NewRetryBudget(RetryBudgetConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg   RetryBudgetConfig
		field string
	}{
		{RetryBudgetConfig{Ratio: -1}, "Ratio"},
		{RetryBudgetConfig{Ratio: 11}, "Ratio"},
		{RetryBudgetConfig{MinRetriesPerSecond: -1}, "MinRetriesPerSecond"},
		{RetryBudgetConfig{Window: time.Millisecond}, "Window"},
		{RetryBudgetConfig{Window: 2 * time.Hour}, "Window"},
		{RetryBudgetConfig{NoMinRetries: true, MinRetriesPerSecond: 5}, "MinRetriesPerSecond"},
	} {
		b, err := NewRetryBudget(c.cfg)
		want := "core.RetryBudgetConfig." + c.field
		if ces := configErrors(err); b != nil || len(ces) != 1 || ces[0].Field != want || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewRetryBudget(%+v) = %v, want one *ConfigError for %s", c.cfg, err, want)
		}
	}
	b, _ := NewRetryBudget(RetryBudgetConfig{})
	if c := b.cfg; c.Ratio != 0.2 || c.MinRetriesPerSecond != 10 || c.Window != 10*time.Second || c.Clock != SystemClock() {
		t.Fatalf("defaults %+v", c)
	}
	b, _ = NewRetryBudget(RetryBudgetConfig{NoMinRetries: true})
	if c := b.cfg; c.MinRetriesPerSecond != 0 {
		t.Fatalf("NoMinRetries left a floor of %v", c.MinRetriesPerSecond)
	}
}

// budgetCounts is what a RetryBudget counted over its window.
type budgetCounts struct{ firstAttempts, retries, allowed uint64 }

func budgetStats(b *RetryBudget) budgetCounts {
	first, retries := b.sums(b.epoch())
	return budgetCounts{first, retries, uint64(b.reserve + b.cfg.Ratio*float64(first))}
}

func TestRetryBudgetConcurrent(t *testing.T) {
	clock := newFake()
	budget, _ := NewRetryBudget(RetryBudgetConfig{Ratio: 0.1, NoMinRetries: true, Clock: clock})
	const workers, per = 4, 2000
	var allowed atomic.Int64
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range per {
				budget.recordFirst()
				if budget.tryRetry() {
					allowed.Add(1)
				}
			}
		}()
	}
	for range workers {
		<-done
	}
	// 10% of 8000 first attempts, overshot by at most the workers racing.
	if got := allowed.Load(); got < 790 || got > 800+workers {
		t.Fatalf("%d retries allowed, want about 800", got)
	}
	if bs := budgetStats(budget); bs.firstAttempts != workers*per {
		t.Fatalf("counted %d first attempts, want %d", bs.firstAttempts, workers*per)
	}
}

func TestRetrySuccessFirstTryAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	clock := newFake()
	budget, _ := NewRetryBudget(RetryBudgetConfig{Clock: clock})
	for name, r := range map[string]*Retry{
		"plain":   newTestRetry(t, RetryConfig{}, clock),
		"breaker": newTestRetry(t, RetryConfig{Breaker: newRetryBreaker(t, BreakerConfig{}, clock)}, clock),
		"budget":  newTestRetry(t, RetryConfig{Budget: budget}, clock),
	} {
		if n := testing.AllocsPerRun(1000, func() { _ = r.Do(ctx, fn) }); n != 0 {
			t.Errorf("%s: %v allocs per call", name, n)
		}
	}
}

func BenchmarkRetrySuccessFirstTry(b *testing.B) {
	r, _ := NewRetry(RetryConfig{})
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Do(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRetrySuccessFirstTryBreaker(b *testing.B) {
	br, _ := NewBreaker(BreakerConfig{Name: "api"})
	r, _ := NewRetry(RetryConfig{Breaker: br})
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = r.Do(ctx, fn)
		}
	})
}

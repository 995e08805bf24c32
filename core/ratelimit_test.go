package core

import (
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

func newTestLimiter(t *testing.T, cfg RateLimitConfig) (*RateLimiter, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	cfg.Clock = clk
	l, err := NewRateLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

// retryAfter returns err's RetryAfter, failing unless err is a rate-limit
// refusal.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	var re *RejectedError
	if !errors.As(err, &re) || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v, want a *RejectedError matching ErrRateLimited", err)
	}
	return re.RetryAfter()
}

func TestRateLimitConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		build  func() error
		fields []string
	}{
		{"NewRateLimiter/ranges", func() error {
			_, err := NewRateLimiter(RateLimitConfig{Rate: -1, Burst: -1})
			return err
		}, []string{"core.RateLimitConfig.Rate", "core.RateLimitConfig.Burst"}},
		{"NewRateLimiter/NaN", func() error {
			_, err := NewRateLimiter(RateLimitConfig{Rate: math.NaN(), Burst: 2_000_000_000})
			return err
		}, []string{"core.RateLimitConfig.Rate", "core.RateLimitConfig.Burst"}},
		{"NewRateLimiter/too fast", func() error {
			_, err := NewRateLimiter(RateLimitConfig{Rate: 2e9})
			return err
		}, []string{"core.RateLimitConfig.Rate"}},
		{"NewRateLimiter/fill time", func() error {
			_, err := NewRateLimiter(RateLimitConfig{Rate: 0.001, Burst: 1_000_000})
			return err
		}, []string{"core.RateLimitConfig.Burst"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkBadFields(t, tc.build(), tc.fields) })
	}
}

// checkBadFields checks that err is a set of *ConfigError naming exactly
// fields.
func checkBadFields(t *testing.T, err error, fields []string) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	var got []string
	for _, e := range configErrors(err) {
		got = append(got, e.Field)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(fields))
	if !slices.Equal(got, want) {
		t.Errorf("bad fields = %v, want %v", got, want)
	}
}

func TestRateLimitDefaults(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimitConfig{})
	st := l.Stats()
	if st.Rate != 100 || st.Burst != 100 || st.Tokens != 100 || st.Share != 1 {
		t.Errorf("defaults: rate %v burst %v tokens %v share %v, want 100 each and the whole limit", st.Rate, st.Burst, st.Tokens, st.Share)
	}
	l, _ = newTestLimiter(t, RateLimitConfig{Rate: 2.5})
	if st := l.Stats(); st.Burst != 3 {
		t.Errorf("Burst for Rate 2.5 = %v, want 3 (one second's worth, rounded up)", st.Burst)
	}
	l, _ = newTestLimiter(t, RateLimitConfig{Rate: 0.01})
	if st := l.Stats(); st.Burst != 1 {
		t.Errorf("Burst for Rate 0.01 = %v, want 1", st.Burst)
	}
}

// TestRateLimitBurstThenRefill spends the bucket at once, then checks that
// tokens come back one interval apart and that each refusal says when.
func TestRateLimitBurstThenRefill(t *testing.T) {
	l, clk := newTestLimiter(t, RateLimitConfig{Name: "GET /x", Rate: 10, Burst: 5})
	for i := range 5 {
		if err := l.Allow(); err != nil {
			t.Fatalf("call %d of the burst: %v", i, err)
		}
	}
	err := l.Allow()
	if d := retryAfter(t, err); d != 100*time.Millisecond {
		t.Errorf("RetryAfter on an empty bucket = %v, want 100ms", d)
	}
	if re := err.(*RejectedError); re.Endpoint != "GET /x" || re.Error() != "rate limit exceeded: GET /x" {
		t.Errorf("refusal names %q: %q", re.Endpoint, re.Error())
	}
	clk.Advance(30 * time.Millisecond)
	if d := retryAfter(t, l.Allow()); d != 70*time.Millisecond {
		t.Errorf("RetryAfter 30ms later = %v, want 70ms", d)
	}
	clk.Advance(70 * time.Millisecond)
	if err := l.Allow(); err != nil {
		t.Fatalf("a token is due after 100ms: %v", err)
	}
	if err := l.Allow(); err == nil {
		t.Fatal("two tokens after one interval")
	}
	// A long quiet spell fills the bucket to Burst, no more.
	clk.Advance(time.Hour)
	if st := l.Stats(); st.Tokens != 5 {
		t.Errorf("tokens after an hour = %v, want 5", st.Tokens)
	}
	n := 0
	for l.Allow() == nil {
		n++
	}
	if n != 5 {
		t.Errorf("burst after a quiet spell = %d, want 5", n)
	}
	st := l.Stats()
	if st.Allowed != 11 || st.Refused != 4 {
		t.Errorf("counts = %d allowed, %d refused; want 11, 4", st.Allowed, st.Refused)
	}
}

// TestRateLimitSustainedRate offers far more calls than the limit, a
// millisecond at a time as the coarse clock moves, and checks the long-run
// count.
func TestRateLimitSustainedRate(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{100, 10}, {1000, 1}, {3, 1}, {50_000, 50}, {1e6, 1}} {
		l, clk := newTestLimiter(t, RateLimitConfig{Rate: tc.rate, Burst: tc.burst})
		const seconds = 10
		allowed := 0
		for range seconds * 1000 {
			for l.Allow() == nil {
				allowed++
			}
			clk.Advance(time.Millisecond)
		}
		burst := l.Stats().Burst
		want := tc.rate*seconds + burst
		if got := float64(allowed); got > want+1 || got < want-tc.rate*0.001-1 {
			t.Errorf("rate %v burst %d: %d allowed in %ds, want about %.0f", tc.rate, tc.burst, allowed, seconds, want)
		}
	}
}

// TestRateLimitCoarseClockBurst checks that a Burst too small for a
// millisecond's worth of tokens acts as a millisecond's worth.
func TestRateLimitCoarseClockBurst(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimitConfig{Rate: 1e6, Burst: 1})
	if st := l.Stats(); st.Burst != 1000 {
		t.Errorf("Burst = %v, want 1000 (Rate × 1ms)", st.Burst)
	}
}

func TestRejectionSlot(t *testing.T) {
	prevIdx, prevD := 0, time.Duration(0)
	for ms := int64(1); ms < 5_000_000; ms += 1 + ms/300 {
		wait := time.Duration(ms)*time.Millisecond - time.Microsecond
		i, d := rejectionSlot(wait)
		if d < wait {
			t.Fatalf("wait %v reported as %v: less than the wait", wait, d)
		}
		if ms < 128 && d != time.Duration(ms)*time.Millisecond {
			t.Fatalf("wait %v reported as %v, want it to the millisecond", wait, d)
		}
		if float64(d) > float64(wait)*1.016+float64(time.Millisecond) {
			t.Fatalf("wait %v reported as %v: more than 1.6%% over", wait, d)
		}
		if i < prevIdx || (i == prevIdx) != (d == prevD) || i > prevIdx+1 && ms < 1000 && ms > 1 {
			t.Fatalf("wait %v: slot %d (%v) after slot %d (%v)", wait, i, d, prevIdx, prevD)
		}
		prevIdx, prevD = i, d
	}
	if i, d := rejectionSlot(0); i != 1 || d != time.Millisecond {
		t.Errorf("rejectionSlot(0) = %d, %v; want 1, 1ms", i, d)
	}
}

func TestRateLimitAllocatesNothing(t *testing.T) {
	l, clk := newTestLimiter(t, RateLimitConfig{Rate: 1000, Burst: 1})
	if a := testing.AllocsPerRun(1000, func() { _ = l.Allow(); clk.Advance(time.Millisecond) }); a != 0 {
		t.Errorf("Allow allocates %v times per call", a)
	}
	// Refusals: each wait's refusal is made once, then reused.
	l, clk = newTestLimiter(t, RateLimitConfig{Rate: 1, Burst: 1})
	_ = l.Allow()
	for range 1000 {
		_ = l.Allow()
		clk.Advance(time.Millisecond)
	}
	clk.Advance(time.Hour)
	_ = l.Allow()
	if a := testing.AllocsPerRun(1000, func() { _ = l.Allow(); clk.Advance(time.Millisecond) }); a != 0 {
		t.Errorf("a refusal allocates %v times", a)
	}
}

func TestRateLimitDisabled(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimitConfig{Rate: 1, Burst: 1, Disabled: true})
	for range 100 {
		if err := l.Allow(); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Allowed != 100 || st.Rate != 0 || st.Burst != 0 || st.Share != 0 {
		t.Errorf("disabled: %+v", st)
	}
}

// TestRateLimitConcurrent takes tokens from many goroutines while the clock
// stands still: exactly Burst calls get one.
func TestRateLimitConcurrent(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimitConfig{Rate: 1, Burst: 1000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 500 {
				if l.Allow() == nil {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 1000 {
		t.Errorf("%d calls allowed, want the burst, 1000", allowed)
	}
	if st := l.Stats(); st.Allowed != 1000 || st.Refused != 3000 {
		t.Errorf("counts %d/%d, want 1000/3000", st.Allowed, st.Refused)
	}
}

func TestRateLimitReconfigureKeepsTokens(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimitConfig{Rate: 10, Burst: 10})
	for range 6 {
		_ = l.Allow()
	}
	c := newChecker("core.RateLimitConfig.")
	l.reconfigure(RateLimitConfig{Rate: 100, Burst: 100}.normalize(c))
	st := l.Stats()
	if st.Rate != 100 || st.Burst != 100 || st.Tokens != 4 || st.Allowed != 6 {
		t.Errorf("after raising the limit: %+v, want rate 100, burst 100, 4 tokens, 6 allowed", st)
	}
	l.reconfigure(RateLimitConfig{Rate: 1, Burst: 2}.normalize(c))
	if st := l.Stats(); st.Tokens != 2 {
		t.Errorf("after lowering the limit: %v tokens, want 2 (the new Burst)", st.Tokens)
	}
	l.reconfigure(RateLimitConfig{Rate: 1, Burst: 2, Disabled: true}.normalize(c))
	if err := l.Allow(); err != nil {
		t.Errorf("disabled by reconfiguration: %v", err)
	}
}

func TestQuota(t *testing.T) {
	l, clk := newTestLimiter(t, RateLimitConfig{Rate: 100, Burst: 100})
	q := QuotaOf(l)
	for range 150 {
		_ = l.Allow()
	}
	if a, r := q.Demand(); a != 100 || r != 50 {
		t.Errorf("Demand = %d, %d; want 100, 50", a, r)
	}
	if a, r := q.Demand(); a != 0 || r != 0 {
		t.Errorf("second Demand = %d, %d; want 0, 0", a, r)
	}
	// A quarter share: a quarter of the rate and of the bucket.
	clk.Advance(time.Hour)
	q.SetShare(0.25)
	st := l.Stats()
	if st.Rate != 25 || st.Burst != 25 || st.Tokens != 25 || st.Share != 0.25 {
		t.Errorf("quarter share: rate %v burst %v tokens %v share %v, want 25 each and 0.25", st.Rate, st.Burst, st.Tokens, st.Share)
	}
	n := 0
	for l.Allow() == nil {
		n++
	}
	if n != 25 {
		t.Errorf("burst at a quarter share = %d, want 25", n)
	}
	if d := retryAfter(t, l.Allow()); d != 40*time.Millisecond {
		t.Errorf("RetryAfter at 25/s = %v, want 40ms", d)
	}
	// Tokens stay across a share change: spend half, then double the share.
	clk.Advance(time.Hour)
	for range 10 {
		_ = l.Allow()
	}
	q.SetShare(0.5)
	if st := l.Stats(); st.Tokens != 15 || st.Burst != 50 {
		t.Errorf("after doubling the share: %v tokens of %v, want 15 of 50", st.Tokens, st.Burst)
	}
	// The share survives reconfiguration, as a fraction.
	l.reconfigure(RateLimitConfig{Rate: 200, Burst: 200}.normalize(newChecker("x.")))
	if st := l.Stats(); st.Rate != 100 || st.Burst != 100 {
		t.Errorf("half share of 200/s: rate %v burst %v", st.Rate, st.Burst)
	}
	for _, tc := range []struct{ f, rate float64 }{{0, 0.02}, {-3, 0.02}, {7, 200}, {math.NaN(), 200}, {math.Inf(-1), 0.02}} {
		q.SetShare(tc.f)
		if st := l.Stats(); math.Abs(st.Rate-tc.rate) > 1e-9 {
			t.Errorf("SetShare(%v): rate %v, want %v", tc.f, st.Rate, tc.rate)
		}
	}
	if st := l.Stats(); st.Burst < 1 {
		t.Errorf("burst below one call: %v", st.Burst)
	}
}

// TestQuotaConcurrent changes the share while calls run, under -race.
func TestQuotaConcurrent(t *testing.T) {
	l, clk := newTestLimiter(t, RateLimitConfig{Rate: 1000, Burst: 100})
	q := QuotaOf(l)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_ = l.Allow()
				}
			}
		})
	}
	var total uint64
	for i := range 200 {
		q.SetShare(float64(i%10+1) / 10)
		clk.Advance(time.Millisecond)
		a, r := q.Demand()
		total += a + r
		_ = l.Stats()
	}
	close(stop)
	wg.Wait()
	a, r := q.Demand()
	total += a + r
	if st := l.Stats(); st.Allowed+st.Refused != total {
		t.Errorf("Demand summed to %d, counters to %d", total, st.Allowed+st.Refused)
	}
}

// TestRateLimitExtremes runs the bounds of the configuration, with the
// smallest share, through a day of calls, checking the arithmetic holds.
func TestRateLimitExtremes(t *testing.T) {
	for _, cfg := range []RateLimitConfig{
		{Rate: 1e9, Burst: 1_000_000_000},
		{Rate: 0.000001, Burst: 2},
		{Rate: 1000, Burst: 1_000_000_000 / 1000 * 2},
	} {
		l, clk := newTestLimiter(t, cfg)
		for _, f := range []float64{1, 0.0001} {
			QuotaOf(l).SetShare(f)
			for range 24 {
				err := l.Allow()
				if err != nil {
					if d := retryAfter(t, err); d <= 0 || d > 1_100_000*time.Second {
						t.Errorf("%+v share %v: RetryAfter %v", cfg, f, d)
					}
				}
				if st := l.Stats(); st.Tokens < 0 || st.Tokens > st.Burst || math.IsNaN(st.Tokens) {
					t.Errorf("%+v share %v: %v tokens of %v", cfg, f, st.Tokens, st.Burst)
				}
				clk.Advance(time.Hour)
			}
		}
	}
}

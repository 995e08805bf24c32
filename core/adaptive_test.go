package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// adaptiveSim drives a limiter on a FakeClock against a model service:
// every window, up to demand calls are admitted at once, and each reports
// latency(concurrency) when it ends.
type adaptiveSim struct {
	t       *testing.T
	l       *AdaptiveLimiter
	clk     *FakeClock
	latency func(concurrency int) time.Duration
	outcome Outcome
}

func newAdaptiveSim(t *testing.T, cfg AdaptiveConfig, latency func(int) time.Duration) *adaptiveSim {
	t.Helper()
	clk := NewFakeClock(time.Unix(0, 0))
	cfg.Clock = clk
	l, err := NewAdaptiveLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &adaptiveSim{t: t, l: l, clk: clk, latency: latency, outcome: Success}
}

// queueing is a service with capacity concurrent calls at base latency,
// whose latency grows in proportion to concurrency beyond that.
func queueing(base time.Duration, capacity int) func(int) time.Duration {
	return func(k int) time.Duration {
		return time.Duration(float64(base) * max(1, float64(k)/float64(capacity)))
	}
}

func constant(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }

// window runs one sample window at the given demand and returns how many
// calls the last round admitted.
func (s *adaptiveSim) window(demand int) (admitted int) {
	permits := make([]AdaptivePermit, 0, demand)
	for samples := 0; samples < 2*adaptiveMinN; {
		permits = permits[:0]
		for range demand {
			p, err := s.l.TryAcquire(0)
			if err != nil {
				if !errors.Is(err, ErrLimitExceeded) {
					s.t.Fatalf("TryAcquire: %v", err)
				}
				break
			}
			permits = append(permits, p)
		}
		admitted = len(permits)
		if admitted == 0 {
			s.t.Fatalf("nothing admitted at limit %d", s.l.Stats().Limit)
		}
		for i := range permits {
			permits[i].Done(s.outcome, s.latency(admitted))
		}
		samples += admitted
	}
	s.clk.Advance(s.l.config().SampleWindow)
	return admitted
}

// run runs n windows and returns the limit after each.
func (s *adaptiveSim) run(n, demand int) []int {
	limits := make([]int, n)
	for i := range n {
		s.window(demand)
		limits[i] = s.l.Stats().Limit
	}
	return limits
}

func TestAdaptiveRisesUnderSteadyLatency(t *testing.T) {
	s := newAdaptiveSim(t, AdaptiveConfig{InitialLimit: 10, MaxLimit: 200}, constant(10*time.Millisecond))
	limits := s.run(60, 1000)
	if !slices.IsSorted(limits) {
		t.Errorf("limit fell under steady latency: %v", limits)
	}
	if limits[len(limits)-1] != 200 {
		t.Errorf("limit = %d after 60 windows, want MaxLimit 200: %v", limits[len(limits)-1], limits)
	}
	if i := slices.Index(limits, 200); i > 30 {
		t.Errorf("took %d windows to reach 200: %v", i, limits)
	}
	st := s.l.Stats()
	if st.Baseline != 10*time.Millisecond || st.Recent != 10*time.Millisecond {
		t.Errorf("baseline %v recent %v, want 10ms", st.Baseline, st.Recent)
	}
	if st.InFlight != 0 || st.Shed[0] == 0 || st.Admitted == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestAdaptiveRisesOnlyWhenUsed(t *testing.T) {
	// Ten calls at a time never need more than about twice that.
	s := newAdaptiveSim(t, AdaptiveConfig{InitialLimit: 5}, constant(10*time.Millisecond))
	limits := s.run(100, 10)
	if last := limits[len(limits)-1]; last < 10 || last > 30 {
		t.Errorf("limit = %d with 10 calls in flight, want 10 to 30: %v", last, limits)
	}
}

func TestAdaptiveFallsWhenLatencyGrowsWithConcurrency(t *testing.T) {
	const capacity = 40
	s := newAdaptiveSim(t, AdaptiveConfig{}, constant(10*time.Millisecond))
	s.run(40, 1000) // a fast service: the limit climbs far above 40
	if lim := s.l.Stats().Limit; lim < 200 {
		t.Fatalf("limit = %d before the slowdown, want it high", lim)
	}
	s.latency = queueing(10*time.Millisecond, capacity) // capacity drops
	limits := s.run(100, 1000)
	if i := slices.IndexFunc(limits, func(l int) bool { return l <= 2*capacity }); i < 0 || i > 5 {
		t.Errorf("limit took %d windows to fall within 2x capacity: %v", i, limits)
	}
	// Settled: latency between the baseline and Tolerance (1.5) times it.
	for i, l := range limits[10:] {
		if l < capacity || l > capacity*3/2 {
			t.Fatalf("window %d: limit %d, want %d to %d: %v", i+10, l, capacity, capacity*3/2, limits)
		}
	}
	if st := s.l.Stats(); st.Baseline != 10*time.Millisecond {
		t.Errorf("baseline = %v, want 10ms", st.Baseline)
	}
}

func TestAdaptiveNoisyLatency(t *testing.T) {
	// Latency varies from call to call (exponentially, as much as its
	// mean) but not with concurrency: the limiter must not mistake the
	// noise for queueing and shed a steady load.
	r := rand.New(rand.NewPCG(1, 2))
	s := newAdaptiveSim(t, AdaptiveConfig{}, func(int) time.Duration {
		return time.Duration((0.1 + r.ExpFloat64()) * float64(10*time.Millisecond))
	})
	s.run(100, 40)
	before := s.l.Stats()
	limits := s.run(2000, 40) // 100s
	after := s.l.Stats()
	shed := float64(after.Shed[0]-before.Shed[0]) / float64(after.Admitted-before.Admitted)
	if shed > 0.002 {
		t.Errorf("shed %.2f%% of a steady load on noise alone; limits %v", 100*shed, limits[:200])
	}
	if b := after.Baseline; b < 10*time.Millisecond || b > 12*time.Millisecond {
		t.Errorf("baseline %v, want near the mean of 11ms", b)
	}
	t.Logf("shed %.3f%%, limit %d..%d, baseline %v", 100*shed, slices.Min(limits), slices.Max(limits), after.Baseline)
}

func TestAdaptiveMaxLatency(t *testing.T) {
	cfg := AdaptiveConfig{MaxLatency: 100 * time.Millisecond, MinLimit: 2}
	s := newAdaptiveSim(t, cfg, constant(10*time.Millisecond))
	s.run(20, 50)
	// The service slows down to 300ms whatever the concurrency: without
	// the bound the baseline would follow; with it the limit falls to
	// MinLimit and stays there.
	s.latency = constant(300 * time.Millisecond)
	limits := s.run(600, 50) // a minute
	if last := limits[len(limits)-1]; last != 2 {
		t.Errorf("limit = %d above MaxLatency, want MinLimit 2: %v", last, limits[:40])
	}
	if !slices.IsSortedFunc(limits, func(a, b int) int { return b - a }) {
		t.Errorf("limit rose above MaxLatency: %v", limits)
	}
	if b := s.l.Stats().Baseline; b > 100*time.Millisecond {
		t.Errorf("baseline = %v, above MaxLatency", b)
	}
	// Healthy again: the limit recovers.
	s.latency = constant(10 * time.Millisecond)
	if limits := s.run(40, 50); limits[len(limits)-1] < 50 {
		t.Errorf("limit did not recover: %v", limits)
	}
}

func TestAdaptiveFollowsAServiceSlowerOnItsOwn(t *testing.T) {
	// Latency doubles for good, whatever the concurrency. Cutting the
	// limit does not bring it down, so the limiter stops cutting and the
	// baseline follows: the service is not throttled forever.
	s := newAdaptiveSim(t, AdaptiveConfig{}, constant(10*time.Millisecond))
	s.run(30, 40)
	s.latency = constant(20 * time.Millisecond)
	limits := s.run(300, 40) // 30s: three BaselineDecay time constants
	if lo := slices.Min(limits); lo < 10 {
		t.Errorf("limit fell to %d for a latency that does not depend on it: %v", lo, limits)
	}
	if last := limits[len(limits)-1]; last < 40 {
		t.Errorf("limit = %d after 30s, want it back above the demand of 40: %v", last, limits)
	}
	if b := s.l.Stats().Baseline; b < 14*time.Millisecond {
		t.Errorf("baseline = %v, want it to have followed toward 20ms", b)
	}
}

func TestAdaptiveBaselineDoesNotDriftInALongIncident(t *testing.T) {
	// Ten minutes of overload on a service whose latency grows with
	// concurrency. A baseline averaged from recent latency drifts upward
	// until the limit stops falling; this one must stay put.
	const capacity = 32
	s := newAdaptiveSim(t, AdaptiveConfig{}, queueing(10*time.Millisecond, capacity))
	s.run(50, capacity/2)
	before := s.l.Stats().Baseline
	var tail []int
	for minute := range 10 {
		limits := s.run(600, 20*capacity)
		st := s.l.Stats()
		if st.Baseline > before*105/100 {
			t.Fatalf("minute %d: baseline drifted from %v to %v", minute, before, st.Baseline)
		}
		tail = limits[500:]
	}
	if lo, hi := slices.Min(tail), slices.Max(tail); lo < capacity || hi > capacity*3/2 {
		t.Errorf("limit %d to %d after ten minutes, want %d to %d: %v", lo, hi, capacity, capacity*3/2, tail)
	}
	// And the incident ends: full admission at once.
	if got := s.window(capacity / 2); got != capacity/2 {
		t.Errorf("admitted %d of %d after the incident", got, capacity/2)
	}
}

func TestAdaptiveIgnoresCallsThatSayNothingAboutLatency(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome Outcome
		latency time.Duration
	}{
		{"ignored", Ignored, 500 * time.Millisecond},
		{"fast-failure", Failure, 100 * time.Microsecond},
		{"zero-latency", Success, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAdaptiveSim(t, AdaptiveConfig{InitialLimit: 50}, constant(10*time.Millisecond))
			s.run(10, 40)
			before := s.l.Stats()
			s.latency, s.outcome = constant(tc.latency), tc.outcome
			s.run(100, 40)
			after := s.l.Stats()
			if after.Limit != before.Limit || after.Baseline != before.Baseline || after.Recent != before.Recent {
				t.Errorf("%s calls moved the estimate: before %+v after %+v", tc.name, before, after)
			}
			if after.InFlight != 0 {
				t.Errorf("in flight = %d", after.InFlight)
			}
		})
	}
	t.Run("slow-failure-counts", func(t *testing.T) {
		// A timeout is a failure, and exactly the latency to react to.
		s := newAdaptiveSim(t, AdaptiveConfig{InitialLimit: 50}, queueing(10*time.Millisecond, 20))
		s.run(10, 10)
		s.latency, s.outcome = queueing(time.Second, 20), Failure
		s.run(3, 40)
		if lim := s.l.Stats().Limit; lim >= 50 {
			t.Errorf("limit = %d after timeouts, want it cut", lim)
		}
	})
	t.Run("refused", func(t *testing.T) {
		l, err := NewAdaptiveLimiter(AdaptiveConfig{MinLimit: 1, MaxLimit: 1, Clock: NewFakeClock(time.Unix(0, 0))})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := l.TryAcquire(0)
		for range 1000 {
			if _, err := l.TryAcquire(0); !errors.Is(err, ErrLimitExceeded) {
				t.Fatal(err)
			}
		}
		p.Done(Success, time.Millisecond)
		if st := l.Stats(); st.Recent != 0 || st.Admitted != 1 || st.Shed[0] != 1000 {
			t.Errorf("stats after refusals: %+v", st)
		}
	})
}

func TestAdaptiveBounds(t *testing.T) {
	s := newAdaptiveSim(t, AdaptiveConfig{MinLimit: 8, MaxLimit: 64, InitialLimit: 8}, constant(time.Millisecond))
	if limits := s.run(100, 1000); slices.Max(limits) != 64 {
		t.Errorf("limit did not stop at MaxLimit: %v", limits)
	}
	// A capacity of 1, far below MinLimit: the limit falls to MinLimit and
	// never below it.
	s.latency = queueing(time.Millisecond, 1)
	limits := s.run(100, 1000)
	if i := slices.Index(limits, 8); i < 0 || i > 5 || slices.Min(limits) != 8 || slices.Max(limits[i:]) > 16 {
		t.Errorf("limit did not stop at MinLimit: %v", limits)
	}
}

func TestAdaptiveRefusal(t *testing.T) {
	l, err := NewAdaptiveLimiter(AdaptiveConfig{Name: "GET /x", MinLimit: 1, MaxLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.TryAcquire(0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.TryAcquire(0)
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrLimitExceeded) || rej.Endpoint != "GET /x" {
		t.Fatalf("refusal = %v", err)
	}
	if ra := rej.RetryAfter(); ra <= 0 || ra > time.Second {
		t.Errorf("RetryAfter = %v, want a small wait", ra)
	}
	if _, err := l.Acquire(context.Background(), 0); err != rej {
		t.Errorf("Acquire without a queue = %v, want the same refusal at once", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Acquire(ctx, 0); err != context.Canceled {
		t.Errorf("Acquire with an ended ctx = %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = l.TryAcquire(0) }); n != 0 {
		t.Errorf("a refusal allocates %v times", n)
	}
	p.Done(Success, time.Millisecond)
	p.Done(Success, time.Millisecond) // idempotent
	var zero AdaptivePermit
	zero.Done(Success, time.Millisecond)
	if st := l.Stats(); st.InFlight != 0 || st.Admitted != 1 {
		t.Errorf("stats %+v", st)
	}
	if n := testing.AllocsPerRun(100, func() {
		p, _ := l.TryAcquire(0)
		p.Done(Success, time.Millisecond)
	}); n != 0 {
		t.Errorf("a permit allocates %v times", n)
	}
}

func TestAdaptiveQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := NewFakeClock(time.Unix(0, 0))
		l, err := NewAdaptiveLimiter(AdaptiveConfig{
			MinLimit: 1, MaxLimit: 1, MaxQueueSize: 2, QueueTimeout: 50 * time.Millisecond, Clock: clk,
		})
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			p   AdaptivePermit
			err error
		}
		acquire := func(ctx context.Context) chan result {
			ch := make(chan result, 1)
			go func() {
				p, err := l.Acquire(ctx, 0)
				ch <- result{p, err}
			}()
			synctest.Wait() // queued before the next one
			return ch
		}
		held, _ := l.TryAcquire(0)
		first, second := acquire(context.Background()), acquire(context.Background())
		if st := l.Stats(); st.Queued != 2 {
			t.Fatalf("queued = %d, want 2", st.Queued)
		}
		if _, err := l.Acquire(context.Background(), 0); !errors.Is(err, ErrLimitExceeded) {
			t.Errorf("Acquire with the queue full = %v", err)
		}
		if _, err := l.TryAcquire(0); !errors.Is(err, ErrLimitExceeded) {
			t.Errorf("TryAcquire past a queue = %v", err)
		}

		// The first in line gets the slot when it is freed.
		clk.Advance(10 * time.Millisecond)
		held.Done(Success, time.Millisecond)
		r := <-first
		if r.err != nil {
			t.Fatalf("first queued call: %v", r.err)
		}
		// The second times out behind it, at QueueTimeout and not before.
		clk.Advance(39 * time.Millisecond)
		synctest.Wait()
		select {
		case r := <-second:
			t.Fatalf("second call ended after 49ms: %v", r.err)
		default:
		}
		clk.Advance(time.Millisecond)
		if r := <-second; !errors.Is(r.err, ErrLimitExceeded) {
			t.Errorf("second queued call = %v, want a timeout refusal", r.err)
		}

		// A cancelled wait returns ctx.Err() and is not shed.
		ctx, cancel := context.WithCancel(context.Background())
		third := acquire(ctx)
		cancel()
		if r := <-third; r.err != context.Canceled {
			t.Errorf("cancelled wait = %v", r.err)
		}
		r.p.Done(Success, time.Millisecond)
		st := l.Stats()
		// Shed: the full queue, the TryAcquire and the timeout.
		if st.Queued != 0 || st.InFlight != 0 || st.Shed[0] != 3 || st.Admitted != 2 || clk.Timers() != 0 {
			t.Errorf("stats %+v, timers %d", st, clk.Timers())
		}
	})
}

func TestAdaptivePriorities(t *testing.T) {
	l, err := NewAdaptiveLimiter(AdaptiveConfig{MinLimit: 10, MaxLimit: 10, PriorityShares: []float64{0.5, 0.8, 1}})
	if err != nil {
		t.Fatal(err)
	}
	var held []AdaptivePermit
	admit := func(prio, n int) (got int) {
		for range n {
			p, err := l.TryAcquire(prio)
			if err != nil {
				return got
			}
			held = append(held, p)
			got++
		}
		return got
	}
	// Lowest priority first: it fills half the limit and no more.
	if got := admit(0, 10); got != 5 {
		t.Errorf("priority 0 admitted %d, want 5 (share 0.5 of 10)", got)
	}
	if got := admit(1, 10); got != 3 {
		t.Errorf("priority 1 admitted %d, want 3 more (share 0.8)", got)
	}
	if got := admit(7, 10); got != 2 { // above the last level: counts as the highest
		t.Errorf("priority 7 admitted %d, want the last 2", got)
	}
	if got := admit(-1, 1); got != 0 {
		t.Errorf("priority -1 admitted %d at the limit", got)
	}
	st := l.Stats()
	if want := []uint64{2, 1, 1}; !slices.Equal(st.Shed, want) {
		t.Errorf("shed by priority = %v, want %v", st.Shed, want)
	}
	// Below the low share, every priority is admitted again.
	for i := range held {
		held[i].Done(Success, time.Millisecond)
	}
	if got := admit(0, 1); got != 1 {
		t.Errorf("priority 0 refused with nothing in flight")
	}
}

func TestAdaptivePriorityQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := NewAdaptiveLimiter(AdaptiveConfig{
			MinLimit: 2, MaxLimit: 2, MaxQueueSize: 10, PriorityShares: []float64{0.5, 1},
			Clock: NewFakeClock(time.Unix(0, 0)),
		})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := l.TryAcquire(1)
		b, _ := l.TryAcquire(1)
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for _, prio := range []int{0, 0, 1, 1} {
			wg.Go(func() {
				p, err := l.Acquire(context.Background(), prio)
				if err != nil {
					t.Errorf("priority %d: %v", prio, err)
					return
				}
				mu.Lock()
				order = append(order, prio)
				mu.Unlock()
				p.Done(Success, time.Millisecond)
			})
			synctest.Wait() // queue in this order
		}
		if st := l.Stats(); st.Queued != 4 {
			t.Fatalf("queued = %d", st.Queued)
		}
		a.Done(Success, time.Millisecond)
		b.Done(Success, time.Millisecond)
		wg.Wait()
		if !slices.Equal(order, []int{1, 1, 0, 0}) {
			t.Errorf("served in order %v, want the high priority first", order)
		}
	})
}

func TestAdaptiveReconfigureKeepsState(t *testing.T) {
	s := newAdaptiveSim(t, AdaptiveConfig{InitialLimit: 10}, constant(10*time.Millisecond))
	s.run(20, 1000)
	before := s.l.Stats()
	p, _ := s.l.TryAcquire(0)
	c := newChecker("core.AdaptiveConfig.")
	s.l.reconfigure(AdaptiveConfig{MaxLimit: 40, PriorityShares: []float64{0.5, 1}}.normalize(c))
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	after := s.l.Stats()
	if after.Limit != 40 || after.Baseline != before.Baseline || after.InFlight != 1 || after.Admitted != before.Admitted+1 {
		t.Errorf("before %+v after %+v", before, after)
	}
	if len(after.Shed) != 2 || s.l.config().Clock != s.clk || s.l.config().Name != s.l.name {
		t.Errorf("reconfigured: %+v %+v", after, s.l.config())
	}
	p.Done(Success, 10*time.Millisecond)
}

func TestAdaptiveConfigErrors(t *testing.T) {
	_, err := NewAdaptiveLimiter(AdaptiveConfig{
		MinLimit: 100, MaxLimit: 10, InitialLimit: 5, Tolerance: 1, SampleWindow: time.Hour,
		MaxLatency: time.Microsecond, BaselineDecay: -1, MaxQueueSize: -1, QueueTimeout: time.Hour,
		PriorityShares: []float64{0, 0.9, 0.5},
	})
	var got []string
	for _, e := range configErrors(err) {
		got = append(got, e.Field)
	}
	want := []string{
		"core.AdaptiveConfig.MaxLimit", "core.AdaptiveConfig.InitialLimit", "core.AdaptiveConfig.Tolerance",
		"core.AdaptiveConfig.SampleWindow", "core.AdaptiveConfig.MaxLatency", "core.AdaptiveConfig.BaselineDecay",
		"core.AdaptiveConfig.MaxQueueSize", "core.AdaptiveConfig.QueueTimeout",
		"core.AdaptiveConfig.PriorityShares[0]", "core.AdaptiveConfig.PriorityShares[2]",
	}
	if !slices.Equal(got, want) || !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("fields = %q\nwant     %q\n%v", got, want, err)
	}
	for _, tc := range []struct {
		cfg   AdaptiveConfig
		field string
	}{
		{AdaptiveConfig{MinLimit: -1}, "core.AdaptiveConfig.MinLimit"},
		{AdaptiveConfig{PriorityShares: make([]float64, 9)}, "core.AdaptiveConfig.PriorityShares"},
		{AdaptiveConfig{PriorityShares: []float64{0.5, 0.9}}, "core.AdaptiveConfig.PriorityShares[1]"},
		{AdaptiveConfig{SampleWindow: time.Second, BaselineDecay: 500 * time.Millisecond}, "core.AdaptiveConfig.BaselineDecay"},
	} {
		errs := configErrors(func() error { _, err := NewAdaptiveLimiter(tc.cfg); return err }())
		if len(errs) != 1 || errs[0].Field != tc.field {
			t.Errorf("%+v: errors %v, want one for %s", tc.cfg, errs, tc.field)
		}
	}
	// Defaults.
	l, err := NewAdaptiveLimiter(AdaptiveConfig{MaxLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.config()
	if cfg.MinLimit != 1 || cfg.InitialLimit != 10 || cfg.Tolerance != 1.5 || cfg.SampleWindow != 50*time.Millisecond ||
		cfg.BaselineDecay != 10*time.Second || cfg.QueueTimeout != 50*time.Millisecond || cfg.Clock == nil {
		t.Errorf("defaults %+v", cfg)
	}
	// The shares are copied.
	shares := []float64{0.5, 1}
	l, _ = NewAdaptiveLimiter(AdaptiveConfig{PriorityShares: shares})
	shares[0] = 0.1
	if l.config().PriorityShares[0] != 0.5 {
		t.Error("the limiter shares the caller's PriorityShares")
	}
}

// TestAdaptiveStress runs admissions, refusals, queueing with priorities,
// window updates, Stats and reconfiguration at once (run with -race), and
// checks the counts add up.
func TestAdaptiveStress(t *testing.T) {
	l, err := NewAdaptiveLimiter(AdaptiveConfig{
		InitialLimit: 8, MaxLimit: 64, SampleWindow: time.Millisecond, MaxQueueSize: 16,
		QueueTimeout: 5 * time.Millisecond, PriorityShares: []float64{0.25, 0.5, 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	const workers, calls = 8, 2000
	var admitted, refused, cancelled atomic.Int64
	var maxSeen atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range calls {
				prio := r.IntN(4) - 1
				var p AdaptivePermit
				var err error
				switch i % 3 {
				case 0:
					p, err = l.TryAcquire(prio)
				case 1:
					p, err = l.Acquire(context.Background(), prio)
				default:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(3))*time.Millisecond)
					p, err = l.Acquire(ctx, prio)
					cancel()
				}
				switch {
				case err == nil:
					admitted.Add(1)
					if n := l.Stats().InFlight; int64(n) > maxSeen.Load() {
						maxSeen.Store(int64(n))
					}
					d := time.Duration(50+r.IntN(200)) * time.Microsecond
					time.Sleep(d)
					p.Done([]Outcome{Success, Failure, Ignored}[r.IntN(3)], d)
					p.Done(Success, d) // a second report is ignored
				case errors.Is(err, ErrLimitExceeded):
					refused.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					cancelled.Add(1)
				default:
					t.Errorf("unexpected error %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			c := newChecker("core.AdaptiveConfig.")
			cfg := AdaptiveConfig{InitialLimit: 8, MaxLimit: 16 + i%3*24, SampleWindow: time.Millisecond, MaxQueueSize: 1 + i%16,
				QueueTimeout: 5 * time.Millisecond, PriorityShares: []float64{0.25, 0.5, 1}[(i+1)%2:]}
			l.reconfigure(cfg.normalize(c))
			_ = l.Stats()
			time.Sleep(200 * time.Microsecond)
		}
	})
	wg.Wait()
	st := l.Stats()
	var shed uint64
	for _, n := range st.Shed {
		shed += n
	}
	if st.InFlight != 0 || st.Queued != 0 {
		t.Errorf("left over: %+v", st)
	}
	if st.Admitted != uint64(admitted.Load()) || shed < uint64(refused.Load()) {
		t.Errorf("stats %+v; admitted %d refused %d cancelled %d", st, admitted.Load(), refused.Load(), cancelled.Load())
	}
	if admitted.Load()+refused.Load()+cancelled.Load() != workers*calls {
		t.Errorf("outcomes do not add up")
	}
	if maxSeen.Load() > 64 {
		t.Errorf("in flight reached %d, above every MaxLimit", maxSeen.Load())
	}
	t.Logf("admitted %d refused %d cancelled %d; final %+v", admitted.Load(), refused.Load(), cancelled.Load(), st)
}

package core

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

func newTestTracker(t *testing.T, cfg SLOConfig, clock Clock) *SLOTracker {
	t.Helper()
	cfg.Clock = clock
	tr, err := NewSLOTracker(cfg)
	if err != nil {
		t.Fatalf("NewSLOTracker: %v", err)
	}
	return tr
}

// feed spreads calls over d at rps calls a second, failing the given share
// of them evenly, and leaves the clock d later.
func feed(clock *FakeClock, record func(success bool), d time.Duration, rps int, failShare float64) {
	n := int(d.Seconds() * float64(rps))
	step := d / time.Duration(n)
	var owed float64
	for range n {
		owed += failShare
		fail := owed >= 1
		if fail {
			owed--
		}
		record(!fail)
		clock.Advance(step)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// sloDefaults returns cfg with its defaults filled in, as the tracker
// reports them.
func sloDefaults(t *testing.T, cfg SLOConfig) SLOConfig {
	t.Helper()
	tr, err := NewSLOTracker(cfg)
	if err != nil {
		t.Fatalf("NewSLOTracker(%+v): %v", cfg, err)
	}
	return tr.cfg
}

func TestSLOConfigNamesTheField(t *testing.T) {
	if _, err := NewSLOTracker(SLOConfig{}); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	cases := []struct {
		name  string
		cfg   SLOConfig
		field string
	}{
		{"target 1", SLOConfig{TargetSuccessRate: 1}, "TargetSuccessRate"},
		{"target negative", SLOConfig{TargetSuccessRate: -0.5}, "TargetSuccessRate"},
		{"target NaN", SLOConfig{TargetSuccessRate: math.NaN()}, "TargetSuccessRate"},
		{"budget 100", SLOConfig{ErrorBudgetPercent: 100}, "ErrorBudgetPercent"},
		{"disagree", SLOConfig{TargetSuccessRate: 0.999, ErrorBudgetPercent: 1}, "ErrorBudgetPercent"},
		{"window short", SLOConfig{Window: time.Millisecond}, "Window"},
		{"window long", SLOConfig{Window: 8 * 24 * time.Hour}, "Window"},
		{"threshold", SLOConfig{BurnRateThreshold: 0.5}, "BurnRateThreshold"},
		{"min events", SLOConfig{MinEvents: -1}, "MinEvents"},
		{"long past window", SLOConfig{LongWindow: 10 * time.Minute}, "LongWindow"},
		{"long negative", SLOConfig{LongWindow: -time.Minute}, "LongWindow"},
		{"short past long", SLOConfig{ShortWindow: 5 * time.Minute}, "ShortWindow"},
		{"short negative", SLOConfig{ShortWindow: -time.Second}, "ShortWindow"},
		{"short tiny", SLOConfig{ShortWindow: 5 * time.Millisecond}, "ShortWindow"},
		{"too many buckets", SLOConfig{Window: 7 * 24 * time.Hour, LongWindow: time.Hour}, "ShortWindow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := NewSLOTracker(c.cfg)
			want := "core.SLOConfig." + c.field
			ces := configErrors(err)
			if tr != nil || len(ces) != 1 || ces[0].Field != want || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewSLOTracker = %v, want one *ConfigError for %s", err, want)
			}
		})
	}
	// Agreeing fields, or either alone, are fine.
	for _, c := range []SLOConfig{
		{TargetSuccessRate: 0.99, ErrorBudgetPercent: 1},
		{TargetSuccessRate: 0.999},
		{ErrorBudgetPercent: 0.5},
		{Window: 7 * 24 * time.Hour},
	} {
		if _, err := NewSLOTracker(c); err != nil {
			t.Errorf("NewSLOTracker(%+v) = %v", c, err)
		}
	}
}

func TestSLOConfigDefaults(t *testing.T) {
	d := sloDefaults(t, SLOConfig{})
	if d.TargetSuccessRate != 0.99 || d.ErrorBudgetPercent != 1 || d.Window != 5*time.Minute ||
		d.BurnRateThreshold != 14.4 || d.LongWindow != 5*time.Minute || d.ShortWindow != 25*time.Second || d.MinEvents != 20 ||
		d.Clock != SystemClock() {
		t.Fatalf("defaults = %+v", d)
	}
	if d := sloDefaults(t, SLOConfig{TargetSuccessRate: 0.999}); !near(d.ErrorBudgetPercent, 0.1) {
		t.Errorf("budget derived from 0.999 = %v", d.ErrorBudgetPercent)
	}
	if d := sloDefaults(t, SLOConfig{ErrorBudgetPercent: 0.5}); !near(d.TargetSuccessRate, 0.995) {
		t.Errorf("target derived from 0.5%% = %v", d.TargetSuccessRate)
	}
	if d := sloDefaults(t, SLOConfig{Window: time.Hour, LongWindow: 30 * time.Minute}); d.ShortWindow != 150*time.Second {
		t.Errorf("ShortWindow = %v, want LongWindow/12", d.ShortWindow)
	}
}

func TestSLOTrackerRates(t *testing.T) {
	clock := newFake()
	tr := newTestTracker(t, SLOConfig{}, clock)
	if s := tr.Status(); s.Violated ||
		s.LongBurnRate != 0 || s.ShortBurnRate != 0 || s.ErrorBudgetRemaining != 1 || s.SuccessRate != 1 || s.Burning || s.Endpoint != "" {
		t.Fatalf("an empty tracker must read as healthy: %+v", s)
	}
	for range 99 {
		tr.Record(true)
	}
	tr.Record(false)
	if s := tr.Status(); !near(s.SuccessRate, 0.99) || s.Violated {
		t.Fatalf("99/100: rate %v violated %v", s.SuccessRate, s.Violated)
	}
	if r := tr.Status().ErrorBudgetRemaining; math.Abs(r) > 1e-6 {
		t.Fatalf("budget remaining %v, want 0 (exactly spent)", r)
	}
	tr.Record(false)
	// 2 of 101 failed: about twice the budget, so about −0.98 of it is
	// left.
	if s := tr.Status(); s.ErrorBudgetRemaining > -0.97 || s.ErrorBudgetRemaining < -0.99 || !s.Violated {
		t.Fatalf("overspent: remaining %v, violated %v", s.ErrorBudgetRemaining, s.Violated)
	}
	s := tr.Status()
	if math.Abs(s.ShortBurnRate-2/1.01) > 1e-6 || math.Abs(s.LongBurnRate-2/1.01) > 1e-6 {
		t.Fatalf("burn rates %v %v", s.LongBurnRate, s.ShortBurnRate)
	}
	if s.Total != 101 || s.Failed != 2 || s.LongEvents != 101 || !s.Violated || s.Target != 0.99 {
		t.Fatalf("status %+v", s)
	}

	// The window slides: after Window, everything is forgotten.
	clock.Advance(5 * time.Minute)
	if s := tr.Status(); s.SuccessRate != 1 || s.Total != 0 {
		t.Fatalf("after the window: %+v", tr.Status())
	}
}

func TestSLOTrackerSlidingWindow(t *testing.T) {
	clock := newFake()
	tr := newTestTracker(t, SLOConfig{Window: 100 * time.Second}, clock) // buckets of 100s/12/10
	tr.Record(false)
	clock.Advance(60 * time.Second)
	tr.Record(true)
	if s := tr.Status(); s.Total != 2 || s.Failed != 1 {
		t.Fatalf("inside the window: %+v", s)
	}
	clock.Advance(45 * time.Second) // the failure is now 105s old
	if s := tr.Status(); s.Total != 1 || s.Failed != 0 {
		t.Fatalf("after the failure left: %+v", s)
	}
	// The short window (100s/12) sees only the recent buckets, the long
	// window (all of Window here) the success too.
	tr.Record(false)
	if s := tr.Status(); !near(s.ShortBurnRate, 100) || !near(s.LongBurnRate, 50) || s.LongEvents != 2 {
		t.Fatalf("burn rates: short %v, want 100 (all failed, 1%% budget); long %v, want 50", s.ShortBurnRate, s.LongBurnRate)
	}
}

func TestSLOBurnFast(t *testing.T) {
	clock := newFake()
	tr := newTestTracker(t, SLOConfig{}, clock)
	feed(clock, tr.Record, 4*time.Minute, 10, 0) // a healthy past
	if tr.Status().Burning {
		t.Fatal("burning on healthy traffic")
	}
	// Half of all calls fail for a minute: 50x in the short window and
	// 10x over 5 minutes. The long window is not there yet.
	feed(clock, tr.Record, 30*time.Second, 10, 0.5)
	if s := tr.Status(); s.Burning || s.ShortBurnRate < 14.4 {
		t.Fatalf("fired before the long window burned: %+v", s)
	}
	feed(clock, tr.Record, 2*time.Minute, 10, 0.5)
	s := tr.Status()
	if !s.Burning || s.LongBurnRate < 14.4 || s.ShortBurnRate < 14.4 {
		t.Fatalf("fast burn not detected: %+v", s)
	}
	// The errors stop: once the short window clears the rule stops firing,
	// although the long window still burns.
	feed(clock, tr.Record, 26*time.Second, 10, 0)
	if s := tr.Status(); s.Burning || s.LongBurnRate < 14.4 {
		t.Fatalf("did not recover when the short window cleared: %+v", s)
	}
}

func TestSLOBurnSlowNeverFires(t *testing.T) {
	clock := newFake()
	tr := newTestTracker(t, SLOConfig{}, clock)
	// 5% errors: five times the budget, violated all along, but a slow
	// burn: the rule must not fire however long it lasts.
	for range 3 {
		feed(clock, tr.Record, 5*time.Minute, 10, 0.05)
		s := tr.Status()
		if s.Burning || !s.Violated || s.ErrorBudgetRemaining > -3 {
			t.Fatalf("slow burn: %+v", s)
		}
	}
}

func TestSLOBurnNeedsMinEvents(t *testing.T) {
	clock := newFake()
	tr := newTestTracker(t, SLOConfig{MinEvents: 20}, clock)
	for range 19 {
		tr.Record(false)
		clock.Advance(time.Second)
	}
	if s := tr.Status(); s.Burning || s.LongBurnRate != 100 {
		t.Fatalf("fired under MinEvents: %+v", s)
	}
	tr.Record(false)
	if !tr.Status().Burning {
		t.Fatal("did not fire at MinEvents")
	}
}

// ErrorBudgetRemaining is a ratio of the budget: 1 untouched, 0 spent,
// negative overspent.
func TestSLOErrorBudgetRemainingIsARatio(t *testing.T) {
	for _, c := range []struct {
		failed int
		want   float64
	}{{0, 1}, {5, 0.5}, {10, 0}, {20, -1}, {30, -2}} {
		tr := newTestTracker(t, SLOConfig{TargetSuccessRate: 0.99}, newFake())
		for i := range 1000 {
			tr.Record(i >= c.failed)
		}
		if got := tr.Status().ErrorBudgetRemaining; !near(got, c.want) {
			t.Errorf("%d of 1000 failed on a 1%% budget: remaining %v, want %v", c.failed, got, c.want)
		}
	}
}

// A lone tracker only measures: its burn trips nothing and has no
// endpoint.
func TestSLOLoneTrackerHasNoEndpoint(t *testing.T) {
	tr := newTestTracker(t, SLOConfig{MinEvents: 1}, newFake())
	tr.Record(false)
	if s := tr.Status(); !s.Burning || s.Endpoint != "" || tr.burn != nil {
		t.Fatalf("lone tracker %+v", s)
	}
}

func TestSLOTrackerConcurrent(t *testing.T) {
	clock := newFake()
	tr := newTestTracker(t, SLOConfig{}, clock)
	const workers, per = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				tr.Record((i+w)%10 != 0)
				if i%1000 == 0 {
					clock.Advance(time.Second) // rotate buckets under load
				}
			}
		})
	}
	wg.Wait()
	if s := tr.Status(); s.Total != workers*per || s.Failed != workers*per/10 {
		t.Fatalf("counted %d calls, %d failed; want %d, %d", s.Total, s.Failed, workers*per, workers*per/10)
	}
}

func TestSLORecordAllocatesNothing(t *testing.T) {
	tr := newTestTracker(t, SLOConfig{}, newFake())
	if n := testing.AllocsPerRun(1000, func() { tr.Record(true); tr.Record(false) }); n != 0 {
		t.Fatalf("%v allocs per record", n)
	}
}

func BenchmarkSLORecord(b *testing.B) {
	tr, _ := NewSLOTracker(SLOConfig{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			tr.Record(i%100 != 0)
		}
	})
}

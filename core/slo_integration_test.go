package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

type guardFixture struct {
	clock *FakeClock
	bus   *events.Bus
	sub   *events.Subscription
	mgr   *Manager
	guard *SLOGuard
}

func newGuardFixture(t *testing.T, cfg SLOGuardConfig) *guardFixture {
	t.Helper()
	f := &guardFixture{clock: newFake(), bus: events.NewBus()}
	f.sub = f.bus.Subscribe(1024)
	t.Cleanup(f.sub.Close)
	var err error
	f.mgr, err = NewManager(ManagerConfig{Clock: f.clock, Bus: f.bus})
	if err != nil {
		t.Fatal(err)
	}
	// The guard takes the Manager's clock and bus.
	f.guard, err = NewSLOGuard(f.mgr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *guardFixture) record(t *testing.T, endpoint string) func(bool) {
	return func(ok bool) {
		if err := f.guard.RecordRequest(endpoint, ok); err != nil {
			t.Fatalf("RecordRequest: %v", err)
		}
	}
}

// burns drains the bus and returns the SLOBurn events on it.
func (f *guardFixture) burns() []events.SLOBurn {
	var out []events.SLOBurn
	for {
		select {
		case e := <-f.sub.C():
			if b, ok := e.(events.SLOBurn); ok {
				out = append(out, b)
			}
		default:
			return out
		}
	}
}

func TestSLOGuardTripsOnFastBurn(t *testing.T) {
	f := newGuardFixture(t, SLOGuardConfig{})
	rec := f.record(t, "api")
	feed(f.clock, rec, 4*time.Minute, 10, 0)
	feed(f.clock, rec, 2*time.Minute, 10, 0.5)

	b, ok := f.mgr.Lookup("api")
	if !ok || b.State() != Open {
		t.Fatalf("breaker not tripped: %v", b.Snapshot())
	}
	reason := b.Snapshot().Reason
	if !strings.HasPrefix(reason, "SLO 99.00% burning ") || !strings.Contains(reason, "x over 5m and ") || !strings.HasSuffix(reason, "x over 25s") {
		t.Fatalf("reason %q", reason)
	}
	got := f.burns()
	if len(got) != 1 || !got[0].Burning || got[0].Endpoint != "api" || got[0].Type != events.TypeSLOBurn ||
		got[0].LongBurnRate < 14.4 || got[0].ShortBurnRate < 14.4 || got[0].Reason != reason || got[0].Timestamp.IsZero() || got[0].Timestamp.After(f.clock.Now()) {
		t.Fatalf("events %+v", got)
	}
	t.Log(reason)

	// More failures while burning publish nothing more.
	feed(f.clock, rec, 10*time.Second, 10, 1)
	if got := f.burns(); len(got) != 0 {
		t.Fatalf("burn published again: %+v", got)
	}

	// Nothing is recorded while the breaker rejects; once the short window
	// is clear, reading the status publishes the end of the burn, once.
	f.clock.Advance(30 * time.Second)
	s, ok := f.guard.Status("api")
	if !ok || s.Burning || s.Endpoint != "api" {
		t.Fatalf("status %+v", s)
	}
	f.guard.Status("api")
	got = f.burns()
	if len(got) != 1 || got[0].Burning || !strings.Contains(got[0].Reason, "cleared") {
		t.Fatalf("events %+v", got)
	}
}

func TestSLOGuardClearsOnRecords(t *testing.T) {
	f := newGuardFixture(t, SLOGuardConfig{})
	rec := f.record(t, "api")
	feed(f.clock, rec, time.Minute, 10, 1)
	if got := f.burns(); len(got) != 1 || !got[0].Burning {
		t.Fatalf("events %+v", got)
	}
	// Probes that ran and succeeded clear the burn as the short window
	// empties of failures.
	feed(f.clock, rec, 30*time.Second, 10, 0)
	if got := f.burns(); len(got) != 1 || got[0].Burning {
		t.Fatalf("events %+v", got)
	}
	// A new fast burn trips again.
	b, _ := f.mgr.Lookup("api")
	b.Reset()
	feed(f.clock, rec, 10*time.Second, 10, 1)
	if got := f.burns(); len(got) != 1 || !got[0].Burning || b.State() != Open {
		t.Fatalf("second burn: events %+v, state %v", got, b.State())
	}
}

func TestSLOGuardIgnoresSlowBurnAndFewEvents(t *testing.T) {
	f := newGuardFixture(t, SLOGuardConfig{})
	feed(f.clock, f.record(t, "slow"), 10*time.Minute, 10, 0.05)
	s, _ := f.guard.Status("slow")
	if !s.Violated || s.Burning {
		t.Fatalf("slow burn status %+v", s)
	}
	for range 19 {
		f.record(t, "few")(false)
	}
	if _, ok := f.mgr.Lookup("slow"); ok {
		t.Fatal("a slow burn made (and so may have tripped) a breaker")
	}
	if _, ok := f.mgr.Lookup("few"); ok {
		t.Fatal("19 failures under MinEvents tripped a breaker")
	}
	if got := f.burns(); len(got) != 0 {
		t.Fatalf("events %+v", got)
	}
}

func TestSLOGuardConfigs(t *testing.T) {
	f := newGuardFixture(t, SLOGuardConfig{
		SLO:       SLOConfig{TargetSuccessRate: 0.9},
		Overrides: map[string]SLOConfig{"strict": {TargetSuccessRate: 0.999}},
	})
	rec := func(ep string, cfg *SLOConfig) {
		var err error
		if cfg == nil {
			err = f.guard.RecordRequest(ep, true)
		} else {
			err = f.guard.RecordRequestWith(ep, true, *cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rec("plain", nil)
	rec("strict", nil)
	rec("seeded", &SLOConfig{TargetSuccessRate: 0.95})
	rec("seeded", &SLOConfig{TargetSuccessRate: 0.5}) // ignored: exists
	rec("strict2", nil)
	for ep, want := range map[string]float64{"plain": 0.9, "strict": 0.999, "seeded": 0.95, "strict2": 0.9} {
		s, ok := f.guard.Status(ep)
		if !ok || s.Target != want {
			t.Errorf("%s: target %v, want %v", ep, s.Target, want)
		}
	}
	if tr, ok := f.guard.Tracker("seeded"); !ok || tr.Status().Total != 2 {
		t.Error("Tracker(seeded) missing or miscounted")
	}
	all := f.guard.Statuses()
	if len(all) != 4 || all[0].Endpoint != "plain" || all[3].Endpoint != "strict2" {
		t.Errorf("Statuses %+v", all)
	}
	if _, ok := f.guard.Status("nobody"); ok {
		t.Error("Status of an unknown endpoint")
	}
	err := f.guard.RecordRequestWith("bad-cfg", true, SLOConfig{TargetSuccessRate: 2})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid per-call config: %v", err)
	}
	if _, ok := f.guard.Status("bad-cfg"); ok {
		t.Error("an invalid per-call config made a tracker")
	}
}

func TestSLOGuardBounds(t *testing.T) {
	f := newGuardFixture(t, SLOGuardConfig{MaxEndpoints: 2})
	for _, ep := range []string{"a", "b"} {
		if err := f.guard.RecordRequest(ep, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.guard.RecordRequest("c", true); !errors.Is(err, ErrTooManyEndpoints) {
		t.Fatalf("third endpoint: %v", err)
	}
	for _, ep := range []string{"", "bad\x00name", strings.Repeat("x", MaxEndpointLen+1)} {
		if err := f.guard.RecordRequest(ep, true); !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("RecordRequest(%q) = %v", ep, err)
		}
	}
}

func TestSLOGuardConfigValidate(t *testing.T) {
	mgr, _ := NewManager(ManagerConfig{})
	for _, c := range []SLOGuardConfig{
		{MaxEndpoints: -1},
		{SLO: SLOConfig{TargetSuccessRate: 1.5}},
		{Overrides: map[string]SLOConfig{"x": {Window: time.Millisecond}}},
		{Overrides: map[string]SLOConfig{"": {}}},
	} {
		if _, err := NewSLOGuard(mgr, c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewSLOGuard(%+v) = %v", c, err)
		}
	}
	var ce *ConfigError
	_, err := NewSLOGuard(mgr, SLOGuardConfig{Overrides: map[string]SLOConfig{"x": {Window: time.Millisecond}}})
	if !errors.As(err, &ce) || ce.Field != "SLOGuardConfig.Overrides[x].Window" {
		t.Errorf("override error names %v", err)
	}
	if _, err := NewSLOGuard(nil, SLOGuardConfig{}); err == nil {
		t.Error("nil source accepted")
	}
}

type failingSource struct{}

var errNoBreaker = errors.New("no breaker for you")

func (failingSource) Breaker(string) (*Breaker, error) { return nil, errNoBreaker }

func TestSLOGuardSourceError(t *testing.T) {
	clock, bus := newFake(), events.NewBus()
	sub := bus.Subscribe(16)
	defer sub.Close()
	g, err := NewSLOGuard(failingSource{}, SLOGuardConfig{}, WithClock(clock), WithBus(bus))
	if err != nil {
		t.Fatal(err)
	}
	for range 19 {
		_ = g.RecordRequest("api", false)
	}
	clock.Advance(3 * time.Second) // the rule runs at most once per bucket (2.5s here)
	last := g.RecordRequest("api", false)
	if !errors.Is(last, errNoBreaker) {
		t.Fatalf("RecordRequest = %v, want the source's error", last)
	}
	// The burn is still reported.
	select {
	case e := <-sub.C():
		if b, ok := e.(events.SLOBurn); !ok || !b.Burning {
			t.Fatalf("event %+v", e)
		}
	default:
		t.Fatal("no SLOBurn event")
	}
}

func TestSLOGuardRecordAllocatesNothing(t *testing.T) {
	f := newGuardFixture(t, SLOGuardConfig{})
	_ = f.guard.RecordRequest("api", true)
	if n := testing.AllocsPerRun(1000, func() { _ = f.guard.RecordRequest("api", true) }); n != 0 {
		t.Fatalf("%v allocs per record", n)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", 25 * time.Second: "25s", time.Hour: "1h", 90 * time.Minute: "1h30m",
		2500 * time.Millisecond: "2.5s", 61 * time.Second: "1m1s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func BenchmarkSLOGuardRecord(b *testing.B) {
	mgr, _ := NewManager(ManagerConfig{})
	g, _ := NewSLOGuard(mgr, SLOGuardConfig{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = g.RecordRequest("api", true)
		}
	})
}

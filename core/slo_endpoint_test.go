package core

import (
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// sloFixture is a Manager whose endpoints track the default SLO, on a
// FakeClock, with a subscription to its bus.
type sloFixture struct {
	clock *FakeClock
	sub   *events.Subscription
	mgr   *Manager
}

func newSLOFixture(t *testing.T, cfg ManagerConfig) *sloFixture {
	t.Helper()
	f := &sloFixture{clock: newFake()}
	bus := events.NewBus()
	f.sub = bus.Subscribe(1024)
	t.Cleanup(f.sub.Close)
	if cfg.Defaults.SLO == nil {
		cfg.Defaults.SLO = &SLOConfig{}
	}
	cfg.Clock, cfg.Bus = f.clock, bus
	var err error
	if f.mgr, err = NewManager(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *sloFixture) endpoint(t *testing.T, name string) *Endpoint {
	t.Helper()
	e := mustEndpoint(t, f.mgr, name)
	if e.SLO() == nil {
		t.Fatalf("%s has no SLO tracker", name)
	}
	return e
}

// call is one call through the endpoint's breaker as the HTTP middleware
// makes it: a call the breaker refuses never runs and is not recorded.
func call(e *Endpoint, ok bool) (ran bool) {
	p, err := e.Breaker().Allow()
	if err != nil {
		return false
	}
	e.SLO().Record(ok)
	if ok {
		p.Report(Success, 0)
	} else {
		p.Report(Failure, 0)
	}
	return true
}

// burns drains the bus and returns the SLOBurn events on it.
func (f *sloFixture) burns() []events.SLOBurn {
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

func TestEndpointSLOTripsOnFastBurn(t *testing.T) {
	// A breaker that would never open on its own rules: only the SLO
	// trips it.
	f := newSLOFixture(t, ManagerConfig{Defaults: EndpointConfig{Breaker: &BreakerConfig{FailureThreshold: 1_000_000, MinRequestsForRate: 1_000_000_000}}})
	e := f.endpoint(t, "api")
	rec := e.SLO().Record
	feed(f.clock, rec, 4*time.Minute, 10, 0)
	feed(f.clock, rec, 2*time.Minute, 10, 0.5)

	b := e.Breaker()
	if b.State() != events.Open {
		t.Fatalf("breaker not tripped: %+v", b.Snapshot())
	}
	reason := b.Snapshot().Reason
	if !strings.HasPrefix(reason, "SLO 99.00% burning ") || !strings.Contains(reason, "x over 5m and ") || !strings.HasSuffix(reason, "x over 25s") {
		t.Fatalf("reason %q", reason)
	}
	got := f.burns()
	if len(got) != 1 || !got[0].Burning || got[0].Endpoint != "api" || got[0].Type != events.TypeSLOBurn ||
		got[0].LongBurnRate < 14.4 || got[0].ShortBurnRate < 14.4 || got[0].Reason != reason ||
		got[0].Timestamp.IsZero() || got[0].Timestamp.After(f.clock.Now()) || got[0].SuccessRate > 0.9 || got[0].BudgetRemaining > 0 {
		t.Fatalf("events %+v", got)
	}
	if s := e.SLO().Status(); !s.Burning || s.Endpoint != "api" {
		t.Fatalf("status %+v", s)
	}

	// More failures while burning publish nothing more.
	feed(f.clock, rec, 10*time.Second, 10, 1)
	if got := f.burns(); len(got) != 0 {
		t.Fatalf("burn published again: %+v", got)
	}

	// While the breaker rejects, calls are not recorded; once the short
	// window is clear, reading the status publishes the end of the burn,
	// once.
	total := e.SLO().Status().Total
	for range 100 {
		if call(e, false) {
			t.Fatal("an open breaker ran a call")
		}
	}
	if s := e.SLO().Status(); s.Total != total {
		t.Fatalf("rejected calls were recorded: %d, was %d", s.Total, total)
	}
	f.clock.Advance(30 * time.Second)
	s := e.SLO().Status()
	if s.Burning || s.Endpoint != "api" {
		t.Fatalf("status %+v", s)
	}
	e.SLO().Status()
	got = f.burns()
	if len(got) != 1 || got[0].Burning || !strings.Contains(got[0].Reason, "cleared") || got[0].Endpoint != "api" {
		t.Fatalf("events %+v", got)
	}
}

func TestEndpointSLOClearsOnRecords(t *testing.T) {
	f := newSLOFixture(t, ManagerConfig{})
	e := f.endpoint(t, "api")
	rec := e.SLO().Record
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
	b := e.Breaker()
	b.Reset()
	feed(f.clock, rec, 10*time.Second, 10, 1)
	if got := f.burns(); len(got) != 1 || !got[0].Burning || b.State() != events.Open {
		t.Fatalf("second burn: events %+v, state %v", got, b.State())
	}
}

// Through the breaker, as the middleware runs it: the burn trips the
// breaker, the rejected calls are not counted, the burn clears on the
// status while the breaker is open, and the probes close it again.
func TestEndpointSLOThroughTheBreaker(t *testing.T) {
	f := newSLOFixture(t, ManagerConfig{Defaults: EndpointConfig{
		Breaker: &BreakerConfig{FailureThreshold: 1_000_000, MinRequestsForRate: 1_000_000_000, Timeout: time.Minute, SuccessThreshold: 1},
	}})
	e := f.endpoint(t, "api")
	ran, refused := 0, 0
	for range 600 { // a minute at 10/s, all failing
		if call(e, false) {
			ran++
		} else {
			refused++
		}
		f.clock.Advance(100 * time.Millisecond)
	}
	if e.Breaker().State() != events.Open || ran == 0 || refused == 0 {
		t.Fatalf("state %s after %d calls ran and %d were refused", e.Breaker().State(), ran, refused)
	}
	if s := e.SLO().Status(); s.Total != uint64(ran) {
		t.Fatalf("tracker counted %d calls, %d ran", s.Total, ran)
	}
	if s := e.Breaker().Snapshot(); s.RejectedRequests != int64(refused) {
		t.Fatalf("breaker rejected %d, %d refused", s.RejectedRequests, refused)
	}
	// The open minute passes with no call recorded; the burn clears.
	f.clock.Advance(time.Minute)
	e.SLO().Status()
	got := f.burns()
	if len(got) != 2 || !got[0].Burning || got[1].Burning {
		t.Fatalf("events %+v", got)
	}
	if !call(e, true) || e.Breaker().State() != events.Closed {
		t.Fatalf("the probe did not close the breaker: %s", e.Breaker().State())
	}
}

func TestEndpointSLOIgnoresSlowBurnAndFewEvents(t *testing.T) {
	f := newSLOFixture(t, ManagerConfig{})
	slow := f.endpoint(t, "slow")
	feed(f.clock, slow.SLO().Record, 10*time.Minute, 10, 0.05)
	if s := slow.SLO().Status(); !s.Violated || s.Burning {
		t.Fatalf("slow burn status %+v", s)
	}
	few := f.endpoint(t, "few")
	for range 19 {
		few.SLO().Record(false)
	}
	if s := few.SLO().Status(); s.Burning || s.LongEvents != 19 {
		t.Fatalf("few events status %+v", s)
	}
	if slow.Breaker().State() != events.Closed {
		t.Fatal("a slow burn tripped the breaker")
	}
	if few.Breaker().State() != events.Closed {
		t.Fatal("19 failures under MinEvents tripped the breaker")
	}
	if got := f.burns(); len(got) != 0 {
		t.Fatalf("events %+v", got)
	}
}

// The rule runs at most once per bucket (ShortWindow/10): a failure that
// would start the burn within a bucket of the last evaluation waits for
// the next bucket, or for Status.
func TestEndpointSLOEvaluatesAtMostOncePerBucket(t *testing.T) {
	f := newSLOFixture(t, ManagerConfig{Defaults: EndpointConfig{SLO: &SLOConfig{MinEvents: 20}}}) // buckets of 2.5s
	e := f.endpoint(t, "api")
	for range 19 {
		e.SLO().Record(false) // the first evaluates: too few events
	}
	e.SLO().Record(false) // the 20th would start the burn, but the bucket has been evaluated
	f.clock.Advance(2500*time.Millisecond - time.Nanosecond)
	e.SLO().Record(false)
	if e.Breaker().State() != events.Closed || len(f.burns()) != 0 {
		t.Fatalf("evaluated twice in one bucket: %s", e.Breaker().State())
	}
	f.clock.Advance(time.Nanosecond)
	e.SLO().Record(false)
	if e.Breaker().State() != events.Open {
		t.Fatalf("not evaluated in the next bucket: %s", e.Breaker().State())
	}
	if got := f.burns(); len(got) != 1 || !got[0].Burning {
		t.Fatalf("events %+v", got)
	}

	// Status evaluates whenever it is read.
	g := f.endpoint(t, "other")
	for range 20 {
		g.SLO().Record(false)
	}
	if g.Breaker().State() != events.Closed {
		t.Fatal("evaluated twice in one bucket")
	}
	if s := g.SLO().Status(); !s.Burning || g.Breaker().State() != events.Open {
		t.Fatalf("Status did not apply the burn: %+v, %s", s, g.Breaker().State())
	}

	// Successes do not evaluate while not burning: they cannot start one.
	h := f.endpoint(t, "healthy")
	h.SLO().Record(false)
	next := h.SLO().burn.nextEval.Load()
	f.clock.Advance(time.Minute)
	for range 1000 {
		h.SLO().Record(true)
	}
	if got := h.SLO().burn.nextEval.Load(); got != next {
		t.Fatalf("a success evaluated the rule: next evaluation moved from %v to %v", time.Duration(next), time.Duration(got))
	}
}

func TestEndpointSLOConfigs(t *testing.T) {
	f := newSLOFixture(t, ManagerConfig{
		Defaults: EndpointConfig{SLO: &SLOConfig{TargetSuccessRate: 0.9}},
		Endpoints: map[string]EndpointConfig{
			"strict":  {SLO: &SLOConfig{TargetSuccessRate: 0.999, MinEvents: 5}},
			"breaker": {Breaker: &BreakerConfig{Timeout: time.Second}}, // inherits the default SLO
		},
	})
	for ep, want := range map[string]float64{"plain": 0.9, "strict": 0.999, "breaker": 0.9} {
		e := f.endpoint(t, ep)
		e.SLO().Record(true)
		s := e.SLO().Status()
		if s.Target != want || s.Endpoint != ep || s.Total != 1 {
			t.Errorf("%s: status %+v, want target %v", ep, s, want)
		}
	}
	// Each endpoint burns on its own: the strict one trips, the others do
	// not.
	strict := f.endpoint(t, "strict")
	for range 5 {
		strict.SLO().Record(false)
	}
	strict.SLO().Status()
	if strict.Breaker().State() != events.Open {
		t.Fatalf("strict endpoint not tripped: %+v", strict.SLO().Status())
	}
	for _, ep := range []string{"plain", "breaker"} {
		if e := f.endpoint(t, ep); e.Breaker().State() != events.Closed || e.SLO().Status().Burning {
			t.Errorf("%s tripped by another endpoint's burn", ep)
		}
	}
	if got := f.burns(); len(got) != 1 || got[0].Endpoint != "strict" {
		t.Fatalf("events %+v", got)
	}
	// An endpoint without an SLO anywhere has no tracker.
	m, _ := NewManager(ManagerConfig{Endpoints: map[string]EndpointConfig{"tracked": {SLO: &SLOConfig{}}}})
	if mustEndpoint(t, m, "other").SLO() != nil || mustEndpoint(t, m, "tracked").SLO() == nil {
		t.Fatal("SLO trackers where none was configured, or none where one was")
	}
}

// A burn that starts while the breaker is already open (or held) still
// publishes its event, and does not move the breaker.
func TestEndpointSLOBurnOnAnOpenBreaker(t *testing.T) {
	f := newSLOFixture(t, ManagerConfig{})
	e := f.endpoint(t, "api")
	e.Breaker().ForceOpen("maintenance")
	for range 20 {
		e.SLO().Record(false)
	}
	if s := e.SLO().Status(); !s.Burning {
		t.Fatalf("status %+v", s)
	}
	if st := e.Breaker().Snapshot(); st.State != events.ForcedOpen || st.Reason != "forced open: maintenance" {
		t.Fatalf("the burn moved an operator's hold: %+v", st)
	}
	if got := f.burns(); len(got) != 1 || !got[0].Burning {
		t.Fatalf("events %+v", got)
	}
}

func TestEndpointSLORecordAllocatesNothing(t *testing.T) {
	f := newSLOFixture(t, ManagerConfig{})
	e := f.endpoint(t, "api")
	e.SLO().Record(true)
	if n := testing.AllocsPerRun(1000, func() { e.SLO().Record(true); e.SLO().Record(false) }); n != 0 {
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

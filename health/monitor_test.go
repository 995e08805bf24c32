package health_test

import (
	"context"
	"crypto/tls"
	"errors"
	"github.com/bulwark-go/bulwark/health"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/health/internal/probetest"
)

var t0 = time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)

// switchChecker passes or fails as the test says.
type switchChecker struct {
	mu    sync.Mutex
	err   error
	calls atomic.Int64
}

func (s *switchChecker) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *switchChecker) Check(context.Context) error {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

type fixture struct {
	t     *testing.T
	clock *core.FakeClock
	mgr   *core.Manager
	mon   *health.Monitor
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := core.NewFakeClock(t0)
	mgr, err := core.NewManager(core.ManagerConfig{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.NewMonitor(mgr, health.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mon.Close)
	return &fixture{t: t, clock: clk, mgr: mgr, mon: mon}
}

// settle waits until every one of n monitored endpoints has finished its
// check and waits for its next tick.
func (f *fixture) settle(n int) {
	f.t.Helper()
	if !f.clock.WaitForTimers(n, 10*time.Second) {
		f.t.Fatalf("monitor goroutines never waited for their next tick (%d timers)", f.clock.Timers())
	}
}

// tick runs one more check on each of n endpoints.
func (f *fixture) tick(n int, interval time.Duration) {
	f.t.Helper()
	f.settle(n)
	f.clock.Advance(interval)
	f.settle(n)
}

func (f *fixture) breaker(endpoint string) *core.Breaker {
	b, err := f.mgr.Breaker(endpoint)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func TestMonitorForcesOpenAndReleases(t *testing.T) {
	f := newFixture(t)
	chk := &switchChecker{}
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "db-ping", Checker: chk})
	const every = 10 * time.Second
	if err := f.mon.StartWithOptions("db", probe, health.Options{Interval: every, History: 4}); err != nil {
		t.Fatal(err)
	}
	b := f.breaker("db")
	f.settle(1)
	st, ok := f.mon.Status("db")
	if !ok || !st.Healthy || st.Checks != 1 || st.Probe != "db-ping" || st.FailureThreshold != 3 || st.SuccessThreshold != 2 || st.IntervalMS != 10_000 {
		t.Fatalf("status after the first check: %+v", st)
	}

	chk.set(errors.New("connection refused"))
	f.tick(1, every)
	f.tick(1, every)
	if b.State() != core.Closed {
		t.Fatalf("forced open after 2 failures (threshold 3): %v", b.State())
	}
	f.tick(1, every)
	snap := b.Snapshot()
	if snap.State != core.ForcedOpen {
		t.Fatalf("state after 3 failures: %v", snap.State)
	}
	if want := "health check db-ping failed 3 times: connection refused"; !strings.HasSuffix(snap.Reason, want) {
		t.Fatalf("reason %q, want it to end with %q", snap.Reason, want)
	}
	st, _ = f.mon.Status("db")
	if !st.ForcedOpen || st.Healthy || st.ConsecutiveFailures != 3 || st.Failures != 3 {
		t.Fatalf("status after 3 failures: %+v", st)
	}
	// More failures don't force again.
	f.tick(1, every)
	if n := b.Snapshot().Transitions[core.ForcedOpen][core.ForcedOpen]; n != 0 {
		t.Fatalf("forced again while already held: %d", n)
	}

	chk.set(nil)
	f.tick(1, every)
	if b.State() != core.ForcedOpen {
		t.Fatalf("released after 1 pass (threshold 2): %v", b.State())
	}
	f.tick(1, every)
	if b.State() != core.HalfOpen {
		t.Fatalf("state after 2 passes: %v, want HalfOpen (never straight to Closed)", b.State())
	}
	st, _ = f.mon.Status("db")
	if st.ForcedOpen || !st.Healthy || st.ConsecutiveSuccesses != 2 || st.Checks != 7 {
		t.Fatalf("status after release: %+v", st)
	}
	// History keeps the last 4 results, oldest first, stamped by the clock.
	if len(st.History) != 4 || st.History[0].OK || !st.History[3].OK {
		t.Fatalf("history %+v", st.History)
	}
	for i, r := range st.History {
		if want := t0.Add(time.Duration(3+i) * every); !r.Time.Equal(want) {
			t.Fatalf("history[%d].Time = %v, want %v", i, r.Time, want)
		}
	}
	if !st.Last.Time.Equal(t0.Add(6 * every)) {
		t.Fatalf("last result at %v", st.Last.Time)
	}
}

// The monitor leaves a breaker alone that a person forced open, and never
// releases a hold it did not place.
func TestMonitorRespectsManualForceOpen(t *testing.T) {
	f := newFixture(t)
	chk := &switchChecker{}
	chk.set(errors.New("down"))
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "p", Checker: chk})
	b := f.breaker("svc")
	b.ForceOpen("maintenance window")
	if err := f.mon.StartWithOptions("svc", probe, health.Options{Interval: time.Second, FailureThreshold: 1, SuccessThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	f.tick(1, time.Second)
	chk.set(nil)
	f.tick(1, time.Second)
	if s := b.Snapshot(); s.State != core.ForcedOpen || !strings.Contains(s.Reason, "maintenance window") {
		t.Fatalf("manual hold undone: %v %q", s.State, s.Reason)
	}
	if st, _ := f.mon.Status("svc"); st.ForcedOpen {
		t.Fatal("status claims the monitor holds a manual force-open")
	}

	// A disabled breaker is left alone too.
	b.Disable()
	chk.set(errors.New("down"))
	f.tick(1, time.Second)
	if b.State() != core.Disabled {
		t.Fatalf("disabled breaker changed to %v", b.State())
	}
}

// When someone takes over a breaker the monitor forced open, the monitor's
// hold is gone: it doesn't release the new one.
func TestMonitorLosesHoldToOperator(t *testing.T) {
	f := newFixture(t)
	chk := &switchChecker{}
	chk.set(errors.New("down"))
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "p", Checker: chk})
	if err := f.mon.StartWithOptions("svc", probe, health.Options{Interval: time.Second, FailureThreshold: 1, SuccessThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	b := f.breaker("svc")
	f.settle(1)
	if b.State() != core.ForcedOpen {
		t.Fatalf("state %v", b.State())
	}
	b.Reset()
	b.ForceOpen("operator says so")
	chk.set(nil)
	f.tick(1, time.Second)
	if s := b.Snapshot(); s.State != core.ForcedOpen || !strings.Contains(s.Reason, "operator says so") {
		t.Fatalf("operator's hold released: %v %q", s.State, s.Reason)
	}
}

// Stop ends the goroutine and gives back a hold the monitor still has.
func TestMonitorStopReleases(t *testing.T) {
	f := newFixture(t)
	chk := &switchChecker{}
	chk.set(errors.New("down"))
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "p", Checker: chk})
	if err := f.mon.StartWithOptions("svc", probe, health.Options{Interval: time.Second, FailureThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	b := f.breaker("svc")
	f.settle(1)
	if b.State() != core.ForcedOpen {
		t.Fatalf("state %v", b.State())
	}
	if !f.mon.Stop("svc") {
		t.Fatal("Stop reported the endpoint unmonitored")
	}
	if b.State() != core.HalfOpen {
		t.Fatalf("state after Stop: %v, want HalfOpen", b.State())
	}
	if f.mon.Stop("svc") {
		t.Fatal("second Stop reported success")
	}
	if _, ok := f.mon.Status("svc"); ok {
		t.Fatal("status of a stopped endpoint")
	}
	calls := chk.calls.Load()
	f.clock.Advance(time.Hour)
	if f.clock.Timers() != 0 || chk.calls.Load() != calls {
		t.Fatal("checks continue after Stop")
	}
	// It can be monitored again.
	if err := f.mon.Start("svc", probe, time.Second); err != nil {
		t.Fatal(err)
	}
}

// Stop cancels a check in flight instead of waiting for its timeout.
func TestMonitorStopCancelsCheck(t *testing.T) {
	f := newFixture(t)
	entered := make(chan struct{})
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "slow", Timeout: time.Hour, Checker: health.CheckerFunc(func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})})
	if err := f.mon.Start("svc", probe, time.Second); err != nil {
		t.Fatal(err)
	}
	<-entered
	f.mon.Stop("svc")
}

func TestMonitorStartErrors(t *testing.T) {
	f := newFixture(t)
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "p", Checker: okChecker})
	for name, err := range map[string]error{
		"nil probe":         f.mon.Start("a", nil, time.Second),
		"zero interval":     f.mon.Start("a", probe, 0),
		"tiny interval":     f.mon.StartWithOptions("a", probe, health.Options{Interval: time.Microsecond}),
		"failure threshold": f.mon.StartWithOptions("a", probe, health.Options{FailureThreshold: -1}),
		"success threshold": f.mon.StartWithOptions("a", probe, health.Options{SuccessThreshold: health.MaxThreshold + 1}),
		"history":           f.mon.StartWithOptions("a", probe, health.Options{History: health.MaxHistory + 1}),
		"timeout":           f.mon.StartWithOptions("a", probe, health.Options{Timeout: -1}),
		"bad endpoint":      f.mon.Start("", probe, time.Second),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := f.mon.StartWithOptions("a", probe, health.Options{FailureThreshold: -1}); err == nil || !strings.Contains(err.Error(), "Options.FailureThreshold") {
		t.Errorf("error %v does not name the field", err)
	}
	if _, err := health.NewMonitor(nil); err == nil {
		t.Error("NewMonitor(nil) succeeded")
	}

	if err := f.mon.Start("a", probe, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := f.mon.Start("a", probe, time.Second); !errors.Is(err, health.ErrAlreadyMonitored) {
		t.Fatalf("second Start: %v", err)
	}
	if err := f.mon.Start("b", probe, time.Second); err != nil {
		t.Fatal(err)
	}
	f.settle(2)
	sts := f.mon.Statuses()
	if len(sts) != 2 || sts[0].Endpoint != "a" || sts[1].Endpoint != "b" {
		t.Fatalf("Statuses() = %+v", sts)
	}
	f.mon.Close()
	if err := f.mon.Start("c", probe, time.Second); !errors.Is(err, health.ErrMonitorClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if len(f.mon.Statuses()) != 0 {
		t.Fatal("statuses after Close")
	}
}

// limitedBreakers refuses endpoints past the first, as a Manager at its
// bound does.
type limitedBreakers struct{ m *core.Manager }

func (l limitedBreakers) Breaker(endpoint string) (*core.Breaker, error) {
	if endpoint != "only" {
		return nil, core.ErrTooManyEndpoints
	}
	return l.m.Breaker(endpoint)
}

func TestMonitorBreakerRefused(t *testing.T) {
	clk := core.NewFakeClock(t0)
	mgr, _ := core.NewManager(core.ManagerConfig{Clock: clk})
	mon, _ := health.NewMonitor(limitedBreakers{mgr}, health.WithClock(clk))
	defer mon.Close()
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "p", Checker: okChecker})
	if err := mon.Start("other", probe, time.Second); !errors.Is(err, core.ErrTooManyEndpoints) {
		t.Fatalf("Start = %v, want ErrTooManyEndpoints", err)
	}
}

// health.Options.Timeout bounds a check even when the probe's own timeout is
// longer.
func TestMonitorTimeout(t *testing.T) {
	hung := probetest.HungServer(t)
	f := newFixture(t)
	probe, _ := health.NewTCPProbe(health.TCPProbeConfig{Address: hung, TLS: &tls.Config{}, Timeout: time.Hour})
	if err := f.mon.StartWithOptions("svc", probe, health.Options{Interval: time.Second, Timeout: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	f.settle(1)
	st, _ := f.mon.Status("svc")
	if st.Healthy || st.Last.Err == nil || !strings.Contains(st.Last.Err.Error(), "deadline") {
		t.Fatalf("last result %+v", st.Last)
	}
}

// A breaker listener may ask the monitor for its status while the monitor
// is changing the breaker's state.
func TestMonitorListenerMayReadStatus(t *testing.T) {
	f := newFixture(t)
	chk := &switchChecker{}
	chk.set(errors.New("down"))
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "p", Checker: chk})
	b := f.breaker("svc")
	seen := make(chan bool, 4)
	cancel := b.OnStateChange(func(events.StateChange) {
		st, _ := f.mon.Status("svc")
		seen <- st.Healthy
	})
	defer cancel()
	if err := f.mon.StartWithOptions("svc", probe, health.Options{Interval: time.Second, FailureThreshold: 1, SuccessThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	f.settle(1)
	chk.set(nil)
	f.tick(1, time.Second)
	if len(seen) != 2 || <-seen || !<-seen {
		t.Fatal("listener did not see the forced-open and release transitions")
	}
}

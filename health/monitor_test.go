package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/health"
)

// The monitor's tests run in a synctest bubble: the monitor paces checks
// with the time package (its default clock), so time.Sleep moves the
// bubble's clock to the next check at once and synctest.Wait returns when
// that check is done.

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

var quiet = slog.New(slog.DiscardHandler)

type fixture struct {
	t   *testing.T
	mgr *core.Manager
	mon *health.Monitor
}

// newFixture makes a monitor over a fresh manager, closed when the test
// ends. The manager's clock stands still: breakers only need to be forced
// and released here.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	mgr, err := core.NewManager(core.ManagerConfig{Clock: core.NewFakeClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.NewMonitor(health.MonitorConfig{Manager: mgr, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mon.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &fixture{t: t, mgr: mgr, mon: mon}
}

func (f *fixture) breaker(endpoint string) *core.Breaker {
	f.t.Helper()
	e, err := f.mgr.Endpoint(endpoint)
	if err != nil {
		f.t.Fatal(err)
	}
	return e.Breaker()
}

func (f *fixture) watch(endpoint string, p health.Probe, cfg health.WatchConfig) {
	f.t.Helper()
	if err := f.mon.Watch(endpoint, p, cfg); err != nil {
		f.t.Fatal(err)
	}
	synctest.Wait() // the first check, which runs at once
}

// statusOf returns the status of one watched endpoint, and false when it is
// not watched.
func statusOf(mon *health.Monitor, endpoint string) (health.Status, bool) {
	for _, st := range mon.Statuses() {
		if st.Endpoint == endpoint {
			return st, true
		}
	}
	return health.Status{}, false
}

func (f *fixture) status(endpoint string) health.Status {
	f.t.Helper()
	st, ok := statusOf(f.mon, endpoint)
	if !ok {
		f.t.Fatalf("%s is not watched", endpoint)
	}
	return st
}

// tick lets d pass and waits for the checks due by then.
func tick(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func custom(t *testing.T, name string, c health.Checker) health.Probe {
	t.Helper()
	p, err := health.NewCustomProbe(health.CustomProbeConfig{Name: name, Checker: c})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMonitorForcesOpenAndReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		t0 := time.Now()
		chk := &switchChecker{}
		const every = 10 * time.Second
		f.watch("db", custom(t, "db-ping", chk), health.WatchConfig{Interval: every, History: 4})
		b := f.breaker("db")
		st := f.status("db")
		if !st.Healthy || st.Checks != 1 || st.Probe != "db-ping" || st.FailureThreshold != 3 || st.SuccessThreshold != 2 || st.IntervalMS != 10_000 {
			t.Fatalf("status after the first check: %+v", st)
		}

		chk.set(errors.New("connection refused"))
		tick(every)
		tick(every)
		if b.State() != events.Closed {
			t.Fatalf("forced open after 2 failures (threshold 3): %v", b.State())
		}
		tick(every)
		snap := b.Snapshot()
		if snap.State != events.ForcedOpen {
			t.Fatalf("state after 3 failures: %v", snap.State)
		}
		if want := "health check db-ping failed 3 times: connection refused"; !strings.HasSuffix(snap.Reason, want) {
			t.Fatalf("reason %q, want it to end with %q", snap.Reason, want)
		}
		st = f.status("db")
		if !st.ForcedOpen || st.Healthy || st.ConsecutiveFailures != 3 || st.Failures != 3 {
			t.Fatalf("status after 3 failures: %+v", st)
		}
		// More failures don't force again.
		tick(every)
		if n := b.Snapshot().Transitions[events.ForcedOpen][events.ForcedOpen]; n != 0 {
			t.Fatalf("forced again while already held: %d", n)
		}

		chk.set(nil)
		tick(every)
		if b.State() != events.ForcedOpen {
			t.Fatalf("released after 1 pass (threshold 2): %v", b.State())
		}
		tick(every)
		if b.State() != events.HalfOpen {
			t.Fatalf("state after 2 passes: %v, want HalfOpen (never straight to Closed)", b.State())
		}
		st = f.status("db")
		if st.ForcedOpen || !st.Healthy || st.ConsecutiveSuccesses != 2 || st.Checks != 7 {
			t.Fatalf("status after release: %+v", st)
		}
		// History keeps the last 4 results, oldest first, stamped with the
		// time each check started.
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
		if n := chk.calls.Load(); n != 7 {
			t.Fatalf("%d checks in 60s at a 10s interval, want 7", n)
		}
	})
}

// The monitor leaves a breaker alone that a person forced open, and never
// releases a hold it did not place.
func TestMonitorRespectsManualForceOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		chk := &switchChecker{}
		chk.set(errors.New("down"))
		b := f.breaker("svc")
		b.ForceOpen("maintenance window")
		f.watch("svc", custom(t, "p", chk), health.WatchConfig{Interval: time.Second, FailureThreshold: 1, SuccessThreshold: 1})
		chk.set(nil)
		tick(time.Second)
		if s := b.Snapshot(); s.State != events.ForcedOpen || !strings.Contains(s.Reason, "maintenance window") {
			t.Fatalf("manual hold undone: %v %q", s.State, s.Reason)
		}
		if f.status("svc").ForcedOpen {
			t.Fatal("status claims the monitor holds a manual force-open")
		}

		// A disabled breaker is left alone too.
		b.Disable()
		chk.set(errors.New("down"))
		tick(time.Second)
		if b.State() != events.Disabled {
			t.Fatalf("disabled breaker changed to %v", b.State())
		}
	})
}

// When someone takes over a breaker the monitor forced open, the monitor's
// hold is gone: it doesn't release the new one.
func TestMonitorLosesHoldToOperator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		chk := &switchChecker{}
		chk.set(errors.New("down"))
		f.watch("svc", custom(t, "p", chk), health.WatchConfig{Interval: time.Second, FailureThreshold: 1, SuccessThreshold: 1})
		b := f.breaker("svc")
		if b.State() != events.ForcedOpen {
			t.Fatalf("state %v", b.State())
		}
		b.Reset()
		b.ForceOpen("operator says so")
		if f.status("svc").ForcedOpen {
			t.Fatal("status claims the hold after the operator took over")
		}
		chk.set(nil)
		tick(time.Second)
		if s := b.Snapshot(); s.State != events.ForcedOpen || !strings.Contains(s.Reason, "operator says so") {
			t.Fatalf("operator's hold released: %v %q", s.State, s.Reason)
		}
		// Unwatching doesn't release it either.
		f.mon.Unwatch("svc")
		if s := b.Snapshot(); s.State != events.ForcedOpen || !strings.Contains(s.Reason, "operator says so") {
			t.Fatalf("operator's hold released by Unwatch: %v %q", s.State, s.Reason)
		}
	})
}

// Unwatch ends the goroutine and gives back a hold the monitor still has.
func TestMonitorUnwatchReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		chk := &switchChecker{}
		chk.set(errors.New("down"))
		probe := custom(t, "p", chk)
		f.watch("svc", probe, health.WatchConfig{Interval: time.Second, FailureThreshold: 1})
		b := f.breaker("svc")
		if b.State() != events.ForcedOpen {
			t.Fatalf("state %v", b.State())
		}
		if !f.mon.Unwatch("svc") {
			t.Fatal("Unwatch reported the endpoint unwatched")
		}
		if s := b.Snapshot(); s.State != events.HalfOpen || !strings.HasSuffix(s.Reason, "health monitoring with p stopped") {
			t.Fatalf("after Unwatch: %v %q, want HalfOpen", s.State, s.Reason)
		}
		if f.mon.Unwatch("svc") {
			t.Fatal("second Unwatch reported success")
		}
		if _, ok := statusOf(f.mon, "svc"); ok {
			t.Fatal("status of an unwatched endpoint")
		}
		calls := chk.calls.Load()
		tick(time.Hour)
		if chk.calls.Load() != calls {
			t.Fatal("checks continue after Unwatch")
		}
		// It can be watched again.
		f.watch("svc", probe, health.WatchConfig{})
		if st := f.status("svc"); st.Checks != 1 || st.IntervalMS != 30_000 {
			t.Fatalf("watched again: %+v", st)
		}
	})
}

// Unwatch cancels a check in flight instead of waiting for its timeout.
func TestMonitorUnwatchCancelsCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "slow", Timeout: time.Hour, Checker: health.CheckerFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})})
		f.watch("svc", probe, health.WatchConfig{})
		start := time.Now()
		f.mon.Unwatch("svc")
		if d := time.Since(start); d != 0 {
			t.Fatalf("Unwatch took %v", d)
		}
	})
}

// WatchConfig.Timeout bounds a check even when the probe's own timeout is
// longer.
func TestMonitorTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "slow", Timeout: time.Hour, Checker: health.CheckerFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})})
		if err := f.mon.Watch("svc", probe, health.WatchConfig{Interval: time.Minute, Timeout: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		tick(100 * time.Millisecond)
		st := f.status("svc")
		if st.Checks != 1 || st.Healthy || !errors.Is(st.Last.Err, context.DeadlineExceeded) || st.Last.Latency != 100*time.Millisecond {
			t.Fatalf("last result %+v", st.Last)
		}
	})
}

// stuckProbe ignores its context: each Check waits for the test.
type stuckProbe struct {
	first   atomic.Bool
	release chan struct{}
}

func (p *stuckProbe) Name() string { return "stuck" }

func (p *stuckProbe) Check(context.Context) health.Result {
	if p.first.CompareAndSwap(false, true) {
		return health.Result{Err: errors.New("down")}
	}
	<-p.release
	return health.Result{Err: errors.New("down")}
}

func TestMonitorClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		chk := &switchChecker{}
		chk.set(errors.New("down"))
		for _, ep := range []string{"a", "b"} {
			f.watch(ep, custom(t, "p", chk), health.WatchConfig{Interval: time.Second, FailureThreshold: 1})
		}
		if err := f.mon.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, ep := range []string{"a", "b"} {
			if s := f.breaker(ep).State(); s != events.HalfOpen {
				t.Fatalf("%s after Close: %v, want HalfOpen", ep, s)
			}
		}
		if err := f.mon.Close(context.Background()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := f.mon.Watch("c", custom(t, "p", chk), health.WatchConfig{}); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Watch after Close: %v", err)
		}
		if len(f.mon.Statuses()) != 0 {
			t.Fatal("statuses after Close")
		}
	})
}

// A check that ignores its context can't hold Close past ctx, and the
// breaker is released all the same, for good.
func TestMonitorCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		probe := &stuckProbe{release: make(chan struct{})}
		f.watch("svc", probe, health.WatchConfig{Interval: time.Second, FailureThreshold: 1})
		b := f.breaker("svc")
		if b.State() != events.ForcedOpen {
			t.Fatalf("state %v", b.State())
		}
		tick(time.Second) // the second check is stuck
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err := f.mon.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 5*time.Second {
			t.Fatalf("Close = %v after %v, want DeadlineExceeded after 5s", err, time.Since(start))
		}
		if b.State() != events.HalfOpen {
			t.Fatalf("state after Close: %v, want HalfOpen", b.State())
		}
		close(probe.release) // the stuck check ends and is not recorded
		synctest.Wait()
		if b.State() != events.HalfOpen {
			t.Fatalf("state after the stuck check ended: %v", b.State())
		}
	})
}

// panicProbe breaks the Probe contract.
type panicProbe struct{}

func (panicProbe) Name() string                        { return "panicky" }
func (panicProbe) Check(context.Context) health.Result { panic("boom") }

func TestMonitorProbePanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.watch("svc", panicProbe{}, health.WatchConfig{})
		st := f.status("svc")
		if st.Healthy || st.Last.Err == nil || st.Last.Err.Error() != "probe panicked: boom" || st.Last.Probe != "panicky" {
			t.Fatalf("last result %+v", st.Last)
		}
	})
}

func TestMonitorWatchErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		probe := custom(t, "p", okChecker)
		if err := f.mon.Watch("", probe, health.WatchConfig{}); !errors.Is(err, core.ErrInvalidEndpoint) {
			t.Fatalf("Watch of a bad endpoint: %v", err)
		}
		f.watch("b", probe, health.WatchConfig{})
		if err := f.mon.Watch("b", probe, health.WatchConfig{}); !errors.Is(err, health.ErrAlreadyWatched) {
			t.Fatalf("second Watch: %v", err)
		}
		f.watch("a", probe, health.WatchConfig{})
		sts := f.mon.Statuses()
		if len(sts) != 2 || sts[0].Endpoint != "a" || sts[1].Endpoint != "b" {
			t.Fatalf("Statuses() = %+v", sts)
		}
	})
}

func TestMonitorBreakerRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mgr, _ := core.NewManager(core.ManagerConfig{Clock: core.NewFakeClock(time.Now()), MaxEndpoints: 1})
		if _, err := mgr.Endpoint("only"); err != nil {
			t.Fatal(err)
		}
		mon, err := health.NewMonitor(health.MonitorConfig{Manager: mgr, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer mon.Close(context.Background())
		probe := custom(t, "p", okChecker)
		if err := mon.Watch("other", probe, health.WatchConfig{}); !errors.Is(err, core.ErrTooManyEndpoints) {
			t.Fatalf("Watch = %v, want ErrTooManyEndpoints", err)
		}
		if err := mon.Watch("only", probe, health.WatchConfig{}); err != nil {
			t.Fatal(err)
		}
	})
}

// A breaker listener may ask the monitor for its status while the monitor
// is changing the breaker's state.
func TestMonitorListenerMayReadStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		chk := &switchChecker{}
		chk.set(errors.New("down"))
		b := f.breaker("svc")
		seen := make(chan bool, 4)
		cancel := b.OnStateChange(func(events.StateChange) {
			st, _ := statusOf(f.mon, "svc")
			seen <- st.Healthy
		})
		defer cancel()
		f.watch("svc", custom(t, "p", chk), health.WatchConfig{Interval: time.Second, FailureThreshold: 1, SuccessThreshold: 1})
		chk.set(nil)
		tick(time.Second)
		if len(seen) != 2 || <-seen || !<-seen {
			t.Fatal("listener did not see the forced-open and release transitions")
		}
	})
}

// The monitor's clock paces the checks and stamps their results, so a
// core.FakeClock drives them too.
func TestMonitorFakeClock(t *testing.T) {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	mgr, _ := core.NewManager(core.ManagerConfig{Clock: clock})
	mon, err := health.NewMonitor(health.MonitorConfig{Manager: mgr, Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	chk := &switchChecker{}
	if err := mon.Watch("svc", custom(t, "p", chk), health.WatchConfig{Interval: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if !clock.WaitForTimers(1, 10*time.Second) {
			t.Fatal("the monitor never waited for its next check")
		}
		clock.Advance(time.Minute)
	}
	if !clock.WaitForTimers(1, 10*time.Second) {
		t.Fatal("the monitor never waited for its next check")
	}
	st, _ := statusOf(mon, "svc")
	if st.Checks != 4 || !st.Last.Time.Equal(clock.Now()) {
		t.Fatalf("status %+v at %v", st, clock.Now())
	}
}

// Status encodes with its last result and history in Result's JSON form,
// so it can be served as it is.
func TestStatusJSON(t *testing.T) {
	at := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	r := health.Result{Probe: "tcp://db:5432", Latency: 2 * time.Millisecond, Err: errors.New("refused"), Time: at}
	st := health.Status{
		Endpoint: "db", Probe: "tcp://db:5432", Last: r, ConsecutiveFailures: 3, Checks: 5, Failures: 3,
		ForcedOpen: true, IntervalMS: 30_000, FailureThreshold: 3, SuccessThreshold: 2, History: []health.Result{r},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	res := `{"probe":"tcp://db:5432","ok":false,"latency_ms":2,"error":"refused","time":"2025-10-08T12:00:00Z"}`
	want := `{"endpoint":"db","probe":"tcp://db:5432","healthy":false,"last":` + res +
		`,"consecutive_failures":3,"consecutive_successes":0,"checks":5,"failures":3,"forced_open":true,` +
		`"interval_ms":30000,"failure_threshold":3,"success_threshold":2,"history":[` + res + `]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back health.Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Last.Err == nil || back.Last.Err.Error() != "refused" || len(back.History) != 1 || !back.Last.Time.Equal(at) {
		t.Fatalf("round trip %+v", back)
	}
}

// Monitors of two instances sharing a breaker: the one whose checks fail
// holds it under its own name, and the other, whose checks pass, leaves
// that hold alone.
func TestMonitorInstancesLeaveEachOthersHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		monitor := func(instance string) *health.Monitor {
			m, err := health.NewMonitor(health.MonitorConfig{Manager: f.mgr, Logger: quiet, Instance: instance})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })
			return m
		}
		a, b := monitor("pod-a"), monitor("pod-b")
		const every = time.Second
		failing := &switchChecker{err: errors.New("connection refused")}
		if err := a.Watch("db", custom(t, "db-ping", failing), health.WatchConfig{Interval: every}); err != nil {
			t.Fatal(err)
		}
		if err := b.Watch("db", custom(t, "db-ping", okChecker), health.WatchConfig{Interval: every}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		tick(every)
		tick(every)
		br := f.breaker("db")
		if s := br.Snapshot(); s.State != events.ForcedOpen || s.HeldBy != "health db-ping@pod-a" {
			t.Fatalf("after 3 failed checks on pod-a: %s held by %q", s.State, s.HeldBy)
		}
		for range 5 {
			tick(every)
		}
		if s := br.Snapshot(); s.State != events.ForcedOpen || s.HeldBy != "health db-ping@pod-a" {
			t.Fatalf("pod-b's passing checks changed pod-a's hold: %s held by %q", s.State, s.HeldBy)
		}
		// pod-a's checks pass again: its own monitor releases.
		failing.set(nil)
		tick(every)
		tick(every)
		if s := br.Snapshot(); s.State != events.HalfOpen {
			t.Fatalf("after pod-a's checks passed twice: %s", s.State)
		}
	})
}

func TestMonitorInstanceRefused(t *testing.T) {
	mgr, _ := core.NewManager(core.ManagerConfig{})
	for _, bad := range []string{"pod a", "pod\n", strings.Repeat("x", 129)} {
		_, err := health.NewMonitor(health.MonitorConfig{Manager: mgr, Instance: bad})
		if !errors.Is(err, core.ErrInvalidConfig) || !strings.Contains(err.Error(), "Instance") {
			t.Fatalf("Instance %q: %v", bad, err)
		}
	}
}

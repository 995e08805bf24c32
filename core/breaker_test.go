package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newTestBreaker makes a breaker named "api" on a FakeClock at t0, with a
// subscription to its bus.
func newTestBreaker(t testing.TB, cfg BreakerConfig) (*Breaker, *FakeClock, *events.Subscription) {
	t.Helper()
	clk := NewFakeClock(t0)
	bus := events.NewBus()
	sub := bus.Subscribe(1024)
	t.Cleanup(sub.Close)
	if cfg.Name == "" {
		cfg.Name = "api"
	}
	cfg.Clock, cfg.Bus = clk, bus
	b, err := NewBreaker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, clk, sub
}

func mustAllow(t testing.TB, b *Breaker) Permit {
	t.Helper()
	p, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow in %s: %v", b.State(), err)
	}
	return p
}

func fail(t testing.TB, b *Breaker, n int) {
	t.Helper()
	for range n {
		mustAllow(t, b).Report(Failure, 0)
	}
}

func succeed(t testing.TB, b *Breaker, n int) {
	t.Helper()
	for range n {
		mustAllow(t, b).Report(Success, 0)
	}
}

// transitions drains the subscription and returns "Old>New" strings.
func transitions(sub *events.Subscription) []string {
	var out []string
	for {
		select {
		case e := <-sub.C():
			sc := e.(events.StateChange)
			out = append(out, sc.OldState.String()+">"+sc.NewState.String())
		default:
			return out
		}
	}
}

func TestDefaults(t *testing.T) {
	b, err := NewBreaker(BreakerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d := b.Config()
	if d.Disabled || d.FailureThreshold != 5 || d.SuccessThreshold != 2 || d.Timeout != 60*time.Second ||
		d.HalfOpenMaxRequests != 3 || d.FailureRateThreshold != 50 || d.MinRequestsForRate != 10 ||
		d.RollingWindow != 10*time.Second {
		t.Fatalf("defaults differ from the documented ones: %+v", d)
	}
	// The defaults documented on the fields.
	if d.WindowBuckets != 10 || d.SlowCallDuration != 0 || d.SlowCallRateThreshold != 100 ||
		d.OpenBackoffMultiplier != 1 || d.MaxOpenDuration != 600*time.Second || d.ProbeTimeout != 60*time.Second ||
		d.Classifier == nil || d.Clock != SystemClock() || d.Bus != nil || b.State() != events.Closed {
		t.Fatalf("defaults differ from the field docs: %+v", d)
	}
	// MaxOpenDuration and ProbeTimeout follow Timeout; SuccessThreshold is
	// lowered to fit HalfOpenMaxRequests.
	b, err = NewBreaker(BreakerConfig{Timeout: time.Second, HalfOpenMaxRequests: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Config(); d.MaxOpenDuration != 10*time.Second || d.ProbeTimeout != time.Second || d.SuccessThreshold != 1 {
		t.Fatalf("derived defaults %+v", d)
	}
	if b, _ := NewBreaker(BreakerConfig{Disabled: true}); b.State() != events.Disabled {
		t.Fatalf("Disabled config made a %s breaker", b.State())
	}
}

// One bad field is reported alone, under its full name, with the rule.
func TestBreakerConfigNamesTheField(t *testing.T) {
	cases := []struct {
		cfg   BreakerConfig
		field string
	}{
		{BreakerConfig{FailureThreshold: -1}, "FailureThreshold"},
		{BreakerConfig{SuccessThreshold: 4}, "SuccessThreshold"},
		{BreakerConfig{Timeout: -time.Second}, "Timeout"},
		{BreakerConfig{HalfOpenMaxRequests: 20_000}, "HalfOpenMaxRequests"},
		{BreakerConfig{FailureRateThreshold: 101}, "FailureRateThreshold"},
		{BreakerConfig{MinRequestsForRate: -3}, "MinRequestsForRate"},
		{BreakerConfig{RollingWindow: time.Millisecond}, "RollingWindow"},
		{BreakerConfig{WindowBuckets: 5000}, "WindowBuckets"},
		{BreakerConfig{RollingWindow: 10 * time.Millisecond, WindowBuckets: 100}, "WindowBuckets"},
		{BreakerConfig{SlowCallDuration: -1}, "SlowCallDuration"},
		{BreakerConfig{SlowCallDuration: 25 * time.Hour}, "SlowCallDuration"},
		{BreakerConfig{SlowCallRateThreshold: -5}, "SlowCallRateThreshold"},
		{BreakerConfig{OpenBackoffMultiplier: 0.5}, "OpenBackoffMultiplier"},
		{BreakerConfig{Timeout: time.Minute, MaxOpenDuration: time.Second}, "MaxOpenDuration"},
		{BreakerConfig{ProbeTimeout: -time.Second}, "ProbeTimeout"},
	}
	for _, c := range cases {
		b, err := NewBreaker(c.cfg)
		want := "core.BreakerConfig." + c.field
		ces := configErrors(err)
		if b != nil || len(ces) != 1 || ces[0].Field != want || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: got %v, want one ConfigError naming %s", c.cfg, err, want)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "must be") {
			t.Errorf("error %q should name %s and the allowed range", err, want)
		}
	}
	if _, err := NewBreaker(BreakerConfig{}); err != nil {
		t.Fatalf("zero config: %v", err)
	}
}

func TestOpensOnConsecutiveFailures(t *testing.T) {
	b, _, sub := newTestBreaker(t, BreakerConfig{})
	fail(t, b, 4)
	succeed(t, b, 1) // resets the run
	fail(t, b, 4)
	if b.State() != events.Closed {
		t.Fatalf("opened after 4 failures in a row: %s", b.State())
	}
	fail(t, b, 1)
	if b.State() != events.Open {
		t.Fatalf("state %s after 5 consecutive failures", b.State())
	}
	if got := transitions(sub); len(got) != 1 || got[0] != "Closed>Open" {
		t.Fatalf("events %v", got)
	}
	if s := b.Snapshot(); !strings.Contains(s.Reason, "5 consecutive failures") {
		t.Fatalf("reason %q", s.Reason)
	}
}

func TestOpensOnFailureRate(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 100, MinRequestsForRate: 10})
	for range 4 { // 8 calls, 50% failed: under the minimum count
		succeed(t, b, 1)
		fail(t, b, 1)
	}
	if b.State() != events.Closed {
		t.Fatalf("opened under MinRequestsForRate")
	}
	succeed(t, b, 1)
	fail(t, b, 1) // 10 calls, 5 failed = 50%
	if b.State() != events.Open {
		t.Fatalf("state %s at 50%% failure rate over 10 calls", b.State())
	}
}

func TestWindowForgetsOldFailures(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 100, MinRequestsForRate: 4, RollingWindow: 10 * time.Second})
	fail(t, b, 3)
	clk.Advance(11 * time.Second)
	succeed(t, b, 3)
	fail(t, b, 1) // 4 in window, 1 failed: 25%
	if b.State() != events.Closed {
		t.Fatalf("failures outside the window still counted: %+v", b.Snapshot())
	}
	s := b.Snapshot()
	if s.WindowRequests != 4 || s.WindowFailures != 1 || s.TotalRequests != 7 || s.FailedRequests != 4 {
		t.Fatalf("window %d/%d lifetime %d/%d", s.WindowFailures, s.WindowRequests, s.FailedRequests, s.TotalRequests)
	}
	// Partly slid: buckets older than the window go one by one.
	clk.Advance(5 * time.Second)
	fail(t, b, 1)
	clk.Advance(6 * time.Second)
	if s := b.Snapshot(); s.WindowRequests != 1 || s.WindowFailures != 1 {
		t.Fatalf("after sliding: %d/%d", s.WindowFailures, s.WindowRequests)
	}
}

func TestOpensOnSlowCallRate(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{SlowCallDuration: 100 * time.Millisecond, SlowCallRateThreshold: 60, MinRequestsForRate: 5})
	for range 2 {
		mustAllow(t, b).Report(Success, 10*time.Millisecond)
	}
	for range 2 {
		mustAllow(t, b).Report(Success, 200*time.Millisecond)
	}
	if b.State() != events.Closed {
		t.Fatal("opened under the minimum count")
	}
	mustAllow(t, b).Report(Success, time.Second) // 3 of 5 slow = 60%
	if b.State() != events.Open {
		t.Fatalf("state %s at 60%% slow calls", b.State())
	}
	if s := b.Snapshot(); !strings.Contains(s.Reason, "slow-call rate") || s.SlowRequests != 3 {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestDoneMeasuresDurationForSlowCalls(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{SlowCallDuration: time.Second, MinRequestsForRate: 1, SlowCallRateThreshold: 100})
	p := mustAllow(t, b)
	clk.Advance(2 * time.Second)
	p.Done(nil)
	if b.State() != events.Open {
		t.Fatalf("a 2s call with a 1s slow threshold did not count as slow: %+v", b.Snapshot())
	}
}

func TestOpenRejectsUntilTimeout(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: 30 * time.Second})
	fail(t, b, 5)
	clk.Advance(10 * time.Second)
	_, err := b.Allow()
	var re *RejectedError
	if !errors.As(err, &re) || !errors.Is(err, ErrOpen) || errors.Is(err, ErrForcedOpen) {
		t.Fatalf("err %v", err)
	}
	if got := re.RetryAfter(); got != 20*time.Second {
		t.Fatalf("RetryAfter %s, want 20s", got)
	}
	if got := b.RetryAfter(); got != 20*time.Second {
		t.Fatalf("breaker RetryAfter %s", got)
	}
	if !re.Until.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("Until %s", re.Until)
	}
	clk.Advance(20*time.Second - 1)
	if _, err := b.Allow(); err == nil {
		t.Fatal("allowed before the timeout")
	}
	clk.Advance(1)
	p, err := b.Allow()
	if err != nil || b.State() != events.HalfOpen || p.round == 0 {
		t.Fatalf("at the timeout: %v, state %s", err, b.State())
	}
	if s := b.Snapshot(); s.RejectedRequests != 2 {
		t.Fatalf("rejected %d", s.RejectedRequests)
	}
}

func TestHalfOpenAdmitsExactlyMaxProbes(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{Timeout: time.Second, HalfOpenMaxRequests: 3, SuccessThreshold: 2})
	fail(t, b, 5)
	clk.Advance(time.Second)
	ps := []Permit{mustAllow(t, b), mustAllow(t, b), mustAllow(t, b)}
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyProbes) {
		t.Fatalf("4th probe: %v", err)
	}
	ps[0].Report(Success, 0)
	if b.State() != events.HalfOpen {
		t.Fatal("closed after one success")
	}
	if _, err := b.Allow(); err == nil {
		t.Fatal("a reported probe freed a slot in the same round")
	}
	ps[1].Report(Success, 0)
	if b.State() != events.Closed {
		t.Fatalf("state %s after 2 successful probes", b.State())
	}
	ps[2].Report(Failure, 0) // a late probe from a finished round changes nothing
	if b.State() != events.Closed {
		t.Fatal("a stale probe reopened the breaker")
	}
	if got := strings.Join(transitions(sub), " "); got != "Closed>Open Open>HalfOpen HalfOpen>Closed" {
		t.Fatalf("events %s", got)
	}
}

func TestProbeFailureReopensWithGrowingDuration(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: time.Second, OpenBackoffMultiplier: 2, MaxOpenDuration: 5 * time.Second})
	fail(t, b, 5)
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		clk.Advance(b.RetryAfter())
		mustAllow(t, b).Report(Failure, 0)
		if b.State() != events.Open || b.RetryAfter() != want {
			t.Fatalf("after a failed probe: %s for %s, want Open for %s", b.State(), b.RetryAfter(), want)
		}
	}
	clk.Advance(b.RetryAfter())
	succeed(t, b, 2)
	fail(t, b, 5)
	if b.RetryAfter() != time.Second {
		t.Fatalf("open duration not reset by closing: %s", b.RetryAfter())
	}
}

func TestLostProbesAreReclaimed(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: time.Second, HalfOpenMaxRequests: 2, ProbeTimeout: 10 * time.Second})
	fail(t, b, 5)
	clk.Advance(time.Second)
	lost := []Permit{mustAllow(t, b), mustAllow(t, b)}
	clk.Advance(10*time.Second - 1)
	if _, err := b.Allow(); err == nil {
		t.Fatal("reclaimed before ProbeTimeout")
	}
	clk.Advance(1)
	succeed(t, b, 2)
	if b.State() != events.Closed {
		t.Fatalf("state %s after reclaiming lost probes", b.State())
	}
	lost[0].Report(Failure, 0)
	if b.State() != events.Closed {
		t.Fatal("a reclaimed probe's late failure reopened the breaker")
	}
}

func TestIgnoredProbeHandsItsSlotBack(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: time.Second, HalfOpenMaxRequests: 1, SuccessThreshold: 1})
	fail(t, b, 5)
	clk.Advance(time.Second)
	mustAllow(t, b).Done(context.Canceled)
	mustAllow(t, b).Done(nil)
	if b.State() != events.Closed {
		t.Fatalf("state %s", b.State())
	}
	if s := b.Snapshot(); s.TotalRequests != 6 {
		t.Fatalf("an ignored call was counted: total %d", s.TotalRequests)
	}
}

func TestManualControl(t *testing.T) {
	b, _, sub := newTestBreaker(t, BreakerConfig{})
	b.ForceOpen("maintenance")
	_, err := b.Allow()
	if !errors.Is(err, ErrForcedOpen) || !errors.Is(err, ErrOpen) || b.RetryAfter() != 0 {
		t.Fatalf("forced open: %v", err)
	}
	if b.Trip("x") {
		t.Fatal("Trip moved a ForcedOpen breaker")
	}
	if !b.Release("healthy again") || b.State() != events.HalfOpen {
		t.Fatalf("release: %s", b.State())
	}
	if b.Release("again") {
		t.Fatal("Release of a breaker that is not ForcedOpen")
	}
	b.Disable()
	fail(t, b, 50)
	if b.State() != events.Disabled {
		t.Fatal("a disabled breaker tripped")
	}
	b.Reset()
	if !b.Trip("slo burn") || b.State() != events.Open {
		t.Fatalf("trip: %s", b.State())
	}
	want := "Closed>ForcedOpen ForcedOpen>HalfOpen HalfOpen>Disabled Disabled>Closed Closed>Open"
	if got := strings.Join(transitions(sub), " "); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if s := b.Snapshot(); s.TotalRequests != 50 || s.FailedRequests != 50 || s.Reason != "slo burn" {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestDisabledConfig(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{Disabled: true})
	fail(t, b, 20)
	if b.State() != events.Disabled {
		t.Fatalf("state %s", b.State())
	}
}

func TestRecordFailureAndSuccess(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: time.Second})
	for range 5 {
		b.RecordFailure()
	}
	if b.State() != events.Open {
		t.Fatal("RecordFailure did not open")
	}
	clk.Advance(time.Second)
	mustAllow(t, b) // HalfOpen
	b.RecordSuccess()
	b.RecordSuccess()
	if b.State() != events.Closed {
		t.Fatalf("RecordSuccess in half-open: %s", b.State())
	}
}

func TestExecute(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 2})
	ctx := context.Background()
	boom := errors.New("boom")
	if err := b.Execute(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Execute(ctx, func(context.Context) error { return boom }); err != boom {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = b.Execute(ctx, func(context.Context) error { panic("bad") })
	}()
	if b.State() != events.Open {
		t.Fatalf("a panic was not a failure: %s", b.State())
	}
	called := false
	err := b.Execute(ctx, func(context.Context) error { called = true; return nil })
	if called || !errors.Is(err, ErrOpen) {
		t.Fatalf("open breaker ran fn (%v) or returned %v", called, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Execute(cctx, func(context.Context) error { called = true; return nil }); err != context.Canceled || called {
		t.Fatalf("done context: %v", err)
	}
}

func TestCancelledContextIsNotAFailure(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 1})
	_ = b.Execute(context.Background(), func(context.Context) error { return context.Canceled })
	if b.State() != events.Closed {
		t.Fatal("a cancelled call counted as a failure")
	}
	_ = b.Execute(context.Background(), func(context.Context) error { return context.DeadlineExceeded })
	if b.State() != events.Open {
		t.Fatal("a deadline is a failure by default")
	}
}

func TestClassifierOption(t *testing.T) {
	notFound := errors.New("not found")
	b, _, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 1, Classifier: func(err error) Outcome {
		if err == nil || errors.Is(err, notFound) {
			return Success
		}
		return Failure
	}})
	_ = b.Execute(context.Background(), func(context.Context) error { return notFound })
	if b.State() != events.Closed {
		t.Fatal("classifier ignored")
	}
}

func TestListenersRunInOrderOutsideTheLock(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: time.Second})
	var got []string
	var got2 []string
	cancel := b.OnStateChange(func(e events.StateChange) {
		got = append(got, e.NewState.String())
		if e.NewState == events.Open {
			// Calling back into the breaker must not deadlock.
			_ = b.Snapshot()
			b.ForceOpen("from a listener")
		}
	})
	b.OnStateChange(func(e events.StateChange) { got2 = append(got2, e.NewState.String()) })
	fail(t, b, 5)
	if strings.Join(got, ",") != "Open,ForcedOpen" || strings.Join(got2, ",") != "Open,ForcedOpen" {
		t.Fatalf("listeners saw %v and %v", got, got2)
	}
	cancel()
	b.Reset()
	clk.Advance(time.Second)
	if len(got) != 2 || len(got2) != 3 {
		t.Fatalf("cancel removed the wrong listener: %v %v", got, got2)
	}
}

func TestListenerPanicDoesNotStopDelivery(t *testing.T) {
	b, _, sub := newTestBreaker(t, BreakerConfig{})
	cancel := b.OnStateChange(func(events.StateChange) { panic("listener") })
	func() {
		defer func() { _ = recover() }()
		b.ForceOpen("x")
	}()
	cancel()
	b.Reset()
	// The panicking listener did not keep the event from the bus.
	if got := strings.Join(transitions(sub), " "); got != "Closed>ForcedOpen ForcedOpen>Closed" {
		t.Fatalf("after a listener panic: %v", got)
	}
}

func TestStateChangeJSON(t *testing.T) {
	b, _, sub := newTestBreaker(t, BreakerConfig{})
	b.ForceOpen("drill")
	e := (<-sub.C()).(events.StateChange)
	if e.Endpoint != "api" || e.Timestamp != t0 || e.Reason != "forced open: drill" {
		t.Fatalf("event %+v", e)
	}
}

func TestRestore(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: time.Minute})
	fail(t, b, 5)
	saved := b.Snapshot()

	// Restarted 20s later: open for the 40s that remained.
	clk.Advance(20 * time.Second)
	b2, err := NewBreaker(BreakerConfig{Name: "api", Timeout: time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var restored []events.StateChange
	b2.OnStateChange(func(e events.StateChange) { restored = append(restored, e) })
	if err := ReplicationOf(b2).Restore(saved); err != nil {
		t.Fatal(err)
	}
	// The event says when the state was entered, not when it was restored.
	if len(restored) != 1 || !restored[0].Restored || restored[0].Remote || restored[0].NewState != events.Open ||
		!restored[0].Timestamp.Equal(saved.LastStateChange) || restored[0].Reason != "restored: "+saved.Reason {
		t.Fatalf("restore events %+v, saved %+v", restored, saved)
	}
	if s := b2.Snapshot(); !s.LastStateChange.Equal(saved.LastStateChange) {
		t.Fatalf("LastStateChange %v, saved %v", s.LastStateChange, saved.LastStateChange)
	}
	if b2.State() != events.Open || b2.RetryAfter() != 40*time.Second {
		t.Fatalf("restored %s for %s", b2.State(), b2.RetryAfter())
	}
	if s := b2.Snapshot(); s.TotalRequests != 5 || s.FailedRequests != 5 || !s.OpenUntil.Equal(saved.OpenUntil) {
		t.Fatalf("restored counts %+v", s)
	}
	// Restarted after the open time: half-open.
	clk.Advance(time.Minute)
	b3, _ := NewBreaker(BreakerConfig{Name: "api", Clock: clk})
	var late []events.StateChange
	b3.OnStateChange(func(e events.StateChange) { late = append(late, e) })
	if err := ReplicationOf(b3).Restore(saved); err != nil || b3.State() != events.HalfOpen {
		t.Fatalf("restored late: %s %v", b3.State(), err)
	}
	// It follows from the saved Open, so it keeps that date: a Reset made
	// elsewhere meanwhile is newer.
	if len(late) != 1 || !late[0].Restored || !late[0].Timestamp.Equal(saved.LastStateChange) || !strings.Contains(late[0].Reason, "elapsed while stopped") {
		t.Fatalf("late restore events %+v, saved at %v", late, saved.LastStateChange)
	}
	if s := b3.Snapshot(); !s.LastStateChange.Equal(saved.LastStateChange) {
		t.Fatalf("late LastStateChange %v, saved %v", s.LastStateChange, saved.LastStateChange)
	}
	if err := ReplicationOf(b3).Restore(Snapshot{State: 9}); err == nil {
		t.Fatal("accepted an invalid state")
	}
	if err := ReplicationOf(b3).Restore(Snapshot{TotalRequests: 1, FailedRequests: 2}); err == nil {
		t.Fatal("accepted inconsistent counts")
	}

	// Closed onto Closed changes nothing: no event, no transition, but the
	// counts are added and the consecutive failures kept.
	b4, clk4, sub4 := newTestBreaker(t, BreakerConfig{})
	clk4.Advance(time.Hour)
	err = ReplicationOf(b4).Restore(Snapshot{State: events.Closed, Reason: "reset", LastStateChange: t0.Add(-time.Hour),
		TotalRequests: 10, FailedRequests: 4, ConsecutiveFailures: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := b4.Snapshot()
	if got := transitions(sub4); len(got) != 0 || s.Transitions != ([5][5]uint64{}) {
		t.Fatalf("Closed onto Closed published %v, transitions %v", got, s.Transitions)
	}
	if s.TotalRequests != 10 || s.FailedRequests != 4 || s.ConsecutiveFailures != 3 || !s.LastStateChange.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("Closed restore %+v", s)
	}
	fail(t, b4, 1) // 4 in a row now; one more opens
	fail(t, b4, 1)
	if b4.State() != events.Open {
		t.Fatalf("restored consecutive failures lost: %s", b4.State())
	}
}

func TestRemoteWindowOpensOnGlobalRate(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 100, MinRequestsForRate: 10})
	succeed(t, b, 3)
	fail(t, b, 2) // 5 local calls: below the minimum
	r := ReplicationOf(b)
	r.SetRemoteWindow(5, 3, 0)
	if b.State() != events.Open {
		t.Fatalf("global window 10 calls / 5 failed did not open: %+v", b.Snapshot())
	}
	if tot, f, _ := r.WindowCounts(); tot != 5 || f != 2 {
		t.Fatalf("local share %d/%d", f, tot)
	}
	// The window a snapshot reports is the cluster's; the lifetime counts
	// are this instance's own.
	if s := b.Snapshot(); s.TotalRequests != 5 || s.WindowRequests != 10 || s.WindowFailures != 5 || s.FailureRate != 50 {
		t.Fatalf("snapshot after opening %+v", s)
	}
	b2, _, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 100, MinRequestsForRate: 10})
	succeed(t, b2, 2)
	ReplicationOf(b2).SetRemoteWindow(8, -1, 99) // negatives are zero, parts capped at the total
	if s := b2.Snapshot(); s.State != events.Closed || s.WindowRequests != 10 || s.WindowFailures != 0 || s.WindowSlow != 8 || s.TotalRequests != 2 {
		t.Fatalf("cluster window %+v", s)
	}
}

func TestConcurrentStress(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{Timeout: 10 * time.Millisecond, HalfOpenMaxRequests: 4, SuccessThreshold: 2, MinRequestsForRate: 20})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				clk.Advance(time.Millisecond)
				_ = b.Snapshot()
			}
		}
	}()
	var published atomic.Uint64
	b.OnStateChange(func(events.StateChange) { published.Add(1) })
	// Components hold and release it, and an operator steps in, while the
	// calls run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		owners := []string{"health", "chaos"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			owner := owners[i%2]
			switch i % 5 {
			case 0, 1:
				b.Hold(owner, "stress", 5*time.Millisecond)
			case 2:
				b.Unhold(owner, "stress")
			case 3:
				if s := b.Snapshot(); s.HeldBy != "" && s.State != events.ForcedOpen {
					t.Errorf("held by %q in %s", s.HeldBy, s.State)
					return
				}
			case 4:
				if i%50 == 4 {
					b.ForceOpen("operator")
					b.Release("operator")
				}
			}
		}
	}()
	var workers sync.WaitGroup
	for g := range 16 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range 5000 {
				p, err := b.Allow()
				if err != nil {
					continue
				}
				switch (i + g) % 7 {
				case 0, 1, 2:
					p.Report(Failure, 0)
				case 3:
					p.Report(Ignored, 0)
				default:
					p.Report(Success, 0)
				}
				if i%1000 == 0 && g == 0 {
					b.ForceOpen("stress")
					b.Reset()
				}
			}
		}()
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	s := b.Snapshot()
	if s.SuccessfulRequests+s.FailedRequests != s.TotalRequests || s.TotalRequests == 0 {
		t.Fatalf("counts do not add up: %+v", s)
	}
	// Every transition counted was delivered, once.
	if n := transitionCount(s); n != published.Load() || n == 0 {
		t.Fatalf("%d transitions counted, %d delivered", n, published.Load())
	}
	if s.HeldBy != "" && (s.State != events.ForcedOpen || s.HoldUntil.IsZero()) {
		t.Fatalf("end state %+v", s)
	}
}

func TestApplyRemote(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{})
	r := ReplicationOf(b)
	until := t0.Add(45 * time.Second)
	if !r.ApplyRemote(Snapshot{State: events.Open, OpenUntil: until, Reason: "opened by instance b"}) || b.State() != events.Open || b.RetryAfter() != 45*time.Second {
		t.Fatalf("apply open: %s %s", b.State(), b.RetryAfter())
	}
	if r.ApplyRemote(Snapshot{State: events.Open, OpenUntil: until, Reason: "again"}) {
		t.Fatal("applying the same state twice reported a change")
	}
	e := (<-sub.C()).(events.StateChange)
	if !e.Remote || e.Restored || e.NewState != events.Open || e.Reason != "opened by instance b" {
		t.Fatalf("event %+v", e)
	}
	if got := transitions(sub); len(got) != 0 {
		t.Fatalf("more events %v", got)
	}
	if s := b.Snapshot(); !s.OpenUntil.Equal(until) || s.Reason != "opened by instance b" || s.Transitions[events.Closed][events.Open] != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	_, err := b.Allow()
	var re *RejectedError
	if !errors.As(err, &re) || !re.Until.Equal(until) || re.RetryAfter() != 45*time.Second {
		t.Fatalf("rejection %v", err)
	}
	clk.Advance(45 * time.Second)
	r.SetProbeLimit(1)
	mustAllow(t, b)
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyProbes) {
		t.Fatalf("probe limit 1: %v", err)
	}
	if r.ApplyRemote(Snapshot{State: events.State(42)}) {
		t.Fatal("applied an invalid state")
	}
	// A limit above the configured one, or a negative one, is the
	// configured one (3 by default).
	for _, n := range []int{99, -1} {
		r.SetProbeLimit(n)
		b.Reset()
		b.Trip("again")
		clk.Advance(b.RetryAfter())
		for range 3 {
			mustAllow(t, b)
		}
		if _, err := b.Allow(); !errors.Is(err, ErrTooManyProbes) {
			t.Fatalf("SetProbeLimit(%d): a 4th probe: %v", n, err)
		}
	}
}

// A timeout is a failure that is also counted apart, in every state's
// path: Closed (toward opening) and HalfOpen (the probe fails).
func TestTimeoutOutcome(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 2, Timeout: time.Second})
	if got := DefaultClassifier(context.DeadlineExceeded); got != Timeout {
		t.Fatalf("DefaultClassifier(DeadlineExceeded) = %v", got)
	}
	if got := DefaultClassifier(fmt.Errorf("call: %w", context.DeadlineExceeded)); got != Timeout || Timeout.String() != "timeout" {
		t.Fatalf("a wrapped deadline: %v", got)
	}
	_ = b.Execute(context.Background(), func(context.Context) error { return context.DeadlineExceeded })
	p, _ := b.Allow()
	p.Report(Timeout, 0)
	if s := b.Snapshot(); s.State != events.Open || s.Timeouts != 2 || s.FailedRequests != 2 || s.WindowFailures != 2 {
		t.Fatalf("after two timeouts: %s, timeouts %d, failed %d, window failures %d", s.State, s.Timeouts, s.FailedRequests, s.WindowFailures)
	}
	clk.Advance(time.Second)
	p, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	p.Report(Timeout, 0)
	if s := b.Snapshot(); s.State != events.Open || s.Timeouts != 3 {
		t.Fatalf("a half-open probe that timed out: %s, timeouts %d", s.State, s.Timeouts)
	}
}

package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// transitionCount sums a snapshot's transition counts.
func transitionCount(s Snapshot) uint64 {
	var n uint64
	for _, row := range s.Transitions {
		for _, c := range row {
			n += c
		}
	}
	return n
}

// expectEvents drains sub and fails unless it held exactly want, as
// "Old>New" strings.
func expectEvents(t *testing.T, sub *events.Subscription, want ...string) {
	t.Helper()
	got := transitions(sub)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// Manual control that changes nothing publishes nothing and counts no
// transition.
func TestManualControlThatChangesNothingPublishesNothing(t *testing.T) {
	b, _, sub := newTestBreaker(t, BreakerConfig{})

	b.ForceOpen("maintenance")
	b.ForceOpen("still maintenance")
	expectEvents(t, sub, "Closed>ForcedOpen")
	s := b.Snapshot()
	if s.Transitions[events.Closed][events.ForcedOpen] != 1 || s.Transitions[events.ForcedOpen][events.ForcedOpen] != 0 || transitionCount(s) != 1 {
		t.Fatalf("a second ForceOpen counted a transition: %v", s.Transitions)
	}
	if s.Reason != "forced open: maintenance" {
		t.Fatalf("a second ForceOpen changed the reason to %q", s.Reason)
	}

	b.Reset()
	b.Disable()
	b.Disable()
	expectEvents(t, sub, "ForcedOpen>Closed", "Closed>Disabled")
	if s := b.Snapshot(); s.Transitions[events.Disabled][events.Disabled] != 0 || transitionCount(s) != 3 || s.Reason != "disabled" {
		t.Fatalf("a second Disable counted a transition: %v", s.Transitions)
	}

	// Trip and Release of a breaker they do not apply to change nothing.
	if b.Trip("x") || b.Release("x") {
		t.Fatal("Trip or Release moved a Disabled breaker")
	}
	expectEvents(t, sub)

	// Reset of a Closed breaker clears its window and its run of failures,
	// without a transition; lifetime counts stay.
	b.Reset()
	expectEvents(t, sub, "Disabled>Closed")
	succeed(t, b, 3)
	fail(t, b, 2)
	before := b.Snapshot()
	if before.WindowRequests != 5 || before.ConsecutiveFailures != 2 {
		t.Fatalf("before reset: %+v", before)
	}
	b.Reset()
	expectEvents(t, sub)
	s = b.Snapshot()
	if s.WindowRequests != 0 || s.WindowFailures != 0 || s.ConsecutiveFailures != 0 || s.FailureRate != 0 {
		t.Fatalf("Reset of a Closed breaker kept its window: %+v", s)
	}
	if s.TotalRequests != 5 || s.FailedRequests != 2 || s.Transitions != before.Transitions ||
		!s.LastStateChange.Equal(before.LastStateChange) || s.Reason != before.Reason {
		t.Fatalf("Reset of a Closed breaker changed more than its window: %+v, before %+v", s, before)
	}
	// The cleared run really is gone: it takes the full threshold again.
	fail(t, b, 4)
	if b.State() != events.Closed {
		t.Fatalf("state %s after 2+4 failures around a Reset", b.State())
	}
}

// ForceOpen over a component's hold is a change: the operator takes over,
// and the hold no longer lapses.
func TestForceOpenTakesOverAHold(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{})
	if !b.Hold("health", "probe failed", time.Minute) {
		t.Fatal("Hold refused on a Closed breaker")
	}
	b.ForceOpen("operator")
	expectEvents(t, sub, "Closed>ForcedOpen", "ForcedOpen>ForcedOpen")
	s := b.Snapshot()
	if s.State != events.ForcedOpen || s.HeldBy != "" || !s.HoldUntil.IsZero() || s.Reason != "forced open: operator" ||
		s.Transitions[events.ForcedOpen][events.ForcedOpen] != 1 {
		t.Fatalf("after the takeover: %+v", s)
	}
	if b.Unhold("health", "recovered") {
		t.Fatal("the component ended a hold the operator took over")
	}
	if b.Hold("health", "renew", time.Minute) {
		t.Fatal("the component renewed a hold the operator took over")
	}
	clk.Advance(time.Hour)
	if _, err := b.Allow(); !errors.Is(err, ErrForcedOpen) {
		t.Fatalf("an operator's hold lapsed with the component's lease: %v", err)
	}
	if b.Snapshot().State != events.ForcedOpen {
		t.Fatal("Snapshot ended an operator's hold")
	}
	expectEvents(t, sub)
}

func TestHoldLeaseRenewAndLapse(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{HalfOpenMaxRequests: 1, SuccessThreshold: 1})
	if !b.Hold("health", "probe failed", 30*time.Second) {
		t.Fatal("Hold refused on a Closed breaker")
	}
	s := b.Snapshot()
	if s.State != events.ForcedOpen || s.HeldBy != "health" || !s.HoldUntil.Equal(t0.Add(30*time.Second)) ||
		s.Reason != "held by health: probe failed" {
		t.Fatalf("held: %+v", s)
	}
	_, err := b.Allow()
	var re *RejectedError
	if !errors.As(err, &re) || !errors.Is(err, ErrForcedOpen) || !errors.Is(err, ErrOpen) {
		t.Fatalf("a held breaker let a call through: %v", err)
	}
	expectEvents(t, sub, "Closed>ForcedOpen")

	// Renewing extends the lease without an event.
	clk.Advance(20 * time.Second)
	if !b.Hold("health", "still failing", 30*time.Second) {
		t.Fatal("the holder could not renew")
	}
	s = b.Snapshot()
	if s.HeldBy != "health" || !s.HoldUntil.Equal(t0.Add(50*time.Second)) || s.Transitions[events.Closed][events.ForcedOpen] != 1 || transitionCount(s) != 1 {
		t.Fatalf("after renewing: %+v", s)
	}
	expectEvents(t, sub)

	// Nobody else takes it while it lasts.
	if b.Hold("chaos", "experiment", time.Hour) {
		t.Fatal("another owner took a hold that lasts")
	}
	if b.Unhold("chaos", "done") || b.Unhold("", "done") {
		t.Fatal("Unhold by another owner")
	}
	if s := b.Snapshot(); s.HeldBy != "health" {
		t.Fatalf("holder %q", s.HeldBy)
	}

	// Past the renewed lease (not the first one) it lapses by itself, and
	// Snapshot reports it without any call.
	clk.Advance(29 * time.Second) // t0+49s
	if s := b.Snapshot(); s.State != events.ForcedOpen {
		t.Fatalf("lapsed at the first lease's end: %+v", s)
	}
	clk.Advance(time.Second) // t0+50s
	s = b.Snapshot()
	if s.State != events.HalfOpen || s.HeldBy != "" || !s.HoldUntil.IsZero() || s.Reason != "hold by health lapsed" {
		t.Fatalf("after the lease: %+v", s)
	}
	expectEvents(t, sub, "ForcedOpen>HalfOpen")
	if s.RejectedRequests != 1 {
		t.Fatalf("rejected %d", s.RejectedRequests)
	}
	// The lapsed holder no longer holds it.
	if b.Unhold("health", "late") {
		t.Fatal("Unhold of a lapsed hold")
	}
	// Probes decide: one success closes it.
	mustAllow(t, b).Report(Success, 0)
	if b.State() != events.Closed {
		t.Fatalf("state %s after a successful probe", b.State())
	}
}

// With no Snapshot to notice, the first call after the lease is a probe.
func TestHoldLapseAdmitsAProbe(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{HalfOpenMaxRequests: 1})
	b.Hold("health", "down", 10*time.Second)
	clk.Advance(10*time.Second - time.Nanosecond)
	if _, err := b.Allow(); !errors.Is(err, ErrForcedOpen) {
		t.Fatalf("before the lease ended: %v", err)
	}
	clk.Advance(time.Nanosecond)
	p, err := b.Allow()
	if err != nil || p.round == 0 || b.State() != events.HalfOpen {
		t.Fatalf("after the lease: %v, state %s, probe %v", err, b.State(), p.round != 0)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyProbes) {
		t.Fatalf("a second probe with HalfOpenMaxRequests 1: %v", err)
	}
	expectEvents(t, sub, "Closed>ForcedOpen", "ForcedOpen>HalfOpen")
}

func TestHoldRefusals(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		b, _, sub := newTestBreaker(t, BreakerConfig{})
		b.Disable()
		if b.Hold("health", "down", time.Minute) || b.State() != events.Disabled {
			t.Fatalf("Hold on a Disabled breaker: %s", b.State())
		}
		expectEvents(t, sub, "Closed>Disabled")
	})
	t.Run("operator", func(t *testing.T) {
		b, clk, sub := newTestBreaker(t, BreakerConfig{})
		b.ForceOpen("operator")
		if b.Hold("health", "down", time.Minute) {
			t.Fatal("a component took an operator's hold")
		}
		if s := b.Snapshot(); s.HeldBy != "" || !s.HoldUntil.IsZero() {
			t.Fatalf("snapshot %+v", s)
		}
		clk.Advance(2 * time.Minute)
		if b.State() != events.ForcedOpen || b.Snapshot().State != events.ForcedOpen {
			t.Fatal("an operator's hold lapsed")
		}
		if b.Unhold("health", "x") || b.Unhold("", "x") {
			t.Fatal("Unhold ended an operator's hold")
		}
		expectEvents(t, sub, "Closed>ForcedOpen")
	})
	t.Run("bad arguments", func(t *testing.T) {
		b, _, sub := newTestBreaker(t, BreakerConfig{})
		if b.Hold("", "x", time.Minute) || b.Hold("health", "x", 0) || b.Hold("health", "x", -time.Second) {
			t.Fatal("Hold without an owner or a lease")
		}
		if b.Unhold("health", "x") {
			t.Fatal("Unhold of a Closed breaker")
		}
		expectEvents(t, sub)
	})
}

func TestUnholdReleaseAndResetEndAHold(t *testing.T) {
	t.Run("Unhold", func(t *testing.T) {
		b, clk, sub := newTestBreaker(t, BreakerConfig{})
		b.Hold("health", "down", time.Minute)
		if !b.Unhold("health", "recovered") {
			t.Fatal("the holder could not Unhold")
		}
		s := b.Snapshot()
		if s.State != events.HalfOpen || s.HeldBy != "" || !s.HoldUntil.IsZero() || s.Reason != "released by health: recovered" {
			t.Fatalf("after Unhold: %+v", s)
		}
		if b.Unhold("health", "again") {
			t.Fatal("a second Unhold")
		}
		expectEvents(t, sub, "Closed>ForcedOpen", "ForcedOpen>HalfOpen")
		clk.Advance(2 * time.Minute)
		b.Snapshot()
		expectEvents(t, sub)
	})
	t.Run("Release", func(t *testing.T) {
		b, clk, sub := newTestBreaker(t, BreakerConfig{})
		b.Hold("health", "down", time.Minute)
		if !b.Release("operator says go") || b.State() != events.HalfOpen {
			t.Fatalf("Release of a component's hold: %s", b.State())
		}
		if s := b.Snapshot(); s.HeldBy != "" || !s.HoldUntil.IsZero() {
			t.Fatalf("after Release: %+v", s)
		}
		if b.Unhold("health", "late") {
			t.Fatal("Unhold after Release")
		}
		// The old lease's end does nothing to a later operator's hold.
		b.ForceOpen("operator")
		clk.Advance(2 * time.Minute)
		if s := b.Snapshot(); s.State != events.ForcedOpen {
			t.Fatalf("the released lease ended a later hold: %+v", s)
		}
		expectEvents(t, sub, "Closed>ForcedOpen", "ForcedOpen>HalfOpen", "HalfOpen>ForcedOpen")
	})
	t.Run("Reset", func(t *testing.T) {
		b, clk, sub := newTestBreaker(t, BreakerConfig{})
		b.Hold("health", "down", time.Minute)
		b.Reset()
		if s := b.Snapshot(); s.State != events.Closed || s.HeldBy != "" || !s.HoldUntil.IsZero() {
			t.Fatalf("after Reset: %+v", s)
		}
		clk.Advance(2 * time.Minute)
		if s := b.Snapshot(); s.State != events.Closed {
			t.Fatalf("the reset lease still ran: %+v", s)
		}
		if !b.Hold("chaos", "experiment", time.Minute) {
			t.Fatal("a new owner could not hold a reset breaker")
		}
		expectEvents(t, sub, "Closed>ForcedOpen", "ForcedOpen>Closed", "Closed>ForcedOpen")
	})
}

// A hold can start from any state but Disabled, and another owner can hold
// a breaker once the previous lease ran out.
func TestHoldFromOpenAndAfterALapse(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{FailureThreshold: 1})
	fail(t, b, 1)
	if !b.Hold("health", "down", 10*time.Second) {
		t.Fatal("Hold refused on an Open breaker")
	}
	if s := b.Snapshot(); s.State != events.ForcedOpen || !s.OpenUntil.IsZero() || b.RetryAfter() != 0 {
		t.Fatalf("held from Open: %+v", s)
	}
	clk.Advance(10 * time.Second)
	if !b.Hold("chaos", "experiment", 10*time.Second) {
		t.Fatal("another owner could not hold after the lease ran out")
	}
	if s := b.Snapshot(); s.HeldBy != "chaos" || !s.HoldUntil.Equal(clk.Now().Add(10*time.Second)) {
		t.Fatalf("snapshot %+v", s)
	}
	if b.Unhold("health", "x") || !b.Unhold("chaos", "done") {
		t.Fatal("Unhold by the wrong owner")
	}
	got := transitions(sub)
	if got[0] != "Closed>Open" || got[1] != "Open>ForcedOpen" || got[len(got)-1] != "ForcedOpen>HalfOpen" {
		t.Fatalf("events %v", got)
	}
}

// Snapshot makes the move an expired open time owes, so that a breaker no
// call reaches is not reported Open forever.
func TestSnapshotMovesAnExpiredOpenToHalfOpen(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{Timeout: 30 * time.Second})
	fail(t, b, 5)
	clk.Advance(30*time.Second - time.Nanosecond)
	if s := b.Snapshot(); s.State != events.Open || !s.OpenUntil.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("before the open time ended: %+v", s)
	}
	clk.Advance(time.Nanosecond)
	s := b.Snapshot()
	if s.State != events.HalfOpen || !s.OpenUntil.IsZero() || s.Reason != "open timeout elapsed" ||
		!s.LastStateChange.Equal(clk.Now()) || s.Transitions[events.Open][events.HalfOpen] != 1 || s.RejectedRequests != 0 {
		t.Fatalf("after the open time, with no call: %+v", s)
	}
	if b.State() != events.HalfOpen {
		t.Fatalf("State() = %s: Snapshot reported a move it did not make", b.State())
	}
	expectEvents(t, sub, "Closed>Open", "Open>HalfOpen")
	// The probes are all there.
	for range 3 {
		mustAllow(t, b)
	}
	b.Snapshot()
	expectEvents(t, sub)
}

func TestRestoreAHold(t *testing.T) {
	saved := func(t *testing.T) (Snapshot, *FakeClock) {
		b, clk, _ := newTestBreaker(t, BreakerConfig{})
		clk.Advance(5 * time.Second)
		b.Hold("health", "down", time.Minute) // until t0+65s
		return b.Snapshot(), clk
	}
	t.Run("within the lease", func(t *testing.T) {
		s, clk := saved(t)
		clk.Advance(20 * time.Second) // restarted at t0+25s
		b, err := NewBreaker(BreakerConfig{Name: "api", Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		var evs []events.StateChange
		b.OnStateChange(func(e events.StateChange) { evs = append(evs, e) })
		if err := ReplicationOf(b).Restore(s); err != nil {
			t.Fatal(err)
		}
		got := b.Snapshot()
		if got.State != events.ForcedOpen || got.HeldBy != "health" || !got.HoldUntil.Equal(s.HoldUntil) ||
			!got.LastStateChange.Equal(t0.Add(5*time.Second)) || got.Reason != "restored: held by health: down" {
			t.Fatalf("restored %+v from %+v", got, s)
		}
		if len(evs) != 1 || !evs[0].Restored || evs[0].NewState != events.ForcedOpen || !evs[0].Timestamp.Equal(s.LastStateChange) {
			t.Fatalf("events %+v", evs)
		}
		// The holder keeps it for the rest of the lease, and may renew it;
		// nobody else can take it.
		if b.Hold("chaos", "x", time.Hour) {
			t.Fatal("another owner took a restored hold")
		}
		clk.Advance(40*time.Second - time.Nanosecond)
		if _, err := b.Allow(); !errors.Is(err, ErrForcedOpen) {
			t.Fatalf("restored hold ended early: %v", err)
		}
		clk.Advance(time.Nanosecond) // t0+65s
		if st := b.Snapshot(); st.State != events.HalfOpen {
			t.Fatalf("restored hold outlived its lease: %+v", st)
		}
	})
	t.Run("renewed after the restart", func(t *testing.T) {
		s, clk := saved(t)
		clk.Advance(20 * time.Second)
		b, _ := NewBreaker(BreakerConfig{Name: "api", Clock: clk})
		ReplicationOf(b).Restore(s)
		if !b.Hold("health", "still down", time.Minute) {
			t.Fatal("the owner, started again, could not renew its hold")
		}
		clk.Advance(time.Minute - time.Nanosecond)
		if b.Snapshot().State != events.ForcedOpen {
			t.Fatal("the renewed hold ended early")
		}
	})
	t.Run("lease passed while stopped", func(t *testing.T) {
		s, clk := saved(t)
		clk.Advance(60 * time.Second) // restarted at t0+65s: the lease is over
		b, _ := NewBreaker(BreakerConfig{Name: "api", Clock: clk})
		var evs []events.StateChange
		b.OnStateChange(func(e events.StateChange) { evs = append(evs, e) })
		if err := ReplicationOf(b).Restore(s); err != nil {
			t.Fatal(err)
		}
		got := b.Snapshot()
		if got.State != events.HalfOpen || got.HeldBy != "" || got.Reason != "restored: hold by health lapsed while stopped" {
			t.Fatalf("restored %+v", got)
		}
		// Dated by the saved hold: the lapse adds no decision of its own.
		if len(evs) != 1 || !evs[0].Restored || !evs[0].Timestamp.Equal(s.LastStateChange) || !got.LastStateChange.Equal(s.LastStateChange) {
			t.Fatalf("events %+v, saved at %v", evs, s.LastStateChange)
		}
	})
	t.Run("operator's hold", func(t *testing.T) {
		b0, clk, _ := newTestBreaker(t, BreakerConfig{})
		b0.ForceOpen("maintenance")
		s := b0.Snapshot()
		clk.Advance(24 * time.Hour)
		b, _ := NewBreaker(BreakerConfig{Name: "api", Clock: clk})
		if err := ReplicationOf(b).Restore(s); err != nil {
			t.Fatal(err)
		}
		clk.Advance(24 * time.Hour)
		if got := b.Snapshot(); got.State != events.ForcedOpen || got.HeldBy != "" {
			t.Fatalf("restored operator's hold: %+v", got)
		}
	})
}

func TestApplyRemoteHold(t *testing.T) {
	b, clk, sub := newTestBreaker(t, BreakerConfig{})
	r := ReplicationOf(b)
	until := t0.Add(30 * time.Second)
	held := Snapshot{State: events.ForcedOpen, Reason: "held by health: down", HeldBy: "health", HoldUntil: until}
	if !r.ApplyRemote(held) {
		t.Fatal("ApplyRemote of a hold changed nothing")
	}
	s := b.Snapshot()
	if s.State != events.ForcedOpen || s.HeldBy != "health" || !s.HoldUntil.Equal(until) || s.Reason != held.Reason {
		t.Fatalf("applied %+v", s)
	}
	if r.ApplyRemote(held) {
		t.Fatal("applying the same hold twice reported a change")
	}
	e := (<-sub.C()).(events.StateChange)
	if !e.Remote || e.NewState != events.ForcedOpen {
		t.Fatalf("event %+v", e)
	}
	expectEvents(t, sub)

	// The holder is the component, wherever it runs: here too it may renew,
	// and nobody else may take it.
	if b.Hold("chaos", "x", time.Hour) {
		t.Fatal("another owner took a remote hold")
	}
	// The lease follows the remote renewal.
	renewed := held
	renewed.HoldUntil = until.Add(30 * time.Second)
	if !r.ApplyRemote(renewed) {
		t.Fatal("a renewed lease changed nothing")
	}
	if s := b.Snapshot(); !s.HoldUntil.Equal(renewed.HoldUntil) || s.HeldBy != "health" {
		t.Fatalf("after a remote renewal: %+v", s)
	}
	clk.Advance(60*time.Second - time.Nanosecond)
	if _, err := b.Allow(); !errors.Is(err, ErrForcedOpen) {
		t.Fatalf("remote hold ended before its renewed lease: %v", err)
	}
	clk.Advance(time.Nanosecond)
	if _, err := b.Allow(); err != nil || b.State() != events.HalfOpen {
		t.Fatalf("remote hold did not lapse: %v, %s", err, b.State())
	}

	// An operator's hold elsewhere takes over a component's hold here.
	if !b.Hold("health", "down again", time.Minute) {
		t.Fatal("Hold")
	}
	sub2 := b.bus.Subscribe(16)
	defer sub2.Close()
	if !r.ApplyRemote(Snapshot{State: events.ForcedOpen, Reason: "forced open: operator"}) {
		t.Fatal("an operator's remote hold over a component's changed nothing")
	}
	if s := b.Snapshot(); s.HeldBy != "" || !s.HoldUntil.IsZero() {
		t.Fatalf("after the operator's remote hold: %+v", s)
	}
	clk.Advance(2 * time.Minute)
	if b.Snapshot().State != events.ForcedOpen {
		t.Fatal("the component's lease ended an operator's remote hold")
	}
	expectEvents(t, sub2, "ForcedOpen>ForcedOpen")
}

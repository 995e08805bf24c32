package core

import (
	"github.com/bulwark-go/bulwark/events"
	"time"
)

// Snapshot is a breaker's state and counts at one moment. Its JSON form is
// what the admin handler serves.
type Snapshot struct {
	Endpoint string       `json:"endpoint"`
	State    events.State `json:"state"`
	// Reason is why the breaker entered its current state.
	Reason          string    `json:"reason"`
	LastStateChange time.Time `json:"last_state_change"`
	// OpenUntil is when an Open breaker lets a probe through (zero unless Open).
	OpenUntil time.Time `json:"open_until,omitzero"`
	// HeldBy names the component whose hold keeps the breaker ForcedOpen
	// (see Breaker.Hold); empty for an operator's hold and in other states.
	HeldBy string `json:"held_by,omitempty"`
	// HoldUntil is when that hold lapses unless its owner renews it.
	HoldUntil time.Time `json:"hold_until,omitzero"`

	// ConsecutiveFailures counts failures in a row while Closed.
	ConsecutiveFailures int64 `json:"consecutive_failures"`
	// ConsecutiveSuccesses counts successful probes in the current
	// half-open round (zero in other states).
	ConsecutiveSuccesses int64 `json:"consecutive_successes"`

	// Lifetime counts of calls reported and rejected. The failures fault
	// experiments made (see Manager.StartFault) are counted in
	// InjectedFailures alone: TotalRequests is SuccessfulRequests plus
	// FailedRequests, both real.
	TotalRequests      int64 `json:"total_requests"`
	SuccessfulRequests int64 `json:"successful_requests"`
	FailedRequests     int64 `json:"failed_requests"`
	RejectedRequests   int64 `json:"rejected_requests"`
	SlowRequests       int64 `json:"slow_requests"`
	// Timeouts counts the failed calls that ran out of time (reported as
	// Timeout), since the breaker was made in this process.
	Timeouts int64 `json:"timeouts"`
	// InjectedFailures counts the failures fault experiments made: they
	// weigh in the breaker's decisions (and the window's counts) as real
	// ones do.
	InjectedFailures int64 `json:"injected_failures"`
	// InjectedLatency, InjectedStatus and InjectedAbort count the calls
	// fault experiments delayed, answered with a status and aborted (a
	// call both delayed and answered counts in both).
	InjectedLatency int64 `json:"-"`
	InjectedStatus  int64 `json:"-"`
	InjectedAbort   int64 `json:"-"`

	// The rolling window, including other instances' share when shared.
	WindowRequests int64   `json:"window_requests"`
	WindowFailures int64   `json:"window_failures"`
	WindowSlow     int64   `json:"window_slow"`
	FailureRate    float64 `json:"failure_rate"`   // percent of WindowRequests
	SlowCallRate   float64 `json:"slow_call_rate"` // percent of WindowRequests

	// Transitions counts transitions by [from][to] state.
	Transitions [5][5]uint64 `json:"-"`
}

// Snapshot returns the breaker's current state and counts. A breaker whose
// open time or component hold ran out moves to HalfOpen first, so that what
// is reported is true even when no call has come to make the move.
func (b *Breaker) Snapshot() Snapshot {
	now := b.clock.Nanotime()
	switch b.State() {
	case events.Open:
		if now >= b.openUntil.Load() {
			b.transition(events.Open, events.HalfOpen, "open timeout elapsed")
		}
	case events.ForcedOpen:
		if b.holdLapsed(now) {
			b.endLapsedHold()
		}
	}
	if now >= b.window.end.Load() {
		b.window.advance(now)
	}
	// Read before the window, which counts an injected failure first: one
	// recorded meanwhile is, for this snapshot, a real one (as a call
	// recorded meanwhile may be a success before it is a failure).
	injected := b.injected.Load()
	win, retired := b.window.read()
	life := win.plus(retired)
	win = b.clusterWindow(win) // after life: the cluster's share is not this breaker's
	b.mu.Lock()
	s := Snapshot{
		Endpoint:             b.name,
		State:                b.State(),
		Reason:               b.reason,
		LastStateChange:      b.lastChange,
		HeldBy:               b.holder,
		HoldUntil:            b.holdEnd,
		ConsecutiveFailures:  b.consecFail.Load(),
		ConsecutiveSuccesses: b.consecSucc,
		Transitions:          b.transitions,
	}
	if s.State == events.Open {
		s.OpenUntil = b.rejectErr.Load().Until
	}
	b.mu.Unlock()
	s.InjectedFailures = min(injected, life.failed)
	s.TotalRequests, s.FailedRequests, s.SlowRequests = life.total-s.InjectedFailures, life.failed-s.InjectedFailures, life.slow
	s.SuccessfulRequests = life.total - life.failed
	s.InjectedLatency = b.faultCalls[faultLatency].Load()
	s.InjectedStatus = b.faultCalls[faultStatus].Load()
	s.InjectedAbort = b.faultCalls[faultAbort].Load()
	s.RejectedRequests = b.rejected.Load()
	s.Timeouts = b.timeouts.Load()
	s.WindowRequests, s.WindowFailures, s.WindowSlow = win.total, win.failed, win.slow
	s.FailureRate, s.SlowCallRate = percent(win.failed, win.total), percent(win.slow, win.total)
	return s
}

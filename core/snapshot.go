package core

import (
	"fmt"
	"time"
)

// Snapshot is a breaker's state and counts at one moment. Its JSON form is
// what the admin handler serves.
type Snapshot struct {
	Endpoint string `json:"endpoint"`
	State    State  `json:"state"`
	// Reason is why the breaker entered its current state.
	Reason          string    `json:"reason"`
	LastStateChange time.Time `json:"last_state_change"`
	// OpenUntil is when an Open breaker lets a probe through (zero unless Open).
	OpenUntil time.Time `json:"open_until,omitzero"`

	// ConsecutiveFailures counts failures in a row while Closed.
	ConsecutiveFailures int64 `json:"consecutive_failures"`
	// ConsecutiveSuccesses counts successful probes in the current
	// half-open round (zero in other states).
	ConsecutiveSuccesses int64 `json:"consecutive_successes"`

	// Lifetime counts of calls reported and rejected.
	TotalRequests      int64 `json:"total_requests"`
	SuccessfulRequests int64 `json:"successful_requests"`
	FailedRequests     int64 `json:"failed_requests"`
	RejectedRequests   int64 `json:"rejected_requests"`
	SlowRequests       int64 `json:"slow_requests"`

	// The rolling window, including other instances' share when shared.
	WindowRequests int64   `json:"window_requests"`
	WindowFailures int64   `json:"window_failures"`
	WindowSlow     int64   `json:"window_slow"`
	FailureRate    float64 `json:"failure_rate"`   // percent of WindowRequests
	SlowCallRate   float64 `json:"slow_call_rate"` // percent of WindowRequests

	// Transitions counts transitions by [from][to] state.
	Transitions [5][5]uint64 `json:"-"`
}

// Snapshot returns the breaker's current state and counts.
func (b *Breaker) Snapshot() Snapshot {
	now := b.clock.Nanotime()
	if now >= b.window.end.Load() {
		b.window.advance(now)
	}
	win, retired := b.window.read()
	life := win.plus(retired)
	win = b.clusterWindow(win) // after life: the cluster's share is not this breaker's
	b.mu.Lock()
	s := Snapshot{
		Endpoint:             b.name,
		State:                b.State(),
		Reason:               b.reason,
		LastStateChange:      b.lastChange,
		ConsecutiveFailures:  b.consecFail.Load(),
		ConsecutiveSuccesses: b.consecSucc,
		Transitions:          b.transitions,
	}
	if s.State == Open {
		s.OpenUntil = b.rejectErr.Load().Until
	}
	b.mu.Unlock()
	s.TotalRequests, s.FailedRequests, s.SlowRequests = life.total, life.failed, life.slow
	s.SuccessfulRequests = life.total - life.failed
	s.RejectedRequests = b.rejected.Load()
	s.WindowRequests, s.WindowFailures, s.WindowSlow = win.total, win.failed, win.slow
	s.FailureRate, s.SlowCallRate = percent(win.failed, win.total), percent(win.slow, win.total)
	return s
}

// Restore puts the breaker back into a state saved earlier, as after a
// restart. An Open breaker stays open only for what remained of its open
// time, and comes back HalfOpen when that has passed. Saved lifetime counts
// are added to the breaker's own. Restore publishes a StateChange with
// Restored set.
func (b *Breaker) Restore(s Snapshot) error {
	if !s.State.Valid() {
		return fmt.Errorf("bulwark: restore %s: invalid state %d", b.name, uint8(s.State))
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"TotalRequests", s.TotalRequests}, {"FailedRequests", s.FailedRequests},
		{"RejectedRequests", s.RejectedRequests}, {"SlowRequests", s.SlowRequests},
		{"ConsecutiveFailures", s.ConsecutiveFailures}, {"ConsecutiveSuccesses", s.ConsecutiveSuccesses},
	} {
		if c.v < 0 {
			return fmt.Errorf("bulwark: restore %s: Snapshot.%s = %d: counts cannot be negative", b.name, c.name, c.v)
		}
	}
	if s.FailedRequests > s.TotalRequests || s.SlowRequests > s.TotalRequests {
		return fmt.Errorf("bulwark: restore %s: Snapshot.FailedRequests = %d and SlowRequests = %d: neither can exceed TotalRequests = %d",
			b.name, s.FailedRequests, s.SlowRequests, s.TotalRequests)
	}
	b.window.addRetired(counts{s.TotalRequests, s.FailedRequests, s.SlowRequests})
	b.rejected.Add(s.RejectedRequests)

	b.mu.Lock()
	to := s.State
	reason := "restored"
	if s.Reason != "" {
		reason += ": " + s.Reason
	}
	if to == Open {
		if !s.OpenUntil.After(b.clock.Now()) {
			to, reason = HalfOpen, "restored: open time elapsed while stopped"
		}
	}
	if to == Closed && b.State() == Closed {
		// Nothing changes: no transition to report or count.
		b.reason = reason
	} else {
		b.setStateLocked(to, reason)
		b.pending[len(b.pending)-1].Restored = true
	}
	if to == Open {
		b.setOpenUntilLocked(s.OpenUntil) // only what was left of the saved open time
	}
	if to == Closed {
		b.consecFail.Store(min(s.ConsecutiveFailures, int64(b.cfg.FailureThreshold)-1))
	}
	if !s.LastStateChange.IsZero() {
		b.lastChange = s.LastStateChange
	}
	b.mu.Unlock()
	b.flush()
	return nil
}

// WindowCounts returns the calls, failures and slow calls recorded by this
// instance alone in the rolling window. A shared-state store reads it to
// push this instance's share.
func (b *Breaker) WindowCounts() (total, failed, slow int64) {
	now := b.clock.Nanotime()
	if now >= b.window.end.Load() {
		b.window.advance(now)
	}
	c := b.window.counts()
	return c.total, c.failed, c.slow
}

// SetRemoteWindow sets the other instances' share of the rolling window
// (calls, failures, slow calls), so that rate thresholds count the whole
// cluster, and opens the breaker at once if the sum crosses one. Negative
// values are treated as zero.
func (b *Breaker) SetRemoteWindow(total, failed, slow int64) {
	c := counts{max(total, 0), max(failed, 0), max(slow, 0)}
	c.failed, c.slow = min(c.failed, c.total), min(c.slow, c.total)
	b.remote.Store(&c)
	if b.State() == Closed {
		b.checkRates()
	}
}

// setOpenUntilLocked makes an Open breaker let probes through at the
// wall-clock time until instead of after its own open duration; b.mu is held.
func (b *Breaker) setOpenUntilLocked(until time.Time) {
	b.openUntil.Store(b.clock.Nanotime() + int64(until.Sub(b.clock.Now())))
	e := *b.rejectErr.Load()
	e.Until = until
	b.rejectErr.Store(&e)
}

// ApplyRemote puts the breaker into a state another instance decided, as a
// shared-state store does when it learns of a cluster transition. An Open
// state lasts until openUntil. The StateChange it publishes has Remote set,
// so that stores don't propose it again and alerts don't fire twice. It
// reports whether anything changed.
func (b *Breaker) ApplyRemote(to State, openUntil time.Time, reason string) bool {
	if !to.Valid() {
		return false
	}
	b.mu.Lock()
	if b.State() == to && (to != Open || b.rejectErr.Load().Until.Equal(openUntil)) {
		b.mu.Unlock()
		return false
	}
	b.setStateLocked(to, reason)
	b.pending[len(b.pending)-1].Remote = true
	if to == Open {
		b.setOpenUntilLocked(openUntil)
	}
	b.mu.Unlock()
	b.flush()
	return true
}

// SetProbeLimit caps how many probes this instance admits in each half-open
// round, below HalfOpenMaxRequests: a shared-state store hands each instance
// its share so that the cluster as a whole sends no more probes than
// configured. A negative n restores the configured limit.
func (b *Breaker) SetProbeLimit(n int) {
	if n < 0 || n > b.cfg.HalfOpenMaxRequests {
		n = b.cfg.HalfOpenMaxRequests
	}
	b.probeLimit.Store(int64(n))
}

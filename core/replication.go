package core

import (
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"math"
)

// Replication is the handle through which a store copies a breaker's
// state in and out: from a state file after a restart, or to and from the
// other instances sharing it. Applications do not need it; package store
// uses it.
type Replication struct{ b *Breaker }

// ReplicationOf returns b's replication handle.
func ReplicationOf(b *Breaker) Replication { return Replication{b} }

// Restore puts the breaker back into a state saved earlier, as after a
// restart. An Open breaker stays open only for what remained of its open
// time and a component's hold only for what remained of its lease; either
// comes back HalfOpen when that has passed. Saved lifetime counts are added
// to the breaker's own. Restore publishes a StateChange with Restored set,
// stamped with the saved time the state was entered, so that listeners can
// tell it from news (restoring Closed onto Closed publishes nothing). A
// HalfOpen that follows from the saved state carries that time too: it is
// the saved decision playing out, not a new one, so a decision made
// elsewhere while this process was stopped (a Reset on another instance)
// stays the newer one.
func (r Replication) Restore(s Snapshot) error {
	b := r.b
	if !s.State.Valid() {
		return fmt.Errorf("bulwark: restore %s: invalid state %d", b.name, uint8(s.State))
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"TotalRequests", s.TotalRequests}, {"FailedRequests", s.FailedRequests},
		{"RejectedRequests", s.RejectedRequests}, {"SlowRequests", s.SlowRequests},
		{"InjectedFailures", s.InjectedFailures},
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
	if s.InjectedFailures > math.MaxInt64-s.TotalRequests {
		return fmt.Errorf("bulwark: restore %s: Snapshot.InjectedFailures = %d overflows with TotalRequests = %d", b.name, s.InjectedFailures, s.TotalRequests)
	}
	// Injected failures are in the window's counts, as when they were made.
	b.window.addRetired(counts{s.TotalRequests + s.InjectedFailures, s.FailedRequests + s.InjectedFailures, s.SlowRequests})
	b.injected.Add(s.InjectedFailures)
	b.rejected.Add(s.RejectedRequests)

	now := b.clock.Now()
	b.mu.Lock()
	to := s.State
	reason := "restored"
	if s.Reason != "" {
		reason += ": " + s.Reason
	}
	switch {
	case to == events.Open && !s.OpenUntil.After(now):
		to, reason = events.HalfOpen, "restored: open time elapsed while stopped"
	case to == events.ForcedOpen && s.HeldBy != "" && !s.HoldUntil.After(now):
		to, reason = events.HalfOpen, "restored: hold by "+s.HeldBy+" lapsed while stopped"
	}
	if to == events.Closed && b.State() == events.Closed {
		b.reason = reason // nothing changes: no transition to report or count
	} else {
		b.setStateLocked(to, reason)
		e := &b.pending[len(b.pending)-1]
		e.Restored = true
		if !s.LastStateChange.IsZero() {
			e.Timestamp = s.LastStateChange.UTC()
		}
		r.applyUntilLocked(to, s)
	}
	if to == events.Closed {
		b.consecFail.Store(min(s.ConsecutiveFailures, int64(b.cfg.Load().FailureThreshold)-1))
	}
	if !s.LastStateChange.IsZero() {
		b.lastChange = s.LastStateChange.UTC()
	}
	b.mu.Unlock()
	b.flush()
	return nil
}

// applyUntilLocked gives a state just entered the end time that s carries:
// an Open breaker's OpenUntil, a component hold's owner and HoldUntil;
// b.mu is held.
func (r Replication) applyUntilLocked(to events.State, s Snapshot) {
	b := r.b
	switch {
	case to == events.Open && !s.OpenUntil.IsZero():
		b.openUntil.Store(b.clock.Nanotime() + int64(s.OpenUntil.Sub(b.clock.Now())))
		e := *b.rejectErr.Load()
		e.Until = s.OpenUntil
		b.rejectErr.Store(&e)
	case to == events.ForcedOpen && s.HeldBy != "":
		b.setHoldLocked(s.HeldBy, b.clock.Nanotime()+int64(s.HoldUntil.Sub(b.clock.Now())), s.HoldUntil)
	}
}

// WindowCounts returns the calls, failures and slow calls recorded by this
// instance alone in the rolling window, for a store to share.
func (r Replication) WindowCounts() (total, failed, slow int64) {
	b := r.b
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
func (r Replication) SetRemoteWindow(total, failed, slow int64) {
	b := r.b
	c := counts{max(total, 0), max(failed, 0), max(slow, 0)}
	c.failed, c.slow = min(c.failed, c.total), min(c.slow, c.total)
	b.remote.Store(&c)
	if b.State() == events.Closed {
		b.checkRates()
	}
}

// ApplyRemote puts the breaker into a state another instance decided: s's
// State and Reason, with OpenUntil for Open and HeldBy and HoldUntil for a
// component's hold. The StateChange it publishes has Remote set, so that
// stores don't propose it again and alerts don't fire twice. It reports
// whether anything changed; applying the state the breaker is in already
// (same end time, same holder) changes nothing.
func (r Replication) ApplyRemote(s Snapshot) bool {
	b := r.b
	if !s.State.Valid() {
		return false
	}
	b.mu.Lock()
	if b.State() == s.State && sameEnd(b, s) {
		b.mu.Unlock()
		return false
	}
	if renewal := s.State == events.ForcedOpen && b.State() == events.ForcedOpen && s.HeldBy != "" && b.holder == s.HeldBy; renewal {
		// The owner renewed its lease elsewhere: no transition.
		r.applyUntilLocked(events.ForcedOpen, s)
		b.holdHere = false
		b.mu.Unlock()
		return true
	}
	b.setStateLocked(s.State, s.Reason)
	b.pending[len(b.pending)-1].Remote = true
	r.applyUntilLocked(s.State, s)
	b.mu.Unlock()
	b.flush()
	return true
}

// sameEnd reports whether the breaker's current state already ends as s
// says; b.mu is held.
func sameEnd(b *Breaker, s Snapshot) bool {
	switch s.State {
	case events.Open:
		return b.rejectErr.Load().Until.Equal(s.OpenUntil)
	case events.ForcedOpen:
		return b.holder == s.HeldBy && (s.HeldBy == "" || b.holdEnd.Equal(s.HoldUntil.UTC()))
	}
	return true
}

// HeldHere reports whether the breaker is held by a component of this
// process: a hold taken or last renewed with Hold here, not one restored or
// applied from elsewhere. A store that stops ends such holds in what it
// saves and shares, since their owner stops with it.
func (r Replication) HeldHere() bool {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.State() == events.ForcedOpen && b.holder != "" && b.holdHere && !b.holdLapsed(b.clock.Nanotime())
}

// SetProbeLimit caps how many probes this instance admits in each half-open
// round, below HalfOpenMaxRequests: a store hands each instance its share,
// so that the cluster as a whole sends no more probes than configured. A
// negative n restores the configured limit.
func (r Replication) SetProbeLimit(n int) {
	b := r.b
	if m := b.cfg.Load().HalfOpenMaxRequests; n < 0 || n > m {
		n = m
	}
	b.probeLimit.Store(int64(n))
}

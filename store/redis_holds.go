package store

import (
	"context"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// A component's hold (core.Breaker.Hold) is shared with its owner and the
// end of its lease, and every instance applies it with that end, so that
// it lapses everywhere if its owner stops renewing it. The owner renews
// locally, which no transition reports; each sync round pushes the
// renewals that outran the shared end (shareRenewal). The shared end is
// the owner's plus one SyncInterval, so that a renewal pushed at the next
// round reaches the others before their copies lapse. When a copy lapses
// (the owner died), the instance's lapse timer moves its breaker to
// HalfOpen at once, and the transition is proposed: one instance wins. So
// the cluster's breaker goes HalfOpen within the lease and one
// SyncInterval of the owner's last renewal. An operator's hold has no
// owner and no end, and never lapses.

// setShared records the shared state this instance knows at ep.version.
func (s *RedisStore) setShared(ep *redisEndpoint, st events.State, heldBy string, holdUntil time.Time) {
	ep.shared, ep.heldBy, ep.holdUntil = st, "", time.Time{}
	delete(s.holds, ep)
	if st == events.ForcedOpen && heldBy != "" {
		ep.heldBy, ep.holdUntil = heldBy, holdUntil
		s.holds[ep] = true
	}
}

// shareHold gives a change that takes or renews a component's hold the
// end the cluster is to hold: the owner's, one SyncInterval later.
func (s *RedisStore) shareHold(c localChange) localChange {
	if c.to == events.ForcedOpen && c.heldBy != "" {
		c.holdUntil = c.holdUntil.Add(s.cfg.SyncInterval)
	}
	return c
}

// ownHold reports whether a hold the cluster holds (owner, end) is one this
// instance's breaker has already outrun: its own hold, taken or renewed
// here, whose end would be shared as that or later. Applying it would only
// shorten the local lease, and make the hold look applied from elsewhere.
func (s *RedisStore) ownHold(ep *redisEndpoint, owner string, end time.Time) bool {
	if !ep.rep.heldHere() {
		return false
	}
	snap := ep.b.Snapshot()
	return snap.State == events.ForcedOpen && truncateUTF8(snap.HeldBy, maxOwnerLen) == owner &&
		snap.HoldUntil.Add(s.cfg.SyncInterval).UnixMilli() >= end.UnixMilli()
}

// lapseMargin is how long after a shared hold's end its lapse is checked,
// so that the breaker's own (coarser) clock has seen the end too.
const lapseMargin = 5 * time.Millisecond

// nextLapse returns when the earliest shared hold not yet checked lapses.
func (s *RedisStore) nextLapse() (time.Time, bool) {
	var next time.Time
	for ep := range s.holds {
		if ep.lapseSeen.Equal(ep.holdUntil) {
			continue
		}
		if at := ep.holdUntil.Add(lapseMargin); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// checkLapses looks at every shared hold whose end has passed: a breaker
// whose copy lapsed goes HalfOpen now (Snapshot moves it, as a call
// would), which queues the transition to propose. A hold renewed here and
// not shared yet does not lapse, and is pushed by the next sync round.
func (s *RedisStore) checkLapses() {
	now := s.clock.Now()
	for ep := range s.holds {
		if ep.holdUntil.Add(lapseMargin).After(now) || ep.lapseSeen.Equal(ep.holdUntil) {
			continue
		}
		ep.lapseSeen = ep.holdUntil
		if ep.b.State() == events.ForcedOpen {
			ep.b.Snapshot()
		}
	}
}

// lapseTimer keeps one timer for the earliest shared hold's end.
type lapseTimer struct {
	t  core.Timer
	at time.Time
}

// arm sets the timer for at (ok) or stops it.
func (l *lapseTimer) arm(clock core.Clock, at time.Time, ok bool) {
	if ok && l.t != nil && at.Equal(l.at) {
		return
	}
	if l.t != nil {
		l.t.Stop()
		l.t = nil
	}
	if ok {
		l.t, l.at = clock.NewTimer(max(at.Sub(clock.Now()), 0)), at
	}
}

// c returns the timer's channel, or nil (never ready) without a timer.
func (l *lapseTimer) c() <-chan time.Time {
	if l.t == nil {
		return nil
	}
	return l.t.C()
}

// fired forgets a timer that has delivered.
func (l *lapseTimer) fired() { l.t = nil }

// shareRenewal pushes a component hold's lease when its owner renewed it
// here past the end the cluster knows: without it, the other instances'
// copies of the hold would lapse while the owner lives. A renewal is no
// transition: it is published for the other instances to apply, silently,
// and announces nothing.
func (s *RedisStore) shareRenewal(ep *redisEndpoint) {
	// Only a hold renewed here: a copy applied from the cluster (or
	// restored) is not the owner's to extend.
	if ep.shared != events.ForcedOpen || ep.heldBy == "" || ep.b.State() != events.ForcedOpen || s.hasPending(ep) || !ep.rep.heldHere() {
		return
	}
	snap := ep.b.Snapshot()
	if snap.State != events.ForcedOpen || truncateUTF8(snap.HeldBy, maxOwnerLen) != ep.heldBy ||
		snap.HoldUntil.Add(s.cfg.SyncInterval).UnixMilli() <= ep.holdUntil.UnixMilli() {
		return
	}
	c := s.shareHold(localChange{from: events.ForcedOpen, to: events.ForcedOpen, reason: truncateUTF8(snap.Reason, maxReasonLen),
		at: snap.LastStateChange, heldBy: ep.heldBy, holdUntil: snap.HoldUntil})
	res, err := s.tryCAS(ep, s.changeArgs(ep, c, int64(ep.version), events.ForcedOpen.String()))
	switch {
	case err != nil:
		s.failed(ep, "share a renewed hold", err)
	case res.won:
		ep.version = res.version
		s.setShared(ep, events.ForcedOpen, c.heldBy, c.holdUntil)
	case res.cur.present:
		s.adopt(ep, res.cur.cs, false)
	}
}

// releaseHoldHere proposes ForcedOpen -> HalfOpen for a breaker held by a
// component of this process, if the cluster holds it for that owner: the
// owner stops with the process, so its hold must not outlive it for the
// rest of its lease. The breaker itself is left as it is; the component
// ends its hold when it stops. The release claims no probe slots, since
// this instance is leaving.
func (s *RedisStore) releaseHoldHere(ep *redisEndpoint) {
	if !ep.rep.heldHere() {
		return
	}
	snap := ep.b.Snapshot()
	owner := truncateUTF8(snap.HeldBy, maxOwnerLen)
	if snap.State != events.ForcedOpen || owner == "" || ep.shared != events.ForcedOpen || ep.heldBy != owner {
		return
	}
	c := localChange{from: events.ForcedOpen, to: events.HalfOpen, at: s.clock.Now(),
		reason: truncateUTF8("released: "+snap.HeldBy+" stopped with the process", maxReasonLen)}
	a := s.changeArgs(ep, c, int64(ep.version), events.ForcedOpen.String())
	var res casReply
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
		res, err = s.cas(ctx, ep.name, ep.keys, nil, a)
		cancel()
		if err != nil || res.won || !res.cur.present || !a.mayRetryOn(res.cur.cs, s.clock.Now()) {
			break
		}
		a.expected = int64(res.cur.cs.Version)
	}
	switch {
	case err != nil:
		s.failed(ep, "release a hold of this process", err)
	case res.won:
		ep.version = res.version
		s.setShared(ep, events.HalfOpen, "", time.Time{})
		s.publish(events.ClusterStateChange{
			Type: events.TypeClusterStateChange, Endpoint: ep.name, OldState: res.old, NewState: events.HalfOpen,
			Timestamp: c.at.UTC(), Reason: c.reason, Version: res.version, Instance: s.cfg.InstanceID,
		})
	}
}

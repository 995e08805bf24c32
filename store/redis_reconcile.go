package store

import (
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// adopt takes the cluster's state after losing a proposal. demand says this
// instance has calls waiting for half-open probe slots.
func (s *RedisStore) adopt(ep *redisEndpoint, cur clusterState, demand bool) {
	ep.version, ep.dirty = max(ep.version, cur.Version), false
	s.applyState(ep, cur)
	if demand && cur.State == events.HalfOpen && cur.Version == ep.version {
		s.claimNow(ep)
	}
}

// applyState puts the breaker into the shared state. A component's hold
// comes with its owner and lease, so that it lapses here too if the owner
// stops renewing it; a renewal the breaker has already outrun (its owner
// renewed here since) is not applied, and the next sync round shares the
// later lease instead.
func (s *RedisStore) applyState(ep *redisEndpoint, cs clusterState) {
	s.setShared(ep, cs.State, cs.HeldBy, cs.HoldUntil)
	if cs.State == events.HalfOpen && ep.claimVer != cs.Version {
		ep.claimVer, ep.claimed = cs.Version, 0
		if s.healthy.Load() {
			ep.rep.limitProbes(0) // before the breaker admits any probe
		}
	}
	if cs.State == events.ForcedOpen && cs.HeldBy != "" && s.ownHold(ep, cs.HeldBy, cs.HoldUntil) {
		// Its own hold coming back, or a renewal older than the one made
		// here since, changes nothing: the breaker keeps its lease, and a
		// hold taken here stays this process's.
		return
	}
	ep.rep.applyRemote(core.Snapshot{State: cs.State, Reason: cs.Reason, OpenUntil: cs.OpenUntil, HeldBy: cs.HeldBy, HoldUntil: cs.HoldUntil})
	if cs.State == events.Open {
		s.noteOpened(ep)
	}
	if cs.State == events.Closed || cs.State == events.Disabled {
		ep.rep.forgetRemoteWindow()
		s.newEpoch(ep, cs.Version)
	}
}

// reconcile compares a state read from Redis with what this instance knows
// and did: the newer wins. present is false when Redis holds no readable
// state for the endpoint.
//
// Transitions queued here and not yet proposed are news that the next
// drain proposes on the version read now: the cluster's state is then only
// learnt, not applied (the transitions that lose adopt it), nor is the
// breaker's state pushed silently in their place.
func (s *RedisStore) reconcile(ep *redisEndpoint, cs clusterState, present bool) {
	local := ep.b.State()
	proposing := ep.learnOnly || s.hasPending(ep)
	switch {
	case !present:
		// Lost (expired, flushed, a restarted Redis) or unreadable: our
		// state is the best there is, unless it says nothing.
		if ep.dirty || local != events.Closed && !proposing {
			s.pushLocal(ep, 0, "")
		}
	case cs.Version > ep.version:
		if ep.dirty && ep.dirtyAt.After(cs.Updated) && local != cs.State {
			s.pushLocal(ep, int64(cs.Version), cs.State.String())
			return
		}
		ep.version, ep.dirty = cs.Version, false
		s.learnOrApply(ep, cs, proposing)
	case cs.Version == ep.version:
		if ep.dirty && local != cs.State {
			s.pushLocal(ep, int64(cs.Version), cs.State.String())
			return
		}
		ep.dirty = false
	default:
		// Older than what we saw: the state was lost and written again
		// by an instance that had not seen ours. It is the newer fact.
		ep.version, ep.dirty = cs.Version, false
		s.learnOrApply(ep, cs, proposing)
	}
}

// learnOrApply puts the breaker into the shared state, or with proposing
// only records it, for the queued transitions to be proposed on.
func (s *RedisStore) learnOrApply(ep *redisEndpoint, cs clusterState, proposing bool) {
	if proposing {
		s.setShared(ep, cs.State, cs.HeldBy, cs.HoldUntil)
		return
	}
	s.applyState(ep, cs)
}

// pushLocal proposes the breaker's current state, based on the shared
// state at version expected in state from. It announces nothing: the
// transitions it stands for were announced when they happened.
func (s *RedisStore) pushLocal(ep *redisEndpoint, expected int64, from string) {
	snap := ep.b.Snapshot()
	c := localChange{to: snap.State, reason: truncateUTF8(snap.Reason, maxReasonLen), at: snap.LastStateChange, openUntil: snap.OpenUntil}
	if snap.State == events.Open && c.openUntil.IsZero() {
		c.openUntil = s.clock.Now()
	}
	if snap.State == events.ForcedOpen && snap.HeldBy != "" {
		// Taken here, a hold is shared with the grace its renewals need;
		// applied from the cluster or restored, as it is.
		c.heldBy, c.holdUntil = truncateUTF8(snap.HeldBy, maxOwnerLen), snap.HoldUntil
		if ep.rep.heldHere() {
			c = s.shareHold(c)
		}
	}
	res, err := s.tryCAS(ep, s.changeArgs(ep, c, expected, from))
	switch {
	case err != nil:
		s.failed(ep, "push local state", err)
	case res.won:
		s.won(ep, c, res, false, true)
	case res.cur.present:
		s.adopt(ep, res.cur.cs, false)
	}
}

// onMessage applies a transition published by a winning instance.
func (s *RedisStore) onMessage(payload []byte) {
	name, cs, err := decodeMessage(payload, s.redisNow())
	if err != nil {
		s.report(nil, "transition message on "+s.channel+" ignored", err)
		return
	}
	ep := s.lookup(name)
	if ep == nil || cs.Version <= ep.version {
		return // not followed here, or already known (our own, say)
	}
	s.reconcile(ep, s.localState(cs), true)
}

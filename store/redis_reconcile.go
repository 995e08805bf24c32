package store

import (
	"github.com/bulwark-go/bulwark/core"
)

// adopt takes the cluster's state after losing a proposal. demand says this
// instance has calls waiting for half-open probe slots.
func (s *RedisStore) adopt(ep *redisEndpoint, cur clusterState, demand bool) {
	ep.version, ep.dirty = max(ep.version, cur.Version), false
	s.applyState(ep, cur)
	if demand && cur.State == core.HalfOpen && cur.Version == ep.version {
		s.claimNow(ep)
	}
}

// applyState puts the breaker into the shared state.
func (s *RedisStore) applyState(ep *redisEndpoint, cs clusterState) {
	if cs.State == core.HalfOpen && ep.claimVer != cs.Version {
		ep.claimVer, ep.claimed = cs.Version, 0
		if s.healthy.Load() {
			ep.rep.limitProbes(0) // before the breaker admits any probe
		}
	}
	ep.rep.applyRemote(cs.State, cs.OpenUntil, cs.Reason)
	if cs.State == core.Closed || cs.State == core.Disabled {
		ep.rep.forgetRemoteWindow()
	}
}

// reconcile compares a state read from Redis with what this instance knows
// and did: the newer wins. present is false when Redis holds no readable
// state for the endpoint.
func (s *RedisStore) reconcile(ep *redisEndpoint, cs clusterState, present bool) {
	local := ep.b.State()
	switch {
	case !present:
		// Lost (expired, flushed, a restarted Redis) or unreadable: our
		// state is the best there is, unless it says nothing.
		if local != core.Closed || ep.dirty {
			s.pushLocal(ep, 0, "")
		}
	case cs.Version > ep.version:
		if ep.dirty && ep.dirtyAt.After(cs.Updated) && local != cs.State {
			s.pushLocal(ep, int64(cs.Version), cs.State.String())
			return
		}
		ep.version, ep.dirty = cs.Version, false
		s.applyState(ep, cs)
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
		s.applyState(ep, cs)
	}
}

// pushLocal proposes the breaker's current state, based on the shared
// state at version expected in state from. It announces nothing: the
// transitions it stands for were announced when they happened.
func (s *RedisStore) pushLocal(ep *redisEndpoint, expected int64, from string) {
	snap := ep.b.Snapshot()
	c := localChange{to: snap.State, reason: truncateUTF8(snap.Reason, maxReasonLen), at: snap.LastStateChange, openUntil: snap.OpenUntil}
	if snap.State == core.Open && c.openUntil.IsZero() {
		c.openUntil = s.clock.Now()
	}
	res, err := s.tryCAS(ep, casArgs{expected: expected, from: from, to: c.to, openUntil: c.openUntil, reason: c.reason, floor: ep.version, at: c.at})
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
	name, cs, err := decodeMessage(payload, s.clock.Now())
	if err != nil {
		s.report(nil, "transition message on "+s.channel+" ignored", err)
		return
	}
	ep := s.lookup(name)
	if ep == nil || cs.Version <= ep.version {
		return // not followed here, or already known (our own, say)
	}
	s.reconcile(ep, cs, true)
}

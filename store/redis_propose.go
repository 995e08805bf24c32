package store

import (
	"context"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// casArgs is one compare-and-set proposal.
type casArgs struct {
	expected  int64  // version the proposal is based on; -1 for any
	from      string // state the proposal leaves; "" for any
	to        events.State
	openUntil time.Time
	heldBy    string    // the owner of a component's hold the proposal takes or renews
	holdUntil time.Time // and when it lapses
	reason    string
	floor     uint64    // the new version must exceed it
	at        time.Time // when the transition happened; zero: now

	// For a proposal that leaves ForcedOpen: the owner of the hold it
	// leaves ("" for an operator's). A retry at a newer version must find
	// the same hold (see mayRetryOn).
	fromHeldBy string

	// idle, for a move to HalfOpen, claims no probe slots with it: no call
	// came here while the breaker was open.
	idle bool
}

// mayRetryOn reports whether a proposal that lost to cur only because its
// version was stale may be made again at cur's version: the cluster is
// still in the state it leaves and, if that is a hold, the same one. A
// component's hold renewed meanwhile is not overruled while its new lease
// lasts (its owner lives, elsewhere), and a renewal only replaces a hold
// that ends sooner; an operator's hold is overruled only by another
// operator's action.
func (a casArgs) mayRetryOn(cur clusterState, now time.Time) bool {
	if a.from == "" || cur.State.String() != a.from || int64(cur.Version) == a.expected {
		return false
	}
	switch {
	case cur.State != events.ForcedOpen:
		return true
	case a.to == events.ForcedOpen && a.heldBy == "":
		return true // an operator forcing it open takes over any hold
	case cur.HeldBy != a.fromHeldBy:
		return false
	case a.to == events.ForcedOpen:
		return a.holdUntil.UnixMilli() > cur.HoldUntil.UnixMilli() // a renewal: only a later end
	case cur.HeldBy != "":
		return !cur.HoldUntil.After(now)
	}
	return true
}

// probeLease is how long an instance's claim on probe slots lasts without
// renewal: the endpoint's ProbeTimeout, and at least two sync intervals,
// since claims are renewed once per interval.
func (s *RedisStore) probeLease(cfg core.BreakerConfig) time.Duration {
	return max(cfg.ProbeTimeout, 2*s.cfg.SyncInterval)
}

// holdMillis is a hold's end as the shared state stores it: Unix ms, cut
// to what other instances accept as believable.
func holdMillis(until, now time.Time) int64 {
	if limit := now.Add(maxHoldAhead - time.Hour); until.After(limit) {
		until = limit
	}
	return max(until.UnixMilli(), 1)
}

// cas runs one compare-and-set proposal for the endpoint name, whose
// breaker b may be nil (a control for an endpoint not followed here).
func (s *RedisStore) cas(ctx context.Context, name string, k redisKeys, b *core.Breaker, a casArgs) (casReply, error) {
	// Times go to Redis on its clock, so that instances whose clocks
	// differ agree on when an open time or a lease ends.
	var until int64
	if a.to == events.Open {
		until = max(s.toRedis(a.openUntil).UnixMilli(), 1)
	}
	probes, lease := 0, int64(0)
	if b != nil && a.to == events.HalfOpen && !a.idle {
		cfg := b.Config()
		probes, lease = cfg.HalfOpenMaxRequests, s.probeLease(cfg).Milliseconds()
	}
	var at int64
	if !a.at.IsZero() {
		at = max(s.toRedis(a.at).UnixMilli(), 1)
	}
	var heldBy string
	var holdUntil int64
	if a.to == events.ForcedOpen && a.heldBy != "" {
		heldBy, holdUntil = truncateUTF8(a.heldBy, maxOwnerLen), holdMillis(s.toRedis(a.holdUntil), s.redisNow())
	}
	v, err := casScript.Run(ctx, s.client, []string{k.state, k.window, k.probes},
		a.expected, a.from, a.to.String(), until, a.reason, s.cfg.InstanceID,
		s.cfg.TTL.Milliseconds(), a.floor, s.channel, name, probes, max(lease, 1), at, heldBy, holdUntil, s.changesKey()).Result()
	if err != nil {
		return casReply{}, err
	}
	res, err := parseCASReply(v, probes, s.redisNow())
	res.cur.cs = s.localState(res.cur.cs)
	return res, err
}

// propose puts a local transition to the cluster. last says no other
// change of ep is queued behind it in this batch.
func (s *RedisStore) propose(ep *redisEndpoint, c localChange, last bool) {
	if !s.healthy.Load() {
		s.decideLocally(ep, c)
		return
	}
	c = s.shareHold(c)
	a := s.changeArgs(ep, c, int64(ep.version), c.from.String())
	if c.to == events.HalfOpen && c.from == events.Open {
		a.idle = s.idleSinceOpen(ep)
	}
	res, err := s.tryCAS(ep, a)
	switch {
	case err != nil:
		s.failed(ep, "propose a transition", err)
		s.decideLocally(ep, c)
	case res.won:
		s.won(ep, c, res, true, last)
	case res.cur.present:
		s.adopt(ep, res.cur.cs, c.to == events.HalfOpen)
	}
}

// changeArgs is the proposal of c based on the shared state at version
// expected in state from ("" for any).
func (s *RedisStore) changeArgs(ep *redisEndpoint, c localChange, expected int64, from string) casArgs {
	a := casArgs{expected: expected, from: from, to: c.to, openUntil: c.openUntil, heldBy: c.heldBy, holdUntil: c.holdUntil,
		reason: c.reason, floor: ep.version, at: c.at}
	if ep.shared == events.ForcedOpen {
		a.fromHeldBy = ep.heldBy
	}
	return a
}

// tryCAS runs a compare-and-set, and once more when it lost only because
// its version was stale (the cluster is still in the state the transition
// leaves, see casArgs.mayRetryOn) or because the shared state is missing
// or unreadable (which the proposal then replaces). A loser gets the
// current state, if readable.
func (s *RedisStore) tryCAS(ep *redisEndpoint, a casArgs) (casReply, error) {
	var res casReply
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
		var err error
		res, err = s.cas(ctx, ep.name, ep.keys, ep.b, a)
		cancel()
		if err != nil || res.won {
			return res, err
		}
		if res.cur.err != nil {
			s.report(ep, "shared state in "+ep.keys.state+" replaced", res.cur.err)
		}
		switch cur := res.cur.cs; {
		case !res.cur.present:
			a.expected, a.from = int64(res.version), ""
		case a.mayRetryOn(cur, s.clock.Now()):
			a.expected = int64(cur.Version)
		default:
			return res, nil
		}
	}
	return res, nil
}

// decideLocally records a transition Redis could not decide: it stands on
// this instance, is announced as a Local ClusterStateChange (so alerts still
// fire) and is reconciled when Redis is back.
func (s *RedisStore) decideLocally(ep *redisEndpoint, c localChange) {
	ep.dirty, ep.dirtyAt = true, c.at
	s.publish(events.ClusterStateChange{
		Type: events.TypeClusterStateChange, Endpoint: ep.name, OldState: c.from, NewState: c.to,
		Timestamp: c.at.UTC(), Reason: c.reason, Instance: s.cfg.InstanceID, Local: true,
	})
}

// won records a winning proposal; announce publishes the ClusterStateChange
// (not for a reconciliation, whose transition was announced already).
func (s *RedisStore) won(ep *redisEndpoint, c localChange, res casReply, announce, last bool) {
	ep.version, ep.dirty = res.version, false
	s.setShared(ep, c.to, c.heldBy, c.holdUntil)
	if announce {
		s.publish(events.ClusterStateChange{
			Type: events.TypeClusterStateChange, Endpoint: ep.name, OldState: res.old, NewState: c.to,
			Timestamp: c.at.UTC(), Reason: c.reason, Version: res.version, Instance: s.cfg.InstanceID,
		})
	}
	switch c.to {
	case events.Closed, events.Disabled:
		ep.rep.forgetRemoteWindow()
		s.newEpoch(ep, res.version)
	case events.HalfOpen:
		ep.claimVer, ep.claimed = res.version, 0
	case events.Open:
		s.noteOpened(ep)
	}
	if last && ep.b.State() != c.to && !s.hasPending(ep) {
		// The breaker moved on meanwhile (a remote state applied before
		// this proposal won): bring it to what the cluster now holds.
		ep.rep.applyRemote(core.Snapshot{State: c.to, Reason: c.reason, OpenUntil: c.openUntil, HeldBy: c.heldBy, HoldUntil: c.holdUntil})
	}
	if c.to == events.HalfOpen {
		s.setProbes(ep, res.claimed)
	}
}

// noteOpened records the calls seen here as the breaker opens, so that
// its move to HalfOpen can tell whether any came while it was open.
// Only while the open time runs: a Snapshot after it would move the
// breaker.
func (s *RedisStore) noteOpened(ep *redisEndpoint) {
	ep.openNoted = false
	if ep.b.State() != events.Open || ep.b.RetryAfter() <= 0 {
		return
	}
	ep.openCalls, ep.openNoted = callsSeen(ep.b.Snapshot()), true
}

// idleSinceOpen reports whether no call came here since the breaker
// opened: its move to HalfOpen (made as the breaker was only looked at,
// by an admin page, say) then claims no probe slots, which a renewal
// would keep from the instances whose calls wait for probes. Those claim
// them at their next sync round.
func (s *RedisStore) idleSinceOpen(ep *redisEndpoint) bool {
	idle := ep.openNoted && callsSeen(ep.b.Snapshot()) == ep.openCalls
	ep.openNoted = false
	return idle
}

// callsSeen counts the calls a breaker has seen: reported, injected and
// refused.
func callsSeen(snap core.Snapshot) int64 {
	return snap.TotalRequests + snap.InjectedFailures + snap.RejectedRequests
}

func (s *RedisStore) hasPending(ep *redisEndpoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(ep.pending) > 0
}

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
	to        core.State
	openUntil time.Time
	reason    string
	floor     uint64    // the new version must exceed it
	at        time.Time // when the transition happened; zero: now
}

// cas runs one compare-and-set proposal for the endpoint name, whose
// breaker b may be nil (a control for an endpoint not followed here).
func (s *RedisStore) cas(ctx context.Context, name string, k redisKeys, b *core.Breaker, a casArgs) (casReply, error) {
	var until int64
	if a.to == core.Open {
		until = max(a.openUntil.UnixMilli(), 1)
	}
	probes, probeTTL := 0, int64(0)
	if b != nil && a.to == core.HalfOpen {
		cfg := b.Config()
		probes, probeTTL = cfg.HalfOpenMaxRequests, cfg.ProbeTimeout.Milliseconds()
	}
	var at int64
	if !a.at.IsZero() {
		at = max(a.at.UnixMilli(), 1)
	}
	v, err := casScript.Run(ctx, s.client, []string{k.state, k.window, k.probes},
		a.expected, a.from, a.to.String(), until, a.reason, s.cfg.InstanceID,
		s.cfg.TTL.Milliseconds(), a.floor, s.channel, name, probes, max(probeTTL, 1), at).Result()
	if err != nil {
		return casReply{}, err
	}
	return parseCASReply(v, probes, s.clock.Now())
}

// propose puts a local transition to the cluster. last says no other
// change of ep is queued behind it in this batch.
func (s *RedisStore) propose(ep *redisEndpoint, c localChange, last bool) {
	if !s.healthy.Load() {
		s.decideLocally(ep, c)
		return
	}
	a := casArgs{expected: int64(ep.version), from: c.from.String(), to: c.to, openUntil: c.openUntil, reason: c.reason, floor: ep.version, at: c.at}
	res, err := s.tryCAS(ep, a)
	switch {
	case err != nil:
		s.failed(ep, "propose a transition", err)
		s.decideLocally(ep, c)
	case res.won:
		s.won(ep, c, res, true, last)
	case res.cur.present:
		s.adopt(ep, res.cur.cs, c.to == core.HalfOpen)
	}
}

// tryCAS runs a compare-and-set, and once more when it lost only because
// its version was stale (the cluster is still in the state the transition
// leaves) or because the shared state is missing or unreadable (which the
// proposal then replaces). A loser gets the current state, if readable.
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
		case a.from != "" && cur.State.String() == a.from && int64(cur.Version) != a.expected:
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
	if announce {
		s.publish(events.ClusterStateChange{
			Type: events.TypeClusterStateChange, Endpoint: ep.name, OldState: res.old, NewState: c.to,
			Timestamp: c.at.UTC(), Reason: c.reason, Version: res.version, Instance: s.cfg.InstanceID,
		})
	}
	switch c.to {
	case core.Closed, core.Disabled:
		ep.rep.forgetRemoteWindow()
	case core.HalfOpen:
		ep.claimVer, ep.claimed = res.version, 0
	}
	if last && ep.b.State() != c.to && !s.hasPending(ep) {
		// The breaker moved on meanwhile (a remote state applied before
		// this proposal won): bring it to what the cluster now holds.
		ep.rep.applyRemote(c.to, c.openUntil, c.reason)
	}
	if c.to == core.HalfOpen {
		s.grantProbes(ep, res.claimed)
	}
}

func (s *RedisStore) hasPending(ep *redisEndpoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(ep.pending) > 0
}

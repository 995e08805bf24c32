package store

import (
	"context"
	"fmt"
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

type casResult struct {
	won     bool
	version uint64 // the new version, or for a loser the one the script read
	old     core.State
	claimed int
	hash    []any // a loser's view of the current state
}

func (s *RedisStore) cas(ctx context.Context, name string, k redisKeys, b *core.Breaker, a casArgs) (casResult, error) {
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
	r, err := casScript.Run(ctx, s.client, []string{k.state, k.window, k.probes},
		a.expected, a.from, a.to.String(), until, a.reason, s.cfg.InstanceID,
		s.cfg.TTL.Milliseconds(), a.floor, s.channel, name, probes, max(probeTTL, 1), at).Slice()
	if err != nil {
		return casResult{}, err
	}
	bad := fmt.Errorf("unexpected compare-and-set reply %v", r)
	if len(r) == 3 {
		w, _ := r[0].(int64)
		h, ok1 := r[1].([]any)
		v, ok2 := r[2].(int64)
		if w != 0 || !ok1 || !ok2 || v < 0 {
			return casResult{}, bad
		}
		return casResult{version: uint64(v), hash: h}, nil
	}
	if len(r) != 5 {
		return casResult{}, bad
	}
	v, ok1 := r[1].(int64)
	old, ok2 := r[2].(string)
	claimed, ok3 := r[4].(int64)
	oldState, err := events.ParseState(old)
	if !ok1 || !ok2 || !ok3 || err != nil || v < 1 {
		return casResult{}, bad
	}
	return casResult{won: true, version: uint64(v), old: oldState, claimed: int(claimed)}, nil
}

// propose puts a local transition to the cluster. last says no other
// change of ep is queued behind it in this batch.
func (s *RedisStore) propose(ep *redisEndpoint, c localChange, last bool) {
	if !s.healthy.Load() {
		s.decideLocally(ep, c)
		return
	}
	a := casArgs{expected: int64(ep.version), from: c.from.String(), to: c.to, openUntil: c.openUntil, reason: c.reason, floor: ep.version, at: c.at}
	res, cur, present, err := s.tryCAS(ep, a)
	switch {
	case err != nil:
		s.failed(ep, "propose a transition", err)
		s.decideLocally(ep, c)
	case res.won:
		s.won(ep, c, res, true, last)
	case present:
		s.adopt(ep, cur, c.to == core.HalfOpen)
	}
}

// tryCAS runs a compare-and-set, and once more when it lost only because
// its version was stale (the cluster is still in the state the transition
// leaves) or because the shared state is missing or unreadable (which the
// proposal then replaces). A loser gets the current state, if readable.
func (s *RedisStore) tryCAS(ep *redisEndpoint, a casArgs) (res casResult, cur clusterState, present bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
		res, err = s.cas(ctx, ep.name, ep.keys, ep.b, a)
		cancel()
		if err != nil || res.won {
			return res, clusterState{}, false, err
		}
		var perr error
		cur, present, perr = parseStateHash(res.hash, s.clock.Now())
		if perr != nil {
			s.report(ep, "shared state in "+ep.keys.state+" replaced", perr)
			present = false
		}
		switch {
		case !present:
			a.expected, a.from = int64(res.version), ""
		case a.from != "" && cur.State.String() == a.from && int64(cur.Version) != a.expected:
			a.expected = int64(cur.Version)
		default:
			return res, cur, present, nil
		}
	}
	return res, cur, present, nil
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
func (s *RedisStore) won(ep *redisEndpoint, c localChange, res casResult, announce, last bool) {
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

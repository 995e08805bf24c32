package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
)

// sync is one round trip for eps: each pushes its window counts and gets
// the others' back, plus its state hash when the version moved, and claims
// probe slots where calls wait for them.
func (s *RedisStore) sync(eps []*redisEndpoint) error {
	if len(eps) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	syncs := make([]*redis.Cmd, len(eps))
	claims := make([]*redis.Cmd, len(eps))
	wants := make([]int, len(eps))
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		for i, ep := range eps {
			total, failed, slow := ep.rep.windowCounts()
			cfg := ep.b.Config()
			force := 0
			if ep.dirty {
				force = 1 // reconcile needs the state even at the same version
			}
			syncs[i] = syncScript.EvalSha(ctx, pipe, []string{ep.keys.state, ep.keys.window},
				s.cfg.InstanceID, total, failed, slow, ep.version,
				cfg.RollingWindow.Milliseconds(), s.cfg.TTL.Milliseconds(), maxWindowField, force)
			claims[i], wants[i] = nil, 0
			if want := s.probeDemand(ep); want > 0 {
				wants[i] = want
				claims[i] = claimScript.EvalSha(ctx, pipe, []string{ep.keys.state, ep.keys.probes},
					ep.claimVer, want, cfg.HalfOpenMaxRequests, cfg.ProbeTimeout.Milliseconds())
			}
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			break
		}
		if attempt == 0 && anyNoScript(syncs, claims) {
			// The script cache was flushed (a restart, a failover): load
			// the scripts and go again, once.
			if err := s.loadScripts(ctx); err != nil {
				return err
			}
			continue
		}
		if isConnErr(err) {
			return err
		}
		break // error replies for some endpoints only: handled below
	}
	now := s.clock.Now()
	for i, ep := range eps {
		if c := claims[i]; c != nil {
			v, err := c.Result()
			var n int
			if err == nil {
				n, err = parseClaimReply(v, wants[i])
			}
			if err != nil {
				s.failed(ep, "claim probe slots", err)
			} else {
				s.grantProbes(ep, n)
			}
		}
		v, err := syncs[i].Result()
		if err != nil {
			if isConnErr(err) {
				return err
			}
			s.report(ep, "sync", err)
			continue
		}
		r, err := parseSyncReply(v, now)
		if err != nil {
			s.report(ep, "sync", err)
			continue
		}
		if r.removed > 0 {
			s.report(ep, "shared window", fmt.Errorf("%w: removed %d malformed or foreign entries from %s", errMalformed, r.removed, ep.keys.window))
		}
		if r.changed {
			if r.state.err != nil {
				s.report(ep, "shared state in "+ep.keys.state+" ignored", r.state.err)
			}
			s.reconcile(ep, r.state.cs, r.state.present)
		}
		if s.healthy.Load() {
			ep.rep.setRemoteWindow(r.others.total, r.others.failed, r.others.slow)
		}
	}
	s.rounds.Add(1)
	return nil
}

func anyNoScript(lists ...[]*redis.Cmd) bool {
	for _, l := range lists {
		for _, c := range l {
			if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				return true
			}
		}
	}
	return false
}

func (s *RedisStore) loadScripts(ctx context.Context) error {
	for _, sc := range [...]*redis.Script{casScript, syncScript, claimScript} {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return err
		}
	}
	return nil
}

// probeDemand returns how many probe slots to ask for: the rest of the
// budget when the breaker is half-open in the cluster's current half-open
// round and calls were turned away for want of slots.
func (s *RedisStore) probeDemand(ep *redisEndpoint) int {
	if ep.b.State() != core.HalfOpen || ep.claimVer == 0 || ep.claimVer != ep.version {
		return 0
	}
	rejected := ep.b.Snapshot().RejectedRequests
	demand := ep.wantClaim || rejected > ep.rejected
	ep.rejected, ep.wantClaim = rejected, false
	if !demand {
		return 0
	}
	return max(ep.b.Config().HalfOpenMaxRequests-ep.claimed, 0)
}

// grantProbes raises the breaker's probe limit by n claimed slots.
func (s *RedisStore) grantProbes(ep *redisEndpoint, n int) {
	if n <= 0 {
		return
	}
	ep.claimed += n
	if ep.b.State() == core.HalfOpen && s.healthy.Load() {
		ep.rep.limitProbes(ep.claimed)
	}
}

// claimNow claims probe slots at once (a half-open transition lost to
// another instance's, while calls here are waiting).
func (s *RedisStore) claimNow(ep *redisEndpoint) {
	cfg := ep.b.Config()
	want := cfg.HalfOpenMaxRequests - ep.claimed
	if want <= 0 || ep.claimVer == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	v, err := claimScript.Run(ctx, s.client, []string{ep.keys.state, ep.keys.probes},
		ep.claimVer, want, cfg.HalfOpenMaxRequests, cfg.ProbeTimeout.Milliseconds()).Result()
	var n int
	if err == nil {
		n, err = parseClaimReply(v, want)
	}
	if err != nil {
		s.failed(ep, "claim probe slots", err)
		return
	}
	s.grantProbes(ep, n)
}

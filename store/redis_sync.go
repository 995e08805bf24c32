package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
)

// sync is one round trip for eps: each pushes its window counts and gets
// the others' back, plus its state hash when the version moved, and claims
// probe slots where calls wait for them (renewing the claims it holds).
// Then it shares the holds whose lease was renewed here, and ends those
// whose lease lapsed.
func (s *RedisStore) sync(eps []*redisEndpoint) error {
	if len(eps) == 0 {
		return nil
	}
	for _, ep := range eps {
		if ep.b.State() == core.ForcedOpen {
			// A lapsed hold moves the breaker to HalfOpen here (as a call
			// would), which queues the transition to propose: the
			// backstop of the lapse timer (see checkLapses).
			ep.b.Snapshot()
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	syncs := make([]*redis.Cmd, len(eps))
	claims := make([]*redis.Cmd, len(eps))
	wants := make([]int, len(eps))
	setVers := make([]*redis.StringCmd, len(eps))
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
			setVers[i] = pipe.HGet(ctx, ep.keys.settings, "version")
			claims[i], wants[i] = nil, 0
			if want, ok := s.probeWant(ep); ok {
				wants[i] = want
				claims[i] = s.claimCmd(ctx, pipe, ep, cfg, want)
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
				s.setProbes(ep, n)
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
	var newer []*redisEndpoint
	for i, ep := range eps {
		v, err := parseSettingsVersion(setVers[i].Result())
		switch {
		case err != nil && isConnErr(err):
			return err
		case err != nil:
			s.report(ep, "settings version in "+ep.keys.settings, err)
		case v > s.knownSettings(ep.name):
			newer = append(newer, ep)
		}
	}
	if err := s.fetchSettings(ctx, newer); err != nil {
		return err
	}
	for _, ep := range eps {
		if s.ctx.Err() != nil || !s.healthy.Load() {
			break
		}
		s.shareRenewal(ep)
	}
	s.rounds.Add(1)
	return nil
}

// fetchSettings reads the settings hashes of eps, whose versions moved
// past what this store has seen, and delivers the changes.
func (s *RedisStore) fetchSettings(ctx context.Context, eps []*redisEndpoint) error {
	if len(eps) == 0 {
		return nil
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(eps))
	for i, ep := range eps {
		cmds[i] = pipe.HMGet(ctx, ep.keys.settings, settingsFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil && isConnErr(err) {
		return err
	}
	for i, ep := range eps {
		vals, err := cmds[i].Result()
		var o Override
		var ok bool
		if err == nil {
			o, ok, err = parseSettingsHash(ep.name, vals, s.redisNow())
		}
		switch {
		case err != nil:
			s.report(ep, "settings in "+ep.keys.settings+" ignored", err)
		case ok:
			s.deliverOverride(o)
		}
	}
	return nil
}

// probeField is the instance's field in an endpoint's probes hash.
func probeField(instance string) string { return "i:" + instance }

// claimCmd queues on pipe a claim of want probe slots in all (renewing
// the instance's lease on them) for ep's half-open round.
func (s *RedisStore) claimCmd(ctx context.Context, pipe redis.Pipeliner, ep *redisEndpoint, cfg core.BreakerConfig, want int) *redis.Cmd {
	keys, args := s.claimArgs(ep, cfg, want)
	return claimScript.EvalSha(ctx, pipe, keys, args...)
}

// claimArgs are the claim script's keys and arguments.
func (s *RedisStore) claimArgs(ep *redisEndpoint, cfg core.BreakerConfig, want int) ([]string, []any) {
	return []string{ep.keys.state, ep.keys.probes}, []any{ep.claimVer, want, cfg.HalfOpenMaxRequests,
		s.probeLease(cfg).Milliseconds(), s.cfg.InstanceID, s.cfg.TTL.Milliseconds()}
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

// probeWant returns how many probe slots in all to hold, and whether to
// ask at all: in the cluster's current half-open round, the whole budget
// when calls were turned away for want of slots, and otherwise the slots
// held already, to renew their lease (an instance that stops renewing
// loses them to the others after the lease).
func (s *RedisStore) probeWant(ep *redisEndpoint) (int, bool) {
	if ep.b.State() != core.HalfOpen || ep.claimVer == 0 || ep.claimVer != ep.version {
		return 0, false
	}
	rejected := ep.b.Snapshot().RejectedRequests
	demand := ep.wantClaim || rejected > ep.rejected
	ep.rejected, ep.wantClaim = rejected, false
	switch {
	case demand:
		return ep.b.Config().HalfOpenMaxRequests, true
	case ep.claimed > 0:
		return ep.claimed, true
	}
	return 0, false
}

// setProbes sets the breaker's probe limit to the n slots this instance
// holds in the cluster's half-open round.
func (s *RedisStore) setProbes(ep *redisEndpoint, n int) {
	ep.claimed = max(n, 0)
	if ep.b.State() == core.HalfOpen && s.healthy.Load() {
		ep.rep.limitProbes(ep.claimed)
	}
}

// claimNow claims probe slots at once (a half-open transition lost to
// another instance's, while calls here are waiting).
func (s *RedisStore) claimNow(ep *redisEndpoint) {
	cfg := ep.b.Config()
	if ep.claimed >= cfg.HalfOpenMaxRequests || ep.claimVer == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	want := cfg.HalfOpenMaxRequests
	keys, args := s.claimArgs(ep, cfg, want)
	v, err := claimScript.Run(ctx, s.client, keys, args...).Result()
	var n int
	if err == nil {
		n, err = parseClaimReply(v, want)
	}
	if err != nil {
		s.failed(ep, "claim probe slots", err)
		return
	}
	s.setProbes(ep, n)
}

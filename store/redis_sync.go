package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
)

// maxBatch bounds the endpoints of one sync script call, so that no call
// keeps Redis busy for long.
const maxBatch = 128

// checkEvery is how often, in sync rounds, every endpoint reads its
// versions even though the change counter did not move.
const checkEvery = 16

// syncPlan is what a sync round asks of Redis for one endpoint.
type syncPlan struct {
	mode int     // syncScript's mode: 1 push, 2 force the state, 4 touch, 8 read the versions
	win  counts3 // a push's window: the most it may add
}

// sync is one round trip for eps, in batches of one slot: each endpoint
// compares its state and settings versions with Redis's and, with calls
// in its window, pushes its counts and gets the cluster's window back;
// and probe slots are claimed where calls wait for them (renewing the
// claims held). Then it shares the holds whose lease was renewed here,
// and ends those whose lease lapsed. all says eps are every endpoint the
// store has loaded: only such a round moves what the store knows of the
// change counter.
func (s *RedisStore) sync(eps []*redisEndpoint, all bool) error {
	if len(eps) == 0 {
		return nil
	}
	if all {
		if s.fullRounds++; s.fullRounds%checkEvery == 0 {
			// A backstop for what moves no counter: instances of the
			// version 1 format, hand edits.
			s.checkAll = true
		}
	}
	for _, ep := range eps {
		if ep.b.State() == events.ForcedOpen {
			// A lapsed hold moves the breaker to HalfOpen here (as a call
			// would), which queues the transition to propose: the
			// backstop of the lapse timer (see checkLapses).
			ep.b.Snapshot()
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	plans := make([]syncPlan, len(eps))
	for i, ep := range eps {
		plans[i] = s.plan(ep)
	}
	var quotas *quotaRound
	if all {
		quotas = s.planQuotas(eps)
		defer s.applyQuotas(quotas)
	}
	batches := s.batches(eps)
	syncs := make([]*redis.Cmd, len(batches))
	claims := make([]*redis.Cmd, len(eps))
	wants := make([]int, len(eps))
	var before, after time.Time
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		for bi, b := range batches {
			keys, args := s.syncArgs(eps, plans, b)
			syncs[bi] = syncScript.EvalSha(ctx, pipe, keys, args...)
		}
		for i, ep := range eps {
			claims[i], wants[i] = nil, 0
			if want, ok := s.probeWant(ep); ok {
				wants[i] = want
				claims[i] = s.claimCmd(ctx, pipe, ep, ep.b.Config(), want)
			}
		}
		s.queueQuotas(ctx, pipe, quotas)
		before = s.clock.Now()
		_, err := pipe.Exec(ctx)
		after = s.clock.Now()
		if err == nil {
			break
		}
		if attempt == 0 && anyNoScript(syncs, claims, quotas.quotaCmds()) {
			// The script cache was flushed (a restart, a failover): load
			// the scripts and go again, once.
			if err := s.loadScripts(ctx); err != nil {
				s.unsure(eps, plans)
				return err
			}
			continue
		}
		if isConnErr(err) {
			s.unsure(eps, plans)
			return err
		}
		break // error replies for some batches only: handled below
	}
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
	}
	sampled := false
	changes, sameChanges := "", true // the settings change counter, if every batch saw the same
	for bi, b := range batches {
		names := make([]string, len(b))
		pushed := make([]bool, len(b))
		for j, i := range b {
			names[j], pushed[j] = eps[i].name, plans[i].mode&1 != 0
		}
		v, err := syncs[bi].Result()
		var r syncBatch
		if err == nil {
			r, err = parseSyncBatch(v, names, pushed)
		}
		if err != nil {
			sameChanges = false // this batch's endpoints did not read theirs
			for _, i := range b {
				if plans[i].mode&1 != 0 {
					eps[i].agg.unsure = true
				}
			}
			if isConnErr(err) {
				s.unsure(eps, plans)
				return err
			}
			for _, i := range b {
				s.report(eps[i], "sync", err)
			}
			continue
		}
		if !sampled {
			sampled, changes = true, r.changes
			s.offset.Store(int64(s.rclock.sample(before, after, r.redisTime)))
		}
		sameChanges = sameChanges && r.changes == changes
		for j, i := range b {
			s.applySync(eps[i], plans[i], r.items[j], after)
		}
	}
	if sampled && sameChanges && all {
		// Every endpoint read the versions the counter stood for, or
		// the counter did not move.
		s.seen, s.checkAll = changes, false
	}
	for _, ep := range eps {
		if s.ctx.Err() != nil || !s.healthy.Load() {
			break
		}
		s.shareRenewal(ep)
	}
	s.epSyncs.Add(uint64(len(eps)))
	s.rounds.Add(1)
	return nil
}

// plan decides what the round asks for ep.
func (s *RedisStore) plan(ep *redisEndpoint) syncPlan {
	var p syncPlan
	if ep.dirty {
		p.mode |= 2 // reconcile needs the state even at the same version
	}
	if !ep.checked || s.checkAll {
		// Versions read whatever the change counter says: an endpoint
		// new here, or a round after a gap (see sync).
		p.mode |= 8
	}
	if s.clock.Now().Sub(ep.touchedAt) >= s.cfg.TTL/4 {
		// The state's TTL is refreshed a few times per TTL, not every
		// round: an idle endpoint costs a read per round only.
		p.mode |= 4
	}
	if win, ok := s.planPush(ep); ok {
		p.mode |= 1
		p.win = win
	} else if ep.agg.active {
		ep.agg.active = false
		ep.rep.forgetRemoteWindow() // no calls here: the others' share is not followed
	}
	return p
}

// unsure marks the pushes of a round that failed: each may have reached
// Redis all the same.
func (s *RedisStore) unsure(eps []*redisEndpoint, plans []syncPlan) {
	for i, ep := range eps {
		if plans[i].mode&1 != 0 {
			ep.agg.unsure = true
		}
	}
}

// syncArgs are the sync script's keys and arguments for the endpoints
// eps[i] of batch.
func (s *RedisStore) syncArgs(eps []*redisEndpoint, plans []syncPlan, batch []int) ([]string, []any) {
	keys := make([]string, len(batch))
	args := make([]any, 6, 6+len(batch))
	args[0], args[1], args[2], args[3], args[4] = s.aggField(), s.cfg.TTL.Milliseconds(), s.nonce, s.changesKey(), s.seen
	var layouts []string // the batch's, as the keys name them; almost always one
	s.setMu.Lock()
	defer s.setMu.Unlock()
	for j, i := range batch {
		ep, p := eps[i], plans[i]
		keys[j] = ep.keys.tag
		n := 17
		if p.mode&1 != 0 {
			n = 78
		}
		b := append(make([]byte, 0, n), byte(p.mode))
		b = appendF64(b, int64(ep.version), int64(s.setKnown[ep.name]))
		if p.mode&1 != 0 {
			a := &ep.agg
			b = appendF64(b, int64(a.epoch), a.cum.total, a.cum.failed, a.cum.slow, a.conf.total)
			for _, v := range [...]int64{p.win.total, p.win.failed, p.win.slow, a.layout.width, a.layout.n} {
				b = binary.LittleEndian.AppendUint32(b, uint32(min(max(v, 0), math.MaxUint32)))
			}
			l := slices.Index(layouts, a.layout.suffix())
			if l < 0 {
				l, layouts = len(layouts), append(layouts, a.layout.suffix())
			}
			b = append(b, byte(l+1))
		}
		args = append(args, b)
	}
	args[5] = strings.Join(layouts, " ")
	return keys, args
}

// applySync takes in what the round said of ep.
func (s *RedisStore) applySync(ep *redisEndpoint, p syncPlan, it syncItem, now time.Time) {
	if p.mode&4 != 0 {
		ep.touchedAt = now
	}
	if p.mode&8 != 0 {
		ep.checked = true
	}
	if it.changed {
		if it.state.err != nil {
			s.report(ep, "shared state in "+ep.keys.state+" ignored", it.state.err)
		}
		s.reconcile(ep, s.localState(it.state.cs), it.state.present)
	}
	switch {
	case it.setErr != nil:
		s.report(ep, "settings in "+ep.keys.settings+" ignored", it.setErr)
	case it.settings != nil:
		s.deliverOverride(*it.settings)
	}
	if p.mode&1 == 0 {
		return
	}
	a := &ep.agg
	switch r := it.push; {
	case it.pushErr != nil:
		a.unsure = true
		s.report(ep, "shared window", it.pushErr)
	case !r.pushed && r.epoch > ep.version:
		// The aggregates are of an epoch this instance has not seen the
		// state of: the next round reads it.
		ep.checked = false
	case !r.pushed:
		// The cluster closed the breaker since these counts began: they
		// are not pushed, and the next round starts from the window.
		a.restart(r.epoch)
		if a.active {
			a.active = false
			ep.rep.forgetRemoteWindow()
		}
	default:
		if r.removed > 0 {
			s.report(ep, "shared window", fmt.Errorf("%w: removed %d malformed or foreign entries from the window of %s",
				errMalformed, r.removed, ep.name))
		}
		others := a.applyPush(*r, p.win)
		if s.healthy.Load() {
			a.active = true
			ep.rep.setRemoteWindow(others.total, others.failed, others.slow)
		}
	}
}

// batches groups eps (by index) into sync script calls: all in one for a
// single Redis, by slot for Redis Cluster (a script's keys share a slot),
// one each for a Ring (whose shards are not slots); at most maxBatch each.
func (s *RedisStore) batches(eps []*redisEndpoint) [][]int {
	idx := make([]int, len(eps))
	for i := range idx {
		idx[i] = i
	}
	var starts func(k int) bool
	switch s.client.(type) {
	case *redis.ClusterClient:
		slices.SortStableFunc(idx, func(a, b int) int { return eps[a].slot - eps[b].slot })
		starts = func(k int) bool { return k == 0 || eps[idx[k]].slot != eps[idx[k-1]].slot }
	case *redis.Ring:
		starts = func(int) bool { return true }
	default:
		starts = func(k int) bool { return k == 0 }
	}
	var out [][]int
	for k, i := range idx {
		if starts(k) || len(out[len(out)-1]) == maxBatch {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], i)
	}
	return out
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
	for _, sc := range [...]*redis.Script{casScript, syncScript, claimScript, leaveScript, putScript, quotaScript} {
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
	if ep.b.State() != events.HalfOpen || ep.claimVer == 0 || ep.claimVer != ep.version {
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
	if ep.b.State() == events.HalfOpen && s.healthy.Load() {
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

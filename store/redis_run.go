package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// reportEvery limits how often one endpoint's handled errors are reported,
// so that a corrupt key read every sync does not flood the logs.
const reportEvery = 30 * time.Second

// run is the worker: every Redis call except the subscription's, and every
// change to a breaker, happens here, one at a time.
func (s *RedisStore) run() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
			s.drain()
		case msg := <-s.remote:
			s.onMessage(msg)
		case r := <-s.admin:
			r.reply <- s.doControl(r)
		case <-s.resync:
			if s.healthy.Load() {
				s.syncOrDegrade(s.endpoints())
			}
		case <-tick.C:
			s.tick()
		}
	}
}

// endpoints returns every attached endpoint.
func (s *RedisStore) endpoints() []*redisEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*redisEndpoint, 0, len(s.eps))
	for _, ep := range s.eps {
		out = append(out, ep)
	}
	return out
}

func (s *RedisStore) lookup(name string) *redisEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eps[name]
}

// drain loads the shared state of new endpoints, then proposes queued
// local transitions in order.
//
// A state that was not decided now (one restored from a file, or that a
// breaker had before it was attached) is not proposed as a transition: it
// is reconciled with the shared state, and the newer of the two wins, so a
// stale file never overrides what the cluster decided meanwhile.
func (s *RedisStore) drain() {
	type work struct {
		ep      *redisEndpoint
		changes []localChange
	}
	s.mu.Lock()
	ready := s.ready
	s.ready = nil
	var fresh []*redisEndpoint
	todo := make([]work, 0, len(ready))
	for _, ep := range ready {
		ep.queued = false
		if ep.fresh {
			ep.fresh = false
			fresh = append(fresh, ep)
		}
		if len(ep.pending) > 0 {
			todo = append(todo, work{ep, ep.pending})
			ep.pending = nil
		}
	}
	s.mu.Unlock()
	load := fresh
	for _, ep := range fresh {
		switch ep.b.State() {
		case core.Open, core.HalfOpen, core.ForcedOpen:
			s.markRestored(ep)
		}
	}
	for i, w := range todo {
		for j := len(w.changes) - 1; j >= 0; j-- {
			if w.changes[j].restored {
				// What came before the restore is superseded by it.
				todo[i].changes = w.changes[j+1:]
				if !slices.Contains(load, w.ep) {
					load = append(load, w.ep)
				}
				s.markRestored(w.ep)
				break
			}
		}
	}
	if len(load) > 0 && s.healthy.Load() {
		s.syncOrDegrade(load)
	}
	for _, w := range todo {
		for i, c := range w.changes {
			if s.ctx.Err() != nil {
				return
			}
			s.propose(w.ep, c, i == len(w.changes)-1)
		}
	}
}

// markRestored makes the breaker's current state one to reconcile, dated
// by its last change.
func (s *RedisStore) markRestored(ep *redisEndpoint) {
	ep.dirty, ep.dirtyAt = true, ep.b.Snapshot().LastStateChange
}

// tick runs a sync round, or while Redis is unreachable, a reconnection
// attempt when its backoff has passed.
func (s *RedisStore) tick() {
	defer s.ticks.Add(1)
	if s.healthy.Load() {
		s.syncOrDegrade(s.endpoints())
		return
	}
	eps := s.endpoints()
	for _, ep := range eps {
		ep.b.SetProbeLimit(-1) // undo any limit a racing listener set
	}
	if time.Now().Before(s.retryAt) {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	err := s.client.Ping(ctx).Err()
	cancel()
	if err != nil {
		s.scheduleRetry()
		return
	}
	s.healthy.Store(true)
	for _, ep := range eps {
		// Probe slots are claimed from Redis again; a half-open breaker
		// asks at once.
		ep.b.SetProbeLimit(0)
		ep.claimed, ep.wantClaim = 0, ep.b.State() == core.HalfOpen
	}
	if err := s.sync(eps); err != nil {
		s.degrade(err)
		return
	}
	s.backoff = 0
	if s.announcedDown {
		s.announcedDown = false
		s.log.Info("bulwark: redis store: Redis reachable again; state reconciled")
		s.publish(events.StoreStatus{
			Type: events.TypeStoreStatus, Store: "redis", Instance: s.cfg.InstanceID,
			Status: events.StoreRecovered, Timestamp: time.Now().UTC(),
		})
	}
}

// scheduleRetry doubles the reconnection backoff, with jitter so that a
// fleet does not reconnect in step.
func (s *RedisStore) scheduleRetry() {
	s.backoff = min(max(2*s.backoff, s.cfg.SyncInterval), s.cfg.MaxReconnectBackoff)
	jitter := time.Duration(rand.Int64N(int64(s.backoff)/5 + 1))
	s.retryAt = time.Now().Add(s.backoff - s.backoff/10 + jitter)
}

// degrade switches to local operation after a failed call.
func (s *RedisStore) degrade(err error) {
	if s.ctx.Err() != nil {
		return // closing: the call was cancelled, Redis is fine
	}
	if !s.healthy.Swap(false) {
		return
	}
	s.backoff = 0
	s.scheduleRetry()
	for _, ep := range s.endpoints() {
		ep.b.SetProbeLimit(-1)        // probe on local judgement
		ep.b.SetRemoteWindow(0, 0, 0) // the others' counts are no longer known
	}
	if s.announcedDown {
		return
	}
	s.announcedDown = true
	s.log.Warn("bulwark: redis store: Redis unreachable; breakers continue on local state", "error", err)
	s.publish(events.StoreStatus{
		Type: events.TypeStoreStatus, Store: "redis", Instance: s.cfg.InstanceID,
		Status: events.StoreDegraded, Error: err.Error(), Timestamp: time.Now().UTC(),
	})
}

func (s *RedisStore) syncOrDegrade(eps []*redisEndpoint) {
	if err := s.sync(eps); err != nil {
		s.degrade(err)
	}
}

// isConnErr tells a failure to reach Redis (network, timeout, a server
// that cannot serve) from an error reply about one command.
func isConnErr(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range [...]string{"LOADING", "READONLY", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// failed handles the error of a call about ep.
func (s *RedisStore) failed(ep *redisEndpoint, what string, err error) {
	if s.ctx.Err() != nil {
		return // closing
	}
	if isConnErr(err) {
		s.degrade(err)
		return
	}
	s.report(ep, what, err)
}

// report warns about a handled error, at most once per reportEvery per
// endpoint (or for all errors without one).
func (s *RedisStore) report(ep *redisEndpoint, what string, err error) {
	last, name := &s.reportedAt, ""
	if ep != nil {
		last, name = &ep.reportedAt, ep.name
	}
	now := time.Now()
	if !last.IsZero() && now.Sub(*last) < reportEvery {
		return
	}
	*last = now
	s.warn(name, what, err)
}

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
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		for i, ep := range eps {
			total, failed, slow := ep.b.WindowCounts()
			cfg := ep.b.Config()
			force := 0
			if ep.dirty {
				force = 1 // reconcile needs the state even at the same version
			}
			syncs[i] = syncScript.EvalSha(ctx, pipe, []string{ep.keys.state, ep.keys.window},
				s.cfg.InstanceID, total, failed, slow, ep.version,
				cfg.RollingWindow.Milliseconds(), s.cfg.TTL.Milliseconds(), maxWindowField, force)
			claims[i] = nil
			if want := s.probeDemand(ep); want > 0 {
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
	now := time.Now()
	for i, ep := range eps {
		if c := claims[i]; c != nil {
			if n, err := c.Int(); err != nil {
				s.failed(ep, "claim probe slots", err)
			} else {
				s.grantProbes(ep, n)
			}
		}
		r, err := syncs[i].Slice()
		if err != nil {
			if isConnErr(err) {
				return err
			}
			s.report(ep, "sync", err)
			continue
		}
		if len(r) < 5 {
			s.report(ep, "sync", fmt.Errorf("unexpected reply of %d items", len(r)))
			continue
		}
		counts := [5]int64{}
		ok := true
		for j := range counts {
			n, isInt := r[j].(int64)
			ok = ok && isInt && n >= 0
			counts[j] = n
		}
		if !ok {
			s.report(ep, "sync", errors.New("unexpected reply"))
			continue
		}
		if counts[3] > 0 {
			s.report(ep, "shared window", fmt.Errorf("%w: removed %d malformed or foreign entries from %s", errMalformed, counts[3], ep.keys.window))
		}
		if counts[4] == 1 {
			var hash []any
			if len(r) > 5 {
				hash, _ = r[5].([]any)
			}
			cs, present, perr := parseStateHash(hash, now)
			if perr != nil {
				s.report(ep, "shared state in "+ep.keys.state+" ignored", perr)
				present = false
			}
			s.reconcile(ep, cs, present)
		}
		if s.healthy.Load() {
			ep.b.SetRemoteWindow(counts[0], counts[1], counts[2])
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
		ep.b.SetProbeLimit(ep.claimed)
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
	n, err := claimScript.Run(ctx, s.client, []string{ep.keys.state, ep.keys.probes},
		ep.claimVer, want, cfg.HalfOpenMaxRequests, cfg.ProbeTimeout.Milliseconds()).Int()
	if err != nil {
		s.failed(ep, "claim probe slots", err)
		return
	}
	s.grantProbes(ep, n)
}

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
		cur, present, perr = parseStateHash(res.hash, time.Now())
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
		ep.b.SetRemoteWindow(0, 0, 0)
	case core.HalfOpen:
		ep.claimVer, ep.claimed = res.version, 0
	}
	if last && ep.b.State() != c.to && !s.hasPending(ep) {
		// The breaker moved on meanwhile (a remote state applied before
		// this proposal won): bring it to what the cluster now holds.
		ep.b.ApplyRemote(c.to, c.openUntil, c.reason)
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
			ep.b.SetProbeLimit(0) // before the breaker admits any probe
		}
	}
	ep.b.ApplyRemote(cs.State, cs.OpenUntil, cs.Reason)
	if cs.State == core.Closed || cs.State == core.Disabled {
		ep.b.SetRemoteWindow(0, 0, 0)
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
		c.openUntil = time.Now()
	}
	res, cur, present, err := s.tryCAS(ep, casArgs{expected: expected, from: from, to: c.to, openUntil: c.openUntil, reason: c.reason, floor: ep.version, at: c.at})
	switch {
	case err != nil:
		s.failed(ep, "push local state", err)
	case res.won:
		s.won(ep, c, res, false, true)
	case present:
		s.adopt(ep, cur, false)
	}
}

// onMessage applies a transition published by a winning instance.
func (s *RedisStore) onMessage(payload []byte) {
	name, cs, err := decodeMessage(payload, time.Now())
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

// doControl runs a cluster-wide ForceOpen, Reset or Disable.
func (s *RedisStore) doControl(r *adminRequest) error {
	verb := map[core.State]string{core.ForcedOpen: "force open", core.Closed: "reset", core.Disabled: "disable"}[r.to]
	reason := map[core.State]string{core.ForcedOpen: "forced open: " + r.reason, core.Closed: "reset", core.Disabled: "disabled"}[r.to]
	ep := s.lookup(r.endpoint)
	cause := error(ErrRedisUnavailable)
	if s.healthy.Load() {
		var floor uint64
		var b *core.Breaker
		if ep != nil {
			floor, b = ep.version, ep.b
		}
		ctx, cancel := context.WithTimeout(r.ctx, s.cfg.OpTimeout)
		res, err := s.cas(ctx, r.endpoint, newRedisKeys(s.cfg.KeyPrefix, r.endpoint), b,
			casArgs{expected: -1, to: r.to, reason: reason, floor: floor})
		cancel()
		switch {
		case err == nil && res.won:
			c := localChange{from: res.old, to: r.to, reason: reason, at: time.Now()}
			s.publish(events.ClusterStateChange{
				Type: events.TypeClusterStateChange, Endpoint: r.endpoint, OldState: res.old, NewState: r.to,
				Timestamp: c.at.UTC(), Reason: reason, Version: res.version, Instance: s.cfg.InstanceID,
			})
			if ep != nil {
				ep.version, ep.dirty = res.version, false
				ep.b.ApplyRemote(r.to, time.Time{}, reason)
				if r.to != core.ForcedOpen {
					ep.b.SetRemoteWindow(0, 0, 0)
				}
			}
			return nil
		case err == nil:
			return fmt.Errorf("bulwark: redis store: %s %q: compare-and-set lost unconditionally", verb, r.endpoint)
		case !isConnErr(err):
			return fmt.Errorf("bulwark: redis store: %s %q: %w", verb, r.endpoint, err)
		}
		s.degrade(err)
		cause = fmt.Errorf("%w: %v", ErrRedisUnavailable, err)
	}
	if ep != nil {
		// The listener queues it as a local decision, reconciled later.
		switch r.to {
		case core.ForcedOpen:
			ep.b.ForceOpen(r.reason)
		case core.Closed:
			ep.b.Reset()
		case core.Disabled:
			ep.b.Disable()
		}
	}
	return fmt.Errorf("bulwark: redis store: %s %q on this instance only: %w", verb, r.endpoint, cause)
}

// subscribe follows the transition channel, reconnecting with backoff.
// After every (re)subscription it asks the worker for a full sync, since
// pub/sub delivers nothing that was sent while it was away.
func (s *RedisStore) subscribe() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		ps := s.client.Subscribe(s.ctx, s.channel)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = ps.Close()
			return
		}
		s.pubsub = ps
		s.mu.Unlock()
		subscribed := s.receive(ps)
		_ = ps.Close()
		s.mu.Lock()
		s.pubsub = nil
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			return
		}
		if subscribed {
			backoff = 0
		}
		backoff = min(max(2*backoff, s.cfg.SyncInterval), s.cfg.MaxReconnectBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// receive reads from ps until it fails, and reports whether it was
// subscribed at some point.
func (s *RedisStore) receive(ps *redis.PubSub) (subscribed bool) {
	timeout := min(max(10*s.cfg.SyncInterval, time.Second), 30*time.Second)
	idle := 0
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, timeout)
		if err != nil {
			if s.ctx.Err() != nil || !isTimeout(err) || idle >= 2 {
				return subscribed
			}
			// Quiet channel or dead link: a ping tells them apart.
			idle++
			if ps.Ping(s.ctx) != nil {
				return subscribed
			}
			continue
		}
		idle = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed = true
				select {
				case s.resync <- struct{}{}:
				default:
				}
			}
		case *redis.Message:
			select {
			case s.remote <- []byte(m.Payload):
			default:
				// The worker is behind: drop, and let a sync catch up.
				select {
				case s.resync <- struct{}{}:
				default:
				}
			}
		}
	}
}

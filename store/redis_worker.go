package store

import (
	"context"
	"slices"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// run is the worker: every Redis call except the subscription's, and every
// change to a breaker, happens here, one at a time.
func (s *RedisStore) run() {
	defer s.wg.Done()
	tick := s.clock.NewTimer(s.cfg.SyncInterval)
	var lapse lapseTimer // the earliest shared hold's end
	defer func() {
		tick.Stop()
		lapse.arm(s.clock, time.Time{}, false)
	}()
	for {
		select {
		case <-s.closing:
			s.finish()
			return
		case <-s.wake:
			s.drain()
		case msg := <-s.remote:
			switch {
			case msg.settings:
				s.onSettingsMessage(msg.payload)
			case msg.faults:
				s.onFaultMessage(msg.payload)
			default:
				s.onMessage(msg.payload)
			}
		case e, ok := <-s.faultEvents():
			if ok {
				s.onFaultEvent(e)
			}
		case r := <-s.admin:
			r.reply <- s.doControl(r)
		case c := <-s.calls:
			c.reply <- c.f()
		case <-s.resync:
			if s.healthy.Load() {
				// Messages may have been missed: every endpoint reads
				// its versions.
				s.checkAll = true
				s.syncOrDegrade(s.loaded(), true)
				s.clusterRound(true)
			}
		case <-tick.C():
			tick = s.clock.NewTimer(s.cfg.SyncInterval)
			s.tick()
		case <-lapse.c():
			lapse.fired()
			s.checkLapses()
		}
		at, ok := s.nextLapse()
		lapse.arm(s.clock, at, ok)
	}
}

// finish is the worker's last act, once Close has begun: it proposes the
// transitions queued before, ends in the cluster the holds of this
// process's components (they stop with it), leaves the cluster's windows
// and gives back its probe slots at once rather than when they expire,
// and hands the breakers back to local judgement. Close cancels s.ctx if
// its own context ends first, which cuts the calls short.
func (s *RedisStore) finish() {
	s.drain()
	s.finishFaults()
	eps := s.endpoints()
	for _, ep := range eps {
		if s.ctx.Err() != nil || !s.healthy.Load() {
			break
		}
		s.releaseHoldHere(ep)
	}
	if len(eps) > 0 && s.healthy.Load() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
		pipe := s.client.Pipeline()
		var leaving []*redisEndpoint
		for _, ep := range eps {
			if ep.agg.started {
				leaving = append(leaving, ep)
			}
			if ep.claimed > 0 {
				pipe.HDel(ctx, ep.keys.probes, probeField(s.cfg.InstanceID))
			}
		}
		for _, b := range s.batches(leaving) {
			keys, args := s.leaveArgs(leaving, b)
			leaveScript.Eval(ctx, pipe, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			s.failed(nil, "remove this instance's window counts", err)
		}
		cancel()
	}
	s.leaveMembers()
	for _, ep := range eps {
		ep.cancel()
		ep.rep.unlimitProbes()
		ep.rep.forgetRemoteWindow()
		s.endQuota(ep)
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

// loaded returns the endpoints whose shared state drain has loaded: a
// sync round leaves the others to it, which tells the transitions made
// since they were attached from the state they had before.
func (s *RedisStore) loaded() []*redisEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*redisEndpoint, 0, len(s.eps))
	for _, ep := range s.eps {
		if !ep.fresh {
			out = append(out, ep)
		}
	}
	return out
}

func (s *RedisStore) lookup(name string) *redisEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eps[name]
}

// maxPending bounds the local transitions queued per endpoint; past it the
// oldest are dropped (the cluster state is then reconciled instead).
const maxPending = 16

// localChange is a transition made by this instance's breaker.
type localChange struct {
	from, to  events.State
	reason    string
	at        time.Time
	openUntil time.Time
	heldBy    string    // a component hold's owner (ForcedOpen only)
	holdUntil time.Time // and when it lapses
	restored  bool      // put back from saved state: reconciled, not proposed
}

// onChange runs in whatever goroutine made the transition, possibly a
// request's: it only records the change and wakes the worker.
func (s *RedisStore) onChange(ep *redisEndpoint, e events.StateChange) {
	// Under the mutex and only while open: a delivery already under way may
	// call this after Close, which must not leave the limit at zero.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if e.NewState != events.HalfOpen && s.healthy.Load() {
		// The next half-open round starts without slots, before any call
		// can see it; they are claimed from Redis.
		ep.rep.limitProbes(0)
	}
	s.mu.Unlock()
	if e.Remote {
		return // applied by this store: already the cluster's state
	}
	c := localChange{from: e.OldState, to: e.NewState, reason: truncateUTF8(e.Reason, maxReasonLen), at: e.Timestamp, restored: e.Restored}
	switch e.NewState {
	case events.Open:
		if snap := ep.b.Snapshot(); snap.State == events.Open {
			c.openUntil = snap.OpenUntil
		} else {
			c.openUntil = e.Timestamp.Add(ep.b.Config().Timeout)
		}
	case events.ForcedOpen:
		// A component's hold is shared with its owner and lease; an
		// operator's has neither.
		if snap := ep.b.Snapshot(); snap.State == events.ForcedOpen && snap.HeldBy != "" {
			c.heldBy, c.holdUntil = truncateUTF8(snap.HeldBy, maxOwnerLen), snap.HoldUntil
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(ep.pending) == maxPending {
		copy(ep.pending, ep.pending[1:])
		ep.pending = ep.pending[:maxPending-1]
	}
	ep.pending = append(ep.pending, c)
	s.queueLocked(ep)
	s.mu.Unlock()
}

// queueLocked puts ep on the worker's list; s.mu is held.
func (s *RedisStore) queueLocked(ep *redisEndpoint) {
	if !ep.queued {
		ep.queued = true
		s.ready = append(s.ready, ep)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
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
	base := make(map[*redisEndpoint]uint64)
	todo := make([]work, 0, len(ready))
	for _, ep := range ready {
		ep.queued = false
		if ep.fresh {
			ep.fresh = false
			fresh = append(fresh, ep)
			base[ep] = ep.attachTransitions
		}
		if len(ep.pending) > 0 {
			todo = append(todo, work{ep, ep.pending})
			ep.pending = nil
		}
	}
	s.mu.Unlock()
	load := fresh
	restored := make(map[*redisEndpoint]bool)
	proposing := make(map[*redisEndpoint]bool)
	for i, w := range todo {
		for j := len(w.changes) - 1; j >= 0; j-- {
			if w.changes[j].restored {
				// What came before the restore is superseded by it.
				todo[i].changes = w.changes[j+1:]
				if !slices.Contains(load, w.ep) {
					load = append(load, w.ep)
				}
				s.markRestored(w.ep)
				restored[w.ep] = true
				break
			}
		}
		proposing[w.ep] = len(todo[i].changes) > 0
	}
	for _, ep := range fresh {
		switch {
		case restored[ep]:
		case proposing[ep] || transitionCount(ep.b) != base[ep]:
			// Transitions made since the breaker was attached are news:
			// they are proposed, on the version the load finds, rather
			// than pushed silently as a state it had before (one whose
			// listener call is still on its way is queued next).
			ep.learnOnly = true
		default:
			switch ep.b.State() {
			case events.Open, events.HalfOpen, events.ForcedOpen:
				s.markRestored(ep)
			}
		}
	}
	if len(load) > 0 && s.healthy.Load() {
		s.syncOrDegrade(load, false)
	}
	for _, ep := range fresh {
		ep.learnOnly = false
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
// by its last change. That state did not come from any version this store
// has read (a file restored it, or the breaker had it before it was
// attached), so the version read before is forgotten: the next sync then
// compares dates, and a restore older than the cluster's last change loses
// even when it lands after the first sync.
func (s *RedisStore) markRestored(ep *redisEndpoint) {
	ep.dirty, ep.dirtyAt = true, ep.b.Snapshot().LastStateChange
	ep.version = 0
}

// tick runs a sync round, or while Redis is unreachable, a reconnection
// attempt when its backoff has passed.
func (s *RedisStore) tick() {
	defer s.ticks.Add(1)
	if s.healthy.Load() {
		s.syncOrDegrade(s.loaded(), true)
		s.clusterRound(false)
		return
	}
	s.reconnect()
	if !s.healthy.Load() {
		s.decayQuotas()
	}
}

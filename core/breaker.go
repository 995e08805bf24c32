package core

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// Breaker is a circuit breaker for one endpoint.
//
// A closed breaker's success path is a few atomic operations: no mutex, no
// allocation and no precise clock read. Transitions are serialised by a
// mutex off that path, and their events are delivered after it is released.
type Breaker struct {
	// Set at construction, read by every call.
	name  string
	clock Clock
	bus   *events.Bus
	cfg   atomic.Pointer[BreakerConfig] // replaced whole by Reconfigure
	// slowOn is cfg's SlowCallDuration > 0, kept beside it so that a
	// successful call need not read cfg itself.
	slowOn atomic.Bool
	_      cacheLinePad

	// Changed only by transitions.
	state     atomic.Uint32
	openUntil atomic.Int64 // nanotime at which Open lets a probe through
	holdUntil atomic.Int64 // nanotime at which a component's hold lapses; 0 if none
	rejectErr atomic.Pointer[RejectedError]
	_         cacheLinePad

	consecFail atomic.Int64
	_          cacheLinePad
	rejected   atomic.Int64
	_          cacheLinePad
	timeouts   atomic.Int64 // calls reported as Timeout; rare, so it shares a line

	// Written only while a fault experiment runs on the endpoint: the
	// failures experiments made (lifetime, within the window's counts) and
	// the calls they delayed, answered and aborted.
	injected   atomic.Int64
	faultCalls [faultKinds]atomic.Int64
	_          cacheLinePad

	// probes packs the half-open round (high bits) with the probes admitted
	// in it (low probeBits bits), so a probe is admitted only in the round
	// it was counted in.
	probes        atomic.Uint64
	probeActivity atomic.Int64 // nanotime of the last probe admitted or reported
	probeLimit    atomic.Int64 // probes admitted per round (Replication.SetProbeLimit)
	_             cacheLinePad

	window window
	remote atomic.Pointer[counts] // other instances' window, when shared

	mu          sync.Mutex
	lastChange  time.Time
	reason      string
	holder      string    // owner of a component's hold; "" for an operator's
	holdEnd     time.Time // wall-clock end of that hold
	holdHere    bool      // the hold was taken or renewed in this process
	consecSucc  int64
	reopens     int
	transitions [5][5]uint64
	pending     []events.StateChange
	delivering  bool
	listeners   []*listener
}

const (
	probeBits = 24
	probeMask = 1<<probeBits - 1
)

type listener struct{ fn func(events.StateChange) }

// NewBreaker returns a closed breaker (Disabled if cfg says so), or every
// field of cfg that is out of range as *ConfigError values.
func NewBreaker(cfg BreakerConfig) (*Breaker, error) {
	c := newChecker("core.BreakerConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newBreaker(cfg), nil
}

// newBreaker builds a breaker from a normalized configuration.
func newBreaker(cfg BreakerConfig) *Breaker {
	b := &Breaker{name: cfg.Name, clock: cfg.Clock, bus: cfg.Bus}
	b.cfg.Store(&cfg)
	b.slowOn.Store(cfg.SlowCallDuration > 0)
	now := b.clock.Nanotime()
	b.window.init(int64(cfg.RollingWindow)/int64(cfg.WindowBuckets), cfg.WindowBuckets, now)
	b.lastChange = b.clock.Now().UTC()
	b.probes.Store(1<<probeBits | probeMask) // no round open: full
	b.probeLimit.Store(int64(cfg.HalfOpenMaxRequests))
	if cfg.Disabled {
		b.state.Store(uint32(events.Disabled))
	}
	return b
}

// reconfigure applies a normalized configuration, keeping the breaker's
// state and counts. A new RollingWindow or WindowBuckets starts the window
// again (its calls stay in the lifetime counts); turning Disabled on or off
// is a transition.
func (b *Breaker) reconfigure(cfg BreakerConfig) {
	cfg.Name, cfg.Clock, cfg.Bus = b.name, b.clock, b.bus
	b.mu.Lock()
	old := b.cfg.Load()
	b.cfg.Store(&cfg)
	b.slowOn.Store(cfg.SlowCallDuration > 0)
	if cfg.RollingWindow != old.RollingWindow || cfg.WindowBuckets != old.WindowBuckets {
		b.window.resize(int64(cfg.RollingWindow)/int64(cfg.WindowBuckets), cfg.WindowBuckets, b.clock.Nanotime())
	}
	if b.probeLimit.Load() == int64(old.HalfOpenMaxRequests) {
		b.probeLimit.Store(int64(cfg.HalfOpenMaxRequests))
	}
	switch st := b.State(); {
	case cfg.Disabled && st != events.Disabled:
		b.setStateLocked(events.Disabled, "disabled by configuration")
	case !cfg.Disabled && st == events.Disabled && old.Disabled:
		b.setStateLocked(events.Closed, "enabled by configuration")
	}
	b.mu.Unlock()
	b.flush()
}

// Name returns the endpoint the breaker guards.
func (b *Breaker) Name() string { return b.name }

// Config returns the breaker's configuration with every default filled in.
func (b *Breaker) Config() BreakerConfig { return *b.cfg.Load() }

// State returns the current state.
func (b *Breaker) State() events.State { return events.State(b.state.Load()) }

// Permit is the right to make one call, given by Allow. Report its outcome
// exactly once with Report or Done.
type Permit struct {
	b     *Breaker
	start int64  // nanotime at Allow when the slow-call rule is on
	round uint64 // half-open round of a probe; 0 for an ordinary call
}

// Allow asks to make a call. It returns a Permit, or a *RejectedError
// (matching ErrOpen, ErrForcedOpen or ErrTooManyProbes) when the breaker
// refuses; a refusal is counted as rejected.
func (b *Breaker) Allow() (Permit, error) {
	if st := events.State(b.state.Load()); st == events.Closed || st == events.Disabled {
		p := Permit{b: b}
		if b.slowOn.Load() {
			p.start = b.clock.Nanotime()
		}
		return p, nil
	}
	return b.allowSlow()
}

func (b *Breaker) allowSlow() (Permit, error) {
	for {
		switch st := events.State(b.state.Load()); st {
		case events.Closed, events.Disabled:
			return Permit{b: b, start: b.clock.Nanotime()}, nil
		case events.Open:
			if b.clock.Nanotime() < b.openUntil.Load() {
				return b.reject()
			}
			b.transition(events.Open, events.HalfOpen, "open timeout elapsed")
		case events.HalfOpen:
			if p, ok := b.admitProbe(); ok {
				return p, nil
			}
			if b.State() == events.HalfOpen {
				return b.reject()
			}
		default: // ForcedOpen
			if !b.holdLapsed(b.clock.Nanotime()) {
				return b.reject()
			}
			b.endLapsedHold()
		}
	}
}

// rejection returns the error Allow would refuse a call with now, without
// counting a rejection, or nil when Allow would let one through.
func (b *Breaker) rejection() error {
	switch b.State() {
	case events.Open:
		if b.clock.Nanotime() < b.openUntil.Load() {
			return b.rejectErr.Load()
		}
	case events.ForcedOpen:
		if !b.holdLapsed(b.clock.Nanotime()) {
			return b.rejectErr.Load()
		}
	}
	return nil
}

func (b *Breaker) reject() (Permit, error) {
	b.rejected.Add(1)
	return Permit{}, b.rejectErr.Load()
}

func (b *Breaker) admitProbe() (Permit, bool) {
	now := b.clock.Nanotime()
	limit := uint64(b.probeLimit.Load())
	for {
		w := b.probes.Load()
		if w&probeMask >= limit {
			if now-b.probeActivity.Load() < int64(b.cfg.Load().ProbeTimeout) || !b.reclaimProbes(w>>probeBits, now) {
				return Permit{}, false
			}
			continue
		}
		if b.probes.CompareAndSwap(w, w+1) {
			b.probeActivity.Store(now)
			return Permit{b: b, start: now, round: w >> probeBits}, true
		}
	}
}

// reclaimProbes starts a new half-open round when the probes of round have
// not reported within ProbeTimeout; their late reports are then ignored.
func (b *Breaker) reclaimProbes(round uint64, now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.State() != events.HalfOpen || b.probes.Load()>>probeBits != round {
		return b.State() == events.HalfOpen
	}
	b.consecSucc = 0
	b.probeActivity.Store(now)
	b.probes.Store((round + 1) << probeBits)
	return true
}

// Done reports the permitted call's result, classified by the breaker's
// Classifier; its duration (for the slow-call rule) is measured from Allow.
func (p Permit) Done(err error) {
	if p.b == nil {
		return
	}
	cfg := p.b.cfg.Load()
	var d time.Duration
	if cfg.SlowCallDuration > 0 || p.round != 0 {
		d = time.Duration(p.b.clock.Nanotime() - p.start)
	}
	p.Report(cfg.Classifier(err), d)
}

// Report reports the permitted call's outcome and duration. A zero Permit
// ignores it.
func (p Permit) Report(o Outcome, d time.Duration) {
	b := p.b
	if b == nil {
		return
	}
	failed := o == Failure
	if o > Failure { // one test on the path of Success and Failure
		switch o {
		case Ignored:
			if p.round != 0 {
				b.probeResult(p.round, Ignored, true)
			}
			return
		case Timeout:
			failed = true
			b.timeouts.Add(1)
		}
	}
	slow := false
	if b.slowOn.Load() {
		// cfg again: a reconfiguration may have turned the rule off since.
		if sd := b.cfg.Load().SlowCallDuration; sd > 0 {
			slow = d >= sd
		}
	}
	now := b.clock.Nanotime()
	b.window.record(now, failed, slow)
	if p.round != 0 {
		b.probeResult(p.round, o, true)
		return
	}
	if events.State(b.state.Load()) != events.Closed {
		return
	}
	if !failed {
		if b.consecFail.Load() != 0 {
			b.consecFail.Store(0)
		}
		if slow {
			b.checkRates()
		}
		return
	}
	if n := b.consecFail.Add(1); n >= int64(b.cfg.Load().FailureThreshold) {
		b.transition(events.Closed, events.Open, fmt.Sprintf("failure threshold exceeded: %d consecutive failures", n))
		return
	}
	b.checkRates()
}

// checkRates opens a closed breaker whose window, with any remote share,
// crossed the failure-rate or slow-call-rate threshold.
func (b *Breaker) checkRates() {
	cfg := b.cfg.Load()
	c := b.clusterWindow(b.window.counts())
	if c.total < int64(cfg.MinRequestsForRate) {
		return
	}
	if rate := percent(c.failed, c.total); rate >= cfg.FailureRateThreshold {
		b.transition(events.Closed, events.Open, fmt.Sprintf("failure rate %.1f%% over %d calls reached the %.4g%% threshold", rate, c.total, cfg.FailureRateThreshold))
	} else if rate := percent(c.slow, c.total); cfg.SlowCallDuration > 0 && rate >= cfg.SlowCallRateThreshold {
		b.transition(events.Closed, events.Open, fmt.Sprintf("slow-call rate %.1f%% over %d calls reached the %.4g%% threshold (slow: %s or more)", rate, c.total, cfg.SlowCallRateThreshold, cfg.SlowCallDuration))
	}
}

// clusterWindow adds the other instances' share, if any, to local window
// counts.
func (b *Breaker) clusterWindow(c counts) counts {
	if r := b.remote.Load(); r != nil {
		return c.plus(*r)
	}
	return c
}

func percent(part, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return float64(part) * 100 / float64(total)
}

// probeResult applies a half-open result of round. slot says the result
// holds a probe slot (a manual record does not).
func (b *Breaker) probeResult(round uint64, o Outcome, slot bool) {
	b.mu.Lock()
	if b.State() != events.HalfOpen || b.probes.Load()>>probeBits != round {
		b.mu.Unlock()
		return
	}
	b.probeActivity.Store(b.clock.Nanotime())
	switch o {
	case Ignored:
		if slot {
			b.probes.Add(^uint64(0)) // hand the slot back
		}
	case Failure, Timeout:
		b.setStateLocked(events.Open, "probe failed in half-open")
	case Success:
		b.consecSucc++
		if b.consecSucc >= int64(b.cfg.Load().SuccessThreshold) {
			b.setStateLocked(events.Closed, fmt.Sprintf("%d probes succeeded in half-open", b.consecSucc))
		}
	}
	b.mu.Unlock()
	b.flush()
}

// Execute runs fn if the breaker allows it and records its outcome. A
// rejected call returns the *RejectedError without running fn; a context
// already done returns its error. If fn panics, the call is recorded as a
// failure and the panic continues.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.Allow()
	if err != nil {
		return err
	}
	return p.run(ctx, fn)
}

// run calls fn under the permit and reports its outcome; a panic in fn is
// reported as a failure and goes on up with its stack intact.
func (p Permit) run(ctx context.Context, fn func(context.Context) error) error {
	reported := false
	defer func() {
		if !reported {
			p.Report(Failure, 0)
		}
	}()
	err := fn(ctx)
	reported = true
	p.Done(err)
	return err
}

// RecordSuccess records a successful call made without a Permit. In
// HalfOpen it counts toward closing.
func (b *Breaker) RecordSuccess() { b.record(Success, false) }

// RecordFailure records a failed call made without a Permit. In HalfOpen it
// reopens the breaker.
func (b *Breaker) RecordFailure() { b.record(Failure, false) }

// record records a call made without a Permit; injected marks the answer of
// a fault experiment. An injected success is no probe: in HalfOpen it is
// left out, so that only real calls can close the breaker.
func (b *Breaker) record(o Outcome, injected bool) {
	if b.State() == events.HalfOpen {
		if injected && !o.failed() {
			return
		}
		b.window.record(b.clock.Nanotime(), o.failed(), false)
		if injected {
			b.injected.Add(1)
		}
		b.probeResult(b.probes.Load()>>probeBits, o, false)
		return
	}
	if injected && o.failed() {
		b.injected.Add(1)
	}
	Permit{b: b}.Report(o, 0)
}

// RetryAfter returns how long until an Open breaker lets a probe through,
// by the clock's coarse reading; 0 when it is not Open.
func (b *Breaker) RetryAfter() time.Duration {
	if b.State() != events.Open {
		return 0
	}
	return time.Duration(max(b.openUntil.Load()-b.clock.Nanotime(), 0))
}

// Trip opens a Closed or HalfOpen breaker as if its thresholds had been
// crossed: it recovers through HalfOpen as usual. It reports whether the
// breaker opened.
func (b *Breaker) Trip(reason string) bool {
	b.mu.Lock()
	st := b.State()
	ok := st == events.Closed || st == events.HalfOpen
	if ok {
		b.setStateLocked(events.Open, reason)
	}
	b.mu.Unlock()
	b.flush()
	return ok
}

// ForceOpen holds the breaker open on an operator's behalf, rejecting every
// call, until Release, Reset or Disable: unlike a component's Hold it never
// lapses by itself. It takes over a component's hold. Forcing open a
// breaker an operator already holds open changes nothing.
func (b *Breaker) ForceOpen(reason string) {
	b.mu.Lock()
	if b.State() != events.ForcedOpen || b.holder != "" {
		b.setStateLocked(events.ForcedOpen, "forced open: "+reason)
	}
	b.mu.Unlock()
	b.flush()
}

// Release moves a ForcedOpen breaker, whoever holds it, to HalfOpen, so that
// probes decide whether it closes. It reports whether the breaker was
// ForcedOpen.
func (b *Breaker) Release(reason string) bool {
	return b.transition(events.ForcedOpen, events.HalfOpen, "released: "+reason)
}

// Reset closes the breaker and clears its window and consecutive counts.
// Lifetime counts are kept, so exported counters never go backwards.
// Resetting a Closed breaker clears its window without a transition.
func (b *Breaker) Reset() {
	b.mu.Lock()
	if b.State() == events.Closed {
		b.consecFail.Store(0)
		b.window.reset(b.clock.Nanotime())
	} else {
		b.setStateLocked(events.Closed, "reset")
	}
	b.mu.Unlock()
	b.flush()
}

// Disable turns the breaker off: every call passes and nothing trips it
// until Reset. Disabling a disabled breaker changes nothing.
func (b *Breaker) Disable() {
	b.mu.Lock()
	if b.State() != events.Disabled {
		b.setStateLocked(events.Disabled, "disabled")
	}
	b.mu.Unlock()
	b.flush()
}

// Hold holds the breaker open on behalf of a component, such as a health
// check, for lease: the hold lapses by itself unless the component calls
// Hold again before then, so that a component that stops (or a process
// that dies) never leaves the breaker held by nobody. A lapsed or released
// hold leaves the breaker HalfOpen, so that probes decide whether it
// closes.
//
// owner names the component, not the process: a component that starts
// again under the same name (after a restart, say) renews its predecessor's
// hold and may Unhold it. Hold reports whether owner holds the breaker
// now; it fails while an operator holds it (ForceOpen), while it is
// Disabled, or while another owner's hold lasts. Renewing emits no event.
func (b *Breaker) Hold(owner, reason string, lease time.Duration) bool {
	if owner == "" || lease <= 0 {
		return false
	}
	now, wall := b.clock.Nanotime(), b.clock.Now()
	b.mu.Lock()
	st := b.State()
	held := st == events.ForcedOpen && !b.holdLapsed(now)
	switch {
	case st == events.Disabled, held && b.holder != owner:
		b.mu.Unlock()
		return false
	case st == events.ForcedOpen && b.holder == owner:
		// Renewed, or renewed late after a lapse nobody acted on: the
		// breaker never left the owner's hold, so nothing changes.
	case !held:
		b.setStateLocked(events.ForcedOpen, "held by "+owner+": "+reason)
	}
	b.setHoldLocked(owner, now+int64(lease), wall.Add(lease))
	b.holdHere = true
	b.mu.Unlock()
	b.flush()
	return true
}

// setHoldLocked makes a ForcedOpen breaker a component's hold, lapsing at
// nanotime until (wall-clock end); b.mu is held.
func (b *Breaker) setHoldLocked(owner string, until int64, end time.Time) {
	b.holder, b.holdEnd = owner, end.UTC()
	b.holdUntil.Store(max(until, 1))
}

// Unhold ends owner's hold, moving the breaker to HalfOpen, and reports
// whether owner held it.
func (b *Breaker) Unhold(owner, reason string) bool {
	b.mu.Lock()
	ok := owner != "" && b.State() == events.ForcedOpen && b.holder == owner
	if ok {
		b.setStateLocked(events.HalfOpen, "released by "+owner+": "+reason)
	}
	b.mu.Unlock()
	b.flush()
	return ok
}

// holdLapsed reports whether a component's hold has run out at now.
func (b *Breaker) holdLapsed(now int64) bool {
	until := b.holdUntil.Load()
	return until != 0 && now >= until
}

// endLapsedHold moves a breaker whose component hold lapsed to HalfOpen.
func (b *Breaker) endLapsedHold() {
	b.mu.Lock()
	if b.State() == events.ForcedOpen && b.holdLapsed(b.clock.Nanotime()) {
		b.setStateLocked(events.HalfOpen, "hold by "+b.holder+" lapsed")
	}
	b.mu.Unlock()
	b.flush()
}

// transition moves the breaker from one state to another if it is still in
// from, and reports whether it did.
func (b *Breaker) transition(from, to events.State, reason string) bool {
	b.mu.Lock()
	ok := b.State() == from
	if ok {
		b.setStateLocked(to, reason)
	}
	b.mu.Unlock()
	if ok {
		b.flush()
	}
	return ok
}

// setStateLocked performs a transition; b.mu is held. The event is queued
// and delivered by flush once the mutex is released. It ends any hold: a
// component taking one sets it after.
func (b *Breaker) setStateLocked(to events.State, reason string) {
	from := b.State()
	now := b.clock.Nanotime()
	wall := b.clock.Now().UTC()
	cfg := b.cfg.Load()
	if from == events.HalfOpen {
		// Close the round: late probes find it full and stale.
		b.probes.Store((b.probes.Load()>>probeBits+1)<<probeBits | probeMask)
	}
	b.holder, b.holdEnd, b.holdHere = "", time.Time{}, false
	b.holdUntil.Store(0)
	switch to {
	case events.Open:
		d := b.openDuration(from, cfg)
		b.openUntil.Store(now + int64(d))
		b.rejectErr.Store(&RejectedError{Endpoint: b.name, Until: wall.Add(d), kind: ErrOpen, clock: b.clock})
	case events.HalfOpen:
		b.consecSucc = 0
		b.probeActivity.Store(now)
		b.probes.Store((b.probes.Load()>>probeBits + 1) << probeBits)
		b.rejectErr.Store(&RejectedError{Endpoint: b.name, kind: ErrTooManyProbes, clock: b.clock})
	case events.ForcedOpen:
		b.rejectErr.Store(&RejectedError{Endpoint: b.name, kind: ErrForcedOpen, clock: b.clock})
	case events.Closed, events.Disabled:
		b.reopens = 0
		b.window.reset(now)
	}
	if to != events.HalfOpen {
		b.consecSucc = 0 // counted only within a half-open round
	}
	b.consecFail.Store(0)
	b.state.Store(uint32(to))
	b.lastChange = wall
	b.reason = reason
	b.transitions[from][to]++
	b.pending = append(b.pending, events.StateChange{
		Endpoint: b.name, OldState: from, NewState: to, Timestamp: wall, Reason: reason,
	})
}

// openDuration is Timeout, grown by OpenBackoffMultiplier for each probe
// failure in a row, up to MaxOpenDuration.
func (b *Breaker) openDuration(from events.State, cfg *BreakerConfig) time.Duration {
	if from != events.HalfOpen {
		b.reopens = 0
		return cfg.Timeout
	}
	b.reopens++
	d := float64(cfg.Timeout) * math.Pow(cfg.OpenBackoffMultiplier, float64(b.reopens))
	return time.Duration(min(d, float64(cfg.MaxOpenDuration)))
}

// flush delivers queued events in order, outside the mutex. A listener that
// causes a transition queues it, and the loop here delivers it next. A
// listener that panics does not stop delivery: every queued event still
// reaches the others and the bus, and the first panic goes on up after.
func (b *Breaker) flush() {
	var panicked any
	for {
		b.mu.Lock()
		if b.delivering || len(b.pending) == 0 {
			b.mu.Unlock()
			break
		}
		b.delivering = true
		batch := b.pending
		b.pending = nil
		ls := b.listeners
		b.mu.Unlock()
		for _, e := range batch {
			for _, l := range ls {
				if p := callListener(l.fn, e); p != nil && panicked == nil {
					panicked = p
				}
			}
			if b.bus != nil {
				b.bus.Publish(e)
			}
		}
		b.mu.Lock()
		b.delivering = false
		b.mu.Unlock()
	}
	if panicked != nil {
		panic(panicked)
	}
}

// callListener runs one listener and returns what it panicked with, if it
// did.
func callListener(fn func(events.StateChange), e events.StateChange) (panicked any) {
	defer func() { panicked = recover() }()
	fn(e)
	return nil
}

// OnStateChange calls fn after every transition, in order, outside any
// lock. Any number of listeners may be added; cancel removes this one.
func (b *Breaker) OnStateChange(fn func(events.StateChange)) (cancel func()) {
	l := &listener{fn: fn}
	b.mu.Lock()
	b.listeners = append(b.listeners[:len(b.listeners):len(b.listeners)], l)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, x := range b.listeners {
			if x == l {
				next := make([]*listener, 0, len(b.listeners)-1)
				b.listeners = append(append(next, b.listeners[:i]...), b.listeners[i+1:]...)
				return
			}
		}
	}
}

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
	name   string
	cfg    Config
	clock  Clock
	bus    *events.Bus
	slowOn bool
	_      cacheLinePad

	// Changed only by transitions.
	state     atomic.Uint32
	openUntil atomic.Int64 // nanotime at which Open lets a probe through
	rejectErr atomic.Pointer[RejectedError]
	_         cacheLinePad

	consecFail atomic.Int64
	_          cacheLinePad
	rejected   atomic.Int64
	_          cacheLinePad

	// probes packs the half-open round (high bits) with the probes admitted
	// in it (low probeBits bits), so a probe is admitted only in the round
	// it was counted in.
	probes        atomic.Uint64
	probeActivity atomic.Int64 // nanotime of the last probe admitted or reported
	probeLimit    atomic.Int64 // probes admitted per round (SetProbeLimit)
	_             cacheLinePad

	window   window
	remote   atomic.Pointer[counts] // other instances' window, when shared
	duration Histogram              // ObserveDuration; written by middleware

	mu          sync.Mutex
	lastChange  time.Time
	reason      string
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

// NewBreaker returns a closed breaker for endpoint, or the configuration's
// validation error.
func NewBreaker(endpoint string, cfg Config, opts ...Option) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := applyOptions(opts)
	b := &Breaker{name: endpoint, cfg: cfg.withDefaults(), clock: d.clock, bus: d.bus}
	b.slowOn = b.cfg.SlowCallDuration > 0
	now := b.clock.Nanotime()
	b.window.init(int64(b.cfg.RollingWindow)/int64(b.cfg.WindowBuckets), b.cfg.WindowBuckets, now)
	b.lastChange = b.clock.Now().UTC()
	b.probes.Store(1<<probeBits | probeMask) // no round open: full
	b.probeLimit.Store(int64(b.cfg.HalfOpenMaxRequests))
	if b.cfg.Disabled {
		b.state.Store(uint32(Disabled))
	}
	return b, nil
}

// Name returns the endpoint the breaker guards.
func (b *Breaker) Name() string { return b.name }

// Config returns the breaker's configuration with every default filled in.
func (b *Breaker) Config() Config { return b.cfg }

// State returns the current state.
func (b *Breaker) State() State { return State(b.state.Load()) }

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
	if st := State(b.state.Load()); st == Closed || st == Disabled {
		p := Permit{b: b}
		if b.slowOn {
			p.start = b.clock.Nanotime()
		}
		return p, nil
	}
	return b.allowSlow()
}

func (b *Breaker) allowSlow() (Permit, error) {
	for {
		switch st := State(b.state.Load()); st {
		case Closed, Disabled:
			return Permit{b: b, start: b.clock.Nanotime()}, nil
		case Open:
			if b.clock.Nanotime() < b.openUntil.Load() {
				return b.reject()
			}
			b.transition(Open, HalfOpen, "open timeout elapsed")
		case HalfOpen:
			if p, ok := b.admitProbe(); ok {
				return p, nil
			}
			if b.State() == HalfOpen {
				return b.reject()
			}
		default: // ForcedOpen
			return b.reject()
		}
	}
}

// rejection returns the error Allow would refuse a call with now, without
// counting a rejection, or nil when Allow would let one through.
func (b *Breaker) rejection() error {
	switch b.State() {
	case Open:
		if b.clock.Nanotime() < b.openUntil.Load() {
			return b.rejectErr.Load()
		}
	case ForcedOpen:
		return b.rejectErr.Load()
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
			if now-b.probeActivity.Load() < int64(b.cfg.ProbeTimeout) || !b.reclaimProbes(w>>probeBits, now) {
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
	if b.State() != HalfOpen || b.probes.Load()>>probeBits != round {
		return b.State() == HalfOpen
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
	var d time.Duration
	if p.b.slowOn {
		d = time.Duration(p.b.clock.Nanotime() - p.start)
	}
	p.Report(p.b.cfg.Classifier(err), d)
}

// Report reports the permitted call's outcome and duration. A zero Permit
// ignores it.
func (p Permit) Report(o Outcome, d time.Duration) {
	b := p.b
	if b == nil {
		return
	}
	if o == Ignored {
		if p.round != 0 {
			b.probeResult(p.round, Ignored, true)
		}
		return
	}
	failed := o == Failure
	slow := b.slowOn && d >= b.cfg.SlowCallDuration
	now := b.clock.Nanotime()
	b.window.record(now, failed, slow)
	if p.round != 0 {
		b.probeResult(p.round, o, true)
		return
	}
	if State(b.state.Load()) != Closed {
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
	if n := b.consecFail.Add(1); n >= int64(b.cfg.FailureThreshold) {
		b.transition(Closed, Open, fmt.Sprintf("failure threshold exceeded: %d consecutive failures", n))
		return
	}
	b.checkRates()
}

// checkRates opens a closed breaker whose window, with any remote share,
// crossed the failure-rate or slow-call-rate threshold.
func (b *Breaker) checkRates() {
	c := b.clusterWindow(b.window.counts())
	if c.total < int64(b.cfg.MinRequestsForRate) {
		return
	}
	if rate := percent(c.failed, c.total); rate >= b.cfg.FailureRateThreshold {
		b.transition(Closed, Open, fmt.Sprintf("failure rate %.1f%% over %d calls reached the %.4g%% threshold", rate, c.total, b.cfg.FailureRateThreshold))
	} else if rate := percent(c.slow, c.total); b.slowOn && rate >= b.cfg.SlowCallRateThreshold {
		b.transition(Closed, Open, fmt.Sprintf("slow-call rate %.1f%% over %d calls reached the %.4g%% threshold (slow: %s or more)", rate, c.total, b.cfg.SlowCallRateThreshold, b.cfg.SlowCallDuration))
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
	if b.State() != HalfOpen || b.probes.Load()>>probeBits != round {
		b.mu.Unlock()
		return
	}
	b.probeActivity.Store(b.clock.Nanotime())
	switch o {
	case Ignored:
		if slot {
			b.probes.Add(^uint64(0)) // hand the slot back
		}
	case Failure:
		b.setStateLocked(Open, "probe failed in half-open")
	case Success:
		b.consecSucc++
		if b.consecSucc >= int64(b.cfg.SuccessThreshold) {
			b.setStateLocked(Closed, fmt.Sprintf("%d probes succeeded in half-open", b.consecSucc))
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

// RecordSuccess records a successful call made without a Permit (the
// seed's record_success). In HalfOpen it counts toward closing.
func (b *Breaker) RecordSuccess() { b.record(Success) }

// RecordFailure records a failed call made without a Permit (the seed's
// record_failure). In HalfOpen it reopens the breaker.
func (b *Breaker) RecordFailure() { b.record(Failure) }

func (b *Breaker) record(o Outcome) {
	if b.State() == HalfOpen {
		b.window.record(b.clock.Nanotime(), o == Failure, false)
		b.probeResult(b.probes.Load()>>probeBits, o, false)
		return
	}
	Permit{b: b}.Report(o, 0)
}

// ObserveDuration adds a call's duration to the breaker's latency histogram
// (circuit_breaker_request_duration_seconds). The HTTP middleware and
// transport call it once per request; it takes no lock and allocates
// nothing.
func (b *Breaker) ObserveDuration(d time.Duration) { b.duration.Observe(d) }

// Durations returns the latency histogram fed by ObserveDuration.
func (b *Breaker) Durations() HistogramSnapshot { return b.duration.Snapshot() }

// RetryAfter returns how long until an Open breaker lets a probe through,
// by the clock's coarse reading; 0 when it is not Open.
func (b *Breaker) RetryAfter() time.Duration {
	if b.State() != Open {
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
	ok := st == Closed || st == HalfOpen
	if ok {
		b.setStateLocked(Open, reason)
	}
	b.mu.Unlock()
	b.flush()
	return ok
}

// ForceOpen holds the breaker open, rejecting every call, until Release,
// Reset or Disable.
func (b *Breaker) ForceOpen(reason string) { b.force(ForcedOpen, "forced open: "+reason) }

// Release moves a ForcedOpen breaker to HalfOpen, so that probes decide
// whether it closes. It reports whether the breaker was ForcedOpen.
func (b *Breaker) Release(reason string) bool {
	return b.transition(ForcedOpen, HalfOpen, "released: "+reason)
}

// Reset closes the breaker and clears its window and consecutive counts.
// Lifetime counts are kept, so exported counters never go backwards.
func (b *Breaker) Reset() { b.force(Closed, "reset") }

// Disable turns the breaker off: every call passes and nothing trips it
// until Reset.
func (b *Breaker) Disable() { b.force(Disabled, "disabled") }

func (b *Breaker) force(to State, reason string) {
	b.mu.Lock()
	b.setStateLocked(to, reason)
	b.mu.Unlock()
	b.flush()
}

// transition moves the breaker from one state to another if it is still in
// from, and reports whether it did.
func (b *Breaker) transition(from, to State, reason string) bool {
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
// and delivered by flush once the mutex is released.
func (b *Breaker) setStateLocked(to State, reason string) {
	from := b.State()
	now := b.clock.Nanotime()
	wall := b.clock.Now().UTC()
	if from == HalfOpen {
		// Close the round: late probes find it full and stale.
		b.probes.Store((b.probes.Load()>>probeBits+1)<<probeBits | probeMask)
	}
	switch to {
	case Open:
		d := b.openDuration(from)
		b.openUntil.Store(now + int64(d))
		b.rejectErr.Store(&RejectedError{Endpoint: b.name, State: Open, Until: wall.Add(d), kind: ErrOpen, clock: b.clock})
	case HalfOpen:
		b.consecSucc = 0
		b.probeActivity.Store(now)
		b.probes.Store((b.probes.Load()>>probeBits + 1) << probeBits)
		b.rejectErr.Store(&RejectedError{Endpoint: b.name, State: HalfOpen, kind: ErrTooManyProbes, clock: b.clock})
	case ForcedOpen:
		b.rejectErr.Store(&RejectedError{Endpoint: b.name, State: ForcedOpen, kind: ErrForcedOpen, clock: b.clock})
	case Closed, Disabled:
		b.reopens = 0
		b.window.reset(now)
	}
	if to != HalfOpen {
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
func (b *Breaker) openDuration(from State) time.Duration {
	if from != HalfOpen {
		b.reopens = 0
		return b.cfg.Timeout
	}
	b.reopens++
	d := float64(b.cfg.Timeout) * math.Pow(b.cfg.OpenBackoffMultiplier, float64(b.reopens))
	return time.Duration(min(d, float64(b.cfg.MaxOpenDuration)))
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

package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// Breakers yields the breaker of an endpoint. *core.Manager satisfies it.
type Breakers interface {
	Breaker(endpoint string) (*core.Breaker, error)
}

// Defaults and limits of Options.
const (
	DefaultInterval         = 30 * time.Second
	DefaultFailureThreshold = 3
	DefaultSuccessThreshold = 2
	DefaultHistory          = 50
	MaxHistory              = 10_000
	MaxThreshold            = 1000
	MinInterval             = time.Millisecond
)

// Options says how one endpoint is monitored. The zero value takes every
// default.
type Options struct {
	// Interval is the time between the end of one check and the start of
	// the next. Default DefaultInterval; at least MinInterval.
	Interval time.Duration
	// FailureThreshold is how many failed checks in a row force the
	// breaker open. Default 3; 1 to MaxThreshold.
	FailureThreshold int
	// SuccessThreshold is how many passed checks in a row release a breaker
	// the monitor forced open. Default 2; 1 to MaxThreshold.
	SuccessThreshold int
	// Timeout, when set, bounds each check on top of the probe's own
	// timeout (the shorter wins).
	Timeout time.Duration
	// History is how many recent results Status keeps. Default 50; 1 to
	// MaxHistory.
	History int
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Interval < 0 || (o.Interval > 0 && o.Interval < MinInterval):
		return o, fmt.Errorf("health: Options.Interval = %v: want 0 (default %v) or at least %v", o.Interval, DefaultInterval, MinInterval)
	case o.FailureThreshold < 0 || o.FailureThreshold > MaxThreshold:
		return o, fmt.Errorf("health: Options.FailureThreshold = %d: want 0 (default %d) or 1..%d", o.FailureThreshold, DefaultFailureThreshold, MaxThreshold)
	case o.SuccessThreshold < 0 || o.SuccessThreshold > MaxThreshold:
		return o, fmt.Errorf("health: Options.SuccessThreshold = %d: want 0 (default %d) or 1..%d", o.SuccessThreshold, DefaultSuccessThreshold, MaxThreshold)
	case o.Timeout < 0:
		return o, fmt.Errorf("health: Options.Timeout = %v: want >= 0", o.Timeout)
	case o.History < 0 || o.History > MaxHistory:
		return o, fmt.Errorf("health: Options.History = %d: want 0 (default %d) or 1..%d", o.History, DefaultHistory, MaxHistory)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.FailureThreshold == 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.SuccessThreshold == 0 {
		o.SuccessThreshold = DefaultSuccessThreshold
	}
	if o.History == 0 {
		o.History = DefaultHistory
	}
	return o, nil
}

// Errors returned by Monitor.
var (
	ErrAlreadyMonitored = errors.New("health: endpoint is already monitored")
	ErrMonitorClosed    = errors.New("health: monitor is closed")
)

// Status is what a Monitor knows about one monitored endpoint.
type Status struct {
	Endpoint string `json:"endpoint"`
	Probe    string `json:"probe"`
	// Healthy is the last result's OK (false before the first check).
	Healthy bool `json:"healthy"`
	// Last is the latest result (zero before the first check).
	Last                 Result `json:"last"`
	ConsecutiveFailures  int    `json:"consecutive_failures"`
	ConsecutiveSuccesses int    `json:"consecutive_successes"`
	Checks               uint64 `json:"checks"`
	Failures             uint64 `json:"failures"`
	// ForcedOpen reports whether the monitor holds the breaker open now.
	ForcedOpen bool `json:"forced_open"`
	// IntervalMS and the thresholds are the options in force.
	IntervalMS       int64 `json:"interval_ms"`
	FailureThreshold int   `json:"failure_threshold"`
	SuccessThreshold int   `json:"success_threshold"`
	// History holds the latest results, oldest first.
	History []Result `json:"history"`
}

// Monitor runs health probes on a schedule and feeds their verdicts to
// circuit breakers (the seed's HealthCheckIntegration):
//
//   - FailureThreshold failed checks in a row force the endpoint's breaker
//     open (ForceOpen), with a reason naming the probe and the last error;
//   - SuccessThreshold passed checks in a row then release it (Release),
//     which moves it to HalfOpen, never straight to Closed: real traffic
//     decides whether it closes.
//
// The monitor only releases a hold it placed. A breaker someone else forced
// open or disabled is left alone, and if anyone changes the breaker's state
// after the monitor forced it open, the monitor considers its hold gone.
// Stop and Close release a hold the monitor still has, so a stopped monitor
// never leaves a breaker forced open.
//
// Each endpoint has one goroutine; Stop and Close end it and wait for it.
// Checks are paced by the monitor's clock, so a test can drive them with a
// core.FakeClock.
type Monitor struct {
	breakers Breakers
	clock    core.Clock

	mu     sync.Mutex
	closed bool
	watch  map[string]*watch
}

// MonitorOption configures a Monitor.
type MonitorOption func(*Monitor)

// WithClock paces checks and stamps results with c instead of
// core.SystemClock.
func WithClock(c core.Clock) MonitorOption {
	return func(m *Monitor) {
		if c != nil {
			m.clock = c
		}
	}
}

// NewMonitor returns a Monitor that drives the breakers of b.
func NewMonitor(b Breakers, opts ...MonitorOption) (*Monitor, error) {
	if b == nil {
		return nil, errors.New("health: NewMonitor: Breakers is nil")
	}
	m := &Monitor{breakers: b, watch: make(map[string]*watch)}
	for _, o := range opts {
		if o != nil {
			o(m)
		}
	}
	if m.clock == nil {
		m.clock = core.SystemClock()
	}
	return m, nil
}

// Start monitors endpoint with p every interval and the default thresholds
// (the seed's start_monitoring). The first check runs at once.
func (m *Monitor) Start(endpoint string, p Probe, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("health: Start interval = %v: want > 0", interval)
	}
	return m.StartWithOptions(endpoint, p, Options{Interval: interval})
}

// StartWithOptions monitors endpoint with p as o says. It fails when the
// endpoint is already monitored (Stop it first), the options are out of
// range, or the breakers refuse the endpoint.
func (m *Monitor) StartWithOptions(endpoint string, p Probe, o Options) error {
	if p == nil {
		return errors.New("health: Start: probe is nil")
	}
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	b, err := m.breakers.Breaker(endpoint)
	if err != nil {
		return fmt.Errorf("health: breaker for %q: %w", endpoint, err)
	}
	if b == nil {
		return fmt.Errorf("health: no breaker for %q", endpoint)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrMonitorClosed
	}
	if _, ok := m.watch[endpoint]; ok {
		return fmt.Errorf("%w: %q", ErrAlreadyMonitored, endpoint)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{
		endpoint: endpoint, probe: p, opts: o, breaker: b, clock: m.clock,
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		history: make([]Result, 0, o.History),
	}
	m.watch[endpoint] = w
	go w.run()
	return nil
}

// Stop ends the monitoring of endpoint, waits for its goroutine and
// releases the breaker if the monitor holds it open. It reports whether the
// endpoint was monitored.
func (m *Monitor) Stop(endpoint string) bool {
	m.mu.Lock()
	w, ok := m.watch[endpoint]
	delete(m.watch, endpoint)
	m.mu.Unlock()
	if ok {
		w.stop()
	}
	return ok
}

// Close stops every endpoint, as Stop does, and refuses later Starts.
func (m *Monitor) Close() {
	m.mu.Lock()
	m.closed = true
	ws := make([]*watch, 0, len(m.watch))
	for _, w := range m.watch {
		ws = append(ws, w)
	}
	clear(m.watch)
	m.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		w.stop()
	}
}

// Status returns the state of one monitored endpoint.
func (m *Monitor) Status(endpoint string) (Status, bool) {
	m.mu.Lock()
	w, ok := m.watch[endpoint]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	return w.status(), true
}

// Statuses returns the state of every monitored endpoint, sorted by
// endpoint.
func (m *Monitor) Statuses() []Status {
	m.mu.Lock()
	ws := make([]*watch, 0, len(m.watch))
	for _, w := range m.watch {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.status())
	}
	slices.SortFunc(out, func(a, b Status) int {
		switch {
		case a.Endpoint < b.Endpoint:
			return -1
		case a.Endpoint > b.Endpoint:
			return 1
		}
		return 0
	})
	return out
}

// watch is one monitored endpoint.
type watch struct {
	endpoint string
	probe    Probe
	opts     Options
	breaker  *core.Breaker
	clock    core.Clock

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	last      Result
	consFail  int
	consOK    int
	checks    uint64
	failures  uint64
	history   []Result // ring once full
	next      int
	forced    bool   // the monitor holds the breaker open
	forcedBy  string // the reason the breaker shows while the hold is ours
	forcedGen uint64 // the breaker's transition count right after forcing
}

func (w *watch) stop() {
	w.cancel()
	<-w.done
	w.release(fmt.Sprintf("health monitoring with %s stopped", w.probe.Name()))
}

func (w *watch) run() {
	defer close(w.done)
	for {
		w.check()
		t := w.clock.NewTimer(w.opts.Interval)
		select {
		case <-t.C():
		case <-w.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (w *watch) check() {
	ctx := w.ctx
	if w.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.opts.Timeout)
		defer cancel()
	}
	started := w.clock.Now()
	r := w.probe.Check(ctx)
	if w.ctx.Err() != nil {
		return // stopping: the result says nothing about the dependency
	}
	r.Time = started
	if r.Probe == "" {
		r.Probe = w.probe.Name()
	}
	if !r.OK && r.Err == nil {
		r.Err = errors.New("check failed")
	}
	w.record(r)
}

// record files r and then, outside the lock (a breaker calls its
// listeners synchronously, and one may well ask for Status), forces or
// releases the breaker.
func (w *watch) record(r Result) {
	w.mu.Lock()
	w.last = r
	w.checks++
	if len(w.history) < w.opts.History {
		w.history = append(w.history, r)
	} else {
		w.history[w.next] = r
		w.next = (w.next + 1) % len(w.history)
	}
	var force, release string
	if r.OK {
		w.consOK++
		w.consFail = 0
		if w.forced && w.consOK >= w.opts.SuccessThreshold {
			release = fmt.Sprintf("health check %s passed %d times", w.probe.Name(), w.consOK)
		}
	} else {
		w.failures++
		w.consFail++
		w.consOK = 0
		if w.forced && !w.stillOursLocked() {
			w.forced = false
		}
		if !w.forced && w.consFail >= w.opts.FailureThreshold {
			force = fmt.Sprintf("health check %s failed %d times: %v", w.probe.Name(), w.consFail, r.Err)
		}
	}
	w.mu.Unlock()
	switch {
	case force != "":
		w.force(force)
	case release != "":
		w.release(release)
	}
}

// force forces the breaker open unless someone else already holds it open
// or disabled it, and remembers the hold as the monitor's.
func (w *watch) force(reason string) {
	switch w.breaker.State() {
	case core.ForcedOpen, core.Disabled:
		return // a person's decision: leave it
	}
	w.breaker.ForceOpen(reason)
	s := w.breaker.Snapshot()
	// ForceOpen prefixes the reason; compare by suffix so the check
	// doesn't depend on the exact prefix.
	if s.State == core.ForcedOpen && strings.HasSuffix(s.Reason, reason) {
		w.mu.Lock()
		w.forced, w.forcedBy, w.forcedGen = true, s.Reason, generation(s)
		w.mu.Unlock()
	}
}

// stillOursLocked reports whether the breaker is still in the ForcedOpen
// state the monitor put it in, with no transition since.
func (w *watch) stillOursLocked() bool {
	s := w.breaker.Snapshot()
	return s.State == core.ForcedOpen && s.Reason == w.forcedBy && generation(s) == w.forcedGen
}

// release gives up the monitor's hold, releasing the breaker to HalfOpen if
// the hold is still in place.
func (w *watch) release(reason string) {
	w.mu.Lock()
	ours := w.forced && w.stillOursLocked()
	w.forced, w.forcedBy, w.forcedGen = false, "", 0
	w.mu.Unlock()
	if ours {
		w.breaker.Release(reason)
	}
}

func (w *watch) status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.forced && !w.stillOursLocked() {
		w.forced = false
	}
	h := make([]Result, 0, len(w.history))
	h = append(h, w.history[w.next:]...)
	h = append(h, w.history[:w.next]...)
	return Status{
		Endpoint:             w.endpoint,
		Probe:                w.probe.Name(),
		Healthy:              w.checks > 0 && w.last.OK,
		Last:                 w.last,
		ConsecutiveFailures:  w.consFail,
		ConsecutiveSuccesses: w.consOK,
		Checks:               w.checks,
		Failures:             w.failures,
		ForcedOpen:           w.forced,
		IntervalMS:           w.opts.Interval.Milliseconds(),
		FailureThreshold:     w.opts.FailureThreshold,
		SuccessThreshold:     w.opts.SuccessThreshold,
		History:              h,
	}
}

// generation is the breaker's total transition count, which moves on every
// transition: a changed count means someone acted since.
func generation(s core.Snapshot) uint64 {
	var n uint64
	for _, row := range s.Transitions {
		for _, c := range row {
			n += c
		}
	}
	return n
}

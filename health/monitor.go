package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health/internal/probeconf"
)

// Breakers yields the breaker of an endpoint; *core.Manager satisfies it.
// It is all the monitor needs from the breakers' owner.
type Breakers interface {
	Breaker(endpoint string) (*core.Breaker, error)
}

// MonitorConfig says what a Monitor drives.
type MonitorConfig struct {
	// Breakers gives the breaker of each watched endpoint; a *core.Manager
	// is one. Required.
	Breakers Breakers
	// Clock paces checks and stamps their results. Default
	// core.SystemClock(). Timeouts within a check run on the time package.
	Clock core.Clock
	// Logger reports the breakers the monitor forces open and releases.
	// Default slog.Default().
	Logger *slog.Logger
}

// WatchConfig says how one endpoint is watched. The zero value takes every
// default.
type WatchConfig struct {
	// Interval is the time between the end of one check and the start of
	// the next. Default 30s; 1ms to 24h.
	Interval time.Duration
	// FailureThreshold is how many failed checks in a row force the
	// breaker open. Default 3; 1 to 1,000.
	FailureThreshold int
	// SuccessThreshold is how many passed checks in a row release a breaker
	// the monitor forced open. Default 2; 1 to 1,000.
	SuccessThreshold int
	// Timeout, when set, bounds each check on top of the probe's own
	// timeout (the shorter wins). Default 0: the probe's timeout alone;
	// otherwise 1ms to 1h.
	Timeout time.Duration
	// History is how many recent results Status keeps. Default 50; 1 to
	// 10,000.
	History int
}

// check fills in the defaults and reports every bad field.
func (cfg *WatchConfig) check(p Probe) error {
	c := probeconf.New("health.WatchConfig.")
	c.Duration("Interval", &cfg.Interval, 30*time.Second, time.Millisecond, 24*time.Hour)
	c.Int("FailureThreshold", &cfg.FailureThreshold, 3, 1, 1000)
	c.Int("SuccessThreshold", &cfg.SuccessThreshold, 2, 1, 1000)
	if d := cfg.Timeout; d != 0 && (d < time.Millisecond || d > time.Hour) {
		c.Fail("Timeout", d, "must be between 1ms and 1h (0 means the probe's own timeout alone)")
	}
	c.Int("History", &cfg.History, 50, 1, 10_000)
	if probeconf.IsNil(p) {
		c.Add(&core.ConfigError{Field: "health.Monitor.Watch(probe)", Value: p, Rule: "must not be nil"})
	}
	return c.Err()
}

// ErrAlreadyWatched is returned by Watch for an endpoint that is watched
// already; Unwatch it first to change its probe or config.
var ErrAlreadyWatched = errors.New("health: endpoint is already watched")

// Status is what a Monitor knows about one watched endpoint. It encodes
// to JSON as it is, ready to serve.
type Status struct {
	// Endpoint is the breaker's endpoint.
	Endpoint string `json:"endpoint"`
	// Probe is the probe's name.
	Probe string `json:"probe"`
	// Healthy is the last result's OK (false before the first check).
	Healthy bool `json:"healthy"`
	// Last is the latest result (zero, with no time, before the first
	// check).
	Last Result `json:"last"`
	// ConsecutiveFailures and ConsecutiveSuccesses count the latest run of
	// failed or passed checks; one of them is zero.
	ConsecutiveFailures  int `json:"consecutive_failures"`
	ConsecutiveSuccesses int `json:"consecutive_successes"`
	// Checks and Failures count every check since Watch.
	Checks   uint64 `json:"checks"`
	Failures uint64 `json:"failures"`
	// ForcedOpen reports whether the monitor holds the breaker open now.
	ForcedOpen bool `json:"forced_open"`
	// IntervalMS and the thresholds are the WatchConfig in force.
	IntervalMS       int64 `json:"interval_ms"`
	FailureThreshold int   `json:"failure_threshold"`
	SuccessThreshold int   `json:"success_threshold"`
	// History holds the latest results, oldest first.
	History []Result `json:"history"`
}

// Monitor runs health probes on a schedule and feeds their verdicts to
// circuit breakers:
//
//   - FailureThreshold failed checks in a row force the endpoint's breaker
//     open, with a reason naming the probe and the last error;
//   - SuccessThreshold passed checks in a row then release it, which moves
//     it to HalfOpen, never straight to Closed: real traffic decides
//     whether it closes.
//
// The monitor only releases a hold it placed. A breaker someone else forced
// open or disabled is left alone, and if anyone changes the breaker's state
// after the monitor forced it open, the monitor considers its hold gone.
// Unwatch and Close release a hold the monitor still has, so a monitor
// that is done never leaves a breaker forced open.
//
// Each watched endpoint has one goroutine, started by Watch and ended by
// Unwatch or Close.
type Monitor struct {
	breakers Breakers
	clock    core.Clock
	log      *slog.Logger

	mu      sync.Mutex
	closed  bool
	watches map[string]*watch
}

// NewMonitor returns a Monitor that drives the breakers of cfg.Breakers.
// It watches nothing until Watch.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	c := probeconf.New("health.MonitorConfig.")
	probeconf.Required(c, "Breakers", cfg.Breakers)
	if cfg.Clock != nil {
		probeconf.Required(c, "Clock", cfg.Clock)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	m := &Monitor{breakers: cfg.Breakers, clock: cfg.Clock, log: cfg.Logger, watches: make(map[string]*watch)}
	if m.clock == nil {
		m.clock = core.SystemClock()
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m, nil
}

// Watch checks endpoint with p as cfg says, the first time at once, and
// lets the results drive the endpoint's breaker. It fails with a
// *core.ConfigError for every bad field of cfg (or a nil p), with
// ErrAlreadyWatched, when the breakers refuse the endpoint, or once the
// monitor is closed.
func (m *Monitor) Watch(endpoint string, p Probe, cfg WatchConfig) error {
	if err := cfg.check(p); err != nil {
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
		return errors.New("health: monitor is closed")
	}
	if _, ok := m.watches[endpoint]; ok {
		return fmt.Errorf("%w: %q", ErrAlreadyWatched, endpoint)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{
		endpoint: endpoint, probe: p, cfg: cfg, clock: m.clock, log: m.log,
		hold: hold{breaker: b}, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		history: make([]Result, 0, cfg.History),
	}
	m.watches[endpoint] = w
	go w.run()
	return nil
}

// Unwatch stops checking endpoint: it cancels a check in flight, waits for
// the endpoint's goroutine to end and releases the breaker if the monitor
// holds it open. It reports whether the endpoint was watched. A probe
// whose Check ignores its context holds Unwatch up until the check returns;
// Close takes a context for that reason.
func (m *Monitor) Unwatch(endpoint string) bool {
	m.mu.Lock()
	w, ok := m.watches[endpoint]
	delete(m.watches, endpoint)
	m.mu.Unlock()
	if ok {
		w.cancel()
		<-w.done
		w.end()
	}
	return ok
}

// Close stops every watch, as Unwatch does, and refuses later Watches. It
// returns when every watch goroutine has ended, or with an error wrapping
// ctx.Err() when ctx ends first (a probe whose Check ignores its context
// can hold one up); either way every breaker the monitor holds open is
// released. A second Close returns nil at once.
func (m *Monitor) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	ws := slices.Collect(maps.Values(m.watches))
	clear(m.watches)
	m.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	var err error
	for _, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			err = fmt.Errorf("health: Monitor.Close: a check of %q is still running: %w", w.endpoint, ctx.Err())
		}
		if err != nil {
			break
		}
	}
	for _, w := range ws {
		w.end()
	}
	return err
}

// Status returns the state of one watched endpoint.
func (m *Monitor) Status(endpoint string) (Status, bool) {
	m.mu.Lock()
	w, ok := m.watches[endpoint]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	return w.status(), true
}

// Statuses returns the state of every watched endpoint, sorted by
// endpoint.
func (m *Monitor) Statuses() []Status {
	m.mu.Lock()
	ws := slices.Collect(maps.Values(m.watches))
	m.mu.Unlock()
	out := make([]Status, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.status())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return out
}

// watch is one watched endpoint.
type watch struct {
	endpoint string
	probe    Probe
	cfg      WatchConfig
	clock    core.Clock
	log      *slog.Logger
	hold     hold

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	last     Result
	consFail int
	consOK   int
	checks   uint64
	failures uint64
	history  []Result // a ring once full
	next     int
}

func (w *watch) run() {
	defer close(w.done)
	for {
		w.check()
		t := w.clock.NewTimer(w.cfg.Interval)
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
	if w.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.Timeout)
		defer cancel()
	}
	started := w.clock.Now()
	r := w.safeCheck(ctx)
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

// safeCheck runs the probe, turning a panic (a Probe of the caller's that
// breaks its contract) into a failed check.
func (w *watch) safeCheck(ctx context.Context) (r Result) {
	defer func() {
		if v := recover(); v != nil {
			r = Result{Err: fmt.Errorf("probe panicked: %v", v)}
		}
	}()
	return w.probe.Check(ctx)
}

// record files r and then, outside the lock (a breaker calls its
// listeners synchronously, and one may well ask for Status), asks the
// hold to force or release the breaker.
func (w *watch) record(r Result) {
	w.mu.Lock()
	w.last = r
	w.checks++
	if len(w.history) < w.cfg.History {
		w.history = append(w.history, r)
	} else {
		w.history[w.next] = r
		w.next = (w.next + 1) % len(w.history)
	}
	var force, release string
	if r.OK {
		w.consOK++
		w.consFail = 0
		if w.consOK >= w.cfg.SuccessThreshold {
			release = fmt.Sprintf("health check %s passed %d times", w.probe.Name(), w.consOK)
		}
	} else {
		w.failures++
		w.consFail++
		w.consOK = 0
		if w.consFail >= w.cfg.FailureThreshold {
			force = fmt.Sprintf("health check %s failed %d times: %v", w.probe.Name(), w.consFail, r.Err)
		}
	}
	w.mu.Unlock()
	switch {
	case force != "":
		if w.hold.take(force) {
			w.log.Warn("health: breaker forced open", "endpoint", w.endpoint, "reason", force)
		}
	case release != "":
		if w.hold.give(release, false) {
			w.log.Info("health: breaker released", "endpoint", w.endpoint, "reason", release)
		}
	}
}

// end gives up the hold for good once the watch is over.
func (w *watch) end() {
	reason := fmt.Sprintf("health monitoring with %s stopped", w.probe.Name())
	if w.hold.give(reason, true) {
		w.log.Info("health: breaker released", "endpoint", w.endpoint, "reason", reason)
	}
}

func (w *watch) status() Status {
	forced := w.hold.ours()
	w.mu.Lock()
	defer w.mu.Unlock()
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
		ForcedOpen:           forced,
		IntervalMS:           w.cfg.Interval.Milliseconds(),
		FailureThreshold:     w.cfg.FailureThreshold,
		SuccessThreshold:     w.cfg.SuccessThreshold,
		History:              h,
	}
}

// hold is a watch's claim on its breaker, and the only code that forces a
// breaker open or releases it. The monitor holds a breaker from the moment
// it forces it open until it releases it, or until anyone else changes the
// breaker's state.
type hold struct {
	breaker *core.Breaker

	// op serialises take and give, across their breaker calls, so that a
	// watch ending can't race a check forcing the breaker again.
	op sync.Mutex

	// mu guards the fields below. It is never held across a breaker call:
	// the breaker runs its listeners synchronously, and they may read
	// Status.
	mu     sync.Mutex
	held   bool
	reason string // the breaker's reason while the hold is ours
	gen    uint64 // the breaker's transition count right after forcing
	ended  bool   // the watch is over: take no more
}

// take forces the breaker open, unless the hold is over or the breaker is
// forced open already (by the monitor, or by a person: leave it) or
// disabled. It reports whether it forced the breaker.
func (h *hold) take(reason string) bool {
	h.op.Lock()
	defer h.op.Unlock()
	if h.isEnded() {
		return false
	}
	switch h.breaker.State() {
	case core.ForcedOpen, core.Disabled:
		return false
	}
	h.breaker.ForceOpen(reason)
	s := h.breaker.Snapshot()
	// ForceOpen prefixes the reason; compare by suffix so the check
	// doesn't depend on the exact prefix.
	if s.State != core.ForcedOpen || !strings.HasSuffix(s.Reason, reason) {
		return false // someone acted in between: theirs, not ours
	}
	h.mu.Lock()
	h.held, h.reason, h.gen = true, s.Reason, generation(s)
	h.mu.Unlock()
	return true
}

// give releases the breaker to HalfOpen if the hold is still ours, and
// with final ends the hold for good. It reports whether it released.
func (h *hold) give(reason string, final bool) bool {
	h.op.Lock()
	defer h.op.Unlock()
	ours := h.ours()
	h.mu.Lock()
	h.held, h.reason, h.gen = false, "", 0
	h.ended = h.ended || final
	h.mu.Unlock()
	return ours && h.breaker.Release(reason)
}

// ours reports whether the breaker is still in the ForcedOpen state the
// monitor put it in, with no transition since; once it is not, the hold
// is gone.
func (h *hold) ours() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		return false
	}
	s := h.breaker.Snapshot()
	if s.State == core.ForcedOpen && s.Reason == h.reason && generation(s) == h.gen {
		return true
	}
	h.held = false
	return false
}

func (h *hold) isEnded() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ended
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

package health

import (
	"context"
	"errors"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health/internal/probeconf"
)

// MonitorConfig says what a Monitor drives.
type MonitorConfig struct {
	// Manager gives the breaker of each watched endpoint. Required.
	Manager *core.Manager
	// Clock paces checks and stamps their results. Default
	// core.SystemClock(). Timeouts within a check run on the time package.
	Clock core.Clock
	// Logger reports the breakers the monitor forces open and releases.
	// Default slog.Default().
	Logger *slog.Logger
	// Instance names this process among those sharing breaker state, as
	// the Redis store's InstanceID does. The monitor's holds are then
	// owned by "health <probe>@<instance>", so that the monitors of other
	// instances leave them alone: an instance whose checks pass does not
	// release a hold that another instance's failing checks keep, and a
	// dead instance's hold ends when its lease lapses. Empty: holds are
	// owned by "health <probe>", which a monitor started again on the same
	// state file takes over. At most 128 bytes, no spaces or control
	// characters.
	Instance string
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
// The monitor holds a breaker open as a component (core.Breaker.Hold), on a
// lease it renews at every check: three intervals past the last check,
// plus WatchConfig.Timeout. A monitor that stops checking — its process
// killed, say — thus leaves the breaker HalfOpen within that lease, and one
// that starts again for the same endpoint and probe name takes its
// predecessor's hold over and releases it when its own checks pass. The
// monitor only releases a hold it owns: a breaker someone else forced open
// or disabled is left alone. Unwatch and Close release a hold the monitor
// still has, so a monitor that is done never leaves a breaker forced open.
//
// Each watched endpoint has one goroutine, started by Watch and ended by
// Unwatch or Close.
type Monitor struct {
	manager  *core.Manager
	clock    core.Clock
	log      *slog.Logger
	instance string

	mu      sync.Mutex
	closed  bool
	watches map[string]*watch
}

// NewMonitor returns a Monitor that drives the breakers of cfg.Manager.
// It watches nothing until Watch.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	c := probeconf.New("health.MonitorConfig.")
	probeconf.Required(c, "Manager", cfg.Manager)
	if cfg.Clock != nil {
		probeconf.Required(c, "Clock", cfg.Clock)
	}
	if !validInstance(cfg.Instance) {
		c.Fail("Instance", cfg.Instance, "must be at most 128 bytes with no spaces or control characters")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	m := &Monitor{manager: cfg.Manager, clock: cfg.Clock, log: cfg.Logger, instance: cfg.Instance, watches: make(map[string]*watch)}
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
	e, err := m.manager.Endpoint(endpoint)
	if err != nil {
		return fmt.Errorf("health: breaker for %q: %w", endpoint, err)
	}
	b := e.Breaker()
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
		hold: hold{breaker: b, owner: m.owner(p), lease: 3*cfg.Interval + cfg.Timeout}, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		history: make([]Result, 0, cfg.History),
	}
	m.watches[endpoint] = w
	go w.run()
	return nil
}

// owner names the holds of p's watch.
func (m *Monitor) owner(p Probe) string {
	if m.instance == "" {
		return "health " + p.Name()
	}
	return "health " + p.Name() + "@" + m.instance
}

func validInstance(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
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
	case release != "":
		if w.hold.give(release, false) {
			w.log.Info("health: breaker released", "endpoint", w.endpoint, "reason", release)
		}
	case force != "":
		if w.hold.take(force) {
			w.log.Warn("health: breaker forced open", "endpoint", w.endpoint, "reason", force)
		}
	default:
		w.hold.renew(r.Err)
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

// hold is a watch's claim on its breaker, and the only code that holds a
// breaker open or releases it: a component's hold (core.Breaker.Hold)
// named owner, renewed for lease at every check.
type hold struct {
	breaker *core.Breaker
	owner   string
	lease   time.Duration

	// mu serialises take, renew and give, so that a watch ending can't race
	// a check holding the breaker again.
	mu    sync.Mutex
	ended bool // the watch is over: take no more
}

// take holds the breaker open, or renews the hold if it is ours already,
// and reports whether it newly took it. A breaker held by a person or
// another component, or disabled, is left alone.
func (h *hold) take(reason string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended {
		return false
	}
	had := h.ours()
	return h.breaker.Hold(h.owner, reason, h.lease) && !had
}

// renew extends the hold if it is ours, between a failed check that did
// not reach the threshold and the next: a hold taken over from a previous
// run of the monitor lives on while its fate is decided.
func (h *hold) renew(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended || !h.ours() {
		return
	}
	reason := "health check in progress"
	if cause != nil {
		reason = cause.Error()
	}
	h.breaker.Hold(h.owner, reason, h.lease)
}

// give releases the breaker to HalfOpen if the hold is ours, and with
// final ends the hold for good. It reports whether it released.
func (h *hold) give(reason string, final bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = h.ended || final
	return h.breaker.Unhold(h.owner, reason)
}

// ours reports whether the breaker is held by this hold's owner now.
func (h *hold) ours() bool {
	s := h.breaker.Snapshot()
	return s.State == events.ForcedOpen && s.HeldBy == h.owner
}

package alert

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/check"
)

// Handler receives every alert a Manager fires or resolves.
//
// HandleAlert is called in the order alerts are fired and resolved, one
// call at a time and outside the Manager's locks, so it may call the
// Manager. It must return quickly: hand slow work (network, disk) to a
// queue, as the log, webhook and Slack handlers of this package do.
type Handler interface {
	HandleAlert(Alert)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(Alert)

// HandleAlert calls f(a).
func (f HandlerFunc) HandleAlert(a Alert) { f(a) }

// ManagerConfig configures a Manager. The zero value is valid: a Manager
// fired by hand, with no handlers yet.
type ManagerConfig struct {
	// Bus, when set, is followed by the Manager: a breaker going Open or
	// ForcedOpen raises a Critical alert, resolved when it goes Closed or
	// Disabled; an SLOBurn that starts burning raises a Warning, resolved
	// when it stops. Every fired and resolved alert is also published on
	// the Bus. See Manager.
	Bus *events.Bus
	// ClusterAlerts makes breaker alerts fire on ClusterStateChange events
	// only, as they must when a shared-state store is attached (one alert
	// per cluster transition); a StateChange then only resolves. Off, the
	// default, fires on StateChange events that are not Remote and ignores
	// ClusterStateChange. Needs Bus.
	ClusterAlerts bool
	// NoSLOAlerts turns off the alerts raised from SLOBurn events (on by
	// default).
	NoSLOAlerts bool
	// NoFaultAlerts turns off the alerts raised from FaultChange events
	// (on by default).
	NoFaultAlerts bool
	// EventBuffer is the Manager's subscription buffer on Bus: events that
	// arrive while it is full are lost (and logged). Default 1,024; 1 to
	// 65,536. Needs Bus.
	EventBuffer int
	// Handlers receive every alert, as if added with AddHandler.
	Handlers []Handler
	// History is how many recent alerts Recent returns (fired ones, each
	// updated in place when resolved). Default 100; 1 to 65,536.
	History int
	// MaxActive bounds the unresolved alerts kept; past it the oldest is
	// forgotten (it stays in Recent, and a warning is logged). Default
	// 10,000; 1 to 1,048,576.
	MaxActive int
	// Clock dates the alerts fired and resolved without a time of their
	// own. Default core.SystemClock().
	Clock core.Clock
	// Logger reports events lost from the Bus and active alerts forgotten
	// past MaxActive. Default slog.Default().
	Logger *slog.Logger
}

// Manager fires and resolves alerts, hands each to every handler, and
// remembers active and recent alerts for the admin handler.
//
// With a Bus, one goroutine started by NewManager turns the Bus's events
// into alerts until Close:
//
//   - a Critical alert when a breaker goes Open or ForcedOpen, resolved
//     (the same alert, same ID) when it goes back to Closed or is Disabled.
//     One alert per endpoint is active at a time: a re-open while it fires
//     adds nothing, and a breaker going HalfOpen and back to Open stays one
//     alert.
//   - a Warning alert while an endpoint's SLOBurn reports Burning, resolved
//     when Burning turns false (unless NoSLOAlerts).
//   - an Info alert while a fault experiment started in this process runs
//     (a FaultChange without Origin), resolved when it ends (unless
//     NoFaultAlerts). Its ID is derived from the experiment's, one alert
//     per experiment.
//
// Transitions marked Remote (decided by another instance sharing state)
// never fire; a Remote transition to Closed still resolves the alert this
// instance raised. A restored state (StateChange.Restored, as after a
// restart) never fires either: a breaker restored Open, ForcedOpen or
// HalfOpen is recorded as alerting without notifying anyone, under the ID
// its alert had when it fired (derived from the endpoint and the time it
// opened), so that closing it sends the resolution receivers are waiting
// for.
//
// Breaker alerts carry the metadata alertname ("CircuitBreakerOpen"),
// endpoint, reason, timestamp, old_state and new_state, plus version,
// instance and local in cluster mode. SLO alerts carry alertname
// ("SLOBurnRate"), endpoint, reason, timestamp, success_rate,
// error_budget_remaining, long_burn_rate and short_burn_rate. Fault alerts
// carry alertname ("FaultInjection"), endpoint, fault_id, reason,
// timestamp, percent, latency_ms, latency_max_ms, status, abort and ends.
//
// A Manager is safe for concurrent use.
type Manager struct {
	bus       *events.Bus
	clock     core.Clock
	log       *slog.Logger
	maxActive int

	mu         sync.Mutex
	handlers   []Handler
	active     map[string]Alert
	order      []string // active IDs, oldest first
	ring       []Alert  // recent alerts, ring buffer
	next       int      // next ring slot
	full       bool
	pending    []Alert // fired or resolved, not yet handed on
	delivering bool    // a call is handing pending alerts on

	// Following the bus; the maps belong to the follow goroutine.
	sub     *events.Subscription
	cluster bool
	slo     bool
	faults  bool
	breaker map[string]string // endpoint -> active breaker alert ID
	burning map[string]string // endpoint -> active SLO alert ID
	lost    uint64            // bus events lost, as last logged
	closing atomic.Bool
	stop    chan struct{} // closed when Close gives up on the buffer
	done    chan struct{} // closed when the follow goroutine ends
}

// NewManager returns a Manager, or the *core.ConfigError of every bad field
// of cfg joined. With cfg.Bus it starts following the Bus; Close stops it.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	c := check.New("alert.ManagerConfig.", configError)
	if cfg.Bus == nil {
		if cfg.ClusterAlerts {
			c.Fail("ClusterAlerts", true, "needs Bus")
		}
		if cfg.EventBuffer != 0 {
			c.Fail("EventBuffer", cfg.EventBuffer, "needs Bus")
		}
	}
	c.Int("History", &cfg.History, 100, 1, 1<<16)
	c.Int("MaxActive", &cfg.MaxActive, 10_000, 1, 1<<20)
	if cfg.Bus != nil {
		c.Int("EventBuffer", &cfg.EventBuffer, 1024, 1, 1<<16)
	}
	for i, h := range cfg.Handlers {
		if isNil(h) {
			c.Fail(fmt.Sprintf("Handlers[%d]", i), h, "must not be nil")
		}
	}
	if cfg.Clock != nil && isNil(cfg.Clock) {
		c.Fail("Clock", cfg.Clock, "must not be a nil pointer (leave it nil for the system clock)")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = core.SystemClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{
		bus:       cfg.Bus,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		maxActive: cfg.MaxActive,
		handlers:  slices.Clip(slices.Clone(cfg.Handlers)),
		active:    make(map[string]Alert),
		ring:      make([]Alert, cfg.History),
		cluster:   cfg.ClusterAlerts,
		slo:       !cfg.NoSLOAlerts,
		faults:    !cfg.NoFaultAlerts,
	}
	if cfg.Bus != nil {
		m.breaker = make(map[string]string)
		m.burning = make(map[string]string)
		m.sub = cfg.Bus.Subscribe(cfg.EventBuffer)
		m.stop = make(chan struct{})
		m.done = make(chan struct{})
		go m.follow()
	}
	return m, nil
}

func configError(field string, value any, rule string) error {
	return &core.ConfigError{Field: field, Value: value, Rule: rule}
}

// isNil reports whether v is nil or an interface holding a nil pointer,
// func, map, slice or channel.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return r.IsNil()
	}
	return false
}

// AddHandler registers h. Handlers are added, never replaced: every one
// receives every later alert. A nil h is ignored.
func (m *Manager) AddHandler(h Handler) {
	if isNil(h) {
		return
	}
	m.mu.Lock()
	m.handlers = append(slices.Clip(m.handlers), h) // a new array: deliveries under way keep theirs
	m.mu.Unlock()
}

// Close stops following the Bus once the events already buffered are
// handled, and returns when that is done or ctx ends (then with an error
// wrapping ctx.Err(), and the rest of the buffer is dropped). Active alerts
// stay active, and Fire and Resolve keep working. Calling Close again, or
// on a Manager without a Bus, returns nil at once.
func (m *Manager) Close(ctx context.Context) error {
	if m.sub == nil || !m.closing.CompareAndSwap(false, true) {
		return nil
	}
	m.sub.Close() // the channel ends after what it holds
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		close(m.stop)
		return fmt.Errorf("alert: Manager.Close: bus events left unhandled: %w", ctx.Err())
	}
}

// Fire raises a. It fills an empty ID with a random UUID, a zero Timestamp
// with the current time and an empty Type.Kind with "custom", records the
// alert as active, then hands it to every handler and publishes it on the
// Bus. It returns the alert as fired.
//
// An alert fired with an ID that is already active replaces it without
// notifying anyone again: firing is idempotent per ID.
func (m *Manager) Fire(a Alert) Alert {
	return m.fire(a, true)
}

// fire records a and, when notify is set, hands it on.
func (m *Manager) fire(a Alert, notify bool) Alert {
	a = a.clone()
	if a.ID == "" {
		a.ID = newID()
	}
	if a.Timestamp.IsZero() {
		a.Timestamp = m.clock.Now()
	}
	if a.Type.Kind == "" {
		a.Type.Kind = kindCustom
	}
	a.Resolved, a.ResolvedAt = false, nil

	m.mu.Lock()
	if _, dup := m.active[a.ID]; dup {
		m.active[a.ID] = a
		m.updateRing(a)
		m.mu.Unlock()
		return a.clone()
	}
	var evicted string
	if len(m.order) >= m.maxActive {
		evicted = m.order[0]
		delete(m.active, evicted)
		m.order = slices.Delete(m.order, 0, 1)
	}
	m.active[a.ID] = a
	m.order = append(m.order, a.ID)
	m.ring[m.next] = a
	m.next++
	if m.next == len(m.ring) {
		m.next, m.full = 0, true
	}
	if notify {
		m.pending = append(m.pending, a.clone())
	}
	m.flushLocked()
	if evicted != "" {
		m.log.Warn("alert: too many active alerts; the oldest is forgotten and will not be resolved",
			"id", evicted, "max_active", m.maxActive)
	}
	return a.clone()
}

// Resolve marks the active alert id resolved now, hands the resolved alert
// to every handler and publishes it. It reports false, and does nothing,
// when no such alert is active.
func (m *Manager) Resolve(id string) (Alert, bool) {
	return m.resolve(id, time.Time{})
}

// resolve is Resolve at t (now when zero).
func (m *Manager) resolve(id string, t time.Time) (Alert, bool) {
	if t.IsZero() {
		t = m.clock.Now()
	}
	m.mu.Lock()
	a, ok := m.active[id]
	if !ok {
		m.mu.Unlock()
		return Alert{}, false
	}
	delete(m.active, id)
	if i := slices.Index(m.order, id); i >= 0 {
		m.order = slices.Delete(m.order, i, i+1)
	}
	a.Resolved, a.ResolvedAt = true, &t
	m.updateRing(a)
	m.pending = append(m.pending, a.clone())
	m.flushLocked()
	return a.clone(), true
}

// flushLocked hands the pending alerts to the handlers and the Bus, in
// order, unless another call is doing so already (it will hand these on
// too). It is called with mu held and returns with it released; handlers
// run without it, one at a time.
func (m *Manager) flushLocked() {
	if m.delivering || len(m.pending) == 0 {
		m.mu.Unlock()
		return
	}
	m.delivering = true
	done := false
	defer func() {
		if !done { // a handler panicked: let the next call deliver
			m.mu.Lock()
			m.delivering = false
			m.mu.Unlock()
		}
	}()
	for len(m.pending) > 0 {
		batch, handlers := m.pending, m.handlers
		m.pending = nil
		m.mu.Unlock()
		for _, a := range batch {
			for _, h := range handlers {
				h.HandleAlert(a.clone())
			}
			if m.bus != nil {
				m.bus.Publish(a)
			}
		}
		m.mu.Lock()
	}
	m.delivering = false
	done = true
	m.mu.Unlock()
}

// updateRing replaces the recent entry with a's ID, if it is still there.
// Called with mu held.
func (m *Manager) updateRing(a Alert) {
	for i := range m.ring {
		if m.ring[i].ID == a.ID {
			m.ring[i] = a
			return
		}
	}
}

func (m *Manager) isActive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.active[id]
	return ok
}

// Active returns the unresolved alerts, oldest first.
func (m *Manager) Active() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Alert, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.active[id].clone())
	}
	return out
}

// Recent returns up to ManagerConfig.History of the latest fired alerts,
// newest first, each as it is now (resolved or not).
func (m *Manager) Recent() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.next
	if m.full {
		n = len(m.ring)
	}
	out := make([]Alert, 0, n)
	for i := 1; i <= n; i++ {
		j := (m.next - i + len(m.ring)) % len(m.ring)
		out = append(out, m.ring[j].clone())
	}
	return out
}

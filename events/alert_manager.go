package events

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// AlertHandler receives every alert an AlertManager fires or resolves.
//
// HandleAlert is called synchronously, in the order alerts are fired and
// resolved, so it must return quickly: hand slow work (network, disk) to a
// queue, as the log, webhook and Slack handlers of this package do. It must
// not call the manager's Fire or Resolve.
type AlertHandler interface {
	HandleAlert(Alert)
}

// AlertHandlerFunc adapts a function to an AlertHandler.
type AlertHandlerFunc func(Alert)

// HandleAlert calls f(a).
func (f AlertHandlerFunc) HandleAlert(a Alert) { f(a) }

// Default and maximum sizes of an AlertManager's bookkeeping.
const (
	DefaultAlertHistory = 100
	MaxAlertHistory     = 1 << 16
	DefaultMaxActive    = 10_000
	MaxActiveLimit      = 1 << 20
)

// AlertManagerConfig configures an AlertManager. The zero value is valid.
type AlertManagerConfig struct {
	// History is how many recent alerts Recent returns (fired ones, each
	// updated in place when resolved). 0 means DefaultAlertHistory.
	History int
	// MaxActive bounds the unresolved alerts kept; past it the oldest is
	// forgotten (it stays in Recent) and counted in Evicted. 0 means
	// DefaultMaxActive.
	MaxActive int
	// Bus, when set, receives every fired and resolved Alert as an Event.
	Bus *Bus
	// Now tells time for alerts fired without a timestamp. Default
	// time.Now.
	Now func() time.Time
}

// AlertManager fires and resolves alerts, hands each to every registered
// handler, and remembers active and recent alerts for the admin handler.
//
// It is safe for concurrent use and starts no goroutines.
type AlertManager struct {
	bus       *Bus
	now       func() time.Time
	maxActive int

	// dispatch serialises fire/resolve with the handler calls that follow,
	// so that every handler sees an alert fired before it sees it resolved.
	dispatch sync.Mutex

	mu       sync.Mutex
	handlers []AlertHandler
	active   map[string]Alert
	order    []string // active IDs, oldest first
	ring     []Alert  // recent alerts, ring buffer
	next     int      // next ring slot
	full     bool
	evicted  atomic.Uint64
}

// NewAlertManager returns an AlertManager, or an error naming the field of
// cfg that is out of range.
func NewAlertManager(cfg AlertManagerConfig) (*AlertManager, error) {
	if cfg.History < 0 || cfg.History > MaxAlertHistory {
		return nil, fmt.Errorf("events: AlertManagerConfig.History = %d: want 0..%d", cfg.History, MaxAlertHistory)
	}
	if cfg.MaxActive < 0 || cfg.MaxActive > MaxActiveLimit {
		return nil, fmt.Errorf("events: AlertManagerConfig.MaxActive = %d: want 0..%d", cfg.MaxActive, MaxActiveLimit)
	}
	if cfg.History == 0 {
		cfg.History = DefaultAlertHistory
	}
	if cfg.MaxActive == 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &AlertManager{
		bus:       cfg.Bus,
		now:       cfg.Now,
		maxActive: cfg.MaxActive,
		active:    make(map[string]Alert),
		ring:      make([]Alert, cfg.History),
	}, nil
}

// AddHandler registers h. Handlers are added, never replaced: every one
// receives every later alert. A nil h is ignored.
func (m *AlertManager) AddHandler(h AlertHandler) {
	if h == nil {
		return
	}
	m.mu.Lock()
	m.handlers = append(m.handlers, h)
	m.mu.Unlock()
}

// Fire raises a. It fills an empty ID with a new UUID, a zero Timestamp with
// the current time and an empty Type.Kind with AlertKindCustom, records the
// alert as active, then hands it to every handler and publishes it on the
// bus. It returns the alert as fired.
//
// An alert fired with an ID that is already active replaces it without
// notifying anyone again: firing is idempotent per ID.
func (m *AlertManager) Fire(a Alert) Alert {
	a = a.clone()
	if a.ID == "" {
		a.ID = NewAlertID()
	}
	if a.Timestamp.IsZero() {
		a.Timestamp = m.now()
	}
	if a.Type.Kind == "" {
		a.Type.Kind = AlertKindCustom
	}
	a.Resolved, a.ResolvedAt = false, nil

	m.dispatch.Lock()
	defer m.dispatch.Unlock()
	m.mu.Lock()
	if _, dup := m.active[a.ID]; dup {
		m.active[a.ID] = a
		m.updateRing(a)
		m.mu.Unlock()
		return a
	}
	if len(m.order) >= m.maxActive {
		delete(m.active, m.order[0])
		m.order = slices.Delete(m.order, 0, 1)
		m.evicted.Add(1)
	}
	m.active[a.ID] = a
	m.order = append(m.order, a.ID)
	m.ring[m.next] = a
	m.next++
	if m.next == len(m.ring) {
		m.next, m.full = 0, true
	}
	handlers := m.handlers
	m.mu.Unlock()

	m.deliver(handlers, a)
	return a
}

// Resolve marks the active alert id resolved now. See ResolveAt.
func (m *AlertManager) Resolve(id string) (Alert, bool) {
	return m.ResolveAt(id, time.Time{})
}

// ResolveAt marks the active alert id resolved at t (now when t is zero),
// hands the resolved alert to every handler and publishes it. It reports
// false, and does nothing, when no such alert is active.
func (m *AlertManager) ResolveAt(id string, t time.Time) (Alert, bool) {
	if t.IsZero() {
		t = m.now()
	}
	m.dispatch.Lock()
	defer m.dispatch.Unlock()
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
	handlers := m.handlers
	m.mu.Unlock()

	m.deliver(handlers, a)
	return a.clone(), true
}

// updateRing replaces the recent entry with a's ID, if it is still there.
// Called with mu held.
func (m *AlertManager) updateRing(a Alert) {
	for i := range m.ring {
		if m.ring[i].ID == a.ID {
			m.ring[i] = a
			return
		}
	}
}

func (m *AlertManager) deliver(handlers []AlertHandler, a Alert) {
	for _, h := range handlers {
		h.HandleAlert(a.clone())
	}
	if m.bus != nil {
		m.bus.Publish(a.clone())
	}
}

// Get returns the alert with the given ID if it is active or recent.
func (m *AlertManager) Get(id string) (Alert, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.active[id]; ok {
		return a.clone(), true
	}
	for _, a := range m.ring {
		if a.ID == id && id != "" {
			return a.clone(), true
		}
	}
	return Alert{}, false
}

func (m *AlertManager) isActive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.active[id]
	return ok
}

// Active returns the unresolved alerts, oldest first.
func (m *AlertManager) Active() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Alert, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.active[id].clone())
	}
	return out
}

// Recent returns up to the configured History of the latest fired alerts,
// newest first, each as it is now (resolved or not).
func (m *AlertManager) Recent() []Alert {
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

// Evicted returns how many active alerts were forgotten because MaxActive
// was reached.
func (m *AlertManager) Evicted() uint64 { return m.evicted.Load() }

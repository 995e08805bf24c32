package core

import (
	"github.com/bulwark-go/bulwark/events"
)

// DefaultMaxEndpoints bounds the endpoints a Manager tracks when
// ManagerConfig.MaxEndpoints is zero.
const DefaultMaxEndpoints = 1000

// ManagerConfig configures a Manager. The zero value is valid.
type ManagerConfig struct {
	// Breaker is the configuration of every breaker without an override.
	Breaker Config
	// Overrides gives whole configurations for some endpoints. An override
	// does not inherit from Breaker: its zero fields take the defaults.
	Overrides map[string]Config
	// Bulkhead is the configuration of every endpoint bulkhead without an
	// override. Endpoint bulkheads are made only when asked for (Bulkhead).
	Bulkhead BulkheadConfig
	// BulkheadOverrides gives whole bulkhead configurations for some
	// endpoints; like Overrides, they do not inherit from Bulkhead.
	BulkheadOverrides map[string]BulkheadConfig
	// MaxEndpoints bounds the breakers (and, separately, the bulkheads) the
	// Manager creates; past it, Breaker returns ErrTooManyEndpoints.
	// Default 1000; 1 to 100,000.
	MaxEndpoints int
	// Clock is the clock of every component; nil means SystemClock.
	Clock Clock
	// Bus receives every component's events; nil means a new Bus.
	Bus *events.Bus
}

// Validate checks the default configuration, every override and the bound.
func (c ManagerConfig) Validate() error {
	v := rangeCheck{prefix: "ManagerConfig."}
	v.int("MaxEndpoints", c.MaxEndpoints, 1, 100_000, "1000")
	if err := c.Breaker.Validate(); err != nil {
		v.errs = append(v.errs, err)
	}
	if err := c.Bulkhead.Validate(); err != nil {
		v.errs = append(v.errs, err)
	}
	validateOverrides(&v, "Overrides", c.Overrides)
	validateOverrides(&v, "BulkheadOverrides", c.BulkheadOverrides)
	return v.err()
}

func validateOverrides[C interface{ Validate() error }](v *rangeCheck, field string, overrides map[string]C) {
	for name, o := range overrides {
		if err := ValidateEndpoint(name); err != nil {
			v.fail(field, name, err.Error())
		}
		if err := o.Validate(); err != nil {
			v.errs = append(v.errs, wrapField("ManagerConfig."+field+"["+name+"]", err))
		}
	}
}

// Manager is the registry of one service's breakers (the seed's
// CircuitBreakerManager): one per endpoint, created on first use from the
// default configuration or the endpoint's override, up to a bound. It holds
// no global state; make as many as you need.
type Manager struct {
	cfg       ManagerConfig
	clock     Clock
	bus       *events.Bus
	breakers  registry[*Breaker]
	bulkheads registry[*Bulkhead]
	hooks     []func(*Breaker) // under breakers.mu
}

// NewManager returns a Manager, or the configuration's validation error.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxEndpoints == 0 {
		cfg.MaxEndpoints = DefaultMaxEndpoints
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	if cfg.Bus == nil {
		cfg.Bus = events.NewBus()
	}
	m := &Manager{cfg: cfg, clock: cfg.Clock, bus: cfg.Bus}
	m.breakers.max = cfg.MaxEndpoints
	m.bulkheads.max = cfg.MaxEndpoints
	return m, nil
}

// Clock returns the clock the Manager gives its components.
func (m *Manager) Clock() Clock { return m.clock }

// Bus returns the bus every component publishes on.
func (m *Manager) Bus() *events.Bus { return m.bus }

// Breaker returns the endpoint's breaker, creating it on first use. It
// fails with ErrInvalidEndpoint for a bad name and ErrTooManyEndpoints past
// the bound.
func (m *Manager) Breaker(endpoint string) (*Breaker, error) {
	return m.breakers.get(endpoint, m.newBreaker)
}

func (m *Manager) newBreaker(endpoint string) (*Breaker, error) {
	cfg, ok := m.cfg.Overrides[endpoint]
	if !ok {
		cfg = m.cfg.Breaker
	}
	b, err := NewBreaker(endpoint, cfg, WithClock(m.clock), WithBus(m.bus))
	if err != nil {
		return nil, err
	}
	for _, h := range m.hooks { // newBreaker runs under breakers.mu
		h(b)
	}
	return b, nil
}

// OnBreaker calls fn for every breaker the Manager has and, from now on,
// for each new one before anyone else can use it: a store uses it to restore
// saved state and to follow transitions. fn must not call back into the
// Manager for a new endpoint.
func (m *Manager) OnBreaker(fn func(*Breaker)) {
	// Under the registry lock, every breaker is either made before the hook
	// is added (and passed below) or after (and passed at creation).
	m.breakers.mu.Lock()
	m.hooks = append(m.hooks, fn)
	existing := m.breakers.all()
	m.breakers.mu.Unlock()
	for _, b := range existing {
		fn(b)
	}
}

// Lookup returns the endpoint's breaker if it exists.
func (m *Manager) Lookup(endpoint string) (*Breaker, bool) { return m.breakers.lookup(endpoint) }

// Breakers returns every breaker, sorted by endpoint.
func (m *Manager) Breakers() []*Breaker { return m.breakers.all() }

// Snapshots returns a snapshot of every breaker, sorted by endpoint.
func (m *Manager) Snapshots() []Snapshot {
	bs := m.Breakers()
	out := make([]Snapshot, len(bs))
	for i, b := range bs {
		out[i] = b.Snapshot()
	}
	return out
}

// Bulkhead returns the endpoint's bulkhead, creating it on first use from
// ManagerConfig.Bulkhead or the endpoint's override. It fails like Breaker.
func (m *Manager) Bulkhead(endpoint string) (*Bulkhead, error) {
	return m.bulkheads.get(endpoint, func(name string) (*Bulkhead, error) {
		cfg, ok := m.cfg.BulkheadOverrides[name]
		if !ok {
			cfg = m.cfg.Bulkhead
		}
		return NewBulkhead(name, cfg, WithClock(m.clock))
	})
}

// LookupBulkhead returns the endpoint's bulkhead if it exists.
func (m *Manager) LookupBulkhead(endpoint string) (*Bulkhead, bool) {
	return m.bulkheads.lookup(endpoint)
}

// Bulkheads returns every endpoint bulkhead, sorted by endpoint.
func (m *Manager) Bulkheads() []*Bulkhead { return m.bulkheads.all() }

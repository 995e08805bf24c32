package core

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/check"
)

// ManagerConfig configures a Manager. The zero value is valid: every
// endpoint gets the default breaker and nothing else.
type ManagerConfig struct {
	// Defaults are the policies of every endpoint, for each policy an entry
	// of Endpoints leaves nil. Its nil fields mean the default breaker and
	// retry, and no bulkhead and no SLO.
	Defaults EndpointConfig
	// Endpoints gives some endpoints policies of their own, by name. A
	// policy set here replaces the one in Defaults as a whole: its zero
	// fields take the built-in defaults, not those of Defaults.
	Endpoints map[string]EndpointConfig
	// PerUser, when set, gives every user a bulkhead of their own across
	// all endpoints (see PerUser); nil means no per-user limits.
	PerUser *PerUserConfig
	// PerUserRateLimit, when set, gives every user a rate limit of their
	// own across all endpoints (see PerUserRateLimiter).
	PerUserRateLimit *PerUserRateLimitConfig
	// MaxEndpoints bounds the endpoints the Manager tracks; past it,
	// Endpoint returns ErrTooManyEndpoints. Default 1000; 1 to 100,000.
	MaxEndpoints int
	// Faults, when set, turns fault injection on (see StartFault) within
	// its limits, and starts its Experiments; nil leaves it off.
	Faults *FaultLimits
	// Clock is the clock of every component; nil means SystemClock.
	Clock Clock
	// Bus receives every component's events; nil means a new Bus.
	Bus *events.Bus
}

// EndpointConfig gives the policies of one endpoint. A nil field takes the
// policy of ManagerConfig.Defaults; to turn a default policy off for one
// endpoint, give it with Disabled set.
type EndpointConfig struct {
	// Breaker configures the endpoint's circuit breaker; every endpoint has
	// one (BreakerConfig.Disabled turns it off). Its Name, Clock and Bus
	// are the Manager's to set.
	Breaker *BreakerConfig
	// Bulkhead, when set, bounds the endpoint's concurrent calls. Its Name
	// and Clock are the Manager's to set.
	Bulkhead *BulkheadConfig
	// SLO, when set, tracks the endpoint's service level objective (the
	// answers of an inbound route, or of the dependency behind an outbound
	// endpoint) and trips its breaker when the error budget burns too fast
	// (see SLOConfig). Its Clock is the Manager's to set.
	SLO *SLOConfig
	// Retry is how calls to an outbound endpoint are retried (the HTTP
	// Transport uses it); every endpoint has one, by default 3 attempts.
	// Its Breaker and Clock are the Manager's to set.
	Retry *RetryConfig
	// RateLimit, when set, bounds the endpoint's calls per second. Its
	// Name and Clock are the Manager's to set.
	RateLimit *RateLimitConfig
	// Adaptive, when set, bounds the endpoint's concurrent calls by a limit
	// that follows their latency (see AdaptiveLimiter); it may replace the
	// Bulkhead or come before it. Its Name and Clock are the Manager's to
	// set.
	Adaptive *AdaptiveConfig
	// Timeout, when set, bounds how long the endpoint's calls may take.
	Timeout *TimeoutConfig
	// Hedge, when set, hedges an outbound endpoint's slow idempotent
	// calls.
	Hedge *HedgeConfig
}

// withPolicies returns, for each policy c sets, norm's version of it, and
// nil for the others.
func (c EndpointConfig) withPolicies(norm EndpointConfig) EndpointConfig {
	out := EndpointConfig{}
	if c.Breaker != nil {
		out.Breaker = norm.Breaker
	}
	if c.Bulkhead != nil {
		out.Bulkhead = norm.Bulkhead
	}
	if c.SLO != nil {
		out.SLO = norm.SLO
	}
	if c.Retry != nil {
		out.Retry = norm.Retry
	}
	if c.RateLimit != nil {
		out.RateLimit = norm.RateLimit
	}
	if c.Adaptive != nil {
		out.Adaptive = norm.Adaptive
	}
	if c.Timeout != nil {
		out.Timeout = norm.Timeout
	}
	if c.Hedge != nil {
		out.Hedge = norm.Hedge
	}
	return out
}

// merged returns c with every nil policy taken from d.
func (c EndpointConfig) merged(d EndpointConfig) EndpointConfig {
	if c.Breaker == nil {
		c.Breaker = d.Breaker
	}
	if c.Bulkhead == nil {
		c.Bulkhead = d.Bulkhead
	}
	if c.SLO == nil {
		c.SLO = d.SLO
	}
	if c.Retry == nil {
		c.Retry = d.Retry
	}
	if c.RateLimit == nil {
		c.RateLimit = d.RateLimit
	}
	if c.Adaptive == nil {
		c.Adaptive = d.Adaptive
	}
	if c.Timeout == nil {
		c.Timeout = d.Timeout
	}
	if c.Hedge == nil {
		c.Hedge = d.Hedge
	}
	return c
}

// normalize returns c with every policy it sets normalized, the Manager's
// clock and bus put in, and the default breaker when it sets none.
func (c EndpointConfig) normalize(ck *check.Checker, clock Clock, bus *events.Bus) EndpointConfig {
	br := BreakerConfig{}
	if c.Breaker != nil {
		br = *c.Breaker
	}
	br.Clock, br.Bus = clock, bus
	br = br.normalize(ck.Sub("Breaker"))
	c.Breaker = &br
	if c.Bulkhead != nil {
		bh := *c.Bulkhead
		bh.Clock = clock
		bh = bh.normalize(ck.Sub("Bulkhead"))
		c.Bulkhead = &bh
	}
	rc := RetryConfig{}
	if c.Retry != nil {
		rc = *c.Retry
	}
	rc.Clock = clock
	rc = rc.normalize(ck.Sub("Retry"))
	c.Retry = &rc
	if c.SLO != nil {
		slo := *c.SLO
		slo.Clock = clock
		slo = slo.normalize(ck.Sub("SLO"))
		c.SLO = &slo
	}
	if c.RateLimit != nil {
		rl := *c.RateLimit
		rl.Clock = clock
		rl = rl.normalize(ck.Sub("RateLimit"))
		c.RateLimit = &rl
	}
	if c.Adaptive != nil {
		a := *c.Adaptive
		a.Clock = clock
		a = a.normalize(ck.Sub("Adaptive"))
		c.Adaptive = &a
	}
	if c.Timeout != nil {
		t := c.Timeout.normalize(ck.Sub("Timeout"))
		c.Timeout = &t
	}
	if c.Hedge != nil {
		h := c.Hedge.normalize(ck.Sub("Hedge"))
		c.Hedge = &h
	}
	return c
}

// Manager keeps one service's endpoints: for each, a breaker and whatever
// other policies its configuration gives, created on first use, up to a
// bound. It holds no global state; make as many as you need.
type Manager struct {
	clock     Clock
	bus       *events.Bus
	defaults  EndpointConfig // normalized
	reconfMu  sync.Mutex     // serialises Reconfigure
	cfgMu     sync.Mutex
	overrides map[string]EndpointConfig // merged with defaults and normalized; under cfgMu
	perUser   *PerUserBulkhead
	userRate  *PerUserRateLimiter
	deadlines *deadlineWheel
	faults    faultSet
	endpoints registry[*Endpoint]
	hooks     []func(*Endpoint) // changed and called under endpoints' write lock
}

// NewManager returns a Manager, or every field of cfg that is out of range
// as *ConfigError values.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	c := newChecker("core.ManagerConfig.")
	c.Int("MaxEndpoints", &cfg.MaxEndpoints, 1000, 1, 100_000)
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	if cfg.Bus == nil {
		cfg.Bus = events.NewBus()
	}
	m := &Manager{clock: cfg.Clock, bus: cfg.Bus, overrides: make(map[string]EndpointConfig, len(cfg.Endpoints))}
	m.defaults = cfg.Defaults.normalize(c.Sub("Defaults"), cfg.Clock, cfg.Bus)
	for _, name := range slices.Sorted(maps.Keys(cfg.Endpoints)) {
		if err := ValidateEndpoint(name); err != nil {
			c.Fail("Endpoints", name, err.Error())
			continue
		}
		// Only the entry's own policies are checked here: those it inherits
		// were checked, and are reported, as Defaults.
		own := cfg.Endpoints[name].normalize(c.Sub(fmt.Sprintf("Endpoints[%s]", name)), cfg.Clock, cfg.Bus)
		m.overrides[name] = cfg.Endpoints[name].withPolicies(own).merged(m.defaults)
	}
	if cfg.PerUser != nil {
		pu := *cfg.PerUser
		pu.Clock = cfg.Clock
		pu = pu.normalize(c.Sub("PerUser"))
		if !c.Failed() {
			m.perUser = newPerUserBulkhead(pu)
		}
	}
	if cfg.PerUserRateLimit != nil {
		pr := *cfg.PerUserRateLimit
		pr.Clock = cfg.Clock
		pr = pr.normalize(c.Sub("PerUserRateLimit"))
		if !c.Failed() {
			m.userRate = newPerUserRateLimiter(pr)
		}
	}
	var exps []Fault
	m.faults, exps = newFaultSet(cfg.Faults, c.Sub("Faults"), cfg.Clock.Now())
	if err := c.Err(); err != nil {
		return nil, err
	}
	m.endpoints.m.Max = cfg.MaxEndpoints
	m.deadlines = systemDeadlines
	if cfg.Clock != SystemClock() {
		m.deadlines = newDeadlineWheel(cfg.Clock)
	}
	if err := m.startFaults(exps); err != nil {
		return nil, err
	}
	return m, nil
}

// Clock returns the clock the Manager gives its components.
func (m *Manager) Clock() Clock { return m.clock }

// Bus returns the bus every component publishes on.
func (m *Manager) Bus() *events.Bus { return m.bus }

// PerUser returns the per-user bulkhead shared by every endpoint, or nil
// when ManagerConfig.PerUser is not set.
func (m *Manager) PerUser() *PerUserBulkhead { return m.perUser }

// PerUserRateLimiter returns the per-user rate limiter shared by every
// endpoint, or nil when ManagerConfig.PerUserRateLimit is not set.
func (m *Manager) PerUserRateLimiter() *PerUserRateLimiter { return m.userRate }

// Endpoint returns the named endpoint, creating it on first use. It fails
// with ErrInvalidEndpoint for a bad name and ErrTooManyEndpoints past the
// bound.
func (m *Manager) Endpoint(name string) (*Endpoint, error) {
	return m.endpoints.get(name, m.newEndpoint)
}

// Lookup returns the named endpoint if it exists.
func (m *Manager) Lookup(name string) (*Endpoint, bool) { return m.endpoints.lookup(name) }

// Endpoints returns every endpoint, sorted by name.
func (m *Manager) Endpoints() []*Endpoint { return m.endpoints.all() }

// OnEndpoint calls fn for every endpoint the Manager has and, from now on,
// for each new one before anyone else can use it: stores use it to restore
// saved state and to follow transitions. fn must not ask the Manager for a
// new endpoint.
func (m *Manager) OnEndpoint(fn func(*Endpoint)) {
	// Under the lock creation runs under, every endpoint is either made
	// before the hook is added (and passed below) or after (and passed at
	// creation).
	var existing []*Endpoint
	m.endpoints.m.Locked(func() {
		m.hooks = append(m.hooks, fn)
		existing = m.endpoints.all()
	})
	for _, e := range existing {
		fn(e)
	}
}

// Reconfigure gives the named endpoint new policies while it runs, as an
// entry of ManagerConfig.Endpoints would (nil fields take the Defaults). The
// endpoint is made if it does not exist yet. Its breaker keeps its state,
// counts and window (a new RollingWindow or WindowBuckets starts the window
// again); its bulkhead keeps the slots held and the calls queued (a smaller
// limit is in full force once the calls in flight beyond it have ended);
// its retry policy keeps its counters; an SLO
// whose objective changed starts a new window. It reports every bad field
// of cfg as *ConfigError values (named "core.EndpointConfig.…"), and then
// changes nothing.
func (m *Manager) Reconfigure(name string, cfg EndpointConfig) error {
	if err := ValidateEndpoint(name); err != nil {
		return err
	}
	c := newChecker("core.EndpointConfig.")
	own := cfg.normalize(c, m.clock, m.bus)
	if err := c.Err(); err != nil {
		return err
	}
	norm := cfg.withPolicies(own).merged(m.defaults)
	m.reconfMu.Lock()
	defer m.reconfMu.Unlock()
	m.cfgMu.Lock()
	prev, had := m.overrides[name]
	m.overrides[name] = norm
	m.cfgMu.Unlock()
	e, err := m.Endpoint(name) // made now, it has norm already
	if err != nil {
		m.cfgMu.Lock()
		if had {
			m.overrides[name] = prev
		} else {
			delete(m.overrides, name)
		}
		m.cfgMu.Unlock()
		return err
	}
	e.apply(norm)
	return nil
}

// config returns the normalized configuration of the named endpoint.
func (m *Manager) config(name string) EndpointConfig {
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()
	if cfg, ok := m.overrides[name]; ok {
		return cfg
	}
	return m.defaults
}

// newEndpoint runs under the registry's write lock.
func (m *Manager) newEndpoint(name string) (*Endpoint, error) {
	cfg := m.config(name)
	e := newEndpoint(name, cfg, m)
	for _, h := range m.hooks {
		h(e)
	}
	return e, nil
}

package core

import (
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one endpoint's set of policies, made by a Manager: a circuit
// breaker and a retry policy always, and a bulkhead and an SLO tracker when
// its configuration gives them. The HTTP middleware and transport look it
// up once per request and apply each policy in turn.
type Endpoint struct {
	name    string
	breaker *Breaker
	// The policies that reconfiguration replaces, each read with one
	// atomic load.
	bulkhead atomic.Pointer[Bulkhead]
	slo      atomic.Pointer[SLOTracker]
	retry    atomic.Pointer[Retry]
	rate     atomic.Pointer[RateLimiter]
	adaptive atomic.Pointer[AdaptiveLimiter]
	timeout  atomic.Pointer[TimeoutConfig]
	hedge    atomic.Pointer[hedger]
	faults   atomic.Pointer[[]*faultRun] // nil: no experiment runs here

	// Every call writes the histogram: it sits on cache lines of its own,
	// so that the pointers above, read by every call, stay shared clean.
	_         [64]byte
	durations histogram
	_         [64]byte
	hedges    atomic.Uint64 // hedged attempts Hedge allowed, across reconfigurations

	mu  sync.Mutex // serialises reconfiguration
	cfg atomic.Pointer[EndpointConfig]
	m   *Manager
}

func newEndpoint(name string, cfg EndpointConfig, m *Manager) *Endpoint {
	br := *cfg.Breaker
	br.Name = name
	e := &Endpoint{name: name, breaker: newBreaker(br), m: m}
	e.apply(cfg)
	return e
}

// apply puts a normalized configuration in force. The breaker keeps its
// state and counts; a bulkhead keeps its slots and queue; a retry policy
// its counters. An SLO tracker whose objective changed starts afresh.
func (e *Endpoint) apply(cfg EndpointConfig) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.cfg.Load()
	if old != nil {
		e.breaker.reconfigure(*cfg.Breaker)
	}
	switch bh := e.bulkhead.Load(); {
	case cfg.Bulkhead == nil:
		e.bulkhead.Store(nil)
	case bh == nil:
		c := *cfg.Bulkhead
		c.Name = e.name
		e.bulkhead.Store(newBulkhead(c))
	default:
		bh.reconfigure(*cfg.Bulkhead)
	}
	switch {
	case cfg.SLO == nil || cfg.SLO.Disabled:
		e.slo.Store(nil)
	case old == nil || old.SLO == nil || !sameSLO(*old.SLO, *cfg.SLO):
		t := newSLOTracker(*cfg.SLO)
		t.burn = &sloBurn{endpoint: e.name, breaker: e.breaker, bus: e.m.bus, clock: e.m.clock}
		e.slo.Store(t)
	}
	switch l := e.rate.Load(); {
	case cfg.RateLimit == nil:
		e.rate.Store(nil)
	case l == nil:
		c := *cfg.RateLimit
		c.Name = e.name
		e.rate.Store(newRateLimiter(c))
	default:
		l.reconfigure(*cfg.RateLimit)
	}
	switch l := e.adaptive.Load(); {
	case cfg.Adaptive == nil || cfg.Adaptive.Disabled:
		e.adaptive.Store(nil)
	case l == nil:
		c := *cfg.Adaptive
		c.Name = e.name
		e.adaptive.Store(newAdaptiveLimiter(c))
	default:
		l.reconfigure(*cfg.Adaptive)
	}
	if t := cfg.Timeout; t == nil || t.Disabled || t.Request == 0 && t.Attempt == 0 {
		e.timeout.Store(nil)
	} else {
		e.timeout.Store(ptr(*t))
	}
	if h := cfg.Hedge; h == nil || h.Disabled {
		e.hedge.Store(nil)
	} else if old := e.hedge.Load(); old == nil || old.cfg != *h {
		e.hedge.Store(newHedger(*h, e.m.clock))
	}
	rc := *cfg.Retry
	rc.Breaker = e.breaker
	var stats *retryStats
	if r := e.retry.Load(); r != nil {
		stats = r.stats
	}
	e.retry.Store(newRetry(rc, stats))
	e.cfg.Store(&cfg)
}

func sameSLO(a, b SLOConfig) bool {
	a.Clock, b.Clock = nil, nil
	return a == b
}

// Name returns the endpoint's name.
func (e *Endpoint) Name() string { return e.name }

// Config returns the endpoint's policies in effect, defaults filled in; a
// nil field is a policy the endpoint does not have.
func (e *Endpoint) Config() EndpointConfig {
	c := *e.cfg.Load()
	// Copies: the stored policies are shared with the Manager's defaults
	// and other endpoints, which a caller's change must not reach.
	c.Breaker = ptr(e.breaker.Config())
	if c.Bulkhead != nil {
		c.Bulkhead = ptr(*c.Bulkhead)
	}
	if c.SLO != nil {
		c.SLO = ptr(*c.SLO)
	}
	if c.Retry != nil {
		c.Retry = ptr(*c.Retry)
	}
	if c.RateLimit != nil {
		c.RateLimit = ptr(*c.RateLimit)
	}
	if c.Adaptive != nil {
		a := *c.Adaptive
		a.PriorityShares = append([]float64(nil), a.PriorityShares...)
		c.Adaptive = &a
	}
	if c.Timeout != nil {
		c.Timeout = ptr(*c.Timeout)
	}
	if c.Hedge != nil {
		c.Hedge = ptr(*c.Hedge)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// Breaker returns the endpoint's circuit breaker.
func (e *Endpoint) Breaker() *Breaker { return e.breaker }

// Retry returns the endpoint's retry policy, which goes through its
// breaker.
func (e *Endpoint) Retry() *Retry { return e.retry.Load() }

// RateLimiter returns the endpoint's rate limiter, or nil when it has none.
func (e *Endpoint) RateLimiter() *RateLimiter { return e.rate.Load() }

// Adaptive returns the endpoint's adaptive concurrency limiter, or nil
// when it has none.
func (e *Endpoint) Adaptive() *AdaptiveLimiter { return e.adaptive.Load() }

// Timeout returns the endpoint's timeouts; the zero TimeoutConfig when it
// has none.
func (e *Endpoint) Timeout() TimeoutConfig {
	if t := e.timeout.Load(); t != nil {
		return *t
	}
	return TimeoutConfig{}
}

// Bulkhead returns the endpoint's bulkhead, or nil when it has none.
func (e *Endpoint) Bulkhead() *Bulkhead { return e.bulkhead.Load() }

// SLO returns the endpoint's SLO tracker, or nil when it has none. Its
// Record trips the endpoint's breaker when the burn rule starts firing and
// publishes an events.SLOBurn on the Manager's bus when it starts and ends.
// Record only calls that ran: a call a policy refused says nothing about
// the service, and counting it would hold the SLO in violation while the
// breaker is open.
func (e *Endpoint) SLO() *SLOTracker { return e.slo.Load() }

// ObserveDuration adds a call's duration to the endpoint's latency
// histogram. The HTTP middleware and transport call it once per call; it
// takes no lock and allocates nothing.
func (e *Endpoint) ObserveDuration(d time.Duration) { e.durations.Observe(d) }

// Durations returns the latency histogram fed by ObserveDuration.
func (e *Endpoint) Durations() HistogramSnapshot { return e.durations.Snapshot() }

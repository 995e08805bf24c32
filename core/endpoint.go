package core

import "time"

// Endpoint is one endpoint's set of policies, made by a Manager: a circuit
// breaker always, and a bulkhead and an SLO tracker when its configuration
// gives them. The HTTP middleware and transport look it up once per
// request and apply each policy in turn.
type Endpoint struct {
	name      string
	cfg       EndpointConfig // normalized
	breaker   *Breaker
	bulkhead  *Bulkhead
	slo       *SLOTracker
	durations histogram
}

func newEndpoint(name string, cfg EndpointConfig, m *Manager) *Endpoint {
	e := &Endpoint{name: name, cfg: cfg}
	br := *cfg.Breaker
	br.Name = name
	e.breaker = newBreaker(br)
	if cfg.Bulkhead != nil {
		bh := *cfg.Bulkhead
		bh.Name = name
		e.bulkhead = newBulkhead(bh)
	}
	if cfg.SLO != nil {
		e.slo = newSLOTracker(*cfg.SLO)
		e.slo.burn = &sloBurn{endpoint: name, breaker: e.breaker, bus: m.bus, clock: m.clock}
	}
	return e
}

// Name returns the endpoint's name.
func (e *Endpoint) Name() string { return e.name }

// Config returns the endpoint's policies in effect, defaults filled in; a
// nil field is a policy the endpoint does not have.
func (e *Endpoint) Config() EndpointConfig {
	c := e.cfg
	c.Breaker = ptr(e.breaker.Config())
	return c
}

func ptr[T any](v T) *T { return &v }

// Breaker returns the endpoint's circuit breaker.
func (e *Endpoint) Breaker() *Breaker { return e.breaker }

// Bulkhead returns the endpoint's bulkhead, or nil when it has none.
func (e *Endpoint) Bulkhead() *Bulkhead { return e.bulkhead }

// SLO returns the endpoint's SLO tracker, or nil when it has none. Its
// Record trips the endpoint's breaker when the burn rule starts firing and
// publishes an events.SLOBurn on the Manager's bus when it starts and ends.
// Record only calls that ran: a call a policy refused says nothing about
// the service, and counting it would hold the SLO in violation while the
// breaker is open.
func (e *Endpoint) SLO() *SLOTracker { return e.slo }

// ObserveDuration adds a call's duration to the endpoint's latency
// histogram. The HTTP middleware and transport call it once per call; it
// takes no lock and allocates nothing.
func (e *Endpoint) ObserveDuration(d time.Duration) { e.durations.Observe(d) }

// Durations returns the latency histogram fed by ObserveDuration.
func (e *Endpoint) Durations() HistogramSnapshot { return e.durations.Snapshot() }

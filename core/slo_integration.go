package core

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// BreakerSource yields the breaker of an endpoint. *Manager satisfies it.
type BreakerSource interface {
	Breaker(endpoint string) (*Breaker, error)
}

// SLOGuardConfig configures an SLOGuard. The zero value is valid.
type SLOGuardConfig struct {
	// SLO is the objective of every endpoint without an override.
	SLO SLOConfig
	// Overrides gives whole objectives for some endpoints. An override does
	// not inherit from SLO: its zero fields take the defaults.
	Overrides map[string]SLOConfig
	// MaxEndpoints bounds the endpoints tracked; past it, recording a new
	// endpoint fails with ErrTooManyEndpoints. Default 1000; 1 to 100,000.
	MaxEndpoints int
}

// Validate checks the default objective, every override and the bound.
func (c SLOGuardConfig) Validate() error {
	v := rangeCheck{prefix: "SLOGuardConfig."}
	v.int("MaxEndpoints", c.MaxEndpoints, 1, 100_000, "1000")
	if err := c.SLO.validate("SLOGuardConfig.SLO."); err != nil {
		v.errs = append(v.errs, err)
	}
	for name, o := range c.Overrides {
		if err := ValidateEndpoint(name); err != nil {
			v.fail("Overrides", name, err.Error())
		}
		if err := o.validate("SLOGuardConfig.Overrides[" + name + "]."); err != nil {
			v.errs = append(v.errs, err)
		}
	}
	return v.err()
}

// SLOGuard is the seed's SLOCircuitBreakerIntegration: it tracks an SLO per
// endpoint and trips the endpoint's breaker when the error budget burns too
// fast.
//
// The trigger is the multi-window burn-rate rule of the Google SRE workbook
// (see SLOConfig): the breaker trips only when both the long and the short
// window burn at BurnRateThreshold or faster over at least MinEvents calls,
// never merely because the budget is spent. When the rule starts firing the
// guard calls Breaker.Trip once and publishes an events.SLOBurn with
// Burning true; when the short window's burn rate falls back below the
// threshold it publishes one with Burning false.
//
// The rule is evaluated when calls are recorded and when Status is read; no
// goroutine runs. Record only calls that ran: a call the breaker rejected
// says nothing about the service, and counting it would hold the SLO in
// violation while the breaker is open.
type SLOGuard struct {
	cfg      SLOGuardConfig
	src      BreakerSource
	clock    Clock
	bus      *events.Bus
	trackers registry[*sloEntry]
}

type sloEntry struct {
	endpoint string
	tracker  *SLOTracker
	burning  atomic.Bool
	// nextEval is the nanotime after which a success may re-evaluate the
	// rule; successes can only clear a burn, so they need not check often.
	nextEval atomic.Int64
	// mu serialises transitions so that their events keep their order. It
	// is only tried, never waited on: a breaker listener that records a
	// call while a transition runs must not deadlock.
	mu      sync.Mutex
	breaker *Breaker // under mu
}

// NewSLOGuard returns a guard that trips breakers from src. When src also
// has Clock() and Bus() methods (as *Manager does), the guard uses its clock
// and bus unless WithClock or WithBus say otherwise; without a bus no events
// are published.
func NewSLOGuard(src BreakerSource, cfg SLOGuardConfig, opts ...Option) (*SLOGuard, error) {
	if src == nil {
		return nil, &ConfigError{Field: "SLOGuard source", Value: nil, Rule: "must not be nil"}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxEndpoints == 0 {
		cfg.MaxEndpoints = DefaultMaxEndpoints
	}
	d := deps{clock: SystemClock()}
	if s, ok := src.(interface{ Clock() Clock }); ok && s.Clock() != nil {
		d.clock = s.Clock()
	}
	if s, ok := src.(interface{ Bus() *events.Bus }); ok {
		d.bus = s.Bus()
	}
	for _, o := range opts {
		o(&d)
	}
	g := &SLOGuard{cfg: cfg, src: src, clock: d.clock, bus: d.bus}
	g.trackers.max = cfg.MaxEndpoints
	return g, nil
}

// RecordRequest records one call to endpoint that ran (the seed's
// record_request) and trips the endpoint's breaker if the burn rule starts
// firing. The endpoint's tracker is made on first use from its override or
// the default objective. It fails with ErrInvalidEndpoint for a bad name,
// ErrTooManyEndpoints past the bound, or the source's error when the
// breaker to trip cannot be had.
func (g *SLOGuard) RecordRequest(endpoint string, success bool) error {
	e, err := g.trackers.get(endpoint, g.newEntry)
	if err != nil {
		return err
	}
	return g.record(e, success)
}

// RecordRequestWith is RecordRequest with the objective to use if this call
// makes the endpoint's tracker, matching the seed's
// record_request(endpoint, success, config). The objective applies only on
// first use of the endpoint, ahead of any override; once the tracker exists
// cfg is ignored. An invalid cfg is an error and the call is not recorded.
func (g *SLOGuard) RecordRequestWith(endpoint string, success bool, cfg SLOConfig) error {
	e, err := g.trackers.get(endpoint, func(name string) (*sloEntry, error) {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return g.entry(name, cfg), nil
	})
	if err != nil {
		return err
	}
	return g.record(e, success)
}

func (g *SLOGuard) newEntry(name string) (*sloEntry, error) {
	cfg, ok := g.cfg.Overrides[name]
	if !ok {
		cfg = g.cfg.SLO
	}
	return g.entry(name, cfg), nil
}

func (g *SLOGuard) entry(name string, cfg SLOConfig) *sloEntry {
	return &sloEntry{endpoint: name, tracker: newSLOTracker(cfg.withDefaults(), g.clock)}
}

func (g *SLOGuard) record(e *sloEntry, success bool) error {
	e.tracker.Record(success)
	// Only a failure can start a burn and only a success can end one; either
	// way the rule (which scans the window) runs at most once per bucket, so
	// a burn is seen at most one bucket (ShortWindow/10) late and a failing
	// request costs no more than a successful one.
	if e.burning.Load() != success {
		return nil
	}
	now := g.clock.Nanotime()
	next := e.nextEval.Load()
	if now < next || !e.nextEval.CompareAndSwap(next, now+int64(e.tracker.width)) {
		return nil
	}
	_, err := g.evaluate(e)
	return err
}

// evaluate reads the tracker and applies a change of the burn rule.
func (g *SLOGuard) evaluate(e *sloEntry) (SLOStatus, error) {
	s := e.tracker.Status()
	s.Endpoint = e.endpoint
	burning := e.burning.Load()
	cfg := &e.tracker.cfg
	starts := !burning && s.Burning
	ends := burning && s.ShortBurnRate < cfg.BurnRateThreshold
	if (!starts && !ends) || !e.mu.TryLock() {
		return s, nil
	}
	defer e.mu.Unlock()
	if e.burning.Load() != burning { // another caller got here first
		return s, nil
	}
	e.burning.Store(starts)
	now := g.clock.Now().UTC()
	var reason string
	var err error
	if starts {
		reason = fmt.Sprintf("SLO %.2f%% burning %.1fx over %s and %.1fx over %s",
			100*cfg.TargetSuccessRate, s.LongBurnRate, shortDuration(cfg.LongWindow), s.ShortBurnRate, shortDuration(cfg.ShortWindow))
		if e.breaker == nil {
			e.breaker, err = g.src.Breaker(e.endpoint)
		}
		if e.breaker != nil {
			e.breaker.Trip(reason)
		}
	} else {
		reason = fmt.Sprintf("SLO %.2f%% burn cleared: %.1fx over %s", 100*cfg.TargetSuccessRate, s.ShortBurnRate, shortDuration(cfg.ShortWindow))
	}
	if g.bus != nil {
		g.bus.Publish(events.SLOBurn{
			Type:            events.TypeSLOBurn,
			Endpoint:        e.endpoint,
			Burning:         starts,
			SuccessRate:     s.SuccessRate,
			BudgetRemaining: s.ErrorBudgetRemaining,
			LongBurnRate:    s.LongBurnRate,
			ShortBurnRate:   s.ShortBurnRate,
			Timestamp:       now,
			Reason:          reason,
		})
	}
	return s, err
}

// Status returns the endpoint's SLO reading (the seed's get_slo_status),
// or false when the endpoint has recorded nothing. Like a record, it applies
// a change of the burn rule, so that a burn is seen to clear even when no
// calls come in.
func (g *SLOGuard) Status(endpoint string) (SLOStatus, bool) {
	e, ok := g.trackers.lookup(endpoint)
	if !ok {
		return SLOStatus{}, false
	}
	s, _ := g.evaluate(e)
	return s, true
}

// Statuses returns the reading of every tracked endpoint, sorted by
// endpoint.
func (g *SLOGuard) Statuses() []SLOStatus {
	es := g.trackers.all()
	out := make([]SLOStatus, len(es))
	for i, e := range es {
		out[i], _ = g.evaluate(e)
	}
	return out
}

// Tracker returns the endpoint's tracker, if it has one.
func (g *SLOGuard) Tracker(endpoint string) (*SLOTracker, bool) {
	e, ok := g.trackers.lookup(endpoint)
	if !ok {
		return nil, false
	}
	return e.tracker, true
}

// shortDuration prints d without trailing zero units: 5m, not 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

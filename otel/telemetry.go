package bulwarkotel

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
	"github.com/bulwark-go/bulwark/internal/cowmap"
)

// scope is the instrumentation scope of every instrument: the package's
// import path, as OpenTelemetry asks of instrumentation libraries.
const scope = "github.com/bulwark-go/bulwark/otel"

// Config says what a Telemetry reports and where.
type Config struct {
	// Manager supplies the endpoints: their breakers, bulkheads, SLOs and
	// retries, and the per-user bulkhead. Required.
	Manager *core.Manager
	// MeterProvider makes the instruments. Nil means otel.GetMeterProvider(),
	// the global provider, which follows one set later with
	// otel.SetMeterProvider.
	MeterProvider metric.MeterProvider
	// NoSpanEvents keeps the Observer away from spans, so that it only
	// records durations. By default it adds events (and, to a refused
	// request's span, attributes) to the request's current span whenever
	// that span is recording.
	NoSpanEvents bool
	// Exemplars records each duration with the request's context, at once,
	// so that the SDK can attach exemplars (a sampled request's trace and
	// span) to bulwark.request.duration. By default durations go without
	// the context and carry no exemplar: they are kept per processor and
	// recorded in runs, at the latest when the provider collects, which
	// spares every call the SDK's shared counters. With Exemplars each call
	// writes those counters itself, and the SDK reads the clock and stores
	// the exemplar on every sampled request.
	Exemplars bool
}

// Telemetry reports a Manager's endpoints through OpenTelemetry: its
// observable instruments read the Manager's snapshots when the
// MeterProvider collects, and its Observer records durations and adds
// span events on the request path. Make one per Manager and
// MeterProvider.
type Telemetry struct {
	m         *core.Manager
	spans     bool
	inst      instruments
	durations *durationBatches // nil with Exemplars: each duration needs its request's context
	reg       metric.Registration
	closed    atomic.Bool
	once      sync.Once
	err       error
	// series holds each endpoint's attribute sets, made once. Only names
	// the Manager knows get an entry, so the Manager's bound is its bound.
	series cowmap.Map[string, *series]
}

// New returns a Telemetry for cfg, or its problems as *core.ConfigError
// values. Its instruments report from the first collection on, endpoints
// made later included.
func New(cfg Config) (*Telemetry, error) {
	c := check.New("bulwarkotel.Config.", func(f string, v any, r string) error { return &core.ConfigError{Field: f, Value: v, Rule: r} })
	if cfg.Manager == nil {
		c.Fail("Manager", nil, "is required")
	}
	if isNil(cfg.MeterProvider) {
		c.Fail("MeterProvider", cfg.MeterProvider, "is a nil "+reflect.TypeOf(cfg.MeterProvider).String()+": leave MeterProvider nil for otel.GetMeterProvider()")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &Telemetry{m: cfg.Manager, spans: !cfg.NoSpanEvents}
	// Only the Manager's endpoints get an entry, and it has 100,000 at
	// most: this bound is never the one that binds.
	t.series.Max = 100_000
	if !cfg.Exemplars {
		t.durations = newDurationBatches(t.recordDuration)
	}
	meter := mp.Meter(scope)
	if err := t.inst.create(meter); err != nil {
		return nil, fmt.Errorf("bulwarkotel: creating instruments: %w", err)
	}
	reg, err := meter.RegisterCallback(t.collect, t.inst.observables()...)
	if err != nil {
		return nil, fmt.Errorf("bulwarkotel: registering the collection callback: %w", err)
	}
	t.reg = reg
	return t, nil
}

// Close unregisters the instruments' callback, so that they report
// nothing more, and stops the Observer. A second call returns nil at once.
func (t *Telemetry) Close(context.Context) error {
	first := false
	t.once.Do(func() {
		first = true
		t.closed.Store(true)
		if t.durations != nil {
			t.durations.close()
		}
		t.err = t.reg.Unregister()
	})
	if !first {
		return nil
	}
	if t.err != nil {
		return fmt.Errorf("bulwarkotel: unregistering the collection callback: %w", t.err)
	}
	return nil
}

// Observer returns the nethttp.Observer to set on nethttp.Config.Observer
// and nethttp.TransportConfig.Observer. It records each call's duration
// in bulwark.request.duration (for the Manager's endpoints) and, unless
// Config.NoSpanEvents, adds events to the request's current span, the one
// the application's tracing made: a rejection, each outbound attempt, a
// breaker transition the request caused. Bulwark makes no span of its own.
func (t *Telemetry) Observer() nethttp.Observer { return observer{t} }

// seriesOf returns the attribute sets of the named endpoint, or nil when
// the Manager has no such endpoint.
func (t *Telemetry) seriesOf(name string) *series {
	if s, ok := t.series.Load(name); ok {
		return s
	}
	if _, ok := t.m.Lookup(name); !ok {
		return nil
	}
	s, err := t.series.LoadOrCreate(name, func(name string) (*series, error) { return newSeries(name), nil })
	if err != nil {
		return nil
	}
	return s
}

// isNil reports whether mp holds a nil pointer, func, map, chan or slice:
// a typed nil that would panic on first use.
func isNil(mp metric.MeterProvider) bool {
	if mp == nil {
		return false
	}
	switch v := reflect.ValueOf(mp); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

package bulwarkotel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/core"
)

// configFields returns the Field of every *core.ConfigError joined in err,
// sorted.
func configFields(err error) []string {
	var fields []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *core.ConfigError
		if errors.As(e, &ce) {
			fields = append(fields, ce.Field)
		}
	}
	walk(err)
	slices.Sort(fields)
	return fields
}

func TestConfigErrors(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	var nilProvider *sdkmetric.MeterProvider
	for _, c := range []struct {
		name   string
		cfg    Config
		fields []string // nil: valid
	}{
		{"no Manager", Config{}, []string{"bulwarkotel.Config.Manager"}},
		{"typed-nil MeterProvider", Config{Manager: m, MeterProvider: nilProvider}, []string{"bulwarkotel.Config.MeterProvider"}},
		{"every bad field", Config{MeterProvider: nilProvider, NoSpanEvents: true}, []string{"bulwarkotel.Config.Manager", "bulwarkotel.Config.MeterProvider"}},
		{"the global MeterProvider", Config{Manager: m}, nil},
		{"a MeterProvider", Config{Manager: m, MeterProvider: sdkmetric.NewMeterProvider()}, nil},
		{"no span events", Config{Manager: m, NoSpanEvents: true}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			tel, err := New(c.cfg)
			if c.fields == nil {
				if err != nil {
					t.Fatalf("a valid config refused: %v", err)
				}
				if err := tel.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *core.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, core.ErrInvalidConfig) {
				t.Fatalf("error %v (%T), want *core.ConfigError values", err, err)
			}
			if got := configFields(err); !slices.Equal(got, c.fields) {
				t.Fatalf("fields %q, want %q (error: %v)", got, c.fields, err)
			}
		})
	}
}

// documented is one row of METRICS.md's instrument table.
type documented struct {
	name, kind, unit string
	attrs            []string
}

// readMetricsDoc returns the rows of METRICS.md's instrument table: the
// one whose header starts with "| Instrument |".
func readMetricsDoc(t *testing.T) []documented {
	return readInstrumentTable(t, "METRICS.md", "| Instrument |")
}

// readInstrumentTable returns the rows of the instrument table in file
// whose header line starts with header; its columns are name, kind, unit,
// attributes and the Prometheus twin.
func readInstrumentTable(t *testing.T, file, header string) []documented {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	var rows []documented
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, header):
			in = true
			continue
		case !strings.HasPrefix(l, "|"):
			in = false
		}
		if !in || strings.HasPrefix(l, "| ---") {
			continue
		}
		cells := strings.Split(l, "|")
		if len(cells) != 7 {
			t.Fatalf("%s: row with %d cells: %q", file, len(cells), l)
		}
		d := documented{name: code.FindStringSubmatch(cells[1])[1], kind: strings.TrimSpace(cells[2]), unit: code.FindStringSubmatch(cells[3])[1]}
		for _, m := range code.FindAllStringSubmatch(cells[4], -1) {
			d.attrs = append(d.attrs, m[1])
		}
		slices.Sort(d.attrs)
		rows = append(rows, d)
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no instrument table", file)
	}
	return rows
}

// kindOf names the instrument type that makes data d, as METRICS.md does.
func kindOf(d metricdata.Aggregation) string {
	switch d := d.(type) {
	case metricdata.Histogram[float64]:
		if d.Temporality == metricdata.CumulativeTemporality {
			return "Float64Histogram"
		}
	case metricdata.Sum[int64]:
		switch {
		case d.Temporality != metricdata.CumulativeTemporality:
		case d.IsMonotonic:
			return "Int64ObservableCounter"
		default:
			return "Int64ObservableUpDownCounter"
		}
	case metricdata.Sum[float64]:
		if d.IsMonotonic && d.Temporality == metricdata.CumulativeTemporality {
			return "Float64ObservableCounter"
		}
	case metricdata.Gauge[float64]:
		return "Float64ObservableGauge"
	}
	return fmt.Sprintf("unexpected %T", d)
}

// keysOf returns every attribute key of every data point of d, sorted.
func keysOf(d metricdata.Aggregation) []string {
	var sets []attribute.Set
	switch d := d.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	var keys []string
	for _, s := range sets {
		for _, kv := range s.ToSlice() {
			if !slices.Contains(keys, string(kv.Key)) {
				keys = append(keys, string(kv.Key))
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// usedManager returns a Manager whose every policy has been used, so that
// every instrument has data, and a Telemetry over it made before any
// endpoint: endpoints made later must appear.
func usedManager(t *testing.T) (*core.Manager, *Telemetry, *sdkmetric.ManualReader) {
	t.Helper()
	one := core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}
	noWait := func(int, error) (time.Duration, bool) { return 0, true }
	clock := core.NewFakeClock(t0)
	m := newManager(t, core.ManagerConfig{
		Clock: clock,
		Endpoints: map[string]core.EndpointConfig{
			"GET /x": {Bulkhead: &one, SLO: &core.SLOConfig{ErrorBudgetPercent: 20}, RateLimit: &core.RateLimitConfig{Rate: 1, Burst: 1}},
			"payments": {Breaker: &core.BreakerConfig{FailureThreshold: 2}, Retry: &core.RetryConfig{MaxAttempts: 3, Delay: noWait},
				Hedge: &core.HedgeConfig{Delay: time.Millisecond}},
			"POST /batch": {Adaptive: &core.AdaptiveConfig{MinLimit: 1, MaxLimit: 1, SampleWindow: time.Millisecond}},
		},
		PerUser:          &core.PerUserConfig{Bulkhead: one},
		PerUserRateLimit: &core.PerUserRateLimitConfig{RateLimit: core.RateLimitConfig{Rate: 1, Burst: 1}},
		Faults:           &core.FaultLimits{},
	})
	tel, r := newTelemetry(t, Config{Manager: m})
	injectOnce(t, m, "payments", core.Fault{Percent: 100, Status: 503})
	x := endpoint(t, m, "GET /x")
	g, _ := x.Bulkhead().TryAcquire()
	t.Cleanup(g.Release)
	_, _ = x.Bulkhead().TryAcquire() // rejected
	x.SLO().Record(true)
	x.Breaker().Trip("test")
	ug, _ := m.PerUser().TryAcquire("alice")
	t.Cleanup(ug.Release)
	_, _ = m.PerUser().TryAcquire("alice") // rejected
	pay := endpoint(t, m, "payments")
	_ = pay.Retry().Do(context.Background(), func(context.Context) error { return errors.New("down") })
	_ = x.RateLimiter().Allow()
	_ = x.RateLimiter().Allow() // refused
	_ = m.PerUserRateLimiter().Allow("alice")
	_ = m.PerUserRateLimiter().Allow("alice") // refused
	batch := endpoint(t, m, "POST /batch").Adaptive()
	for range 40 { // past a sample window: the baseline is known
		p, err := batch.TryAcquire(0)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Millisecond)
		p.Done(core.Success, 5*time.Millisecond)
	}
	p, _ := batch.TryAcquire(0)
	t.Cleanup(func() { p.Done(core.Success, time.Millisecond) })
	_, _ = batch.TryAcquire(0) // shed
	obs := tel.Observer()
	obs.Done(context.Background(), "GET /x", core.Success, 20*time.Millisecond)
	return m, tel, r
}

// Every instrument METRICS.md lists is reported with its type, unit and
// attributes, and nothing else is.
func TestInstrumentsMatchTheirDocumentation(t *testing.T) {
	_, _, r := usedManager(t)
	got := map[string]metricdata.Metrics{}
	for _, m := range collect(t, r) {
		got[m.Name] = m
	}
	doc := readMetricsDoc(t)
	for _, d := range doc {
		m, ok := got[d.name]
		if !ok {
			t.Errorf("%s: documented, not reported", d.name)
			continue
		}
		delete(got, d.name)
		if m.Unit != d.unit {
			t.Errorf("%s: unit %q, documented %q", d.name, m.Unit, d.unit)
		}
		if k := kindOf(m.Data); k != d.kind {
			t.Errorf("%s: %s, documented %s", d.name, k, d.kind)
		}
		if k := keysOf(m.Data); !slices.Equal(k, d.attrs) {
			t.Errorf("%s: attributes %q, documented %q", d.name, k, d.attrs)
		}
		if m.Description == "" {
			t.Errorf("%s: no description", d.name)
		}
	}
	for name := range got {
		t.Errorf("%s: reported, not documented", name)
	}
}

// The README's instrument table lists what METRICS.md lists: the same
// instruments, in the same order, with the same units and attributes.
func TestREADMEListsEveryInstrument(t *testing.T) {
	got := readInstrumentTable(t, "../README.md", "| instrument |")
	want := readMetricsDoc(t)
	if len(got) != len(want) {
		t.Fatalf("README lists %d instruments, METRICS.md %d", len(got), len(want))
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].unit != want[i].unit || !slices.Equal(got[i].attrs, want[i].attrs) {
			t.Errorf("row %d: README %+v, METRICS.md %+v", i, got[i], want[i])
		}
	}
}

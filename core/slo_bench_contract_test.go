package core

import (
	"testing"
	"time"
)

// A failed request must cost about what a success does: the burn rule,
// which scans the window, is evaluated at most once per bucket either way.
// A 99% budget keeps the rule from ever firing.
func benchSLOGuard(b *testing.B, cfg SLOConfig, success bool) {
	clk := NewFakeClock(time.Now())
	clk.Advance(8 * 24 * time.Hour) // a process that has run for a while: the whole ring is scanned
	m, err := NewManager(ManagerConfig{Defaults: EndpointConfig{SLO: &cfg}, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	e, err := m.Endpoint("api")
	if err != nil {
		b.Fatal(err)
	}
	slo := e.SLO()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		slo.Record(success)
	}
}

var (
	sloDefault = SLOConfig{ErrorBudgetPercent: 99}
	slo4096    = SLOConfig{ErrorBudgetPercent: 99, Window: 7 * 24 * time.Hour, ShortWindow: 7 * 24 * time.Hour / 400}
)

func BenchmarkSLOGuardDefaultFailure(b *testing.B) { benchSLOGuard(b, sloDefault, false) }
func BenchmarkSLOGuardDefaultSuccess(b *testing.B) { benchSLOGuard(b, sloDefault, true) }
func BenchmarkSLOGuard4096Failure(b *testing.B)    { benchSLOGuard(b, slo4096, false) }
func BenchmarkSLOGuard4096Success(b *testing.B)    { benchSLOGuard(b, slo4096, true) }

// BenchmarkSLOGuardRecord records successes on an endpoint's tracker from
// every core at once.
func BenchmarkSLOGuardRecord(b *testing.B) {
	m, _ := NewManager(ManagerConfig{Defaults: EndpointConfig{SLO: &SLOConfig{}}})
	e, _ := m.Endpoint("api")
	slo := e.SLO()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			slo.Record(true)
		}
	})
}

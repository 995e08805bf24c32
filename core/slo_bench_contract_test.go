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
	m, err := NewManager(ManagerConfig{Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	g, err := NewSLOGuard(m, SLOGuardConfig{SLO: cfg})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = g.RecordRequest("api", success)
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

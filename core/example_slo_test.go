package core_test

import (
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// Track a 99% objective over five minutes.
func ExampleSLOTracker() {
	tracker, err := core.NewSLOTracker(core.SLOConfig{
		TargetSuccessRate: 0.99,
		Window:            5 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	for i := range 200 {
		tracker.Record(i%100 != 0) // 2 failures in 200 calls
	}
	fmt.Printf("success rate %.2f%%, budget left %.0f%%, violated %v\n",
		100*tracker.SuccessRate(), tracker.ErrorBudgetRemaining(), tracker.Violated())
	tracker.Record(false)
	fmt.Printf("success rate %.2f%%, budget left %.0f%%, violated %v\n",
		100*tracker.SuccessRate(), tracker.ErrorBudgetRemaining(), tracker.Violated())
	// Output:
	// success rate 99.00%, budget left 0%, violated false
	// success rate 98.51%, budget left -49%, violated true
}

// An SLOGuard trips an endpoint's breaker when its error budget burns fast.
func ExampleSLOGuard() {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	manager, _ := core.NewManager(core.ManagerConfig{Clock: clock})
	guard, _ := core.NewSLOGuard(manager, core.SLOGuardConfig{
		SLO: core.SLOConfig{TargetSuccessRate: 0.99, Window: 5 * time.Minute},
	})

	// Record only the calls that ran, never the ones the breaker rejected.
	for range 20 {
		_ = guard.RecordRequest("api-service", false)
		clock.Advance(time.Second)
	}
	status, _ := guard.Status("api-service")
	breaker, _ := manager.Lookup("api-service")
	fmt.Printf("success rate %.0f%%, burning %v\n", 100*status.SuccessRate, status.Burning)
	fmt.Println(breaker.State(), breaker.Snapshot().Reason)
	// Output:
	// success rate 0%, burning true
	// Open SLO 99.00% burning 100.0x over 5m and 100.0x over 25s
}

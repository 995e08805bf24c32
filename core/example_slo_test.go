package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
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
	show := func() {
		s := tracker.Status()
		fmt.Printf("success rate %.2f%%, budget left %.0f%%, violated %v\n",
			100*s.SuccessRate, 100*s.ErrorBudgetRemaining, s.Violated)
	}
	show()
	tracker.Record(false)
	show()
	// Output:
	// success rate 99.00%, budget left 0%, violated false
	// success rate 98.51%, budget left -49%, violated true
}

// An endpoint's SLO trips its breaker when the error budget burns fast.
func ExampleEndpoint_SLO() {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	bus := events.NewBus()
	sub := bus.Subscribe(16)
	defer sub.Close()
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{SLO: &core.SLOConfig{TargetSuccessRate: 0.99, Window: 5 * time.Minute}},
		Clock:    clock,
		Bus:      bus,
	})
	e, _ := m.Endpoint("api-service")

	// Record only the calls that ran, never the ones a policy refused.
	for range 20 {
		e.SLO().Record(false)
		clock.Advance(time.Second)
	}
	status := e.SLO().Status()
	fmt.Printf("success rate %.0f%%, burning %v\n", 100*status.SuccessRate, status.Burning)
	fmt.Println(e.Breaker().State(), e.Breaker().Snapshot().Reason)
	for len(sub.C()) > 0 { // the bus delivered them already; never wait
		if burn, ok := (<-sub.C()).(events.SLOBurn); ok {
			fmt.Println("event:", burn.Endpoint, burn.Burning)
		}
	}
	// Output:
	// success rate 0%, burning true
	// Open SLO 99.00% burning 100.0x over 5m and 100.0x over 25s
	// event: api-service true
}

// Each policy of an endpoint in turn, as the HTTP middleware applies
// them.
func ExampleEndpoint() {
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64},
			SLO:      &core.SLOConfig{},
		},
	})
	e, _ := m.Endpoint("GET /users/{id}")

	serve := func(ctx context.Context, handler func() error) error {
		g, err := e.Bulkhead().Acquire(ctx)
		if err != nil {
			return err // 503 with err.(*core.RejectedError).RetryAfter()
		}
		defer g.Release()
		p, err := e.Breaker().Allow()
		if err != nil {
			return err // refused: not recorded anywhere else
		}
		start := time.Now()
		err = handler()
		p.Done(err)
		e.SLO().Record(err == nil)
		e.ObserveDuration(time.Since(start))
		return err
	}
	_ = serve(context.Background(), func() error { return nil })
	_ = serve(context.Background(), func() error { return errors.New("boom") })

	fmt.Println(e.Breaker().Snapshot().TotalRequests, e.SLO().Status().Failed, e.Durations().Count)
	// Output: 2 1 2
}

package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

func ExampleManager() {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := core.NewManager(core.ManagerConfig{
		Breaker: core.Config{FailureThreshold: 3, Timeout: 30 * time.Second},
		Clock:   clock,
	})
	if err != nil {
		panic(err)
	}
	b, _ := m.Breaker("GET /users/{id}")

	down := errors.New("connection refused")
	for range 3 {
		_ = b.Execute(context.Background(), func(context.Context) error { return down })
	}
	err = b.Execute(context.Background(), func(context.Context) error { return nil })
	var rejected *core.RejectedError
	if errors.As(err, &rejected) {
		fmt.Println(b.State(), "retry after", rejected.RetryAfter())
	}
	// Output: Open retry after 30s
}

func ExampleBreaker_Allow() {
	b, _ := core.NewBreaker("payments", core.Config{})
	p, err := b.Allow()
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	start := time.Now()
	// ... make the call ...
	p.Report(core.Success, time.Since(start))
	fmt.Println(b.Snapshot().SuccessfulRequests)
	// Output: 1
}

func ExampleBreaker_OnStateChange() {
	bus := events.NewBus()
	sub := bus.Subscribe(8)
	defer sub.Close()
	b, _ := core.NewBreaker("search", core.Config{}, core.WithBus(bus))
	b.OnStateChange(func(e events.StateChange) {
		fmt.Printf("listener: %s -> %s\n", e.OldState, e.NewState)
	})
	b.ForceOpen("maintenance window")
	e := (<-sub.C()).(events.StateChange)
	fmt.Printf("bus: %s %s (%s)\n", e.Endpoint, e.NewState, e.Reason)
	// Output:
	// listener: Closed -> ForcedOpen
	// bus: search ForcedOpen (forced open: maintenance window)
}

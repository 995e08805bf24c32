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
		Defaults: core.EndpointConfig{
			Breaker: &core.BreakerConfig{FailureThreshold: 3, Timeout: 30 * time.Second},
		},
		Endpoints: map[string]core.EndpointConfig{
			// Replaces the default breaker as a whole: FailureThreshold is
			// the built-in 5 here, not 3.
			"GET /reports": {Breaker: &core.BreakerConfig{Timeout: 2 * time.Minute}},
		},
		Clock: clock,
	})
	if err != nil {
		panic(err)
	}
	e, _ := m.Endpoint("GET /users/{id}")
	b := e.Breaker()

	down := errors.New("connection refused")
	for range 3 {
		_ = b.Execute(context.Background(), func(context.Context) error { return down })
	}
	err = b.Execute(context.Background(), func(context.Context) error { return nil })
	var rejected *core.RejectedError
	if errors.As(err, &rejected) {
		fmt.Println(b.State(), "retry after", rejected.RetryAfter())
	}
	reports, _ := m.Endpoint("GET /reports")
	c := reports.Breaker().Config()
	fmt.Println("GET /reports:", c.FailureThreshold, "failures,", c.Timeout, "open")
	// Output:
	// Open retry after 30s
	// GET /reports: 5 failures, 2m0s open
}

// An error naming every bad field at once, each by its full path.
func ExampleConfigError() {
	_, err := core.NewManager(core.ManagerConfig{
		Endpoints: map[string]core.EndpointConfig{
			"GET /x": {Breaker: &core.BreakerConfig{FailureThreshold: -1, Timeout: time.Nanosecond}},
		},
	})
	fmt.Println(errors.Is(err, core.ErrInvalidConfig))
	var ce *core.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field)
	}
	fmt.Println(err)
	// Output:
	// true
	// core.ManagerConfig.Endpoints[GET /x].Breaker.FailureThreshold
	// bulwark: core.ManagerConfig.Endpoints[GET /x].Breaker.FailureThreshold = -1 is invalid: must be between 1 and 1000000 (0 means the default, 5)
	// bulwark: core.ManagerConfig.Endpoints[GET /x].Breaker.Timeout = 1ns is invalid: must be between 1ms and 24h0m0s (0 means the default, 1m0s)
}

func ExampleBreaker_Allow() {
	b, _ := core.NewBreaker(core.BreakerConfig{Name: "payments"})
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
	b, _ := core.NewBreaker(core.BreakerConfig{Name: "search", Bus: bus})
	b.OnStateChange(func(e events.StateChange) {
		fmt.Printf("listener: %s -> %s\n", e.OldState, e.NewState)
	})
	b.ForceOpen("maintenance window")
	b.ForceOpen("maintenance window") // no change: nothing published
	e := (<-sub.C()).(events.StateChange)
	fmt.Printf("bus: %s %s (%s)\n", e.Endpoint, e.NewState, e.Reason)
	// Output:
	// listener: Closed -> ForcedOpen
	// bus: search ForcedOpen (forced open: maintenance window)
}

// A health check holds the breaker open on a lease it renews while the
// dependency is down; if the check stops, the hold lapses by itself.
func ExampleBreaker_Hold() {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b, _ := core.NewBreaker(core.BreakerConfig{Name: "inventory", Clock: clock})

	b.Hold("health-check", "3 probes failed", 30*time.Second)
	s := b.Snapshot()
	fmt.Println(s.State, "held by", s.HeldBy, "until", s.HoldUntil.Format(time.TimeOnly))

	clock.Advance(20 * time.Second)
	b.Hold("health-check", "still failing", 30*time.Second) // renewed: no event
	fmt.Println("other owner:", b.Hold("chaos", "experiment", time.Minute))

	clock.Advance(30 * time.Second) // the check stopped renewing
	fmt.Println(b.Snapshot().State)
	// Output:
	// ForcedOpen held by health-check until 00:00:30
	// other owner: false
	// HalfOpen
}

// A store saves snapshots and puts them back after a restart: an Open
// breaker stays open only for what remained of its open time.
func ExampleReplicationOf() {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b, _ := core.NewBreaker(core.BreakerConfig{Name: "payments", Timeout: time.Minute, Clock: clock})
	b.Trip("5 consecutive failures")
	saved := b.Snapshot()

	clock.Advance(20 * time.Second) // the process restarts
	restarted, _ := core.NewBreaker(core.BreakerConfig{Name: "payments", Timeout: time.Minute, Clock: clock})
	restarted.OnStateChange(func(e events.StateChange) {
		fmt.Println("restored:", e.Restored, e.NewState, e.Timestamp.Format(time.TimeOnly))
	})
	if err := core.ReplicationOf(restarted).Restore(saved); err != nil {
		panic(err)
	}
	fmt.Println(restarted.State(), "for", restarted.RetryAfter())
	// Output:
	// restored: true Open 00:00:00
	// Open for 40s
}

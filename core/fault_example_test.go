package core_test

import (
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

func ExampleManager_StartFault() {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	bus := events.NewBus()
	sub := bus.Subscribe(8)
	m, err := core.NewManager(core.ManagerConfig{
		Clock:    clock,
		Bus:      bus,
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 3}},
		Faults:   &core.FaultLimits{MaxDuration: 10 * time.Minute},
	})
	if err != nil {
		panic(err)
	}
	// Every call of GET /users/{id} that carries X-Chaos: on answers 503
	// for the next five minutes.
	f, err := m.StartFault(core.Fault{
		ID: "game-day", Endpoint: "GET /users/{id}", Percent: 100, Status: 503,
		Header: "X-Chaos", HeaderValue: "on", Duration: 5 * time.Minute, Reason: "game day",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("started", f.ID, "until", f.Ends.Format(time.Kitchen))

	// What the HTTP middleware does for each request.
	e, _ := m.Endpoint("GET /users/{id}")
	chaos := func(name string) string { return map[string]string{"X-Chaos": "on"}[name] }
	for range 3 {
		if got, _ := e.Inject(chaos, nil); got != nil {
			fmt.Println("answer", got.Status)
		}
	}
	if got, _ := e.Inject(nil, nil); got == nil {
		fmt.Println("a call without the header is left alone")
	}
	s := e.Breaker().Snapshot()
	fmt.Println("breaker", s.State, "injected failures", s.InjectedFailures, "real failures", s.FailedRequests)

	stopped, _ := m.StopFault("game-day")
	fmt.Println("stopped after", stopped.Injected, "calls")
	for n := 0; n < 2; {
		if ev, ok := (<-sub.C()).(events.FaultChange); ok { // the breaker's StateChange is there too
			fmt.Println(ev.Type, ev.ID, ev.Reason)
			n++
		}
	}
	// Output:
	// started game-day until 12:05AM
	// answer 503
	// answer 503
	// answer 503
	// a call without the header is left alone
	// breaker Open injected failures 3 real failures 0
	// stopped after 3 calls
	// fault_start game-day game day
	// fault_end game-day stopped
}

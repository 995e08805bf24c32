// Package events holds the events Bulwark emits and the Bus that carries
// them.
//
// A breaker transition is a StateChange whose JSON form is the one the admin
// WebSocket feed sends. Subscribers read from a bounded channel; a slow
// subscriber loses events (counted) rather than slowing anyone down:
//
//	bus := events.NewBus()
//	sub := bus.Subscribe(64)
//	defer sub.Close()
//	for e := range sub.C() {
//		if sc, ok := e.(events.StateChange); ok {
//			log.Printf("%s: %s -> %s (%s)", sc.Endpoint, sc.OldState, sc.NewState, sc.Reason)
//		}
//	}
//
// The package uses the standard library only.
package events

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
//		switch e := e.(type) {
//		case events.StateChange:
//			log.Printf("%s: %s -> %s (%s)", e.Endpoint, e.OldState, e.NewState, e.Reason)
//		case events.StoreStatus:
//			log.Printf("%s store %s: %s", e.Store, e.Status, e.Error)
//		}
//	}
//
// Publish never blocks and a Bus starts no goroutines, so publishing is
// safe from any code path. The other events are SLOBurn (an error budget
// burning too fast, or no longer), StoreStatus (shared state degraded or
// recovered), ClusterStateChange (a transition decided for the whole
// cluster) and FaultChange (a fault-injection experiment started or
// ended); package alert publishes its alerts on the Bus too.
//
// The package uses the standard library only.
package events

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
// Alerts live here too. An AlertManager keeps active and recent alerts and
// passes each to any number of handlers; the log, webhook and Slack handlers
// send through bounded queues so that a dead endpoint never blocks anyone.
// A CircuitBreakerAlertHandler turns the Bus's transitions into alerts:
//
//	alerts, _ := events.NewAlertManager(events.AlertManagerConfig{Bus: bus})
//	logs, _ := events.NewLogHandler(events.LogConfig{Logger: slog.Default()})
//	alerts.AddHandler(logs)
//	cb, _ := events.NewCircuitBreakerAlertHandler(alerts, bus)
//	cb.Start() // Critical when a breaker opens, resolved when it closes
//
// Other events on the Bus: SLOBurn, Alert, StoreStatus (shared state
// degraded or recovered) and ClusterStateChange.
//
// The package uses the standard library only.
package events

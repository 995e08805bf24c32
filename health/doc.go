// Package health runs health probes against dependencies and feeds their
// verdicts to circuit breakers.
//
// Five probes check a dependency the way it speaks: HTTP(S) status codes, a
// TCP connect (with an optional TLS handshake), the standard gRPC health
// service, a WebSocket upgrade with a ping/pong round trip, and any Checker
// you write. A Monitor runs probes on a schedule: a few failed checks in a
// row force the endpoint's breaker open, a few passed checks release it to
// HalfOpen so real traffic can close it.
//
// The happy path:
//
//	mgr, _ := core.NewManager(core.ManagerConfig{})
//	mon, _ := health.NewMonitor(mgr)
//	defer mon.Close()
//	probe, _ := health.NewGRPCProbe("api.internal:9090")
//	_ = mon.Start("api-service", probe, 30*time.Second)
//
// Every probe has a timeout (DefaultTimeout unless WithTimeout says
// otherwise) and returns a Result with its latency and, when it failed, the
// error. Monitor.Status and Monitor.Statuses report the last result, the
// consecutive counts and a bounded history, for the admin handler.
package health

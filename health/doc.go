// Package health runs health probes against dependencies and feeds their
// verdicts to circuit breakers.
//
// Probes check a dependency the way it speaks: NewHTTPProbe (HTTP and
// HTTPS status codes), NewTCPProbe (a connect, with an optional TLS
// handshake), NewWebSocketProbe (an upgrade, a ping/pong round trip and a
// clean close) and NewCustomProbe (any Checker you write). The gRPC health
// service is checked by package health/grpcprobe, which keeps gRPC out of
// programs that don't use it. Each probe is made from one config struct
// whose zero fields take their documented defaults; a bad config is
// reported as a *core.ConfigError for every bad field.
//
// A Monitor runs probes on a schedule: a few failed checks in a row force
// the endpoint's breaker open, a few passed checks release it to HalfOpen
// so real traffic can close it. The happy path:
//
//	mgr, _ := core.NewManager(core.ManagerConfig{})
//	mon, _ := health.NewMonitor(health.MonitorConfig{Manager: mgr})
//	defer mon.Close(context.Background())
//	probe, _ := health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://api.internal/health"})
//	_ = mon.Watch("api-service", probe, health.WatchConfig{Interval: 30 * time.Second})
//
// Every check is bounded by a timeout (5s unless the probe's config says
// otherwise) and returns a Result with its latency and, when it failed,
// the error. Monitor.Statuses reports, for every watched endpoint, the last
// result, the consecutive counts and a bounded history as a Status, which
// encodes to JSON as it is.
package health

// Package bulwark builds Bulwark's whole resilience stack from one Config:
// circuit breakers, bulkheads, per-user bulkheads, retries, rate limits,
// adaptive concurrency limits, timeouts, hedging and SLOs for every
// endpoint, persistence and shared state, alerts, health checks,
// Prometheus metrics, OpenTelemetry and the admin handler with its live
// dashboard.
//
//	cfg, err := bulwark.LoadConfig("bulwark.yaml") // or a bulwark.Config in code
//	if err != nil { log.Fatal(err) }
//	cfg.Admin.Prefix = "/admin" // where the admin handler is mounted (or admin.prefix in the file)
//	kit, err := bulwark.New(cfg)
//	if err != nil { log.Fatal(err) }
//	defer kit.Close(context.Background())
//
//	mw, err := bulwarkchi.Middleware(kit.HTTP()) // or kit.Middleware() for net/http
//	r := chi.NewRouter()
//	r.Use(mw)
//	r.Handle("/admin/*", kit.Admin())
//	r.Handle("/metrics", kit.Metrics())
//	quotes, err := kit.Transport("quotes", nethttp.TransportConfig{}) // an outbound dependency, by name
//
// New makes each part in the order that is right (alerts listen before
// saved state is restored; stores restore it before any request; health
// checks start once breakers are back) and Close stops them in the order
// that is right, saving state last. Every part is also usable on its own,
// from its own package; the kit adds wiring, not behaviour.
//
// # Changing settings while running
//
// Kit.Reconfigure (and PUT …/config/{endpoint} on the admin handler, and the
// dashboard's editor) changes an endpoint's settings while it runs: its
// breaker keeps its state and counts. With a Redis store the change reaches
// every instance within a sync interval and outlives restarts; with a state
// file it outlives restarts of this instance. Kit.ResetConfig returns the
// endpoint to the Config's settings. Each change is an events.ConfigChange
// on the bus and the admin feed.
//
// # Fault injection
//
// A faults section (Config.Faults) turns fault injection on: experiments
// that delay, fail or abort a share of an endpoint's calls, inbound and
// outbound, for a while. Those it lists start with New, the admin
// handler's POST …/faults starts others (with its token), and each raises
// an Info alert until it ends; Close ends those still running.
package bulwark

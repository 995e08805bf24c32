// Package bulwarkotel reports Bulwark's state through OpenTelemetry:
// metrics through a MeterProvider, and events on the request's span. Its
// name keeps it clear of go.opentelemetry.io/otel in your imports.
//
// New takes the Manager whose endpoints to report; give its Observer to
// the HTTP middleware and transport:
//
//	tel, err := bulwarkotel.New(bulwarkotel.Config{Manager: m}) // the global MeterProvider
//	if err != nil {
//		return err
//	}
//	defer tel.Close(ctx)
//	mw, err := nethttp.Middleware(nethttp.Config{Manager: m, Observer: tel.Observer()})
//	// and outbound:
//	tr, err := nethttp.NewTransport(nethttp.TransportConfig{Manager: m, Observer: tel.Observer()})
//
// # Metrics
//
// The instruments report what the Prometheus collector in package metrics
// reports, named as OpenTelemetry names things: circuit breaker state,
// calls by outcome and transitions; rejections by reason; bulkhead slots,
// queue and waits; per-user bulkhead users; SLO success ratio, error
// budget and burn rates; retries. They also report rate limits and
// adaptive concurrency limits. METRICS.md lists every instrument with its
// unit, attributes and Prometheus twin.
//
// All but one are observable: they read the Manager's snapshots when the
// provider collects, so the request path pays nothing for them, and
// endpoints made later appear on their own. The exception is
// bulwark.request.duration, a histogram of every call the Observer saw,
// with the endpoint's attribute set, made once; without the Observer it
// stays empty. The Observer keeps durations per processor and records
// them in runs, at the latest when the provider collects, so that cores do
// not contend for the SDK's counters on every call. Its measurements carry
// no exemplars unless Config.Exemplars asks for them; they are then
// recorded one by one, with the request's context.
//
// Endpoint series carry bulwark.endpoint: a route pattern or a name you
// gave, never a raw path. No instrument and no span ever carries a user
// ID.
//
// # Traces
//
// Bulwark makes no span of its own: the Observer adds to the request's
// current span, the one your tracing (otelhttp, say) made, and only while
// that span is recording. A refused request gets a bulwark.rejection event
// (reason, retry-after), and an inbound one also bulwark.endpoint and
// bulwark.rejection.reason as span attributes; each outbound attempt gets
// a bulwark.attempt event (its number, the wait before it); a breaker
// transition the request caused, a bulwark.circuit_breaker.transition
// event. A call that ran and changed nothing adds nothing to its span.
// Config.NoSpanEvents leaves spans alone.
//
// Close unregisters the instruments' callback and stops the Observer.
package bulwarkotel

package bulwarkotel

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// The Transport's attempts and an outbound rejection are events on the
// caller's span; the retry instruments count them.
func TestRetryEventsOnTheCallersSpan(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	m := newManager(t, core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{
		"upstream": {Retry: &core.RetryConfig{MaxAttempts: 3, InitialBackoff: 20 * time.Millisecond, NoJitter: true}},
	}})
	tel, r := newTelemetry(t, Config{Manager: m})
	rt, err := nethttp.NewTransport(nethttp.TransportConfig{
		Manager: m, Base: srv.Client().Transport, Observer: tel.Observer(),
		EndpointKey: func(*http.Request) string { return "upstream" },
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracing()
	call := func() (sdktrace.ReadOnlySpan, error) {
		ctx, span := tr.tracer.Start(context.Background(), "checkout")
		defer span.End()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return span.(sdktrace.ReadOnlySpan), err
	}

	span, err := call()
	if err != nil {
		t.Fatal(err)
	}
	ev := span.Events()
	if len(ev) != 2 {
		t.Fatalf("events %q, want two attempts", spanEvents(span))
	}
	for i, e := range ev {
		a := attribute.NewSet(e.Attributes...)
		n, _ := a.Value(keyAttempt)
		w, _ := a.Value(keyWait)
		ep, _ := a.Value(keyEndpoint)
		if e.Name != "bulwark.attempt" || n.AsInt64() != int64(i+1) || ep.AsString() != "upstream" {
			t.Errorf("event %d: %s", i, spanEvents(span)[i])
		}
		// The first attempt waits for nothing; the second for the 20ms
		// backoff, as the coarse clock (1ms) measures it.
		if i == 0 && w.AsFloat64() != 0 || i == 1 && !(w.AsFloat64() >= 0.015 && w.AsFloat64() < 5) {
			t.Errorf("attempt %d waited %vs", i+1, w.AsFloat64())
		}
	}

	endpoint(t, m, "upstream").Breaker().Trip("test")
	span, err = call()
	if err == nil {
		t.Fatal("a request through an open breaker went out")
	}
	if ev := span.Events(); len(ev) != 1 || ev[0].Name != "bulwark.rejection" {
		t.Fatalf("events %q, want a rejection", spanEvents(span))
	}
	a := attribute.NewSet(span.Events()[0].Attributes...)
	reason, _ := a.Value(keyReason)
	after, _ := a.Value(keyRetryAfter)
	if reason.AsString() != "circuit_open" || !(after.AsFloat64() > 59 && after.AsFloat64() <= 60) {
		t.Fatalf("rejection %s, want circuit_open and the breaker's 60s", spanEvents(span)[0])
	}
	// The caller's span is not the refused request's: only an event.
	if a := spanAttrs(span); a != "{}" {
		t.Errorf("the caller's span got attributes %s", a)
	}

	ms := collect(t, r)
	durations := lines(ms, "bulwark.request.duration")
	if len(durations) != 1 || !strings.HasPrefix(durations[0], "bulwark.request.duration{bulwark.endpoint=upstream} count=2 ") {
		t.Errorf("durations %q, want both attempts", durations)
	}
	compareLines(t, lines(ms, "bulwark.retry.calls", "bulwark.retry.retries", "bulwark.retry.give_ups"), `
		bulwark.retry.calls{bulwark.endpoint=upstream} 2
		bulwark.retry.give_ups{bulwark.endpoint=upstream,bulwark.retry.reason=budget_spent} 0
		bulwark.retry.give_ups{bulwark.endpoint=upstream,bulwark.retry.reason=circuit_open} 0
		bulwark.retry.give_ups{bulwark.endpoint=upstream,bulwark.retry.reason=deadline} 0
		bulwark.retry.give_ups{bulwark.endpoint=upstream,bulwark.retry.reason=exhausted} 0
		bulwark.retry.retries{bulwark.endpoint=upstream} 1
	`)
	if s := endpoint(t, m, "upstream").Retry().Stats(); s.Calls != 2 || s.Retries != 1 || s.Rejected != 1 {
		t.Fatalf("retry stats %+v", s)
	}
}

// allowedKeys are every attribute key Bulwark reports: none can hold a
// user ID.
var allowedKeys = []attribute.Key{keyEndpoint, keyOutcome, keyState, keyPreviousState, keyReason, keyRetryAfter, keyWindow, keyRetryReason, keyAttempt, keyWait}

// No metric and no span carries a user ID, nor a key that could hold one,
// even for requests the per-user bulkhead refused.
func TestNoUserAttribute(t *testing.T) {
	m := newManager(t, core.ManagerConfig{
		Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{}, SLO: &core.SLOConfig{}},
		PerUser:  &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}},
	})
	tel, r := newTelemetry(t, Config{Manager: m})
	mw, err := nethttp.Middleware(nethttp.Config{Manager: m, UserKey: nethttp.UserFromHeader("X-User"), Observer: tel.Observer()})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	g, _ := m.PerUser().TryAcquire("alice")
	defer g.Release()
	tr := newTracing()
	var spans []sdktrace.ReadOnlySpan
	for _, user := range []string{"alice", "bob"} {
		req := httptest.NewRequest("GET", "/x", nil)
		req.Pattern = "GET /x"
		req.Header.Set("X-User", user)
		span, w := tr.serve(h, req)
		if want := map[string]int{"alice": 429, "bob": 200}[user]; w.Code != want {
			t.Fatalf("%s: %d, want %d", user, w.Code, want)
		}
		spans = append(spans, span)
	}
	if want := []string{"bulwark.rejection{bulwark.endpoint=GET /x,bulwark.rejection.reason=user_limit,bulwark.rejection.retry_after=1}"}; !slices.Equal(spanEvents(spans[0]), want) {
		t.Fatalf("alice's span: %q, want %q", spanEvents(spans[0]), want)
	}
	all := lines(collect(t, r))
	for _, s := range spans {
		all = append(all, spanAttrs(s))
		all = append(all, spanEvents(s)...)
		for _, kv := range s.Attributes() {
			if !slices.Contains(allowedKeys, kv.Key) {
				t.Errorf("span attribute %s", kv.Key)
			}
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				if !slices.Contains(allowedKeys, kv.Key) {
					t.Errorf("event %s: attribute %s", e.Name, kv.Key)
				}
			}
		}
	}
	if !slices.Contains(all, "bulwark.rejections{bulwark.rejection.reason=user_limit} 1") {
		t.Errorf("the per-user refusal is not counted: %q", all)
	}
	for _, l := range all {
		if strings.Contains(l, "alice") || strings.Contains(l, "bob") {
			t.Errorf("a user ID: %s", l)
		}
	}
	for _, md := range collect(t, r) {
		for _, k := range keysOf(md.Data) {
			if !slices.Contains(allowedKeys, attribute.Key(k)) {
				t.Errorf("%s: attribute %s", md.Name, k)
			}
		}
	}
}

// With NoSpanEvents, spans are left alone; durations are still recorded.
func TestNoSpanEvents(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	tel, r := newTelemetry(t, Config{Manager: m, NoSpanEvents: true})
	endpoint(t, m, "GET /x").Breaker().ForceOpen("maintenance")
	endpoint(t, m, "GET /y")
	mw, _ := nethttp.Middleware(nethttp.Config{Manager: m, Observer: tel.Observer()})
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tr := newTracing()
	for _, p := range []string{"GET /x", "GET /y"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Pattern = p
		span, _ := tr.serve(h, req)
		if len(span.Events()) != 0 || len(span.Attributes()) != 0 {
			t.Errorf("%s: span got %q %s", p, spanEvents(span), spanAttrs(span))
		}
	}
	if got := lines(collect(t, r), "bulwark.request.duration"); len(got) != 1 || !strings.Contains(got[0], "GET /y") {
		t.Fatalf("durations %q", got)
	}
}

// A span that is not recording is not touched, and the Observer then
// allocates nothing.
func TestNotRecordingCostsNoAllocation(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	tel, _ := newTelemetry(t, Config{Manager: m})
	endpoint(t, m, "GET /x")
	obs := tel.Observer()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	unsampled, span := tp.Tracer("test").Start(context.Background(), "req")
	defer span.End()
	if span.IsRecording() {
		t.Fatal("a NeverSample span records")
	}
	rej := nethttp.Rejection{Reason: "circuit_open", Endpoint: "GET /x", Status: 503, RetryAfter: time.Second}
	for name, ctx := range map[string]context.Context{"no span": context.Background(), "unsampled": unsampled} {
		for what, fn := range map[string]func(){
			"Rejected":   func() { obs.Rejected(ctx, rej) },
			"Attempt":    func() { obs.Attempt(ctx, "GET /x", 2, time.Second) },
			"Transition": func() { obs.Transition(ctx, "GET /x", events.Closed, events.Open) },
			"Done":       func() { obs.Done(ctx, "GET /x", core.Success, time.Millisecond) },
		} {
			if n := testing.AllocsPerRun(100, fn); n != 0 {
				t.Errorf("%s, %s: %v allocations", name, what, n)
			}
		}
	}
}

// Close stops the instruments' reports and the Observer; a second Close
// returns nil.
func TestClose(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	tel, r := newTelemetry(t, Config{Manager: m})
	endpoint(t, m, "GET /x")
	obs := tel.Observer()
	obs.Done(context.Background(), "GET /x", core.Success, time.Millisecond)
	before := lines(collect(t, r), "bulwark.request.duration")
	if len(lines(collect(t, r), "bulwark.circuit_breaker.state")) != 5 {
		t.Fatal("no state before Close")
	}
	for range 2 {
		if err := tel.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	obs.Done(context.Background(), "GET /x", core.Success, time.Millisecond)
	got := lines(collect(t, r))
	if !slices.Equal(got, before) {
		t.Fatalf("after Close: %q, want only the durations recorded before it, %q", got, before)
	}
}

// Attribute sets are made only for the Manager's endpoints: names it does
// not know cannot grow the cache.
func TestSeriesOnlyForTheManagersEndpoints(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	tel, r := newTelemetry(t, Config{Manager: m})
	obs := tel.Observer()
	for _, name := range []string{"GET /a", "GET /b", "GET /a"} {
		obs.Done(context.Background(), name, core.Success, time.Millisecond)
	}
	if n := tel.series.Len(); n != 0 {
		t.Fatalf("%d series for endpoints the Manager does not have", n)
	}
	endpoint(t, m, "GET /a")
	endpoint(t, m, "GET /b")
	obs.Done(context.Background(), "GET /a", core.Success, time.Millisecond)
	_ = collect(t, r)
	if n := tel.series.Len(); n != 2 {
		t.Fatalf("%d series for 2 endpoints", n)
	}
	if got := lines(collect(t, r), "bulwark.request.duration"); len(got) != 1 {
		t.Fatalf("durations %q", got)
	}
}

// Durations carry exemplars only with Config.Exemplars: then a sampled
// request's trace is found from its bucket.
func TestExemplars(t *testing.T) {
	for _, on := range []bool{false, true} {
		m := newManager(t, core.ManagerConfig{})
		endpoint(t, m, "GET /x")
		tel, r := newTelemetry(t, Config{Manager: m, Exemplars: on})
		ctx, span := newTracing().tracer.Start(context.Background(), "GET /x")
		tel.Observer().Done(ctx, "GET /x", core.Success, 30*time.Millisecond)
		span.End()
		var got []metricdata.Exemplar[float64]
		for _, md := range collect(t, r) {
			if h, ok := md.Data.(metricdata.Histogram[float64]); ok {
				for _, p := range h.DataPoints {
					got = append(got, p.Exemplars...)
				}
			}
		}
		switch {
		case !on && len(got) != 0:
			t.Errorf("exemplars without Config.Exemplars: %+v", got)
		case on && (len(got) != 1 || trace.TraceID(got[0].TraceID) != span.SpanContext().TraceID() || got[0].Value != 0.03):
			t.Errorf("exemplars %+v, want the request's trace %s", got, span.SpanContext().TraceID())
		}
	}
}

// A hedged copy is a bulwark.hedge event on the caller's span, with its
// delay, and bulwark.hedges counts it.
func TestHedgeEventOnTheCallersSpan(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // the first attempt is slow: the hedge answers first
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(release)
	m := newManager(t, core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{
		"upstream": {Hedge: &core.HedgeConfig{Delay: 20 * time.Millisecond, MaxRatio: 1}},
	}})
	tel, r := newTelemetry(t, Config{Manager: m})
	rt, err := nethttp.NewTransport(nethttp.TransportConfig{
		Manager: m, Base: srv.Client().Transport, Observer: tel.Observer(),
		EndpointKey: func(*http.Request) string { return "upstream" },
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracing()
	ctx, span := tr.tracer.Start(context.Background(), "checkout")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span.End()
	var hedge *sdktrace.Event
	for _, e := range span.(sdktrace.ReadOnlySpan).Events() {
		if e.Name == "bulwark.hedge" {
			hedge = &e
		}
	}
	if hedge == nil {
		t.Fatalf("events %q, want a bulwark.hedge", spanEvents(span.(sdktrace.ReadOnlySpan)))
	}
	a := attribute.NewSet(hedge.Attributes...)
	d, _ := a.Value(keyHedgeDelay)
	ep, _ := a.Value(keyEndpoint)
	if d.AsFloat64() != 0.02 || ep.AsString() != "upstream" {
		t.Fatalf("hedge event %v", hedge.Attributes)
	}
	compareLines(t, lines(collect(t, r), "bulwark.hedges"), `
		bulwark.hedges{bulwark.endpoint=upstream} 1
	`)
}

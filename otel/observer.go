package bulwarkotel

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// Span event names.
const (
	eventRejection  = "bulwark.rejection"
	eventAttempt    = "bulwark.attempt"
	eventHedge      = "bulwark.hedge"
	eventTransition = "bulwark.circuit_breaker.transition"
)

// observer is a Telemetry's nethttp.Observer. It runs on the request path:
// Done records with attribute sets made once per endpoint, and nothing
// touches a span that is not recording.
type observer struct{ t *Telemetry }

// span returns the request's current span when the Observer may add to
// it, and false when it is not recording (the cheap, common case of an
// unsampled request) or spans are not the Observer's to touch.
func (o observer) span(ctx context.Context) (trace.Span, bool) {
	if !o.t.spans || o.t.closed.Load() {
		return nil, false
	}
	s := trace.SpanFromContext(ctx)
	return s, s.IsRecording()
}

// Rejected adds a bulwark.rejection event. An inbound request refused
// (Status set) is the span's own request, so the span also gets its
// endpoint and the reason as attributes; an outbound refusal is only an
// event, since the span may be the caller's.
func (o observer) Rejected(ctx context.Context, rej nethttp.Rejection) {
	span, ok := o.span(ctx)
	if !ok {
		return
	}
	ep, reason := keyEndpoint.String(rej.Endpoint), keyReason.String(rej.Reason)
	if rej.Status != 0 {
		span.SetAttributes(ep, reason)
	}
	span.AddEvent(eventRejection, trace.WithAttributes(ep, reason, keyRetryAfter.Float64(rej.RetryAfter.Seconds())))
}

// Attempt adds a bulwark.attempt event with the attempt's number and the
// wait before it, in seconds; for a hedged copy (n = 0), a bulwark.hedge
// event with the hedge delay.
func (o observer) Attempt(ctx context.Context, endpoint string, n int, wait time.Duration) {
	span, ok := o.span(ctx)
	if !ok {
		return
	}
	if n == 0 {
		span.AddEvent(eventHedge, trace.WithAttributes(keyEndpoint.String(endpoint), keyHedgeDelay.Float64(wait.Seconds())))
		return
	}
	span.AddEvent(eventAttempt, trace.WithAttributes(keyEndpoint.String(endpoint), keyAttempt.Int(n), keyWait.Float64(wait.Seconds())))
}

// Done records the call's duration. It leaves the span alone: a call that
// ran says what it did through the application's own instrumentation
// (the response status, the error), and this runs on every request.
func (o observer) Done(ctx context.Context, endpoint string, _ core.Outcome, d time.Duration) {
	t := o.t
	if t.closed.Load() {
		return
	}
	s := t.seriesOf(endpoint)
	if s == nil {
		return
	}
	if t.durations != nil {
		t.durations.add(s, d.Seconds())
		return
	}
	t.inst.duration.Record(ctx, d.Seconds(), s.duration...) // with its context, for an exemplar
}

// Transition adds a bulwark.circuit_breaker.transition event: this call's
// outcome moved the endpoint's breaker from one state to another.
func (o observer) Transition(ctx context.Context, endpoint string, from, to events.State) {
	span, ok := o.span(ctx)
	if !ok {
		return
	}
	span.AddEvent(eventTransition, trace.WithAttributes(keyEndpoint.String(endpoint),
		keyPreviousState.String(stateName(from)), keyState.String(stateName(to))))
}

var _ nethttp.Observer = observer{}

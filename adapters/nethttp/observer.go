package nethttp

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// Observer hears what the policies did to each request, to add to a trace
// or a log (package otel has one that adds span events). Its methods run on
// the request's goroutine, with the request's context, and must return
// quickly. A nil Observer costs nothing.
type Observer interface {
	// Rejected is told of a request a policy refused, inbound or outbound.
	Rejected(ctx context.Context, rej Rejection)
	// Attempt is told that the Transport is sending attempt n (1 for the
	// first) of a request to endpoint, wait after the previous attempt
	// ended (0 for the first); or, with n = 0, a hedged copy of the attempt
	// in flight, sent wait (the hedge delay) after that attempt started.
	Attempt(ctx context.Context, endpoint string, n int, wait time.Duration)
	// Done is told of a call's end: its outcome for the endpoint's
	// policies and how long it took (one attempt, outbound).
	Done(ctx context.Context, endpoint string, o core.Outcome, d time.Duration)
	// Transition is told that this call's outcome moved the endpoint's
	// breaker from one state to another.
	Transition(ctx context.Context, endpoint string, from, to events.State)
}

package nethttp

import (
	"errors"
	"net/http"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// Config configures a Guard: which guards apply to a request and how it is
// keyed, classified and refused. Only Manager is required.
type Config struct {
	// Manager supplies one breaker (and, with Bulkheads, one bulkhead) per
	// endpoint.
	Manager *core.Manager
	// NoBreaker turns the breaker off; by default every endpoint has one.
	NoBreaker bool
	// Bulkheads limits concurrent requests per endpoint with the Manager's
	// bulkheads.
	Bulkheads bool
	// PerUser, when set, limits each user's concurrent requests. UserKey
	// must then be set; a request whose user key is empty skips it.
	PerUser *core.PerUserBulkhead
	// UserKey names a request's user (UserFromHeader, UserFromContext).
	UserKey func(*http.Request) string
	// SLO, when set, records every request that ran in the endpoint's SLO.
	SLO *core.SLOGuard

	// EndpointKey names a request's endpoint. Nil means RoutePattern. An
	// empty key lets the request through unguarded.
	EndpointKey func(*http.Request) string
	// Classify maps a response status to an outcome. Nil means
	// DefaultClassify: 5xx are failures, everything else succeeds. A panic
	// is always a failure.
	Classify func(status int) core.Outcome
	// Reject writes the answer to a refused request. Nil means
	// WriteRejection.
	Reject func(http.ResponseWriter, *http.Request, Rejection)
	// BulkheadRetryAfter is the Retry-After sent when a bulkhead refuses a
	// request. Default 1s.
	BulkheadRetryAfter time.Duration
}

// DefaultClassify counts 5xx responses as failures and everything else,
// 4xx included, as successes: a client's mistake says nothing about the
// service's health.
func DefaultClassify(status int) core.Outcome {
	if status >= 500 {
		return core.Failure
	}
	return core.Success
}

// Guard applies Bulwark's guards to requests. Middleware for net/http and
// the chi, echo and gin adapters all run through one Guard, so they share
// one behaviour.
type Guard struct {
	cfg   Config
	clock core.Clock
}

// NewGuard returns a Guard, or an error naming what is wrong in cfg.
func NewGuard(cfg Config) (*Guard, error) {
	if cfg.Manager == nil {
		return nil, errors.New("nethttp: Config.Manager is required")
	}
	if cfg.PerUser != nil && cfg.UserKey == nil {
		return nil, errors.New("nethttp: Config.UserKey is required with Config.PerUser (see UserFromHeader, UserFromContext)")
	}
	if cfg.BulkheadRetryAfter < 0 {
		return nil, errors.New("nethttp: Config.BulkheadRetryAfter must not be negative")
	}
	if cfg.EndpointKey == nil {
		keys := new(EndpointKeys)
		cfg.EndpointKey = func(r *http.Request) string { return keys.Key(r.Method, r.Pattern) }
	}
	if cfg.Classify == nil {
		cfg.Classify = DefaultClassify
	}
	if cfg.Reject == nil {
		cfg.Reject = WriteRejection
	}
	if cfg.BulkheadRetryAfter == 0 {
		cfg.BulkheadRetryAfter = time.Second
	}
	return &Guard{cfg: cfg, clock: cfg.Manager.Clock()}, nil
}

// Ticket is one admitted request: the permits it holds and when it started.
// Finish it exactly once.
type Ticket struct {
	g        *Guard
	endpoint string
	breaker  *core.Breaker
	permit   core.Permit
	user     core.Guard
	bulk     core.Guard
	start    int64 // Clock.Nanotime
}

// Enter runs the guards for a request to endpoint, in the order per-user
// bulkhead, endpoint bulkhead, breaker. It returns a Ticket to Finish after
// the handler, or the Rejection to answer with (ok false). An empty
// endpoint is let through unguarded.
func (g *Guard) Enter(r *http.Request, endpoint string) (t Ticket, rej Rejection, ok bool) {
	t.g = g
	if endpoint == "" {
		return t, rej, true
	}
	var err error
	if g.cfg.PerUser != nil {
		if user := g.cfg.UserKey(r); user != "" {
			if t.user, err = g.cfg.PerUser.Acquire(r.Context(), user); err != nil {
				if errors.Is(err, core.ErrInvalidUserID) {
					return t, g.rejection(endpoint, ReasonInvalidUser, http.StatusBadRequest, err), false
				}
				return t, g.rejection(endpoint, ReasonUserLimit, http.StatusTooManyRequests, err), false
			}
		}
	}
	if g.cfg.Bulkheads {
		if bh, berr := g.cfg.Manager.Bulkhead(endpoint); berr == nil {
			if t.bulk, err = bh.Acquire(r.Context()); err != nil {
				t.user.Release()
				reason := ReasonBulkheadFull
				if errors.Is(err, core.ErrBulkheadTimeout) {
					reason = ReasonBulkheadTimeout
				}
				return t, g.rejection(endpoint, reason, http.StatusServiceUnavailable, err), false
			}
		}
	}
	if !g.cfg.NoBreaker {
		// Past the endpoint bound the request runs without a breaker rather
		// than fail because of bookkeeping.
		if b, berr := g.cfg.Manager.Breaker(endpoint); berr == nil {
			if t.permit, err = b.Allow(); err != nil {
				t.bulk.Release()
				t.user.Release()
				rej := g.rejection(endpoint, ReasonCircuitOpen, http.StatusServiceUnavailable, err)
				rej.RetryAfter = b.RetryAfter() // the coarse clock: no time.Now per rejection
				return t, rej, false
			}
			t.breaker = b
		}
	}
	t.endpoint = endpoint
	t.start = g.clock.Nanotime()
	return t, rej, true
}

func (g *Guard) rejection(endpoint, reason string, status int, err error) Rejection {
	return Rejection{Reason: reason, Endpoint: endpoint, Status: status, RetryAfter: g.cfg.BulkheadRetryAfter, Err: err}
}

// Reject answers a refused request with the configured writer.
func (g *Guard) Reject(w http.ResponseWriter, r *http.Request, rej Rejection) {
	g.cfg.Reject(w, r, rej)
}

// Finish records the request's outcome — from its status, or a failure when
// it panicked — in the breaker and the SLO, measures its duration once for
// both, and releases every permit. At is when the request ended, in the
// Manager's Clock.Nanotime; 0 means now.
//
// Durations come from the clock's coarse reading (about a millisecond on
// the system clock): enough for the slow-call rule and for latency buckets
// that start at 5ms, and ~50 ns a request cheaper than time.Now.
func (t *Ticket) Finish(status int, panicked bool, at int64) {
	if t.g == nil || t.endpoint == "" {
		return
	}
	o := core.Failure
	if !panicked {
		o = t.g.cfg.Classify(status)
	}
	if at == 0 {
		at = t.g.clock.Nanotime()
	}
	d := time.Duration(at - t.start)
	if t.breaker != nil {
		t.permit.Report(o, d)
		t.breaker.ObserveDuration(d)
	}
	if t.g.cfg.SLO != nil && o != core.Ignored {
		_ = t.g.cfg.SLO.RecordRequest(t.endpoint, o == core.Success)
	}
	t.bulk.Release()
	t.user.Release()
	t.endpoint = ""
}

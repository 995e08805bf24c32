package nethttp

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

// Config configures the inbound guards: how a request is keyed, classified
// and refused. Only Manager is required; the policies themselves (breaker,
// bulkhead, SLO, per-user bulkhead) come from the Manager's configuration.
type Config struct {
	// Manager supplies each endpoint's policies. Required.
	Manager *core.Manager
	// EndpointKey names a request's endpoint. Nil means RoutePattern (the
	// router adapters use their router's route pattern). An empty key lets
	// the request through unguarded.
	EndpointKey func(*http.Request) string
	// UserKey names a request's user for the Manager's per-user bulkhead
	// (UserFromHeader, UserFromContext); a request with an empty user key
	// skips it. Required when the Manager has a per-user bulkhead.
	UserKey func(*http.Request) string
	// Classify maps a response status to an outcome. Nil means
	// DefaultClassify: 5xx are failures, everything else succeeds. A panic
	// is always a failure.
	Classify func(status int) core.Outcome
	// Reject writes the answer to a refused request. Nil means
	// WriteRejection.
	Reject func(http.ResponseWriter, *http.Request, Rejection)
	// Observer, when set, hears what the policies did to each request.
	Observer Observer
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

// Guard applies an endpoint's policies to the requests of one middleware.
// Middleware makes one; the echo and gin adapters use NewGuard and Enter,
// since their handlers are not http.Handlers.
type Guard struct {
	cfg   Config
	clock core.Clock
	users *core.PerUserBulkhead
}

// NewGuard returns a Guard, or every problem of cfg as *core.ConfigError
// values.
func NewGuard(cfg Config) (*Guard, error) {
	c := check.New("nethttp.Config.", configError)
	if cfg.Manager == nil {
		c.Fail("Manager", nil, "is required")
	} else if cfg.Manager.PerUser() != nil && cfg.UserKey == nil {
		c.Fail("UserKey", nil, "is required: the Manager has a per-user bulkhead (see UserFromHeader, UserFromContext)")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if cfg.EndpointKey == nil {
		keys := endpointkey.NewCache()
		cfg.EndpointKey = func(r *http.Request) string { return keys.Key(r.Method, r.Pattern) }
	}
	if cfg.Classify == nil {
		cfg.Classify = DefaultClassify
	}
	if cfg.Reject == nil {
		cfg.Reject = WriteRejection
	}
	return &Guard{cfg: cfg, clock: cfg.Manager.Clock(), users: cfg.Manager.PerUser()}, nil
}

func configError(field string, v any, rule string) error {
	return &core.ConfigError{Field: field, Value: v, Rule: rule}
}

// Ticket is one admitted request: the permits it holds, the writer that
// records its status and when it started. Serve the request with Writer
// and Request, then Finish it exactly once.
type Ticket struct {
	g       *Guard
	ep      *core.Endpoint
	req     *http.Request
	permit  core.Permit
	user    core.Guard
	bulk    core.Guard
	start   int64 // Clock.Nanotime
	writer  statusWriter
	pending bool // admitted and not yet finished
}

var ticketPool = sync.Pool{New: func() any { return new(Ticket) }}

// Enter runs the policies of endpoint for r, in the order per-user
// bulkhead, endpoint bulkhead, breaker. When one refuses, Enter answers w
// with the rejection and returns false: the request must not be served.
// Otherwise it returns a Ticket to serve the request with, or a nil Ticket
// when endpoint is empty or cannot be had (past the Manager's bound: the
// request then runs unguarded rather than fail because of bookkeeping).
func (g *Guard) Enter(w http.ResponseWriter, r *http.Request, endpoint string) (*Ticket, bool) {
	if endpoint == "" {
		return nil, true
	}
	ep, err := g.cfg.Manager.Endpoint(endpoint)
	if err != nil {
		return nil, true
	}
	t := ticketPool.Get().(*Ticket)
	*t = Ticket{g: g, ep: ep, req: r}
	if g.users != nil && g.cfg.UserKey != nil {
		if user := g.cfg.UserKey(r); user != "" {
			if t.user, err = g.users.Acquire(r.Context(), user); err != nil {
				if errors.Is(err, core.ErrInvalidUserID) {
					return nil, t.refuse(w, http.StatusBadRequest, "invalid_user", err, 0)
				}
				// Over their limit, timed out in their queue, or no room
				// for another user: the user's limit, whichever it was.
				return nil, t.refuse(w, http.StatusTooManyRequests, "user_limit", err, 0)
			}
		}
	}
	if bh := ep.Bulkhead(); bh != nil {
		if t.bulk, err = bh.Acquire(r.Context()); err != nil {
			t.user.Release()
			return nil, t.refuse(w, http.StatusServiceUnavailable, bulkheadReason(err), err, 0)
		}
	}
	b := ep.Breaker()
	if t.permit, err = b.Allow(); err != nil {
		t.bulk.Release()
		t.user.Release()
		// The coarse clock: no time.Now per rejection.
		return nil, t.refuse(w, http.StatusServiceUnavailable, "circuit_open", err, b.RetryAfter())
	}
	t.start = g.clock.Nanotime()
	t.writer = statusWriter{w: w, clock: g.clock}
	t.pending = true
	return t, true
}

// refuse answers a refused request and recycles the ticket; it returns
// false, for Enter to return.
func (t *Ticket) refuse(w http.ResponseWriter, status int, reason string, err error, retryAfter time.Duration) bool {
	g, r, name := t.g, t.req, t.ep.Name()
	*t = Ticket{}
	ticketPool.Put(t)
	rej := Rejection{Endpoint: name, Status: status, Reason: reason, Err: err, RetryAfter: retryAfter}
	if retryAfter == 0 {
		// AsType, not As: As would move its target to the heap, one
		// allocation per refusal.
		if re, ok := errors.AsType[*core.RejectedError](err); ok {
			rej.RetryAfter = re.RetryAfter()
		}
	}
	if g.cfg.Observer != nil {
		g.cfg.Observer.Rejected(r.Context(), rej)
	}
	g.cfg.Reject(w, r, rej)
	return false
}

// Writer returns the writer to serve the request with: it passes
// everything through (flushing, hijacking and ReadFrom included) and
// records the status.
func (t *Ticket) Writer() http.ResponseWriter { return &t.writer }

// Request returns the request to serve.
func (t *Ticket) Request() *http.Request { return t.req }

// Finish records the request's outcome in the endpoint's policies (from
// status, or the status Writer saw when status is 0, or a failure when the
// handler panicked), measures its duration once for all of them, releases
// every permit and recycles the Ticket, which must not be used again. A nil
// Ticket does nothing.
//
// Durations come from the clock's coarse reading (about a millisecond on
// the system clock): enough for the slow-call rule and for latency buckets
// that start at 5ms, and ~50 ns a request cheaper than time.Now.
func (t *Ticket) Finish(status int, panicked bool) {
	if t == nil || !t.pending {
		return
	}
	g := t.g
	if status == 0 {
		status = t.writer.Status()
	}
	o := core.Failure
	if !panicked {
		o = g.cfg.Classify(status)
	}
	end := t.writer.hijacked
	if end == 0 {
		end = g.clock.Nanotime()
	}
	d := time.Duration(end - t.start)
	obs := g.cfg.Observer
	var before core.State
	if obs != nil {
		before = t.ep.Breaker().State()
	}
	t.permit.Report(o, d)
	if obs != nil {
		ctx, name := t.req.Context(), t.ep.Name()
		obs.Done(ctx, name, o, d)
		if after := t.ep.Breaker().State(); after != before {
			obs.Transition(ctx, name, before, after)
		}
	}
	t.ep.ObserveDuration(d)
	if slo := t.ep.SLO(); slo != nil && o != core.Ignored {
		slo.Record(o == core.Success)
	}
	t.bulk.Release()
	t.user.Release()
	*t = Ticket{}
	ticketPool.Put(t)
}

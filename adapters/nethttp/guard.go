package nethttp

import (
	"context"
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"net/http"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

// Config configures the inbound guards: how a request is keyed, classified
// and refused. Only Manager is required; the policies themselves (rate
// limits, bulkheads, adaptive limit, breaker, timeout, SLO) come from the
// Manager's configuration of each endpoint.
type Config struct {
	// Manager supplies each endpoint's policies. Required.
	Manager *core.Manager
	// EndpointKey names a request's endpoint; an empty key lets the
	// request through unguarded. Nil means the pattern net/http's ServeMux
	// matched (r.Pattern), with the method in front when the pattern has
	// none, e.g. "GET /users/{id}"; a non-standard method reads "OTHER".
	// With no pattern known the key is empty, because keying endpoints by
	// raw paths would let any client create unbounded state. ServeMux sets
	// r.Pattern only for the handler it routes to, so wrap each route's
	// handler, or key the whole mux with MuxPattern. The keys are cached,
	// so that keying a request allocates nothing. The router adapters key
	// by their router's route pattern instead.
	EndpointKey func(*http.Request) string
	// UserKey names a request's user for the Manager's per-user bulkhead
	// and rate limit (UserFromHeader, UserFromContext); a request with an
	// empty user key skips them. Required when the Manager has either.
	UserKey func(*http.Request) string
	// Priority gives a request's priority for an endpoint's adaptive
	// limit: under pressure lower priorities are shed first (see
	// core.AdaptiveConfig.PriorityShares). Nil means every request alike.
	Priority func(*http.Request) int
	// Classify maps a response status to an outcome. Nil means
	// DefaultClassify: 5xx are failures, everything else succeeds. A panic
	// and a timeout are always failures.
	Classify func(status int) core.Outcome
	// Reject answers a request a policy refused, or one whose handler did
	// not answer before its deadline: by default WriteRejection; a
	// fallback of yours may serve a cached or default response instead.
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
	cfg       Config
	clock     core.Clock
	users     *core.PerUserBulkhead
	userRates *core.PerUserRateLimiter
	policies  policyCache
}

// NewGuard returns a Guard, or every problem of cfg as *core.ConfigError
// values.
func NewGuard(cfg Config) (*Guard, error) {
	c := check.New("nethttp.Config.", configError)
	if cfg.Manager == nil {
		c.Fail("Manager", nil, "is required")
	} else if (cfg.Manager.PerUser() != nil || cfg.Manager.PerUserRateLimiter() != nil) && cfg.UserKey == nil {
		c.Fail("UserKey", nil, "is required: the Manager has per-user limits (see UserFromHeader, UserFromContext)")
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
	m := cfg.Manager
	return &Guard{cfg: cfg, clock: m.Clock(), users: m.PerUser(), userRates: m.PerUserRateLimiter()}, nil
}

func configError(field string, v any, rule string) error {
	return &core.ConfigError{Field: field, Value: v, Rule: rule}
}

// Ticket is one admitted request: the permits it holds, the writer that
// records its status, its deadline and when it started. Serve the request
// with Writer and Request, then Finish it exactly once.
type Ticket struct {
	g        *Guard
	ep       *core.Endpoint
	req      *http.Request
	permit   core.Permit
	adaptive core.AdaptivePermit
	user     core.Guard
	bulk     core.Guard
	start    int64 // Clock.Nanotime
	pending  bool  // admitted and not yet finished
	writer   statusWriter

	// With a deadline: the request's own context (put back by Finish), the
	// one given to the handler, and the alarm that answers for a handler
	// still silent at the deadline.
	timeout  core.TimeoutConfig
	own      context.Context
	deadline context.Context
	alarm    core.Alarm
	fire     func() // t.answerTimeout, made once per Ticket

	// What a fault experiment's filters read, made once per Ticket.
	header func(string) string // the request's header
	userOf func() string       // the request's user, by Config.UserKey
}

var ticketPool = sync.Pool{New: func() any {
	t := new(Ticket)
	t.fire = t.answerTimeout
	t.header = func(name string) string { return t.req.Header.Get(name) }
	t.userOf = func() string {
		if t.g.cfg.UserKey == nil {
			return ""
		}
		return t.g.cfg.UserKey(t.req)
	}
	return t
}}

// recycle makes t ready for another request, keeping what is made once,
// and hands it back to the pool.
func (t *Ticket) recycle() {
	fire, header, userOf := t.fire, t.header, t.userOf
	*t = Ticket{fire: fire, header: header, userOf: userOf}
	ticketPool.Put(t)
}

// Enter runs the policies of endpoint for r, in the order: a fault
// experiment running on the endpoint, the user's rate limit, the
// endpoint's rate limit, the user's bulkhead, the endpoint's adaptive
// limit, its bulkhead, its breaker; then it gives the request its
// deadline. When a policy refuses, Enter answers w with the rejection and
// returns false: the request must not be served.
//
// A fault experiment (see core.Manager.StartFault) that chooses r first
// delays it, on the request's context, then answers it in place of the
// handler: with its status and the body
// {"error":"injected fault","fault":ID} (Enter returns false), or, for an
// abort, by panicking with http.ErrAbortHandler, so that the server drops
// the connection. Header X-Bulwark-Fault names the experiment. Its outcome
// is recorded in the breaker as an injected one; a delayed request then
// goes on through the policies as any other, the delay not counted in its
// duration. A request whose context ends while delayed is not served, and
// Enter returns false without answering. Otherwise it returns a
// Ticket to serve the request with, or a nil Ticket when endpoint is empty
// or cannot be had (past the Manager's bound: the request then runs
// unguarded rather than fail because of bookkeeping).
//
// With a deadline, Enter gives the request its new context in place: the
// *http.Request r points to carries it until Finish puts it back, so that
// routers holding r (echo, gin) pass it on as they are.
func (g *Guard) Enter(w http.ResponseWriter, r *http.Request, endpoint string) (*Ticket, bool) {
	if endpoint == "" {
		return nil, true
	}
	ep, err := g.cfg.Manager.Endpoint(endpoint)
	if err != nil {
		return nil, true
	}
	t := ticketPool.Get().(*Ticket)
	t.g, t.ep, t.req = g, ep, r
	if f, delay := ep.Inject(t.header, t.userOf); f != nil && !t.injectFault(w, f, delay) {
		return nil, false
	}
	var user string
	if g.cfg.UserKey != nil && (g.users != nil || g.userRates != nil) {
		user = g.cfg.UserKey(r)
	}
	if user != "" && g.userRates != nil {
		if err := g.userRates.Allow(user); err != nil {
			if errors.Is(err, core.ErrInvalidUserID) {
				return nil, t.refuse(w, http.StatusBadRequest, "invalid_user", err, 0)
			}
			return nil, t.refuseRate(w, "user", err)
		}
	}
	if rl := ep.RateLimiter(); rl != nil {
		if err := rl.Allow(); err != nil {
			return nil, t.refuseRate(w, "endpoint", err)
		}
	}
	if user != "" && g.users != nil {
		if t.user, err = g.users.Acquire(r.Context(), user); err != nil {
			if errors.Is(err, core.ErrInvalidUserID) {
				return nil, t.refuse(w, http.StatusBadRequest, "invalid_user", err, 0)
			}
			// Over their limit, timed out in their queue, or no room for
			// another user: the user's limit, whichever it was.
			return nil, t.refuse(w, http.StatusTooManyRequests, "user_limit", err, 0)
		}
	}
	if al := ep.Adaptive(); al != nil {
		prio := 0
		if g.cfg.Priority != nil {
			prio = g.cfg.Priority(r)
		}
		if t.adaptive, err = al.Acquire(r.Context(), prio); err != nil {
			t.user.Release()
			return nil, t.refuse(w, http.StatusServiceUnavailable, "concurrency_limit", err, 0)
		}
	}
	if bh := ep.Bulkhead(); bh != nil {
		if t.bulk, err = bh.Acquire(r.Context()); err != nil {
			t.adaptive.Done(core.Ignored, 0)
			t.user.Release()
			return nil, t.refuse(w, http.StatusServiceUnavailable, bulkheadReason(err), err, 0)
		}
	}
	b := ep.Breaker()
	if t.permit, err = b.Allow(); err != nil {
		t.bulk.Release()
		t.adaptive.Done(core.Ignored, 0)
		t.user.Release()
		// The coarse clock: no time.Now per rejection.
		return nil, t.refuse(w, http.StatusServiceUnavailable, "circuit_open", err, b.RetryAfter())
	}
	t.start = g.clock.Nanotime()
	t.writer = statusWriter{w: w, clock: g.clock}
	if to := ep.Timeout(); to.Request > 0 {
		t.timeout = to
		t.writer.timed = true
		t.own = r.Context()
		t.deadline = g.cfg.Manager.WithTimeout(t.own, to.Request)
		*r = *r.WithContext(t.deadline) // in place: inlined, so no copy escapes
		g.cfg.Manager.SetAlarm(&t.alarm, to.Request, t.fire)
	}
	t.pending = true
	return t, true
}

// refuse answers a refused request and recycles the ticket; it returns
// false, for Enter to return.
func (t *Ticket) refuse(w http.ResponseWriter, status int, reason string, err error, retryAfter time.Duration) bool {
	g, r, name := t.g, t.req, t.ep.Name()
	t.recycle()
	rej := Rejection{Endpoint: name, Status: status, Reason: reason, Err: err, RetryAfter: retryAfter}
	if retryAfter == 0 {
		// AsType, not As: As would move its target to the heap, one
		// allocation per refusal.
		if re, ok := errors.AsType[*core.RejectedError](err); ok {
			rej.RetryAfter = re.RetryAfter()
		}
	}
	g.reject(w, r, rej)
	return false
}

// refuseRate answers a request a rate limit refused: 429, with the
// RateLimit headers of the limit that refused it (policy "user" or
// "endpoint").
func (t *Ticket) refuseRate(w http.ResponseWriter, policy string, err error) bool {
	var limit core.RateLimitStats
	switch policy {
	case "user":
		limit = t.g.userRates.Stats()
	default:
		limit = t.ep.RateLimiter().Stats()
	}
	t.g.policies.set(w.Header(), policy, limit)
	return t.refuse(w, http.StatusTooManyRequests, "rate_limited", err, 0)
}

// reject tells the Observer of a refusal and answers it.
func (g *Guard) reject(w http.ResponseWriter, r *http.Request, rej Rejection) {
	if g.cfg.Observer != nil {
		g.cfg.Observer.Rejected(r.Context(), rej)
	}
	g.cfg.Reject(w, r, rej)
}

// answerTimeout runs on the deadline wheel's goroutine when a request's
// deadline passes: if the handler has not begun its response, the deadline
// answers for it (on a goroutine of its own, so that a slow client holds
// up no other deadline) and the handler's later writes fail.
func (t *Ticket) answerTimeout() {
	sw := &t.writer
	sw.answering.Lock() // taken before the gate moves: Finish waits on it from then
	if !sw.gate.CompareAndSwap(gateOpen, gateTimedOut) {
		sw.answering.Unlock()
		return
	}
	rej := Rejection{Endpoint: t.ep.Name(), Status: t.timeout.Status, Reason: "timeout", Err: context.DeadlineExceeded, RetryAfter: time.Second}
	g, r, w := t.g, t.req, sw.w
	go func() {
		defer sw.answering.Unlock()
		g.reject(w, r, rej)
		_ = http.NewResponseController(w).Flush()
	}()
}

// Writer returns the writer to serve the request with: it passes
// everything through (flushing, hijacking and ReadFrom included) and
// records the status.
func (t *Ticket) Writer() http.ResponseWriter { return &t.writer }

// Request returns the request to serve.
func (t *Ticket) Request() *http.Request { return t.req }

// Finish records the request's outcome in the endpoint's policies (from
// status, or the status Writer saw when status is 0, or a failure when the
// handler panicked or its deadline answered for it), measures its duration
// once for all of them, releases every permit, puts the request's own
// context back and recycles the Ticket, which must not be used again. A nil
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
	timedOut, reuse := false, true
	if t.deadline != nil {
		// An alarm that could not be stopped has fired or is firing: its
		// function may still touch t, so t is left to the garbage
		// collector rather than handed to another request.
		reuse = t.alarm.Stop()
		sw := &t.writer
		if !sw.gate.CompareAndSwap(gateOpen, gateClosed) && sw.gate.Load() == gateTimedOut {
			sw.answering.Lock() // the deadline's answer is being written: wait for it
			sw.answering.Unlock()
			timedOut = true
		}
		core.CancelTimeout(t.deadline)
		*t.req = *t.req.WithContext(t.own)
	}
	if status == 0 {
		status = t.writer.Status()
	}
	o := core.Failure
	switch {
	case timedOut:
		o = core.Timeout
	case !panicked:
		o = g.cfg.Classify(status)
	}
	end := t.writer.hijacked
	if end == 0 {
		end = g.clock.Nanotime()
	}
	d := time.Duration(end - t.start)
	obs := g.cfg.Observer
	var before events.State
	if obs != nil {
		before = t.ep.Breaker().State()
	}
	t.permit.Report(o, d)
	t.adaptive.Done(o, d)
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
	if reuse {
		t.recycle()
	} else {
		t.pending = false
	}
}

package nethttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/retryafter"
)

// attempt is one outbound request's state across its attempts. It is
// pooled, with its run function and the alarm that hedges an attempt made
// once, so that an attempt answered in time allocates no more than the
// request copy its deadline needs.
type attempt struct {
	t       *Transport
	req     *http.Request
	ep      *core.Endpoint
	timeout time.Duration // of each attempt; 0 for none
	hedging bool          // the request may be hedged
	n       int
	end     int64 // Clock.Nanotime at the end of the last attempt
	last    *http.Response

	runFn func(context.Context) error // a.run, made once
	fire  func()                      // a.hedge, made once
	alarm core.Alarm

	// mu guards what the alarm's function shares with the attempt in
	// flight: whether it is over, and the race with a hedge it started.
	mu    sync.Mutex
	over  bool
	race  *hedgeRace
	ctx1  context.Context // the attempt's own context, cancelled when a hedge wins
	delay time.Duration   // the hedge delay of the attempt in flight
	reuse bool            // no alarm function can still touch the attempt
}

var attemptPool = sync.Pool{New: func() any {
	a := new(attempt)
	a.runFn, a.fire = a.run, a.hedge
	return a
}}

func getAttempt(t *Transport, req *http.Request, ep *core.Endpoint, timeout time.Duration, hedging bool) *attempt {
	a := attemptPool.Get().(*attempt)
	a.t, a.req, a.ep, a.timeout, a.hedging, a.reuse = t, req, ep, timeout, hedging, true
	return a
}

// release hands the attempt back to the pool, unless an alarm function
// may still run on it.
func (a *attempt) release() {
	if !a.reuse {
		return
	}
	runFn, fire := a.runFn, a.fire
	a.mu.Lock()
	a.t, a.req, a.ep, a.last, a.race, a.ctx1 = nil, nil, nil, nil, nil, nil
	a.n, a.end, a.over, a.timeout, a.hedging = 0, 0, false, 0, false
	a.mu.Unlock()
	a.runFn, a.fire = runFn, fire
	attemptPool.Put(a)
}

// run makes one attempt, hedged when the endpoint hedges and the request
// may be.
func (a *attempt) run(ctx context.Context) error {
	if a.last != nil {
		discard(a.last)
		a.last = nil
	}
	req := a.req
	if a.n > 0 {
		req = a.req.Clone(ctx)
		if a.req.GetBody != nil {
			body, err := a.req.GetBody()
			if err != nil {
				return err
			}
			req.Body = body
		}
	}
	a.n++
	m := a.t.cfg.Manager
	clock := m.Clock()
	start := clock.Nanotime()
	obs := a.t.cfg.Observer
	if obs != nil {
		var wait time.Duration
		if a.n > 1 {
			wait = time.Duration(start - a.end)
		}
		obs.Attempt(ctx, a.ep.Name(), a.n, wait)
	}
	delay, hedge := time.Duration(0), false
	if a.hedging {
		delay, hedge = a.ep.HedgeDelay()
	}
	var resp *http.Response
	var err error
	if a.timeout > 0 || hedge {
		resp, err = a.send(ctx, req, delay, hedge)
	} else {
		resp, err = a.t.base.RoundTrip(req)
	}
	a.end = clock.Nanotime()
	d := time.Duration(a.end - start)
	a.ep.ObserveDuration(d)
	if err == nil {
		a.last = resp
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			ra, ok := retryafter.Parse(resp.Header.Get("Retry-After"), clock.Now())
			err = &statusError{code: resp.StatusCode, retryAfter: ra, hasAfter: ok}
		}
	}
	if obs != nil {
		obs.Done(ctx, a.ep.Name(), a.ep.Breaker().Config().Classifier(err), d)
	}
	return err
}

// send sends one attempt under its own deadline, and when hedge is set,
// sends a second copy once delay has passed without an answer: the first
// answer wins and the other is cancelled, its body closed.
func (a *attempt) send(ctx context.Context, req *http.Request, delay time.Duration, hedge bool) (*http.Response, error) {
	m := a.t.cfg.Manager
	limit := a.timeout
	if limit <= 0 {
		limit = 24 * time.Hour // a context of our own, to cancel if a hedge wins
	}
	ctx1 := m.WithTimeout(ctx, limit)
	req1 := req.WithContext(ctx1)
	if hedge {
		a.mu.Lock()
		a.ctx1, a.over, a.delay = ctx1, false, delay
		a.mu.Unlock()
		m.SetAlarm(&a.alarm, delay, a.fire)
	}
	resp, err := a.t.base.RoundTrip(req1)
	if hedge && !a.alarm.Stop() {
		// The alarm fired: a hedge may be racing this attempt. Its
		// function may still run on a, so a is not pooled again.
		a.reuse = false
		a.mu.Lock()
		a.over = true
		race := a.race
		a.mu.Unlock()
		if race != nil {
			return race.finish(resp, err)
		}
	}
	if err != nil && ctx1.Err() != nil && ctx.Err() == nil {
		err = errAttemptTimeout // the attempt's own deadline, not the request's
	}
	if err != nil || resp == nil {
		core.CancelTimeout(ctx1)
		return resp, err
	}
	// The body is read with ctx1: it ends when the body is closed, or at
	// its deadline if nobody ever asked for its Done channel.
	if w, ok := ctx1.(interface{ Watched() bool }); ok && w.Watched() {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, ctx: ctx1}
	}
	return resp, nil
}

// hedge runs on the deadline wheel when an attempt has run past its hedge
// delay: it sends the hedged copy if the budget allows.
func (a *attempt) hedge() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.over || a.ctx1 == nil || !a.ep.Hedge() {
		return
	}
	r := &hedgeRace{ctx1: a.ctx1}
	a.race = r
	req, parent, delay := a.req, a.req.Context(), a.delay
	m, base, ep, obs := a.t.cfg.Manager, a.t.base, a.ep, a.t.cfg.Observer
	limit := a.timeout
	if limit <= 0 {
		limit = 24 * time.Hour
	}
	go func() {
		ctx2 := m.WithTimeout(parent, limit)
		if !r.start(ctx2) {
			return // the attempt answered meanwhile
		}
		req2 := req.Clone(ctx2)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				r.offer(nil, err)
				return
			}
			req2.Body = body
		}
		if obs != nil {
			obs.Attempt(parent, ep.Name(), 0, delay) // attempt 0: a hedge
		}
		resp, err := base.RoundTrip(req2)
		r.offer(resp, err)
	}()
}

// hedgeRace is an attempt racing its hedge: the first good answer wins,
// and the other request is cancelled and its body closed. The attempt's
// answer stands if it comes first, even a failure: the hedge is there to
// cut a slow tail, not to retry.
type hedgeRace struct {
	ctx1 context.Context // the attempt's
	mu   sync.Mutex
	// decided is set by whichever answer won; hedged by the hedge's.
	decided, hedged bool
	ctx2            context.Context // the hedge's, once it started
	resp            *http.Response  // the hedge's winning answer
}

// start records the hedge's context and reports whether the race is
// still on.
func (r *hedgeRace) start(ctx2 context.Context) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		core.CancelTimeout(ctx2)
		return false
	}
	r.ctx2 = ctx2
	return true
}

// offer is the hedge's answer: a good one that comes first wins, and the
// attempt is cancelled; any other is discarded.
func (r *hedgeRace) offer(resp *http.Response, err error) {
	r.mu.Lock()
	if r.decided || err != nil {
		r.mu.Unlock()
		if resp != nil {
			discard(resp)
		}
		core.CancelTimeout(r.ctx2)
		return
	}
	r.decided, r.hedged, r.resp = true, true, resp
	r.mu.Unlock()
	core.CancelTimeout(r.ctx1) // the attempt gives up
}

// finish is the attempt's answer: it stands unless the hedge won first, in
// which case it is discarded and the hedge's answer returned.
func (r *hedgeRace) finish(resp *http.Response, err error) (*http.Response, error) {
	r.mu.Lock()
	if !r.decided {
		r.decided = true
		ctx2 := r.ctx2
		r.mu.Unlock()
		if ctx2 != nil {
			core.CancelTimeout(ctx2) // the hedge gives up
		}
		if err != nil {
			core.CancelTimeout(r.ctx1)
			return nil, err
		}
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, ctx: r.ctx1}
		return resp, nil
	}
	r.mu.Unlock()
	if resp != nil {
		discard(resp)
	}
	core.CancelTimeout(r.ctx1)
	out := r.resp
	out.Body = &cancelOnClose{ReadCloser: out.Body, ctx: r.ctx2}
	return out, nil
}

// cancelOnClose ends a response's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	ctx context.Context
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	core.CancelTimeout(c.ctx)
	return err
}

// rejected reports whether err is a breaker's refusal.
func rejected(err error) bool {
	return errors.Is(err, core.ErrOpen) || errors.Is(err, core.ErrTooManyProbes)
}

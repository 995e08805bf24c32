package events

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and limits of DeliveryConfig.
const (
	DefaultQueueSize     = 256
	MaxQueueSize         = 1 << 16
	DefaultSendTimeout   = 10 * time.Second
	DefaultMaxAttempts   = 5
	MaxMaxAttempts       = 100
	DefaultBaseBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultMaxRetryAfter = time.Minute
	DefaultDrainTimeout  = 5 * time.Second
)

// DeliveryConfig says how a queued alert handler (log, webhook, Slack) sends.
// Every handler has its own bounded queue and one goroutine that sends the
// alerts in order; HandleAlert only enqueues, so a slow or dead destination
// never blocks the AlertManager. The zero value is valid.
type DeliveryConfig struct {
	// QueueSize bounds the alerts waiting to be sent; an alert that does not
	// fit is dropped and counted. 0 means DefaultQueueSize.
	QueueSize int
	// Timeout bounds each send attempt. 0 means DefaultSendTimeout.
	Timeout time.Duration
	// MaxAttempts is how many times one alert is tried, the first included
	// (1 means no retry). 0 means DefaultMaxAttempts.
	MaxAttempts int
	// BaseBackoff is the wait before the first retry; it doubles on each
	// later retry up to MaxBackoff, with jitter. 0 means DefaultBaseBackoff
	// and DefaultMaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxRetryAfter caps the wait a server asks for with Retry-After, so a
	// server can't stall the queue for an hour. 0 means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// DrainTimeout is how long Close keeps sending what is queued. 0 means
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// After waits between retries, as time.After does (the default). Tests
	// pass a function that returns a channel they control.
	After func(time.Duration) <-chan time.Time
	// Now tells time for Retry-After dates. Default time.Now.
	Now func() time.Time
}

func (c DeliveryConfig) withDefaults(owner string) (DeliveryConfig, error) {
	f := owner + ".Delivery."
	switch {
	case c.QueueSize < 0 || c.QueueSize > MaxQueueSize:
		return c, fmt.Errorf("events: %sQueueSize = %d: want 0..%d", f, c.QueueSize, MaxQueueSize)
	case c.Timeout < 0:
		return c, fmt.Errorf("events: %sTimeout = %v: want >= 0", f, c.Timeout)
	case c.MaxAttempts < 0 || c.MaxAttempts > MaxMaxAttempts:
		return c, fmt.Errorf("events: %sMaxAttempts = %d: want 0..%d", f, c.MaxAttempts, MaxMaxAttempts)
	case c.BaseBackoff < 0:
		return c, fmt.Errorf("events: %sBaseBackoff = %v: want >= 0", f, c.BaseBackoff)
	case c.MaxBackoff < 0:
		return c, fmt.Errorf("events: %sMaxBackoff = %v: want >= 0", f, c.MaxBackoff)
	case c.MaxRetryAfter < 0:
		return c, fmt.Errorf("events: %sMaxRetryAfter = %v: want >= 0", f, c.MaxRetryAfter)
	case c.DrainTimeout < 0:
		return c, fmt.Errorf("events: %sDrainTimeout = %v: want >= 0", f, c.DrainTimeout)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultSendTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.BaseBackoff {
		return c, fmt.Errorf("events: %sMaxBackoff = %v: want >= BaseBackoff (%v)", f, c.MaxBackoff, c.BaseBackoff)
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// HandlerStats counts what a queued alert handler did.
type HandlerStats struct {
	// Sent counts alerts delivered.
	Sent uint64 `json:"sent"`
	// Failed counts alerts given up on after trying: attempts exhausted, a
	// permanent error (a 4xx other than 429), or cut off by Close's deadline.
	Failed uint64 `json:"failed"`
	// Dropped counts alerts never tried: the queue was full, the handler was
	// closed, or they were still queued when Close's deadline passed.
	Dropped uint64 `json:"dropped"`
	// Retried counts retry attempts (not alerts).
	Retried uint64 `json:"retried"`
	// Queued is the number of alerts waiting now.
	Queued int `json:"queued"`
}

// ErrHandlerClosed is returned by Close when alerts were left unsent.
var ErrHandlerClosed = errors.New("alert handler closed with alerts unsent")

// permanentError marks a send failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retryAfterError carries the wait a server asked for.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// queue is the bounded queue and sending goroutine behind every queued
// handler.
type queue struct {
	cfg    DeliveryConfig
	send   func(ctx context.Context, a Alert) error
	onDone func()

	mu     sync.RWMutex // guards closed against a send on ch
	closed bool
	ch     chan Alert

	ctx    context.Context // cancelled when Close's deadline passes
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	sent, failed, dropped, retried atomic.Uint64
}

func newQueue(cfg DeliveryConfig, send func(context.Context, Alert) error, onDone func()) *queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &queue{
		cfg: cfg, send: send, onDone: onDone,
		ch:  make(chan Alert, cfg.QueueSize),
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	go q.run()
	return q
}

// enqueue never blocks.
func (q *queue) enqueue(a Alert) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		return
	}
	select {
	case q.ch <- a:
	default:
		q.dropped.Add(1)
	}
}

func (q *queue) stats() HandlerStats {
	return HandlerStats{
		Sent:    q.sent.Load(),
		Failed:  q.failed.Load(),
		Dropped: q.dropped.Load(),
		Retried: q.retried.Load(),
		Queued:  len(q.ch),
	}
}

func (q *queue) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.DrainTimeout)
	defer cancel()
	return q.shutdown(ctx)
}

func (q *queue) shutdown(ctx context.Context) error {
	q.once.Do(func() {
		q.mu.Lock()
		q.closed = true
		close(q.ch)
		q.mu.Unlock()
	})
	before := q.failed.Load() + q.dropped.Load()
	select {
	case <-q.done:
	case <-ctx.Done():
		q.cancel()
		<-q.done
	}
	q.cancel()
	if lost := q.failed.Load() + q.dropped.Load() - before; lost > 0 && ctx.Err() != nil {
		return fmt.Errorf("%w: %d alerts not delivered before the deadline", ErrHandlerClosed, lost)
	}
	return nil
}

func (q *queue) run() {
	defer close(q.done)
	if q.onDone != nil {
		defer q.onDone()
	}
	for a := range q.ch {
		if q.ctx.Err() != nil {
			q.dropped.Add(1)
			continue
		}
		q.deliver(a)
	}
}

// deliver tries one alert until it is sent, fails for good, or the queue is
// aborted.
func (q *queue) deliver(a Alert) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(q.ctx, q.cfg.Timeout)
		err := q.send(ctx, a)
		cancel()
		if err == nil {
			q.sent.Add(1)
			return
		}
		var perm *permanentError
		if errors.As(err, &perm) || attempt >= q.cfg.MaxAttempts || q.ctx.Err() != nil {
			q.failed.Add(1)
			return
		}
		wait := q.backoff(attempt)
		var ra *retryAfterError
		if errors.As(err, &ra) && ra.after >= 0 {
			wait = min(ra.after, q.cfg.MaxRetryAfter)
		}
		select {
		case <-q.cfg.After(wait):
		case <-q.ctx.Done():
			q.failed.Add(1)
			return
		}
		q.retried.Add(1)
	}
}

// backoff returns the wait after the given failed attempt: exponential, with
// jitter in its upper half so that it keeps jitter at the cap.
func (q *queue) backoff(attempt int) time.Duration {
	d := q.cfg.BaseBackoff
	for i := 1; i < attempt && d < q.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, q.cfg.MaxBackoff)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
